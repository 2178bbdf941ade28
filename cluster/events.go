package cluster

import (
	"fmt"
	"sync"
)

// EventType is what happened to a member. Values are only appended.
type EventType int

const (
	// EventJoin: a member became alive (first seen, or back after leaving
	// or failing, possibly on a new address).
	EventJoin EventType = iota + 1
	// EventUpdate: an alive member changed its metadata.
	EventUpdate
	// EventLeave: a member left gracefully or was declared dead after
	// suspicion. Its Member has Alive false.
	EventLeave
)

// String returns "join", "update" or "leave".
func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventLeave:
		return "leave"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is a change of one member, as seen by this node.
type Event struct {
	Type   EventType
	Member Member
}

// eventQueue holds events that the consumer of Events has not received yet,
// at most one per memberlist node: a new event for a node that already has one
// pending is merged into it (see merge). Memory is therefore bounded by the
// number of nodes, and the delegate that pushes never blocks or drops.
//
// Invariant: order holds exactly the keys of pending, each once, in the order
// their pending event was first queued.
type eventQueue struct {
	mu struct {
		sync.Mutex
		pending map[string]Event
		order   []string
	}
	// ready has capacity 1 and holds a token while pending may be non-empty.
	ready chan struct{}
}

func newEventQueue() *eventQueue {
	q := &eventQueue{ready: make(chan struct{}, 1)}
	q.mu.pending = make(map[string]Event)
	return q
}

// push queues ev for node; it never blocks. It reports whether ev was merged
// into an event already pending for node.
func (q *eventQueue) push(node string, ev Event) (merged bool) {
	q.mu.Lock()
	if old, ok := q.mu.pending[node]; ok {
		q.mu.pending[node] = merge(old, ev)
		merged = true
	} else {
		q.mu.pending[node] = ev
		q.mu.order = append(q.mu.order, node)
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return merged
}

// merge returns the one event that stands for old followed by next for the
// same node: next, with its type, except that a join stays a join when only
// updates follow it (the consumer has not seen the member yet, so "join with
// the latest metadata" is the truth).
func merge(old, next Event) Event {
	if old.Type == EventJoin && next.Type == EventUpdate {
		next.Type = EventJoin
	}
	return next
}

// pop removes and returns the oldest pending event.
func (q *eventQueue) pop() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.mu.order) == 0 {
		return Event{}, false
	}
	node := q.mu.order[0]
	q.mu.order[0] = ""
	q.mu.order = q.mu.order[1:]
	ev := q.mu.pending[node]
	delete(q.mu.pending, node)
	return ev, true
}

// pump moves pending events to out until done is closed. It is the only
// sender on out; it blocks on a slow consumer so that memberlist never does.
func (q *eventQueue) pump(out chan<- Event, done <-chan struct{}) {
	for {
		select {
		case <-q.ready:
		case <-done:
			return
		}
		for {
			ev, ok := q.pop()
			if !ok {
				break
			}
			select {
			case out <- ev:
			case <-done:
				return
			}
		}
	}
}
