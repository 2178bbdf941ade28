package cluster

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// testLogger discards logs unless CLUSTER_TEST_LOG is set, in which case it
// writes everything, memberlist's debug output included, to stderr. (t.Log
// cannot be used: memberlist's goroutines may log after a test ends.)
func testLogger() *slog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testMember is the Member broker id advertises in tests.
func testMember(id int32) Member {
	return Member{
		ID:        id,
		KafkaAddr: fmt.Sprintf("127.0.0.1:%d", 19000+id),
		RaftAddr:  fmt.Sprintf("127.0.0.1:%d", 19100+id),
		AdminAddr: fmt.Sprintf("127.0.0.1:%d", 19200+id),
		Rack:      fmt.Sprintf("rack-%d", id%2),
		Version:   "test",
	}
}

// testConfig is LocalConfig for broker id, joining seeds.
func testConfig(id int32, seeds ...string) Config {
	cfg := LocalConfig()
	cfg.Self = testMember(id)
	cfg.Join = seeds
	cfg.Logger = testLogger()
	return cfg
}

// start starts a Cluster and closes it when the test ends.
func start(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	c, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start(broker %d): %v", cfg.Self.ID, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ids returns the broker ids of ms.
func ids(ms []Member) []int32 {
	out := make([]int32, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// hasMembers reports whether c sees exactly the brokers want as alive.
func hasMembers(c *Cluster, want ...int32) bool {
	return slices.Equal(ids(c.Members()), want)
}

// recorder drains a Cluster's Events in the background and lets a test wait
// for an event. It stops when the Cluster closes the channel.
type recorder struct {
	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced on every event
}

func record(c *Cluster) *recorder {
	r := &recorder{changed: make(chan struct{})}
	go func() {
		for ev := range c.Events() {
			r.mu.Lock()
			r.events = append(r.events, ev)
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
	}()
	return r
}

// wait returns the first recorded event matching pred, waiting up to timeout.
func (r *recorder) wait(t *testing.T, timeout time.Duration, what string, pred func(Event) bool) Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		for _, ev := range r.events {
			if pred(ev) {
				r.mu.Unlock()
				return ev
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for event: %s", timeout, what)
		}
	}
}

func isEvent(typ EventType, id int32) func(Event) bool {
	return func(ev Event) bool { return ev.Type == typ && ev.Member.ID == id }
}

// receive returns the next message on c's Messages, waiting up to timeout.
func receive(t *testing.T, c *Cluster, timeout time.Duration) []byte {
	t.Helper()
	select {
	case msg := <-c.Messages():
		return msg
	case <-time.After(timeout):
		t.Fatalf("broker %d: no message within %v", c.Self().ID, timeout)
		return nil
	}
}
