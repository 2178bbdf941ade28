// Package coordinator is Raftka's group coordinator: the classic consumer
// group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and
// committed offsets, as a pure state machine.
//
// A Shard holds the groups of one __consumer_offsets partition. It does no
// IO and reads no clock: every input carries the time, timers are
// deadlines the caller asks for (NextDeadline) and fires (Tick), and
// everything that must be made durable comes out as Writes of
// __consumer_offsets records that the caller appends to the partition's
// Raft log and confirms with Written. Responses are delivered through the
// callbacks given with each request, from within a Shard call. A response
// that depends on a write (an offset commit, the leader's SyncGroup) is
// delivered only once Written confirms it, so nothing is acknowledged
// before it is committed.
//
// A Shard is not safe for concurrent use: one goroutine owns it (see the
// broker's groups.go). When the broker becomes leader of the partition it
// builds a new Shard, Replays every record of the partition into it and
// calls Loaded; when it stops leading, it calls Unload and drops it.
package coordinator

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Config tunes a Shard. The zero value is not usable; start from
// DefaultConfig.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (Kafka's group.min.session.timeout.ms and
	// group.max.session.timeout.ms); outside them JoinGroup answers
	// INVALID_SESSION_TIMEOUT.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay holds back the first rebalance of an empty
	// group so that members starting together join one generation
	// (group.initial.rebalance.delay.ms); 0 disables it.
	InitialRebalanceDelay time.Duration
	// NewMemberJoinTimeout removes a new member whose first join does not
	// complete in time (Kafka's fixed 5 minutes).
	NewMemberJoinTimeout time.Duration
	// OffsetsRetention is how long committed offsets are kept once their
	// group is empty (offsets.retention.minutes).
	OffsetsRetention time.Duration
	// MaxMetadataBytes bounds a committed offset's metadata
	// (offset.metadata.max.bytes).
	MaxMetadataBytes int
	// NewMemberID returns a member id for a client; nil gives Kafka's
	// clientID-UUID. Tests make it deterministic.
	NewMemberID func(clientID string) string
	// Logger receives rebalance events; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:     6 * time.Second,
		MaxSessionTimeout:     30 * time.Minute,
		InitialRebalanceDelay: 3 * time.Second,
		NewMemberJoinTimeout:  5 * time.Minute,
		OffsetsRetention:      7 * 24 * time.Hour,
		MaxMetadataBytes:      4096,
	}
}

// Write is a set of records the Shard needs appended, as one batch, to its
// __consumer_offsets partition. Writes must be appended in the order
// TakeWrites returns them, and confirmed (Written) in that order.
type Write struct {
	ID      uint64
	Records []Record
}

// Shard is the coordinator state of one __consumer_offsets partition: its
// groups, their members and their committed offsets.
type Shard struct {
	cfg    Config
	log    *slog.Logger
	groups map[string]*group
	// now is the time of the input being handled.
	now time.Time
	// loaded is set by Loaded; Replay is allowed only before it.
	loaded bool
	// unloaded is set by Unload: every request is answered NOT_COORDINATOR.
	unloaded bool

	outbox    []Write
	nextWrite uint64
	// inflight are the completions of writes taken but not yet Written.
	inflight map[uint64]func(code int16)
}

// New returns an empty Shard, ready to Replay a partition's records.
func New(cfg Config) *Shard {
	if cfg.NewMemberID == nil {
		cfg.NewMemberID = randomMemberID
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Shard{cfg: cfg, log: log, groups: map[string]*group{}, inflight: map[uint64]func(int16){}}
}

// randomMemberID is Kafka's member id: the client id, a dash and a UUID.
func randomMemberID(clientID string) string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", clientID, u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// write queues records for the log; done runs when Written confirms them
// (code 0) or reports why they were not appended.
func (s *Shard) write(records []Record, done func(code int16)) {
	s.nextWrite++
	s.outbox = append(s.outbox, Write{ID: s.nextWrite, Records: records})
	s.inflight[s.nextWrite] = done
}

// TakeWrites returns the writes queued since the last call, in order. The
// caller appends each as one record batch and calls Written for each.
func (s *Shard) TakeWrites() []Write {
	w := s.outbox
	s.outbox = nil
	return w
}

// Written reports the outcome of write id: code 0 once its records are
// committed in the partition's log, else the Kafka error a client should
// see: NOT_COORDINATOR (leadership lost), COORDINATOR_NOT_AVAILABLE (timed
// out), MESSAGE_TOO_LARGE, or UNKNOWN_SERVER_ERROR.
func (s *Shard) Written(now time.Time, id uint64, code int16) {
	s.now = now
	done, ok := s.inflight[id]
	if !ok {
		return
	}
	delete(s.inflight, id)
	done(code)
}

// InflightWrites returns how many writes await Written.
func (s *Shard) InflightWrites() int { return len(s.inflight) }

// Replay applies one record of the partition's log, in log order, while
// loading. It returns an error for a record it cannot decode; the caller
// logs it and goes on (the record's group may then be missing data, which
// is better than not serving the partition's other groups). The shard keeps
// nothing of r's bytes: the caller may reuse them once Replay returns.
func (s *Shard) Replay(r Record) error {
	if s.loaded {
		return fmt.Errorf("coordinator: Replay after Loaded")
	}
	d, err := decodeRecord(r)
	if err != nil {
		return err
	}
	g := s.groups[d.group]
	if g == nil {
		g = newGroup(d.group, time.Time{})
		s.groups[d.group] = g
	}
	if d.isOffset {
		if d.offset == nil {
			delete(g.offsets, d.tp)
			return nil
		}
		o := committedOffset{
			offset:      d.offset.Offset,
			leaderEpoch: -1,
			metadata:    d.offset.Metadata,
			commitTime:  time.UnixMilli(d.offset.CommitTimestamp),
		}
		if d.offset.Version >= 3 {
			o.leaderEpoch = d.offset.LeaderEpoch
		}
		if d.offset.Version == 1 && d.offset.ExpireTimestamp >= 0 {
			o.expireTime = time.UnixMilli(d.offset.ExpireTimestamp)
		}
		g.offsets[d.tp] = o
		return nil
	}
	// Group metadata replaces the group's membership; a tombstone clears
	// it (the group's offsets go by their own tombstones).
	offsets := g.offsets
	ng := newGroup(d.group, time.Time{})
	ng.offsets = offsets
	s.groups[d.group] = ng
	v := d.metadata
	if v == nil {
		return nil
	}
	ng.protocolType = v.ProtocolType
	ng.generation = v.Generation
	if v.Protocol != nil {
		ng.protocolName = *v.Protocol
	}
	if v.CurrentStateTimestamp >= 0 {
		ng.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
	}
	for _, mv := range v.Members {
		m := &member{
			id:               mv.MemberID,
			instanceID:       mv.InstanceID,
			clientID:         mv.ClientID,
			clientHost:       mv.ClientHost,
			protocolType:     v.ProtocolType,
			protocols:        []protocol{{name: ng.protocolName, metadata: bytes.Clone(mv.Subscription)}},
			rebalanceTimeout: time.Duration(mv.RebalanceTimeoutMillis) * time.Millisecond,
			sessionTimeout:   time.Duration(mv.SessionTimeoutMillis) * time.Millisecond,
			assignment:       bytes.Clone(mv.Assignment),
		}
		if m.rebalanceTimeout <= 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		ng.add(m)
	}
	ng.protocolType = v.ProtocolType
	if v.Leader != nil && ng.members[*v.Leader] != nil {
		ng.leader = *v.Leader
	}
	return nil
}

// Loaded ends loading: groups with members are Stable (their members get
// a full session to heartbeat to this coordinator), the others Empty, and
// groups that hold nothing are dropped.
func (s *Shard) Loaded(now time.Time) {
	s.now = now
	s.loaded = true
	for id, g := range s.groups {
		switch {
		case len(g.members) > 0:
			g.state = Stable
			for _, m := range g.members {
				m.expiresAt = now.Add(m.sessionTimeout)
			}
		case len(g.offsets) == 0 && g.generation == 0 && g.protocolType == "":
			delete(s.groups, id)
			continue
		default:
			g.state = Empty
		}
		if g.stateSince.IsZero() {
			g.stateSince = now
		}
	}
}

// Unload answers every waiting request NOT_COORDINATOR: the broker no
// longer leads the partition. The Shard answers NOT_COORDINATOR from then
// on.
func (s *Shard) Unload() {
	if s.unloaded {
		return
	}
	s.unloaded = true
	code := kerr.NotCoordinator.Code
	for _, id := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[id]
		for _, m := range g.memberList() {
			s.failWaiters(m, code)
		}
		g.state = Dead
	}
	for _, id := range slices.Sorted(maps.Keys(s.inflight)) {
		done := s.inflight[id]
		delete(s.inflight, id)
		done(code)
	}
	s.groups = map[string]*group{}
	s.outbox = nil
}

// failWaiters answers m's waiting JoinGroup and SyncGroup with code.
func (s *Shard) failWaiters(m *member, code int16) {
	if j := m.join; j != nil {
		m.join = nil
		memberID := m.id
		if code == kerr.UnknownMemberID.Code {
			memberID = ""
		}
		j.respond(joinError(j.req, code, memberID))
	}
	if sy := m.sync; sy != nil {
		m.sync = nil
		sy.respond(syncError(sy.req, code))
	}
}

// NextDeadline returns the earliest timer of any group: when Tick has work.
func (s *Shard) NextDeadline() (time.Time, bool) {
	var next time.Time
	consider := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, g := range s.groups {
		for _, t := range g.pending {
			consider(t)
		}
		for _, m := range g.members {
			consider(m.expiresAt)
		}
		consider(g.joinDeadline)
		consider(g.syncDeadline)
	}
	return next, !next.IsZero()
}

// Tick fires every timer due at now: pending and session timeouts of
// members, the end of a rebalance's join phase, and the sync timeout.
func (s *Shard) Tick(now time.Time) {
	s.now = now
	if s.unloaded {
		return
	}
	due := func(t time.Time) bool { return !t.IsZero() && !now.Before(t) }
	for _, id := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[id]
		for _, pid := range slices.Sorted(maps.Keys(g.pending)) {
			if due(g.pending[pid]) {
				delete(g.pending, pid)
				s.log.Info("pending member expired", "group", g.id, "member", pid)
				if g.state == PreparingRebalance {
					s.tryCompleteJoin(g)
				}
			}
		}
		for _, m := range g.memberList() {
			if g.members[m.id] != m || !due(m.expiresAt) {
				continue
			}
			switch {
			case m.isNew:
				s.removeMember(g, m, "new member did not complete its join in time")
			case m.join != nil || m.sync != nil:
				// Waiting in a rebalance counts as alive; check again a
				// session later.
				m.expiresAt = now.Add(m.sessionTimeout)
			default:
				s.removeMember(g, m, "session timeout")
			}
		}
		if g.state == PreparingRebalance && due(g.joinDeadline) {
			s.onJoinDeadline(g)
		}
		if due(g.syncDeadline) {
			s.onSyncDeadline(g)
		}
	}
}

// storeGroup writes g's current generation with assignments.
func (s *Shard) storeGroup(g *group, assignments map[string][]byte, done func(code int16)) {
	s.write([]Record{{Key: groupKey(g.id), Value: groupValue(g, assignments)}}, done)
}

// GroupCount returns how many groups the shard holds.
func (s *Shard) GroupCount() int { return len(s.groups) }
