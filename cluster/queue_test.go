package cluster

import (
	"bytes"
	"testing"
)

func TestEventQueueMergesPerMember(t *testing.T) {
	t.Parallel()
	q := newEventQueue()
	ev := func(typ EventType, id int32, rack string) Event {
		return Event{Type: typ, Member: Member{ID: id, Rack: rack, Alive: typ != EventLeave}}
	}
	pushes := []struct {
		node   string
		ev     Event
		merged bool
	}{
		{"broker-1", ev(EventJoin, 1, "a"), false},
		{"broker-2", ev(EventJoin, 2, "a"), false},
		{"broker-1", ev(EventUpdate, 1, "b"), true}, // join+update stays a join
		{"broker-3", ev(EventJoin, 3, "a"), false},
		{"broker-2", ev(EventLeave, 2, "a"), true}, // join+leave is a leave
		{"broker-3", ev(EventLeave, 3, "a"), true},
		{"broker-3", ev(EventJoin, 3, "c"), true}, // leave+join is a join
	}
	for _, p := range pushes {
		if got := q.push(p.node, p.ev); got != p.merged {
			t.Fatalf("push %s %v: merged = %v, want %v", p.node, p.ev.Type, got, p.merged)
		}
	}
	want := []Event{ev(EventJoin, 1, "b"), ev(EventLeave, 2, "a"), ev(EventJoin, 3, "c")}
	for i, w := range want {
		got, ok := q.pop()
		if !ok || got != w {
			t.Fatalf("pop %d = %+v %v, want %+v", i, got, ok, w)
		}
	}
	if got, ok := q.pop(); ok {
		t.Fatalf("extra event %+v", got)
	}
	// After a pop, a member's next event is queued anew, at the end.
	if q.push("broker-1", ev(EventUpdate, 1, "d")) {
		t.Fatal("push after pop merged")
	}
	if got, _ := q.pop(); got != ev(EventUpdate, 1, "d") {
		t.Fatalf("pop = %+v", got)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	env := encodeEnvelope(0x0102030405060708, 300, []byte("broker 2 leads group 1034 at term 7"))
	want := []byte{1, 1, 2, 3, 4, 5, 6, 7, 8, 0xac, 0x02}
	if !bytes.HasPrefix(env, want) {
		t.Fatalf("envelope header = %x, want %x", env[:len(want)], want)
	}
	k, payload, err := decodeEnvelope(env)
	if err != nil || k != (msgKey{0x0102030405060708, 300}) || string(payload) != "broker 2 leads group 1034 at term 7" {
		t.Fatalf("decode = %+v %q %v", k, payload, err)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 0, 1}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}} {
		if _, _, err := decodeEnvelope(bad); err == nil {
			t.Errorf("decodeEnvelope(%x) succeeded", bad)
		}
	}
}

func TestSeenSetForgetsOldest(t *testing.T) {
	t.Parallel()
	var s seenSet
	for i := range uint64(dedupWindow) {
		if !s.add(msgKey{1, i}) {
			t.Fatalf("key %d not new", i)
		}
	}
	if s.add(msgKey{1, 0}) {
		t.Fatal("key 0 forgotten within the window")
	}
	s.add(msgKey{2, 0}) // evicts {1, 0}
	if !s.add(msgKey{1, 0}) {
		t.Fatal("key 0 remembered beyond the window")
	}
	if len(s.keys) != dedupWindow {
		t.Fatalf("set holds %d keys, want %d", len(s.keys), dedupWindow)
	}
}
