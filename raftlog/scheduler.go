package raftlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/raftka/raftka/storage"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Config configures a broker's Raft scheduler. Start from DefaultConfig.
type Config struct {
	// NodeID is this broker's id; it is the Raft node id in every group.
	NodeID uint64
	// TickInterval is the length of one Raft tick.
	TickInterval time.Duration
	// ElectionTicks is the number of ticks without a leader before a
	// follower stands for election (randomized up to twice this by raft).
	ElectionTicks int
	// HeartbeatTicks is the number of ticks between leader heartbeats.
	HeartbeatTicks int
	// MaxSizePerMsg bounds the bytes of entries in one append message.
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds the append messages in flight to one follower.
	MaxInflightMsgs int
	// MaxUncommittedBytes bounds the entry bytes a leader holds uncommitted
	// per group; proposals beyond it fail with ErrProposalDropped.
	MaxUncommittedBytes uint64
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the configuration for a production broker.
func DefaultConfig(nodeID uint64) Config {
	return Config{
		NodeID: nodeID,
		// 100ms ticks with 10-tick elections: a leader failure is noticed in
		// 1–2 s, as in etcd's defaults, while heartbeats stay cheap.
		TickInterval:   100 * time.Millisecond,
		ElectionTicks:  10,
		HeartbeatTicks: 1,
		// 1 MiB messages with 256 in flight keep a follower's pipe full at
		// the throughput one broker can fsync.
		MaxSizePerMsg:       1 << 20,
		MaxInflightMsgs:     256,
		MaxUncommittedBytes: 256 << 20,
	}
}

// Validate returns every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == 0 {
		errs = append(errs, errors.New("node id must be > 0"))
	}
	if c.TickInterval <= 0 {
		errs = append(errs, errors.New("tick interval must be > 0"))
	}
	if c.HeartbeatTicks <= 0 || c.ElectionTicks <= c.HeartbeatTicks {
		errs = append(errs, fmt.Errorf("need 0 < heartbeat ticks (%d) < election ticks (%d)", c.HeartbeatTicks, c.ElectionTicks))
	}
	if c.MaxInflightMsgs <= 0 {
		errs = append(errs, errors.New("max inflight msgs must be > 0"))
	}
	return errors.Join(errs...)
}

// Transport carries Raft messages to other brokers. Send must not block: it
// queues or drops (Raft retries). The scheduler calls it from its own
// goroutine, after the messages' prerequisites are durable.
type Transport interface {
	// Send queues msgs of group for their destinations.
	Send(group uint64, msgs []*pb.Message)
	// SendQuiesce queues a heartbeat that also tells the follower the
	// group is idle and may stop ticking (see Group quiescence).
	SendQuiesce(group uint64, m *pb.Message)
}

// localTransport is the transport of a broker that has no peers: there is
// nobody to send to, so a message to another node is a configuration bug.
type localTransport struct{ log *slog.Logger }

func (t localTransport) Send(group uint64, msgs []*pb.Message) {
	for _, m := range msgs {
		t.log.Warn("dropping raft message to unknown peer", "group", group, "to", m.GetTo(), "type", m.GetType().String())
	}
}

func (t localTransport) SendQuiesce(group uint64, m *pb.Message) { t.Send(group, []*pb.Message{m}) }

// Scheduler drives every Raft group of a broker. One goroutine runs passes;
// a pass takes the Ready of every group with work, writes all their log
// entries and hard states in one synced batch (group commit), sends their
// messages, applies their committed entries in one more batch and advances
// them. Proposals arriving during a pass wait for the next one, which is
// what makes the batching automatic.
//
// Lock order: Scheduler.mu before Group.mu; neither is held during IO.
type Scheduler struct {
	cfg       Config
	eng       storage.Engine
	transport Transport
	log       *slog.Logger
	metrics   *Metrics

	mu struct {
		sync.Mutex
		groups map[uint64]*Group
		// queue holds groups with work for the next pass, in arrival order.
		// Invariant: g is in queue iff g.queued.
		queue  []*Group
		closed bool
		// lastHeard is when a message last arrived from each node.
		lastHeard map[uint64]time.Time
		ticks     uint64
	}
	wake chan struct{}
	// passMu is held during a pass; destroying a group takes it so that no
	// pass writes the group's keys after they are deleted.
	passMu sync.Mutex

	// cacheBudget bounds the entries the groups' caches keep after
	// applying them.
	cacheBudget cacheBudget
	// maxBatchBytes is the size above which a pass writes its log entries
	// in several commits, only the last one synced (see
	// storage.BatchSizer); 0 means one commit, whatever its size.
	maxBatchBytes int

	stop    context.CancelFunc
	stopped chan struct{}
	// fatal is set when a storage write failed; the scheduler stops.
	fatal error
}

// NewScheduler returns a scheduler writing to eng. Start it with Run.
func NewScheduler(cfg Config, eng storage.Engine, transport Transport) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("raftlog: invalid config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Scheduler{cfg: cfg, eng: eng, transport: transport, log: cfg.Logger, metrics: newMetrics(), wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	if s.transport == nil {
		s.transport = localTransport{log: cfg.Logger}
	}
	s.mu.groups = make(map[uint64]*Group)
	s.cacheBudget.max = DefaultEntryCacheBytes
	if bs, ok := eng.(storage.BatchSizer); ok {
		s.maxBatchBytes = bs.MaxBatchBytes()
	}
	s.mu.lastHeard = make(map[uint64]time.Time)
	return s, nil
}

// Metrics returns the scheduler's counters.
func (s *Scheduler) Metrics() *Metrics { return s.metrics }

// Engine returns the storage engine the scheduler writes to.
func (s *Scheduler) Engine() storage.Engine { return s.eng }

// NodeID returns this broker's Raft node id.
func (s *Scheduler) NodeID() uint64 { return s.cfg.NodeID }

// Bootstrap writes the initial state of a new group to the engine, durably.
// It is a no-op if the group already exists.
func (s *Scheduler) Bootstrap(id uint64, voters, learners []uint64) error {
	if _, err := s.eng.Get(confStateKey(id)); err == nil {
		return nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	b := s.eng.NewBatch()
	defer b.Close()
	if err := bootstrapGroup(b, id, voters, learners); err != nil {
		return err
	}
	return b.Commit(true)
}

// GroupOptions tune one group.
type GroupOptions struct {
	// ForwardProposals lets followers propose: raft forwards the proposal
	// to the leader, and the proposer learns the result when it applies
	// the entry. The metadata group uses it so any broker can make changes.
	ForwardProposals bool
	// NoQuiesce keeps the group ticking when idle.
	NoQuiesce bool
}

// raftConfig is the raft configuration of group id.
func (s *Scheduler) raftConfig(id uint64, store raft.Storage, applied uint64, opts GroupOptions) *raft.Config {
	return &raft.Config{
		ID:                        s.cfg.NodeID,
		ElectionTick:              s.cfg.ElectionTicks,
		HeartbeatTick:             s.cfg.HeartbeatTicks,
		Storage:                   store,
		Applied:                   applied,
		MaxSizePerMsg:             s.cfg.MaxSizePerMsg,
		MaxCommittedSizePerReady:  64 << 20,
		MaxUncommittedEntriesSize: s.cfg.MaxUncommittedBytes,
		MaxInflightMsgs:           s.cfg.MaxInflightMsgs,
		// Bound the bytes in flight to one follower too, well under the
		// transport's per-peer queue, so that a busy group slows down
		// instead of overflowing the queue (a drop sends the follower back
		// to slow probing).
		MaxInflightBytes: 8 << 20,
		CheckQuorum:      true,
		PreVote:          true,
		// Without ForwardProposals a proposal reaching a follower is
		// dropped, never forwarded. Group.proposeEnvelope checks its own
		// view of the state first, but that view lags raft's by up to one
		// Ready: a leader that just stepped down would otherwise forward
		// the proposal, and a forwarded entry's data is sent later, from
		// the proposer's slice (Partition.AppendAsync recycles it at once).
		DisableProposalForwarding: !opts.ForwardProposals,
		Logger:                    raftLogger{s.log.With("group", id)},
	}
}

// AddGroup opens the bootstrapped group id with state machine sm and starts
// driving it. The state machine must already reflect the group's persisted
// applied index (see AppliedIndex).
func (s *Scheduler) AddGroup(id uint64, sm StateMachine) (*Group, error) {
	return s.AddGroupWithOptions(id, sm, GroupOptions{})
}

// AddGroupWithOptions is AddGroup with options.
func (s *Scheduler) AddGroupWithOptions(id uint64, sm StateMachine, opts GroupOptions) (*Group, error) {
	// Check for a running group before reading any state: a running group
	// moves on between the reads below, which raft would take for a
	// corrupt log.
	s.mu.Lock()
	_, dup := s.mu.groups[id]
	s.mu.Unlock()
	if dup {
		return nil, fmt.Errorf("raftlog: group %d already running", id)
	}
	store, err := openLogStore(s.eng, id)
	if err != nil {
		return nil, err
	}
	store.cache.budget = &s.cacheBudget
	applied, err := loadApplied(s.eng, id)
	if err != nil {
		return nil, err
	}
	rn, err := raft.NewRawNode(s.raftConfig(id, store, applied, opts))
	if err != nil {
		return nil, fmt.Errorf("raftlog: group %d: %w", id, err)
	}
	g := &Group{id: id, nodeID: s.cfg.NodeID, sched: s, sm: sm, log: s.log.With("group", id), opts: opts}
	g.mu.rn = rn
	// Proposal ids start at a random point for every incarnation of the
	// group, so that an id never matches an entry proposed by another node
	// (forwarded proposals) or by this node before a restart (an entry
	// written but not yet committed when the broker crashed).
	g.mu.nextProp = rand.Uint64()
	g.mu.store = store
	g.mu.proposals = make(map[uint64]*proposal)
	g.mu.applied = applied
	g.mu.term = store.hs.GetTerm()
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil, ErrGroupClosed
	}
	if _, dup := s.mu.groups[id]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("raftlog: group %d already running", id)
	}
	s.mu.groups[id] = g
	s.mu.Unlock()
	// A lone voter has nobody to wait for: elect it at once.
	if cs := store.cs; len(cs.Voters) == 1 && cs.Voters[0] == s.cfg.NodeID && len(cs.VotersOutgoing) == 0 {
		g.mu.Lock()
		_ = rn.Campaign()
		g.mu.Unlock()
	}
	s.metrics.groups.Add(1)
	s.enqueue(g)
	return g, nil
}

// AppliedIndex returns the applied index persisted for group id.
func (s *Scheduler) AppliedIndex(id uint64) (uint64, error) { return loadApplied(s.eng, id) }

// RemoveGroup stops driving group id and fails its waiting proposals. With
// destroy it also deletes all of the group's data, durably.
func (s *Scheduler) RemoveGroup(id uint64, destroy bool) error {
	s.mu.Lock()
	g := s.mu.groups[id]
	delete(s.mu.groups, id)
	s.mu.Unlock()
	if g != nil {
		g.mu.Lock()
		g.mu.closed = true
		g.failProposalsLocked(ErrGroupClosed)
		g.mu.store.cache.clear()
		g.mu.Unlock()
		s.metrics.groups.Add(-1)
	}
	if !destroy {
		return nil
	}
	s.passMu.Lock()
	defer s.passMu.Unlock()
	b := s.eng.NewBatch()
	defer b.Close()
	start, end := groupSpan(id)
	if err := b.DeleteRange(start, end); err != nil {
		return err
	}
	return b.Commit(true)
}

// Group returns the running group id, or nil.
func (s *Scheduler) Group(id uint64) *Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.groups[id]
}

// Step hands a message from a peer to group id.
func (s *Scheduler) Step(group uint64, m *pb.Message) error {
	return s.step(group, m, false)
}

// livenessGroup is the group id of node-level heartbeats: one message per
// peer every few ticks, whatever the number of groups, so that followers
// of quiesced groups notice a leader they stopped hearing from.
const livenessGroup = 0

func (s *Scheduler) step(group uint64, m *pb.Message, quiesce bool) error {
	s.mu.Lock()
	s.mu.lastHeard[m.GetFrom()] = time.Now()
	s.mu.Unlock()
	if group == livenessGroup {
		return nil
	}
	g := s.Group(group)
	if g == nil {
		return fmt.Errorf("raftlog: group %d not found", group)
	}
	g.mu.Lock()
	if g.mu.closed {
		g.mu.Unlock()
		return ErrGroupClosed
	}
	if !quiesce && g.mu.quiesced && !(g.mu.state == raft.StateLeader && m.GetType() == pb.MsgHeartbeatResp) {
		g.unquiesceLocked()
	}
	err := g.mu.rn.Step(m)
	if quiesce && err == nil {
		g.maybeQuiesceFollowerLocked(m)
	}
	g.mu.Unlock()
	s.enqueue(g)
	return err
}

var _ Inbound = (*Scheduler)(nil)

// Receive implements Inbound.
func (s *Scheduler) Receive(group uint64, m *pb.Message, quiesce bool) {
	if err := s.step(group, m, quiesce); err != nil {
		s.log.Debug("dropping raft message", "group", group, "from", m.GetFrom(), "type", m.GetType().String(), "err", err)
	}
}

// PeerUnreachable implements Inbound: raft stops optimistic replication to
// the peer in every group and probes it instead.
func (s *Scheduler) PeerUnreachable(node uint64) {
	for _, g := range s.groups() {
		g.mu.Lock()
		if !g.mu.closed && g.mu.state == raft.StateLeader {
			g.mu.rn.ReportUnreachable(node)
		}
		g.mu.Unlock()
	}
}

// UnquiesceAll wakes every quiesced group. The broker calls it when the
// failure detector reports a peer down, so that followers of a dead leader
// tick again and elect a new one.
func (s *Scheduler) UnquiesceAll() {
	for _, g := range s.groups() {
		g.mu.Lock()
		if g.mu.quiesced {
			g.unquiesceLocked()
		}
		g.mu.Unlock()
	}
}

// groups returns the running groups.
func (s *Scheduler) groups() []*Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Group, 0, len(s.mu.groups))
	for _, g := range s.mu.groups {
		out = append(out, g)
	}
	return out
}

// enqueue marks g as having work for the next pass.
func (s *Scheduler) enqueue(g *Group) {
	s.mu.Lock()
	if !g.queued && !s.mu.closed {
		g.queued = true
		s.mu.queue = append(s.mu.queue, g)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run drives the groups until ctx ends or a storage write fails. It returns
// the storage error, or nil after ctx ended.
func (s *Scheduler) Run(ctx context.Context) error {
	defer close(s.stopped)
	ticker := time.NewTicker(s.cfg.TickInterval)
	defer ticker.Stop()
	defer s.shutdown()
	var pass passState
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			s.tick()
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			if len(s.mu.queue) == 0 {
				s.mu.Unlock()
				break
			}
			// Swap the queue with the spare buffer, so that neither is
			// shared between the pass and enqueue.
			queue := s.mu.queue
			s.mu.queue = pass.spare[:0]
			for _, g := range queue {
				g.queued = false
			}
			s.mu.Unlock()
			s.passMu.Lock()
			err := s.runPass(queue, &pass)
			s.passMu.Unlock()
			if err != nil {
				s.fatal = err
				s.log.Error("raft scheduler stopped: storage write failed", "err", err)
				return err
			}
			pass.spare = queue
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}

// Done is closed when Run has returned.
func (s *Scheduler) Done() <-chan struct{} { return s.stopped }

func (s *Scheduler) shutdown() {
	groups := s.groups()
	s.mu.Lock()
	s.mu.closed = true
	s.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		g.mu.closed = true
		g.failProposalsLocked(ErrGroupClosed)
		g.mu.Unlock()
	}
}

// tick advances the logical clock of every group that is not quiesced by
// one tick, and quiesces leaders of idle groups.
func (s *Scheduler) tick() {
	quiesced := 0
	electionTimeout := time.Duration(s.cfg.ElectionTicks) * s.cfg.TickInterval
	now := time.Now()
	s.mu.Lock()
	s.mu.ticks++
	heartbeat := s.mu.ticks%uint64(max(1, s.cfg.ElectionTicks/3)) == 0
	lastHeard := make(map[uint64]time.Time, len(s.mu.lastHeard))
	for id, t := range s.mu.lastHeard {
		lastHeard[id] = t
	}
	s.mu.Unlock()
	peers := map[uint64]bool{}
	for _, g := range s.groups() {
		g.mu.Lock()
		if g.mu.closed {
			g.mu.Unlock()
			continue
		}
		if heartbeat {
			for _, id := range g.mu.store.cs.Voters {
				peers[id] = true
			}
			for _, id := range g.mu.store.cs.Learners {
				peers[id] = true
			}
		}
		if g.mu.quiesced {
			// A follower that stopped hearing from its leader wakes up
			// and, after an election timeout of its own, campaigns.
			if l := g.mu.leader; g.mu.state != raft.StateLeader && l != 0 && now.Sub(lastHeard[l]) > electionTimeout {
				g.unquiesceLocked()
			} else {
				quiesced++
				g.mu.Unlock()
				continue
			}
		}
		// Quiesce before ticking: a leader's tick queues heartbeats.
		if g.maybeQuiesceLeaderLocked() {
			quiesced++
			g.mu.Unlock()
			continue
		}
		g.mu.rn.Tick()
		has := g.mu.rn.HasReady()
		g.mu.Unlock()
		if has {
			s.enqueue(g)
		}
	}
	s.metrics.quiesced.Set(float64(quiesced))
	if heartbeat {
		var msgs []*pb.Message
		for id := range peers {
			if id != s.cfg.NodeID {
				msgs = append(msgs, &pb.Message{Type: pb.MsgHeartbeat.Enum(), From: proto.Uint64(s.cfg.NodeID), To: proto.Uint64(id)})
			}
		}
		if len(msgs) > 0 {
			s.transport.Send(livenessGroup, msgs)
		}
	}
}

// passState is reused between passes to avoid allocations.
type passState struct {
	readies    []groupReady
	deliveries []delivery
	spare      []*Group
}

type groupReady struct {
	g  *Group
	rd raft.Ready
	// early is set when rd's appends and heartbeats go out before the
	// pass's log write (see Group.canSendBeforePersistLocked).
	early bool
	// applyFirst is set when rd's committed entries are applied before
	// the pass's log write (see Group.canApplyBeforePersistLocked).
	applyFirst bool
	// size estimates the bytes rd adds to the log batch.
	size int
}

// sendEarly sends a leader's appends and heartbeats before its log write
// (see Group.canSendBeforePersistLocked) and returns the other messages,
// which wait for the write.
func (s *Scheduler) sendEarly(group uint64, msgs []*pb.Message) (later []*pb.Message) {
	var early []*pb.Message
	for _, m := range msgs {
		switch m.GetType() {
		case pb.MsgApp, pb.MsgHeartbeat:
			early = append(early, m)
		default:
			later = append(later, m)
		}
	}
	if len(early) > 0 {
		s.transport.Send(group, early)
	}
	return later
}

// runPass processes one round of Readies for groups. An error is a storage
// failure, after which nothing may be acknowledged.
func (s *Scheduler) runPass(groups []*Group, ps *passState) error {
	start := time.Now()
	ps.readies = ps.readies[:0]
	// Take the Readies first, so that the log batch is sized once: Pebble
	// grows a batch by doubling and copying it, which under load copied
	// each byte of entries about twice more and allocated as much again
	// as the entries themselves.
	size := 0
	for _, g := range groups {
		g.mu.Lock()
		rd, ok := g.readyLocked()
		var early, applyFirst bool
		if ok {
			early = g.canSendBeforePersistLocked(&rd)
			applyFirst = g.canApplyBeforePersistLocked(&rd)
		}
		g.mu.Unlock()
		if ok {
			n := readyWriteSize(&rd)
			ps.readies = append(ps.readies, groupReady{g: g, rd: rd, early: early, applyFirst: applyFirst, size: n})
			size += n
		}
	}
	if len(ps.readies) == 0 {
		return nil
	}
	// The log write is one commit, or, when it is larger than the engine
	// takes well (storage.BatchSizer), several: a part is committed unsynced
	// as soon as the next group would overflow it, and the last part's sync
	// makes them all durable. A group's writes never straddle two parts, so
	// a crash between them leaves every group's log as it was before the
	// pass or as it is after it.
	limit := s.maxBatchBytes
	if limit <= 0 {
		limit = size
	}
	b := s.eng.NewBatchWithSize(min(size, limit))
	defer func() { b.Close() }()
	left := size
	parts := 0
	mustSync := false
	for i := range ps.readies {
		r := &ps.readies[i]
		if !b.Empty() && b.Len()+r.size > limit {
			if err := b.Commit(false); err != nil {
				return fmt.Errorf("raftlog: log write: %w", err)
			}
			b.Close()
			parts++
			b = s.eng.NewBatchWithSize(min(left, limit))
		}
		left -= r.size
		r.g.mu.Lock()
		err := r.g.persistLocked(b, &r.rd)
		r.g.mu.Unlock()
		if err != nil {
			return err
		}
		mustSync = mustSync || r.rd.MustSync
		if r.early {
			r.rd.Messages = s.sendEarly(r.g.id, r.rd.Messages)
		}
	}
	// Entries that were durable before this pass need not wait for its
	// write: apply them, and answer their proposers, first.
	if err := s.applyReadies(ps, true); err != nil {
		return err
	}
	if !b.Empty() || (parts > 0 && mustSync) {
		if err := b.Commit(mustSync); err != nil {
			return fmt.Errorf("raftlog: log write: %w", err)
		}
		if mustSync {
			s.metrics.syncs.Inc()
		}
	}
	if parts > 0 {
		s.metrics.splitWrites.Inc()
	}
	s.metrics.appendLatency.Observe(time.Since(start).Seconds())

	// Other messages go out only now: votes and append acknowledgements
	// promise that what they acknowledge is durable.
	for i := range ps.readies {
		r := &ps.readies[i]
		if len(r.rd.Messages) > 0 {
			s.transport.Send(r.g.id, r.rd.Messages)
		}
	}
	if err := s.applyReadies(ps, false); err != nil {
		return err
	}
	for i := range ps.readies {
		r := &ps.readies[i]
		r.g.mu.Lock()
		if !r.g.mu.closed {
			r.g.mu.rn.Advance(r.rd)
		}
		more := !r.g.mu.closed && r.g.mu.rn.HasReady()
		r.g.mu.Unlock()
		if more {
			s.enqueue(r.g)
		}
	}
	s.metrics.passes.Inc()
	s.metrics.passReadies.Observe(float64(len(ps.readies)))
	return nil
}

// applyReadies applies the committed entries of the pass's Readies whose
// applyFirst is first, in one unsynced batch, publishes them to their state
// machines and completes their proposals.
func (s *Scheduler) applyReadies(ps *passState, first bool) error {
	ab := s.eng.NewBatch()
	defer ab.Close()
	ps.deliveries = ps.deliveries[:0]
	// failDeliveries completes proposals taken from their groups when the
	// pass cannot finish: their outcome is unknown to the proposer.
	failDeliveries := func(err error) error {
		for _, d := range ps.deliveries {
			d.p.err = fmt.Errorf("%w: %v", ErrStorage, err)
			close(d.p.done)
		}
		ps.deliveries = ps.deliveries[:0]
		return err
	}
	applied := false
	for i := range ps.readies {
		r := &ps.readies[i]
		if r.applyFirst != first {
			continue
		}
		applied = true
		var err error
		r.g.mu.Lock()
		ps.deliveries, err = r.g.applyLocked(ab, &r.rd, ps.deliveries)
		if err == nil && first {
			// The log write that records the new commit index comes
			// after this one: record, with what is applied, a commit
			// index covering it, or a restart would find the applied
			// index beyond the commit index.
			err = r.g.mu.store.writeCommitFloor(ab, r.rd.HardState, r.g.mu.applied)
		}
		r.g.mu.Unlock()
		if err != nil {
			return failDeliveries(err)
		}
	}
	if !applied {
		return nil
	}
	if !ab.Empty() {
		// Applied state need not be synced: after a crash the group
		// replays committed entries from the last persisted applied index.
		if err := ab.Commit(false); err != nil {
			return failDeliveries(fmt.Errorf("raftlog: apply write: %w", err))
		}
	}
	for i := range ps.readies {
		r := &ps.readies[i]
		if r.applyFirst == first && len(r.rd.CommittedEntries) > 0 {
			r.g.sm.Publish()
		}
	}
	for _, d := range ps.deliveries {
		d.p.result = d.result
		close(d.p.done)
	}
	ps.deliveries = ps.deliveries[:0]
	return nil
}

// QuiescedGroups returns how many groups are quiesced.
func (s *Scheduler) QuiescedGroups() int {
	n := 0
	for _, g := range s.groups() {
		if g.Quiesced() {
			n++
		}
	}
	return n
}
