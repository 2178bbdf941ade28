package cluster

import (
	"encoding/binary"
	"errors"
	"sync"

	"github.com/hashicorp/memberlist"
)

// MaxMessageBytes is the largest payload Broadcast accepts. A gossip packet
// is 1400 bytes (memberlist's UDPBufferSize); this leaves room for the
// envelope, memberlist's framing and encryption, and for piggybacking on
// probes.
const MaxMessageBytes = 1000

// ErrMessageTooLarge is returned by Broadcast for a payload above
// MaxMessageBytes.
var ErrMessageTooLarge = errors.New("cluster: broadcast message too large")

// maxQueuedBroadcasts bounds the outgoing gossip queue. Beyond it the
// messages already sent most often are discarded (TransmitLimitedQueue.Prune).
const maxQueuedBroadcasts = 1024

// dedupWindow is how many recently seen messages a node remembers, so that it
// delivers and re-gossips each one once. A message seen again after this many
// others is delivered again.
const dedupWindow = 8192

// Message envelope, version 1:
//
//	byte      version (1)
//	8 bytes   origin, big-endian: random per Cluster, so a restarted broker
//	          is a new origin and its sequence numbers cannot collide
//	uvarint   sequence number within the origin, from 1
//	rest      payload
//
// Invariant: a receiver drops envelopes of versions it does not know.
const (
	envelopeVersion1    = 1
	envelopeMaxOverhead = 1 + 8 + binary.MaxVarintLen64
)

type msgKey struct {
	origin uint64
	seq    uint64
}

func encodeEnvelope(origin, seq uint64, payload []byte) []byte {
	b := make([]byte, 0, envelopeMaxOverhead+len(payload))
	b = append(b, envelopeVersion1)
	b = binary.BigEndian.AppendUint64(b, origin)
	b = binary.AppendUvarint(b, seq)
	return append(b, payload...)
}

func decodeEnvelope(b []byte) (msgKey, []byte, error) {
	if len(b) < 1+8+1 || b[0] != envelopeVersion1 {
		return msgKey{}, nil, errors.New("cluster: bad message envelope")
	}
	k := msgKey{origin: binary.BigEndian.Uint64(b[1:9])}
	seq, n := binary.Uvarint(b[9:])
	if n <= 0 {
		return msgKey{}, nil, errors.New("cluster: bad message sequence")
	}
	k.seq = seq
	return k, b[9+n:], nil
}

// userBroadcast is one envelope in the TransmitLimitedQueue. Each is unique:
// nothing invalidates it, so queueing skips memberlist's invalidation scan.
type userBroadcast struct{ msg []byte }

var _ memberlist.UniqueBroadcast = (*userBroadcast)(nil)

func (b *userBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b *userBroadcast) Message() []byte                       { return b.msg }
func (b *userBroadcast) Finished()                             {}
func (b *userBroadcast) UniqueBroadcast()                      {}

// seenSet remembers the last dedupWindow message keys, first in first out.
type seenSet struct {
	keys map[msgKey]struct{}
	ring []msgKey
	next int
}

// add records k and reports whether it was new.
func (s *seenSet) add(k msgKey) bool {
	if _, ok := s.keys[k]; ok {
		return false
	}
	if s.keys == nil {
		s.keys = make(map[msgKey]struct{}, dedupWindow)
		s.ring = make([]msgKey, 0, dedupWindow)
	}
	if len(s.ring) < dedupWindow {
		s.ring = append(s.ring, k)
	} else {
		delete(s.keys, s.ring[s.next])
		s.ring[s.next] = k
		s.next = (s.next + 1) % dedupWindow
	}
	s.keys[k] = struct{}{}
	return true
}

// gossip is the user-message half of a Cluster: the outgoing queue, the
// dedup set and the Messages channel.
//
// Lock order: mu is a leaf; the queue's own mutex is taken inside mu.
type gossip struct {
	origin uint64
	queue  *memberlist.TransmitLimitedQueue
	stats  *counters

	mu struct {
		sync.Mutex
		seq    uint64
		seen   seenSet
		closed bool // out is closed; guarded so NotifyMsg never sends on it
	}
	out chan []byte
}

// enqueueLocked queues an envelope and bounds the queue. mu must be held.
func (g *gossip) enqueueLocked(env []byte) {
	g.queue.QueueBroadcast(&userBroadcast{msg: env})
	if n := g.queue.NumQueued(); n > maxQueuedBroadcasts {
		g.queue.Prune(maxQueuedBroadcasts)
		g.stats.broadcastsPruned.Add(uint64(n - maxQueuedBroadcasts))
	}
}

// broadcast queues payload as a new message from this node.
func (g *gossip) broadcast(payload []byte) error {
	if len(payload) > MaxMessageBytes {
		return ErrMessageTooLarge
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.closed {
		return ErrClosed
	}
	g.mu.seq++
	env := encodeEnvelope(g.origin, g.mu.seq, payload)
	k, _, _ := decodeEnvelope(env)
	g.mu.seen.add(k)
	g.enqueueLocked(env)
	return nil
}

// receive handles an envelope from the network: the first time a message is
// seen it is re-gossiped and delivered, without blocking. buf is memberlist's
// and is copied.
func (g *gossip) receive(buf []byte) {
	env := append([]byte(nil), buf...)
	k, payload, err := decodeEnvelope(env)
	if err != nil {
		g.stats.messagesInvalid.Add(1)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.closed || k.origin == g.origin {
		return
	}
	if !g.mu.seen.add(k) {
		g.stats.messagesDuplicate.Add(1)
		return
	}
	g.enqueueLocked(env)
	select {
	case g.out <- payload:
	default:
		g.stats.messagesDropped.Add(1)
	}
}

// close closes out; later messages are ignored.
func (g *gossip) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.mu.closed {
		g.mu.closed = true
		close(g.out)
	}
}
