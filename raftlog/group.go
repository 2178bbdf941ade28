package raftlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/raftka/raftka/storage"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// ErrNotLeader is returned for proposals to a replica that is not the
// group's leader. Use errors.As with *NotLeaderError to learn the leader.
var ErrNotLeader = errors.New("raftlog: not the leader")

// ErrGroupClosed is returned for proposals to, and waiters on, a group that
// was stopped.
var ErrGroupClosed = errors.New("raftlog: group closed")

// ErrProposalDropped is returned when raft refused a proposal, for example
// because too much is already waiting to commit. Retrying later is safe.
var ErrProposalDropped = errors.New("raftlog: proposal dropped")

// ErrStorage is returned to proposers whose entry's outcome is unknown
// because a storage write failed; the broker stops serving after it.
var ErrStorage = errors.New("raftlog: storage write failed")

// NotLeaderError says which replica leads the group, if known (0 if not).
type NotLeaderError struct{ Leader uint64 }

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("raftlog: not the leader (leader %d)", e.Leader)
}

// Unwrap lets errors.Is(err, ErrNotLeader) match.
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// StateMachine applies a group's committed entries. The scheduler calls it
// from one goroutine at a time per group, in log order.
type StateMachine interface {
	// Apply applies the payload of one committed entry proposed through
	// Group.Propose. Its durable effects go into b, which commits together
	// with the group's applied index; effects that readers observe must wait
	// for Publish. The result is handed to the proposer, if it is waiting on
	// this replica.
	Apply(b storage.Batch, index, term uint64, payload []byte) any
	// Publish makes everything applied so far visible to readers. It is
	// called after the batch holding the Apply writes committed.
	Publish()
	// LeadershipChanged reports the replica's view of the group after a
	// change of leader or term: the leader's id (0 if unknown) and the term.
	LeadershipChanged(leader, term uint64)
}

// appliedTermObserver is implemented by state machines that want to know
// the term of the last applied entry, data or not: a leader has applied
// everything committed before it once it applies an entry of its own term.
type appliedTermObserver interface {
	AppliedTerm(term uint64)
}

// Status is a snapshot of a group's Raft state as this replica sees it.
type Status struct {
	ID      uint64
	Leader  uint64
	Term    uint64
	State   raft.StateType
	Commit  uint64
	Applied uint64
	Voters  []uint64
}

// A proposal waits for its entry to be applied.
type proposal struct {
	done   chan struct{}
	result any
	err    error
}

// Group is one Raft group on this broker: a RawNode, its storage, and the
// state machine it applies to. The scheduler drives it; other goroutines
// only propose and read status.
type Group struct {
	id     uint64
	nodeID uint64
	sched  *Scheduler
	sm     StateMachine
	log    *slog.Logger
	opts   GroupOptions

	mu struct {
		sync.Mutex
		rn    *raft.RawNode
		store *logStore
		// proposals waiting for their entries to apply, by proposal id.
		proposals map[uint64]*proposal
		nextProp  uint64
		leader    uint64
		term      uint64
		state     raft.StateType
		applied   uint64
		closed    bool
		// quiesced groups do not tick: an idle group costs nothing until a
		// proposal or a message wakes it. Invariant: a quiesced leader had
		// every follower caught up with its whole log when it quiesced.
		quiesced  bool
		idleTicks int
	}
	// queued is set while the group sits in the scheduler's ready queue;
	// guarded by the scheduler's mu.
	queued bool
}

// Propose proposes payload and waits until it is applied, returning the
// state machine's result. A context that ends first leaves the outcome
// unknown: the entry may still commit.
func (g *Group) Propose(ctx context.Context, payload []byte) (any, error) {
	p, err := g.propose(payload)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.done:
		return p.result, p.err
	case <-ctx.Done():
		g.forget(p)
		return nil, ctx.Err()
	}
}

// forget stops tracking a proposal whose proposer gave up waiting.
func (g *Group) forget(p *proposal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, q := range g.mu.proposals {
		if q == p {
			delete(g.mu.proposals, id)
			return
		}
	}
}

// ProposeAsync proposes payload and returns a function that waits for its
// result. Proposals made in order from one goroutine are appended in order.
func (g *Group) ProposeAsync(payload []byte) (wait func(context.Context) (any, error), err error) {
	p, err := g.propose(payload)
	if err != nil {
		return nil, err
	}
	return p.wait, nil
}

// wait returns the proposal's result once it is applied, or ctx's error.
func (p *proposal) wait(ctx context.Context) (any, error) {
	select {
	case <-p.done:
		return p.result, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Entry data envelope, version 1: [1][proposal id u64][payload]. Entries
// with no data (a new leader's empty entry) carry nothing to apply.
const (
	envelopeV1     = 1
	envelopeHeader = 9
)

func (g *Group) propose(payload []byte) (*proposal, error) {
	data := make([]byte, envelopeHeader, envelopeHeader+len(payload))
	return g.proposeEnvelope(append(data, payload...))
}

// proposeEnvelope proposes data, whose first envelopeHeader bytes are free
// for the envelope, which it fills in: callers with large payloads build
// them behind the header and save a copy.
func (g *Group) proposeEnvelope(data []byte) (*proposal, error) {
	data[0] = envelopeV1
	g.mu.Lock()
	if g.mu.closed {
		g.mu.Unlock()
		return nil, ErrGroupClosed
	}
	if g.mu.state != raft.StateLeader && (!g.opts.ForwardProposals || g.mu.leader == 0) {
		leader := g.mu.leader
		g.mu.Unlock()
		return nil, &NotLeaderError{Leader: leader}
	}
	if g.mu.quiesced {
		g.unquiesceLocked()
	}
	g.mu.nextProp++
	id := g.mu.nextProp
	binary.BigEndian.PutUint64(data[1:envelopeHeader], id)
	if err := g.mu.rn.Propose(data); err != nil {
		// g.mu.state lags raft's by up to one Ready: a leader that has
		// just stepped down drops the proposal. Say who leads now, so
		// that a Kafka client refreshes its metadata instead of retrying
		// here.
		var nle error
		if bs := g.mu.rn.BasicStatus(); bs.RaftState != raft.StateLeader {
			nle = &NotLeaderError{Leader: bs.Lead}
		}
		g.mu.Unlock()
		switch {
		case nle != nil:
			return nil, nle
		case errors.Is(err, raft.ErrProposalDropped):
			return nil, ErrProposalDropped
		}
		return nil, err
	}
	p := &proposal{done: make(chan struct{})}
	g.mu.proposals[id] = p
	g.mu.Unlock()
	g.sched.enqueue(g)
	return p, nil
}

// ID returns the group's id.
func (g *Group) ID() uint64 { return g.id }

// Status returns the replica's current view of the group.
func (g *Group) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := Status{ID: g.id, Leader: g.mu.leader, Term: g.mu.term, State: g.mu.state, Applied: g.mu.applied}
	if g.mu.rn != nil {
		bs := g.mu.rn.BasicStatus()
		st.Commit = bs.GetCommit()
		st.Voters = append([]uint64(nil), g.mu.store.cs.Voters...)
	}
	return st
}

// IsLeader reports whether this replica is the group's leader.
func (g *Group) IsLeader() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.state == raft.StateLeader
}

// Campaign makes this replica stand for election now instead of waiting for
// its election timeout.
func (g *Group) Campaign() error {
	g.mu.Lock()
	if g.mu.quiesced {
		g.unquiesceLocked()
	}
	err := g.mu.rn.Campaign()
	g.mu.Unlock()
	g.sched.enqueue(g)
	return err
}

// readyLocked takes the group's Ready if it has one.
func (g *Group) readyLocked() (raft.Ready, bool) {
	if g.mu.closed || !g.mu.rn.HasReady() {
		return raft.Ready{}, false
	}
	return g.mu.rn.Ready(), true
}

// persistLocked adds the Ready's log entries and hard state to b.
// canSendBeforePersistLocked reports whether rd's messages may go out
// before rd is durable, so that followers write a leader's entries while the
// leader writes them too (Raft thesis §10.2.1, as etcd does). A leader's
// messages are appends, heartbeats and the like, which promise nothing about
// its own log: its entries count towards commitment only once written, since
// the scheduler applies nothing of a Ready before the write. But a leader
// whose term or vote is not yet durable must wait — a single voter elects
// itself within one Ready, and an append to a learner in a term the leader
// could forget in a crash might later be contradicted in that same term.
func (g *Group) canSendBeforePersistLocked(rd *raft.Ready) bool {
	state := g.mu.state
	if rd.SoftState != nil {
		state = rd.SoftState.RaftState
	}
	if state != raft.StateLeader {
		return false
	}
	return g.keepsTermAndVoteLocked(rd)
}

// keepsTermAndVoteLocked reports whether rd leaves the durable term and
// vote as they are.
func (g *Group) keepsTermAndVoteLocked(rd *raft.Ready) bool {
	hs, old := rd.HardState, g.mu.store.hs
	return hs == nil || raft.IsEmptyHardState(hs) || (hs.GetTerm() == old.GetTerm() && hs.GetVote() == old.GetVote())
}

// canApplyBeforePersistLocked reports whether rd's committed entries may be
// applied, and their proposers answered, before rd is written. That holds
// when every one of them was already durable here before this Ready (so the
// applied index never runs ahead of the durable log, whatever the order of
// the two writes in a crash), and when rd changes nothing that applying
// acts on besides entries: no new leadership or term (announced to the
// state machine only once durable) and no configuration change. A single
// voter's entries, committed when its own write completes, are applied in
// the next pass without waiting for that pass's write.
func (g *Group) canApplyBeforePersistLocked(rd *raft.Ready) bool {
	n := len(rd.CommittedEntries)
	if n == 0 || rd.SoftState != nil || !g.keepsTermAndVoteLocked(rd) {
		return false
	}
	if rd.CommittedEntries[n-1].GetIndex() > g.mu.store.lastIndex {
		return false // not yet durable here: some are in this Ready
	}
	for _, e := range rd.CommittedEntries {
		if e.GetType() != pb.EntryNormal {
			return false
		}
	}
	return true
}

// readyWriteSize estimates the bytes persistLocked adds to a batch for rd:
// each entry's key and stored value, the hard state, and a margin per record
// for the batch's own framing.
func readyWriteSize(rd *raft.Ready) int {
	const perRecord = groupPrefixLen + 1 + 8 + 16 // key plus framing
	n := perRecord + 64                           // hard state
	for _, e := range rd.Entries {
		n += perRecord + entryHeaderLen + len(e.GetData())
	}
	return n
}

func (g *Group) persistLocked(b storage.Batch, rd *raft.Ready) error {
	if rd.Snapshot != nil && rd.Snapshot.GetMetadata().GetIndex() > 0 {
		return fmt.Errorf("raftlog: group %d: snapshots are not supported yet", g.id)
	}
	err := g.mu.store.append(b, rd.Entries)
	if err != nil {
		return err
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
		if err := g.mu.store.setHardState(b, rd.HardState); err != nil {
			return err
		}
	}
	return nil
}

// delivery is a proposal result to hand over once the apply batch commits.
type delivery struct {
	p      *proposal
	result any
}

// applyLocked applies the Ready's committed entries into b and notes which
// proposals they complete. It notes leadership changes first, so that the
// state machine learns of a new term before entries from it.
func (g *Group) applyLocked(b storage.Batch, rd *raft.Ready, out []delivery) ([]delivery, error) {
	if ss := rd.SoftState; ss != nil {
		term := g.mu.term
		if rd.HardState != nil && rd.HardState.GetTerm() != 0 {
			term = rd.HardState.GetTerm()
		}
		if ss.Lead != g.mu.leader || ss.RaftState != g.mu.state || term != g.mu.term {
			wasLeader := g.mu.state == raft.StateLeader
			g.mu.leader, g.mu.state, g.mu.term = ss.Lead, ss.RaftState, term
			if wasLeader && ss.RaftState != raft.StateLeader {
				g.failProposalsLocked(&NotLeaderError{Leader: ss.Lead})
			}
			g.log.Debug("leadership changed", "leader", ss.Lead, "state", ss.RaftState.String(), "term", term)
			g.sm.LeadershipChanged(ss.Lead, term)
		}
	} else if rd.HardState != nil && rd.HardState.GetTerm() > g.mu.term {
		g.mu.term = rd.HardState.GetTerm()
		g.sm.LeadershipChanged(g.mu.leader, g.mu.term)
	}
	if len(rd.CommittedEntries) == 0 {
		return out, nil
	}
	for _, e := range rd.CommittedEntries {
		switch e.GetType() {
		case pb.EntryNormal:
			data := e.GetData()
			if len(data) == 0 {
				break
			}
			if len(data) < envelopeHeader || data[0] != envelopeV1 {
				return out, fmt.Errorf("raftlog: group %d index %d: unknown entry envelope", g.id, e.GetIndex())
			}
			res := g.sm.Apply(b, e.GetIndex(), e.GetTerm(), data[envelopeHeader:])
			pid := binary.BigEndian.Uint64(data[1:envelopeHeader])
			if p, ok := g.mu.proposals[pid]; ok {
				delete(g.mu.proposals, pid)
				out = append(out, delivery{p: p, result: res})
			}
		case pb.EntryConfChange, pb.EntryConfChangeV2:
			cc, err := pb.ConfChangeI(nil), error(nil)
			if e.GetType() == pb.EntryConfChange {
				var c pb.ConfChange
				err = proto.Unmarshal(e.GetData(), &c)
				cc = &c
			} else {
				var c pb.ConfChangeV2
				err = proto.Unmarshal(e.GetData(), &c)
				cc = &c
			}
			if err != nil {
				return out, fmt.Errorf("raftlog: group %d index %d: conf change: %w", g.id, e.GetIndex(), err)
			}
			cs := g.mu.rn.ApplyConfChange(cc)
			if err := g.mu.store.setConfState(b, cs); err != nil {
				return out, err
			}
			g.log.Info("configuration changed", "voters", cs.Voters, "learners", cs.Learners)
		}
		g.mu.applied = e.GetIndex()
	}
	if o, ok := g.sm.(appliedTermObserver); ok {
		last := rd.CommittedEntries[len(rd.CommittedEntries)-1]
		o.AppliedTerm(last.GetTerm())
	}
	if err := b.Set(appliedKey(g.id), binary.BigEndian.AppendUint64([]byte{1}, g.mu.applied)); err != nil {
		return out, err
	}
	g.mu.store.cache.evictApplied(g.mu.applied, true)
	return out, nil
}

// failProposalsLocked completes every waiting proposal with err.
func (g *Group) failProposalsLocked(err error) {
	for id, p := range g.mu.proposals {
		p.err = err
		close(p.done)
		delete(g.mu.proposals, id)
	}
}

// loadApplied returns the applied index persisted for group id.
func loadApplied(eng storage.Engine, id uint64) (uint64, error) {
	v, err := eng.Get(appliedKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	if len(v) != 9 || v[0] != 1 {
		return 0, fmt.Errorf("raftlog: group %d: malformed applied state", id)
	}
	return binary.BigEndian.Uint64(v[1:]), nil
}

// quiesceAfterTicks is how long a leader's group must be idle before it
// quiesces.
const quiesceAfterTicks = 3

// maybeQuiesceLeaderLocked quiesces an idle group this replica leads: every
// follower has the whole log and knows it is committed, nothing is being
// proposed or applied. It tells each follower with a quiesce heartbeat.
// It reports whether the group is now quiesced.
func (g *Group) maybeQuiesceLeaderLocked() bool {
	if g.opts.NoQuiesce || g.mu.state != raft.StateLeader || len(g.mu.proposals) > 0 || g.mu.rn.HasReady() {
		g.mu.idleTicks = 0
		return false
	}
	st := g.mu.rn.Status()
	last := g.mu.store.lastIndex
	if st.LeadTransferee != 0 || st.GetCommit() != last || g.mu.applied != last {
		g.mu.idleTicks = 0
		return false
	}
	for id, pr := range st.Progress {
		if id != g.nodeID && (pr.Match != last || !pr.RecentActive || pr.IsPaused()) {
			g.mu.idleTicks = 0
			return false
		}
	}
	if g.mu.idleTicks++; g.mu.idleTicks < quiesceAfterTicks {
		return false
	}
	for id := range st.Progress {
		if id == g.nodeID {
			continue
		}
		g.sched.transport.SendQuiesce(g.id, &pb.Message{
			Type:   pb.MsgHeartbeat.Enum(),
			To:     proto.Uint64(id),
			From:   proto.Uint64(g.nodeID),
			Term:   proto.Uint64(st.GetTerm()),
			Commit: proto.Uint64(st.GetCommit()),
		})
	}
	g.mu.quiesced = true
	g.mu.idleTicks = 0
	g.mu.store.cache.evictApplied(g.mu.applied, false)
	return true
}

// maybeQuiesceFollowerLocked quiesces a follower that received a quiesce
// heartbeat from its current leader and has the whole committed log.
func (g *Group) maybeQuiesceFollowerLocked(m *pb.Message) {
	st := g.mu.rn.BasicStatus()
	if st.RaftState != raft.StateFollower || st.Lead != m.GetFrom() || st.GetTerm() != m.GetTerm() {
		return
	}
	if g.mu.store.lastIndex != m.GetCommit() || st.GetCommit() != m.GetCommit() {
		return
	}
	g.mu.quiesced = true
	g.mu.store.cache.evictApplied(g.mu.applied, false)
}

// unquiesceLocked makes the group tick again.
func (g *Group) unquiesceLocked() {
	g.mu.quiesced = false
	g.mu.idleTicks = 0
}

// Quiesced reports whether the group is quiesced.
func (g *Group) Quiesced() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.quiesced
}

// TransferLeadership asks this replica, if it leads, to hand leadership to
// node. It is a no-op otherwise.
func (g *Group) TransferLeadership(node uint64) {
	g.mu.Lock()
	if g.mu.closed || g.mu.state != raft.StateLeader {
		g.mu.Unlock()
		return
	}
	if g.mu.quiesced {
		g.unquiesceLocked()
	}
	g.mu.rn.TransferLeader(node)
	g.mu.Unlock()
	g.sched.enqueue(g)
}

// InSync returns, on the leader, the voters whose log holds everything
// committed and that the leader heard from recently (Kafka's in-sync
// replicas), including the leader; nil on other replicas.
func (g *Group) InSync() []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.closed || g.mu.state != raft.StateLeader {
		return nil
	}
	// WithProgress, unlike Status, copies no progress maps or inflight
	// windows: brokers ask this of every partition they lead, often.
	commit := g.mu.rn.BasicStatus().GetCommit()
	voters := g.mu.store.cs.Voters
	var out []uint64
	g.mu.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if !slices.Contains(voters, id) {
			return
		}
		if id == g.nodeID || (pr.Match >= commit && (pr.RecentActive || g.mu.quiesced)) {
			out = append(out, id)
		}
	})
	return out
}

// CaughtUp reports, on the leader, whether node's log matches the leader's.
func (g *Group) CaughtUp(node uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.closed || g.mu.state != raft.StateLeader {
		return false
	}
	caughtUp := false
	g.mu.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == node {
			caughtUp = pr.Match == g.mu.store.lastIndex
		}
	})
	return caughtUp
}

// ConfState returns the group's applied configuration.
func (g *Group) ConfState() (voters, learners []uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]uint64(nil), g.mu.store.cs.Voters...), append([]uint64(nil), g.mu.store.cs.Learners...)
}

// ConfChangeType says how ProposeConfChange changes a group's members.
type ConfChangeType int

// Configuration changes.
const (
	AddLearner ConfChangeType = iota
	AddVoter
	RemoveNode
)

// ProposeConfChange proposes one membership change; only the leader may.
// Raft ignores a change proposed while another is still being applied, so
// callers reconcile: propose, wait, look at ConfState, propose again.
func (g *Group) ProposeConfChange(typ ConfChangeType, node uint64) error {
	cc := &pb.ConfChange{NodeId: proto.Uint64(node)}
	switch typ {
	case AddLearner:
		cc.Type = pb.ConfChangeAddLearnerNode.Enum()
	case AddVoter:
		cc.Type = pb.ConfChangeAddNode.Enum()
	case RemoveNode:
		cc.Type = pb.ConfChangeRemoveNode.Enum()
	}
	g.mu.Lock()
	if g.mu.closed || g.mu.state != raft.StateLeader {
		leader := g.mu.leader
		g.mu.Unlock()
		return &NotLeaderError{Leader: leader}
	}
	if g.mu.quiesced {
		g.unquiesceLocked()
	}
	err := g.mu.rn.ProposeConfChange(cc)
	g.mu.Unlock()
	g.sched.enqueue(g)
	return err
}
