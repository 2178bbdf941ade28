package raftlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftka/raftka/storage"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// echoStateMachine applies payloads by remembering them and answers each
// proposal with its own payload, so a proposer can tell whose entry it was
// told about.
type echoStateMachine struct {
	mu struct {
		sync.Mutex
		applied []string
	}
}

func (m *echoStateMachine) Apply(_ storage.Batch, _, _ uint64, payload []byte) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.applied = append(m.mu.applied, string(payload))
	return string(payload)
}

func (m *echoStateMachine) Publish() {}

func (m *echoStateMachine) LeadershipChanged(uint64, uint64) {}

func (m *echoStateMachine) appliedPayloads() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.mu.applied)
}

// verdict is what testNet does with a message.
type verdict int

const (
	deliver verdict = iota
	drop
	hold // keep until release
)

// testNet is an in-memory network between schedulers, with a filter that
// can drop or hold messages. One goroutine delivers messages in order.
type testNet struct {
	mu struct {
		sync.Mutex
		nodes  map[uint64]*Scheduler
		filter func(m *pb.Message) verdict
		queue  []netMsg
		held   []netMsg
	}
	wake chan struct{}
}

type netMsg struct {
	group   uint64
	m       *pb.Message
	quiesce bool
}

func newTestNet(t testing.TB) *testNet {
	n := &testNet{wake: make(chan struct{}, 1)}
	n.mu.nodes = map[uint64]*Scheduler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

func (n *testNet) add(id uint64, s *Scheduler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.nodes[id] = s
}

func (n *testNet) setFilter(f func(m *pb.Message) verdict) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.filter = f
}

// release queues the held messages for delivery, in the order they came.
func (n *testNet) release() {
	n.mu.Lock()
	n.mu.queue = append(n.mu.held, n.mu.queue...)
	n.mu.held = nil
	n.mu.Unlock()
	n.signal()
}

func (n *testNet) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Send implements Transport. Messages are copied: the receiver's raft must
// not share them with the sender's.
func (n *testNet) Send(group uint64, msgs []*pb.Message) {
	n.mu.Lock()
	for _, m := range msgs {
		n.mu.queue = append(n.mu.queue, netMsg{group: group, m: proto.CloneOf(m)})
	}
	n.mu.Unlock()
	n.signal()
}

// SendQuiesce implements Transport.
func (n *testNet) SendQuiesce(group uint64, m *pb.Message) {
	n.mu.Lock()
	n.mu.queue = append(n.mu.queue, netMsg{group: group, m: proto.CloneOf(m), quiesce: true})
	n.mu.Unlock()
	n.signal()
}

func (n *testNet) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		for {
			n.mu.Lock()
			if len(n.mu.queue) == 0 {
				n.mu.Unlock()
				break
			}
			nm := n.mu.queue[0]
			n.mu.queue = n.mu.queue[1:]
			v := deliver
			if n.mu.filter != nil {
				v = n.mu.filter(nm.m)
			}
			if v == hold {
				n.mu.held = append(n.mu.held, nm)
			}
			to := n.mu.nodes[nm.m.GetTo()]
			n.mu.Unlock()
			if v == deliver && to != nil {
				to.Receive(nm.group, nm.m, nm.quiesce) // a stopped node drops it
			}
		}
	}
}

// testCluster is one Raft group replicated on several schedulers.
type testCluster struct {
	net    *testNet
	scheds []*runningScheduler
	engs   []storage.Engine
	sms    []*echoStateMachine
	groups []*Group
}

func startCluster(t testing.TB, nodes int, group uint64) *testCluster {
	t.Helper()
	c := &testCluster{net: newTestNet(t)}
	var voters []uint64
	for i := 1; i <= nodes; i++ {
		voters = append(voters, uint64(i))
	}
	for _, id := range voters {
		eng := storage.NewMemory()
		rs := startScheduler(t, testConfig(id), eng, c.net)
		c.net.add(id, rs.Scheduler)
		if err := rs.Bootstrap(group, voters, nil); err != nil {
			t.Fatal(err)
		}
		sm := &echoStateMachine{}
		g, err := rs.AddGroup(group, sm)
		if err != nil {
			t.Fatal(err)
		}
		c.scheds = append(c.scheds, rs)
		c.engs = append(c.engs, eng)
		c.sms = append(c.sms, sm)
		c.groups = append(c.groups, g)
	}
	return c
}

// electNode1 makes node 1 the leader and waits until everyone knows.
func (c *testCluster) electNode1(t testing.TB) {
	t.Helper()
	if err := c.groups[0].Campaign(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "node 1 leads and everyone knows", func() bool {
		for _, g := range c.groups {
			if g.Status().Leader != 1 {
				return false
			}
		}
		return c.groups[0].IsLeader()
	})
}

// storedPayload reports whether node i's log holds an entry containing s.
func (c *testCluster) storedPayload(t testing.TB, i int, group uint64, s string) bool {
	t.Helper()
	it, err := c.engs[i].NewIter(logKey(group, 0), logKey(group, ^uint64(0)))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if bytes.Contains(it.Value(), []byte(s)) {
			return true
		}
	}
	return false
}

func TestGroupReplicationAndNotLeader(t *testing.T) {
	t.Parallel()
	const group = 1
	c := startCluster(t, 3, group)
	c.electNode1(t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, i := range []int{1, 2} {
		_, err := c.groups[i].Propose(ctx, []byte("nope"))
		var nle *NotLeaderError
		if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nle) || nle.Leader != 1 {
			t.Fatalf("proposal to follower %d: %v, want NotLeaderError{1}", i+1, err)
		}
	}
	for i := range 5 {
		payload := fmt.Sprintf("p%d", i)
		res, err := c.groups[0].Propose(ctx, []byte(payload))
		if err != nil || res != payload {
			t.Fatalf("propose %s: %v, %v", payload, res, err)
		}
	}
	want := []string{"p0", "p1", "p2", "p3", "p4"}
	waitFor(t, 10*time.Second, "every replica applied every entry", func() bool {
		for _, sm := range c.sms {
			if !slices.Equal(sm.appliedPayloads(), want) {
				return false
			}
		}
		return true
	})
	st := c.groups[0].Status()
	if st.State != raft.StateLeader || st.Leader != 1 || !slices.Equal(st.Voters, []uint64{1, 2, 3}) || st.Applied < 6 || st.Commit < st.Applied {
		t.Fatalf("leader status %+v", st)
	}
	for i := 1; i < 3; i++ {
		applied, err := c.scheds[i].AppliedIndex(group)
		if err != nil || applied < 6 {
			t.Errorf("node %d: persisted applied index %d, %v", i+1, applied, err)
		}
	}
}

// TestGroupProposalAnsweredWithOwnEntry checks that a proposal is answered
// with the result of its own entry, also when a new leader applies entries
// its predecessor proposed. Proposal ids restart at 1 on every replica, so
// an old leader's entry can carry the same id as a new leader's proposal.
func TestGroupProposalAnsweredWithOwnEntry(t *testing.T) {
	t.Parallel()
	const group = 1
	c := startCluster(t, 3, group)
	c.electNode1(t)

	// Node 1 appends an entry that reaches node 2 but cannot commit: node 3
	// is cut off and node 2's acknowledgements are lost.
	c.net.setFilter(func(m *pb.Message) verdict {
		from, to := m.GetFrom(), m.GetTo()
		switch {
		case from == 1 && to == 3, from == 3 && to == 1:
			return drop
		case from == 2 && to == 1 && m.GetType() == pb.MessageType_MsgAppResp:
			return drop
		}
		return deliver
	})
	wait1, err := c.groups[0].ProposeAsync([]byte("from-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "node 2 stores node 1's entry", func() bool {
		return c.storedPayload(t, 1, group, "from-node-1")
	})

	// Node 1 is cut off; node 2 takes over. Node 3's acknowledgements to
	// node 2 are held, so node 1's entry cannot commit yet. The others
	// learn that node 1 is gone, as from the failure detector, and wake
	// their groups if idle.
	c.net.setFilter(func(m *pb.Message) verdict {
		from, to := m.GetFrom(), m.GetTo()
		switch {
		case from == 1 || to == 1:
			return drop
		case from == 3 && to == 2 && m.GetType() == pb.MessageType_MsgAppResp:
			return hold
		}
		return deliver
	})
	c.scheds[1].UnquiesceAll()
	c.scheds[2].UnquiesceAll()
	waitFor(t, 10*time.Second, "node 2 leads", c.groups[1].IsLeader)
	wait2, err := c.groups[1].ProposeAsync([]byte("from-node-2"))
	if err != nil {
		t.Fatal(err)
	}
	c.net.setFilter(func(m *pb.Message) verdict {
		if m.GetFrom() == 1 || m.GetTo() == 1 {
			return drop
		}
		return deliver
	})
	c.net.release()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res2, err2 := wait2(ctx)
	// Both entries commit, node 1's first.
	want := []string{"from-node-1", "from-node-2"}
	waitFor(t, 10*time.Second, "nodes 2 and 3 apply both entries", func() bool {
		return slices.Equal(c.sms[1].appliedPayloads(), want) && slices.Equal(c.sms[2].appliedPayloads(), want)
	})
	// Node 1 lost its leadership (check quorum) and says so.
	if _, err := wait1(ctx); !errors.Is(err, ErrNotLeader) {
		t.Errorf("deposed leader's proposal: %v, want ErrNotLeader", err)
	}
	if err2 != nil {
		t.Fatalf("node 2's proposal: %v", err2)
	}
	if res2 != "from-node-2" {
		t.Fatalf("node 2's proposal answered with %v, want from-node-2", res2)
	}
}

// TestGroupProposalToJustDeposedLeader checks a proposal made while the
// Group still believes it leads but raft no longer does (its view lags by
// up to one Ready, e.g. on a leader that was paused and has just heard of
// a newer term): raft drops it rather than forwarding it (a partition's
// proposal buffer is recycled at once), and the proposer learns who leads.
func TestGroupProposalToJustDeposedLeader(t *testing.T) {
	t.Parallel()
	const group = 1
	c := startCluster(t, 3, group)
	c.electNode1(t)
	g := c.groups[1]
	waitFor(t, 10*time.Second, "node 2 follows node 1", func() bool { return g.Status().Leader == 1 })

	g.mu.Lock()
	was := g.mu.state
	g.mu.state = raft.StateLeader
	g.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := g.Propose(ctx, []byte("stale"))
	g.mu.Lock()
	g.mu.state = was
	g.mu.Unlock()
	var nle *NotLeaderError
	if !errors.As(err, &nle) || nle.Leader != 1 {
		t.Fatalf("proposal to a replica that only believes it leads: %v, want NotLeaderError{1}", err)
	}

	// Nothing reached the log: the next entry everyone applies is node 1's.
	if res, err := c.groups[0].Propose(ctx, []byte("next")); err != nil || res != "next" {
		t.Fatalf("propose on the leader: %v, %v", res, err)
	}
	waitFor(t, 10*time.Second, "every replica applied node 1's entry", func() bool {
		for _, sm := range c.sms {
			if !slices.Equal(sm.appliedPayloads(), []string{"next"}) {
				return false
			}
		}
		return true
	})
}
