package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftka/raftka/internal/syncbuf"
)

// Bounds on what the local preset should achieve on loopback; generous so
// that a loaded -race run does not flake, but far below the LAN preset.
const (
	convergeTimeout = 5 * time.Second
	detectBound     = 10 * time.Second
)

// startThree starts brokers 1, 2, 3 with the local preset; 2 and 3 join
// through 1. It waits until every node sees all three.
func startThree(t *testing.T) ([]*Cluster, []*recorder) {
	t.Helper()
	a := start(t, testConfig(1))
	b := start(t, testConfig(2, a.GossipAddr()))
	c := start(t, testConfig(3, a.GossipAddr()))
	nodes := []*Cluster{a, b, c}
	recs := []*recorder{record(a), record(b), record(c)}
	for _, n := range nodes {
		waitFor(t, convergeTimeout, fmt.Sprintf("broker %d to see 3 members", n.Self().ID), func() bool {
			return hasMembers(n, 1, 2, 3)
		})
	}
	return nodes, recs
}

func TestThreeNodesJoinWithMetadata(t *testing.T) {
	t.Parallel()
	nodes, recs := startThree(t)
	want := map[int32]Member{}
	for _, n := range nodes {
		select {
		case <-n.Joined():
		default:
			t.Errorf("broker %d: Joined not closed though it sees its peers", n.Self().ID)
		}
		m := testMember(n.Self().ID)
		m.GossipAddr = n.GossipAddr()
		m.Alive = true
		want[m.ID] = m
		if n.Self() != m {
			t.Errorf("Self = %+v, want %+v", n.Self(), m)
		}
	}
	for i, n := range nodes {
		for _, got := range n.Members() {
			if got != want[got.ID] {
				t.Errorf("broker %d sees %+v, want %+v", n.Self().ID, got, want[got.ID])
			}
		}
		if got, ok := n.Member(2); !ok || got != want[2] {
			t.Errorf("broker %d: Member(2) = %+v %v", n.Self().ID, got, ok)
		}
		if _, ok := n.Member(4); ok {
			t.Errorf("broker %d: Member(4) found", n.Self().ID)
		}
		// Every node hears a join for every node, itself included, carrying
		// the same metadata as Members.
		for id := int32(1); id <= 3; id++ {
			ev := recs[i].wait(t, convergeTimeout, fmt.Sprintf("broker %d: join of %d", n.Self().ID, id), isEvent(EventJoin, id))
			if ev.Member != want[id] {
				t.Errorf("broker %d: join event %+v, want %+v", n.Self().ID, ev.Member, want[id])
			}
		}
	}
}

func TestFailureDetectedAndRejoin(t *testing.T) {
	t.Parallel()
	nodes, recs := startThree(t)
	a, b, c := nodes[0], nodes[1], nodes[2]

	// Close without Leave: a crash, as far as the others can tell.
	killed := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for i, n := range []*Cluster{a, b} {
		ev := recs[i].wait(t, detectBound, fmt.Sprintf("broker %d: leave of 3", n.Self().ID), isEvent(EventLeave, 3))
		if ev.Member.Alive || ev.Member.GossipAddr != c.GossipAddr() {
			t.Errorf("leave event %+v", ev.Member)
		}
		t.Logf("broker %d declared broker 3 dead %v after it stopped", n.Self().ID, time.Since(killed).Round(time.Millisecond))
		if !hasMembers(n, 1, 2) {
			t.Errorf("broker %d: members %v after leave event", n.Self().ID, ids(n.Members()))
		}
	}
	if d := time.Since(killed); d > detectBound {
		t.Fatalf("failure detection took %v, bound %v", d, detectBound)
	}

	// Broker 3 restarts on a new port under the same id and is alive again.
	c2 := start(t, testConfig(3, a.GossipAddr()))
	if c2.GossipAddr() == c.GossipAddr() {
		t.Fatalf("restart reused gossip address %s", c2.GossipAddr())
	}
	for i, n := range []*Cluster{a, b} {
		waitFor(t, convergeTimeout, fmt.Sprintf("broker %d to see broker 3 again", n.Self().ID), func() bool {
			m, ok := n.Member(3)
			return ok && m.GossipAddr == c2.GossipAddr()
		})
		recs[i].wait(t, convergeTimeout, "join of restarted broker 3", func(ev Event) bool {
			return ev.Type == EventJoin && ev.Member.ID == 3 && ev.Member.GossipAddr == c2.GossipAddr()
		})
	}
	waitFor(t, convergeTimeout, "restarted broker 3 to see 3 members", func() bool { return hasMembers(c2, 1, 2, 3) })
}

func TestLeaveIsSeenAtOnce(t *testing.T) {
	t.Parallel()
	a := start(t, testConfig(1))
	ra := record(a)
	b := start(t, testConfig(2, a.GossipAddr()))
	waitFor(t, convergeTimeout, "2 members", func() bool { return hasMembers(a, 1, 2) })
	left := time.Now()
	if err := b.Leave(convergeTimeout); err != nil {
		t.Fatal(err)
	}
	ra.wait(t, convergeTimeout, "leave of 2", isEvent(EventLeave, 2))
	t.Logf("graceful leave seen after %v", time.Since(left).Round(time.Millisecond))
	if !hasMembers(a, 1) {
		t.Fatalf("members %v after leave", ids(a.Members()))
	}
	if b.Self().Alive {
		t.Fatal("Self().Alive after Leave")
	}
}

func TestBroadcastReachesAllNodes(t *testing.T) {
	t.Parallel()
	nodes, _ := startThree(t)
	// Delivery is best effort: a node the others take for dead for a
	// moment (probes missed on a machine loaded by parallel -race tests)
	// misses what is gossiped meanwhile. A round of broadcasts must reach
	// every node; the cluster gets three rounds to deliver one whole.
	var missing []string
	for round := 1; round <= 3; round++ {
		if missing = broadcastRound(t, nodes, round); len(missing) == 0 {
			break
		}
		t.Logf("round %d: missing %v", round, missing)
	}
	if len(missing) > 0 {
		t.Fatalf("no round of broadcasts reached every node; last missed %v", missing)
	}
	if err := nodes[0].Broadcast(make([]byte, MaxMessageBytes+1)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("oversized Broadcast = %v", err)
	}
}

func TestPushPullStateReachesLateJoiner(t *testing.T) {
	t.Parallel()
	type states struct {
		mu  sync.Mutex
		got map[string]bool
	}
	receiver := func(s *states) func([]byte) {
		return func(b []byte) {
			s.mu.Lock()
			s.got[string(b)] = true
			s.mu.Unlock()
		}
	}
	has := func(s *states, want string) func() bool {
		return func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.got[want]
		}
	}

	var sa, sb states
	sa.got, sb.got = map[string]bool{}, map[string]bool{}
	cfgA := testConfig(1)
	a := start(t, cfgA)
	a.SetLocalState(func() []byte { return []byte("groups led by 1: 7, 1034") })
	a.OnRemoteState(receiver(&sa))

	cfgB := testConfig(2, a.GossipAddr())
	cfgB.LocalState = func() []byte { return []byte("groups led by 2: 12") }
	cfgB.OnRemoteState = receiver(&sb)
	start(t, cfgB)

	// The join itself is a push/pull in both directions.
	waitFor(t, convergeTimeout, "late joiner to learn broker 1's state", has(&sb, "groups led by 1: 7, 1034"))
	waitFor(t, convergeTimeout, "broker 1 to learn the joiner's state", has(&sa, "groups led by 2: 12"))
}

func TestSlowEventConsumerNeverBlocksGossip(t *testing.T) {
	t.Parallel()
	cfg := testConfig(1)
	cfg.EventBuffer = 1   // filled at once by the node's own join
	cfg.MessageBuffer = 1 // filled by the first broadcast
	a := start(t, cfg)    // nobody reads a's Events or Messages
	// One at a time, so that the event pump holds broker 2's join (blocked
	// on the full channel) and broker 3's events queue behind it.
	b := start(t, testConfig(2, a.GossipAddr()))
	waitFor(t, convergeTimeout, "2 members with a stalled consumer", func() bool { return hasMembers(a, 1, 2) })
	c := start(t, testConfig(3, a.GossipAddr()))
	waitFor(t, convergeTimeout, "3 members with a stalled consumer", func() bool { return hasMembers(a, 1, 2, 3) })

	const n = 5
	for i := range n {
		if err := b.Broadcast([]byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, convergeTimeout, "full Messages to drop broadcasts", func() bool {
		return a.Stats().MessagesDropped == n-1
	})

	// Failure and a new join are still seen by Members.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, detectBound, "failed broker 3 to disappear", func() bool { return hasMembers(a, 1, 2) })
	start(t, testConfig(4, b.GossipAddr()))
	waitFor(t, convergeTimeout, "broker 4 to appear", func() bool { return hasMembers(a, 1, 2, 4) })
	if a.Stats().EventsMerged == 0 {
		t.Error("broker 3's join and leave were not merged")
	}

	// Draining now yields, per member, a last event that agrees with Members.
	last := map[int32]Event{}
	for len(last) < 4 || last[4].Type != EventJoin {
		select {
		case ev := <-a.Events():
			last[ev.Member.ID] = ev
		case <-time.After(convergeTimeout):
			t.Fatalf("drained %v", last)
		}
	}
	for _, m := range a.Members() {
		if ev := last[m.ID]; ev.Type == EventLeave || ev.Member != m {
			t.Errorf("last event for alive broker %d: %v %+v, member %+v", m.ID, ev.Type, ev.Member, m)
		}
	}
	if ev := last[3]; ev.Type != EventLeave || ev.Member.Alive {
		t.Errorf("last event for failed broker 3: %v %+v", ev.Type, ev.Member)
	}
}

func TestUpdateSelfPropagates(t *testing.T) {
	t.Parallel()
	a := start(t, testConfig(1))
	b := start(t, testConfig(2, a.GossipAddr()))
	rb := record(b)
	waitFor(t, convergeTimeout, "2 members", func() bool { return hasMembers(b, 1, 2) })

	m := testMember(1)
	m.Rack = "rack-moved"
	m.Version = "test-2"
	if err := a.UpdateSelf(m); err != nil {
		t.Fatal(err)
	}
	if got := a.Self(); got.Rack != "rack-moved" {
		t.Fatalf("Self after update = %+v", got)
	}
	ev := rb.wait(t, convergeTimeout, "update of 1", isEvent(EventUpdate, 1))
	if ev.Member.Rack != "rack-moved" || ev.Member.Version != "test-2" || !ev.Member.Alive {
		t.Fatalf("update event %+v", ev.Member)
	}
	if got, _ := b.Member(1); got.Rack != "rack-moved" {
		t.Fatalf("b.Member(1) = %+v", got)
	}

	m.ID = 9
	if err := a.UpdateSelf(m); err == nil {
		t.Fatal("UpdateSelf changed the id")
	}
	m = testMember(1)
	m.KafkaAddr = "nope"
	if err := a.UpdateSelf(m); err == nil {
		t.Fatal("UpdateSelf accepted a bad kafka address")
	}
}

func TestJoinRetriesUntilSeedAnswers(t *testing.T) {
	t.Parallel()
	// Reserve a loopback port for the seed, then free it: the seed starts
	// after the joiner.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seedAddr := l.Addr().String()
	l.Close()

	b := start(t, testConfig(2, seedAddr))
	select {
	case <-b.Joined():
		t.Fatal("joined a seed that is not running")
	default:
	}

	cfg := testConfig(1)
	cfg.BindAddr = seedAddr
	a, err := Start(cfg)
	if err != nil {
		t.Skipf("reserved port was taken meanwhile: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	select {
	case <-b.Joined():
	case <-time.After(convergeTimeout):
		t.Fatal("joiner never reached the seed")
	}
	waitFor(t, convergeTimeout, "seed to see the joiner", func() bool { return hasMembers(a, 1, 2) })
}

func TestEncryptedGossip(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	cfgA, cfgB := testConfig(1), testConfig(2)
	cfgA.SecretKey, cfgB.SecretKey = key, key
	a := start(t, cfgA)
	cfgB.Join = []string{a.GossipAddr()}
	b := start(t, cfgB)
	waitFor(t, convergeTimeout, "encrypted join", func() bool { return hasMembers(a, 1, 2) && hasMembers(b, 1, 2) })
	if err := a.Broadcast([]byte("secret")); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, b, convergeTimeout); string(got) != "secret" {
		t.Fatalf("received %q", got)
	}
}

func TestCloseIsIdempotentAndFinal(t *testing.T) {
	t.Parallel()
	// A seed that never answers keeps the join loop running until Close.
	a, err := Start(testConfig(1, "127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- a.Close() }()
	}
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(convergeTimeout):
			t.Fatal("Close hung")
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Events holds at most the node's own join, then is closed.
	for range a.Events() {
	}
	if _, ok := <-a.Messages(); ok {
		t.Fatal("Messages delivered after Close")
	}
	if err := a.Broadcast([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Broadcast after Close = %v", err)
	}
	if err := a.Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("Leave after Close = %v", err)
	}
	if err := a.UpdateSelf(testMember(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("UpdateSelf after Close = %v", err)
	}
	if ms := a.Members(); ms != nil {
		t.Fatalf("Members after Close = %v", ms)
	}
}

func TestDuplicateIDIsWarned(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	cfgA := testConfig(1)
	cfgA.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a := start(t, cfgA)
	b := start(t, testConfig(2, a.GossipAddr()))
	waitFor(t, convergeTimeout, "2 members", func() bool { return hasMembers(a, 1, 2) })

	// A second broker 2, on another port, while the first is alive.
	start(t, testConfig(2, a.GossipAddr()))
	waitFor(t, convergeTimeout, "a duplicate-id warning", func() bool {
		return strings.Contains(logs.String(), "two brokers claim the same id")
	})
	if m, ok := a.Member(2); !ok || m.GossipAddr != b.GossipAddr() {
		t.Fatalf("Member(2) = %+v %v, want the first broker 2 at %s", m, ok, b.GossipAddr())
	}
}

func TestMemberlistLogsGoToSlogAtDebug(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	l := newMemberlistLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Printf("[WARN] memberlist: Refuting a dead message (from: %s)", "broker-2")
	want := `level=DEBUG msg="Refuting a dead message (from: broker-2)" memberlist_level=WARN`
	if got := logs.String(); !strings.Contains(got, want) {
		t.Fatalf("log = %q, want %q", got, want)
	}
}

// broadcastRound broadcasts 20 messages tagged with round, from the nodes in
// turn, and returns the messages some node did not receive within
// convergeTimeout. A node receiving its own message fails the test.
func broadcastRound(t *testing.T, nodes []*Cluster, round int) (missing []string) {
	t.Helper()
	const n = 20
	msg := func(from *Cluster, i int) string {
		return fmt.Sprintf("round %d: broker %d leads group %d at term 7", round, from.Self().ID, i)
	}
	for i := range n {
		if err := nodes[i%3].Broadcast([]byte(msg(nodes[i%3], i))); err != nil {
			t.Fatal(err)
		}
	}
	prefix := fmt.Sprintf("round %d: ", round)
	for _, to := range nodes {
		want := map[string]bool{} // what to must receive, each the others' messages
		for i := range n {
			if from := nodes[i%3]; from != to {
				want[msg(from, i)] = true
			}
		}
		deadline := time.After(convergeTimeout)
	receiving:
		for len(want) > 0 {
			select {
			case m := <-to.Messages():
				if !strings.HasPrefix(string(m), prefix) {
					continue // a late message of an earlier round
				}
				if strings.Contains(string(m), fmt.Sprintf("broker %d ", to.Self().ID)) {
					t.Errorf("broker %d received its own message %q", to.Self().ID, m)
				}
				delete(want, string(m))
			case <-deadline:
				break receiving
			}
		}
		for m := range want {
			missing = append(missing, fmt.Sprintf("broker %d: %q", to.Self().ID, m))
		}
	}
	return missing
}
