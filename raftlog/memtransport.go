package raftlog

import (
	"math/rand/v2"
	"sync"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// MemNetwork connects schedulers in one process, for tests. It can drop
// messages, delay them, and cut links in one or both directions. Messages
// between two nodes are delivered in order unless dropped.
type MemNetwork struct {
	mu struct {
		sync.Mutex
		nodes map[uint64]*memNode
		// cut holds directed links that drop everything: cut[[2]{a, b}]
		// drops a→b.
		cut      map[[2]uint64]bool
		dropRate float64
		delay    time.Duration
		rng      *rand.Rand
		closed   bool
	}
}

// NewMemNetwork returns an empty network; seed makes drops reproducible.
func NewMemNetwork(seed uint64) *MemNetwork {
	n := &MemNetwork{}
	n.mu.nodes = make(map[uint64]*memNode)
	n.mu.cut = make(map[[2]uint64]bool)
	n.mu.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return n
}

type memNode struct {
	id    uint64
	net   *MemNetwork
	queue chan memDelivery
	done  chan struct{}

	mu sync.Mutex
	in Inbound
}

type memDelivery struct {
	group   uint64
	msg     *pb.Message
	quiesce bool
	at      time.Time
}

// Transport returns node id's transport, creating the node.
func (n *MemNetwork) Transport(id uint64) *MemTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	nd := n.mu.nodes[id]
	if nd == nil {
		nd = &memNode{id: id, net: n, queue: make(chan memDelivery, 1<<16), done: make(chan struct{})}
		n.mu.nodes[id] = nd
		go nd.run()
	}
	return &MemTransport{net: n, from: id}
}

// SetInbound sets where node id's messages are delivered.
func (n *MemNetwork) SetInbound(id uint64, in Inbound) {
	n.Transport(id)
	n.mu.Lock()
	nd := n.mu.nodes[id]
	n.mu.Unlock()
	nd.mu.Lock()
	nd.in = in
	nd.mu.Unlock()
}

// Cut drops every message from a to b until Heal.
func (n *MemNetwork) Cut(a, b uint64) {
	n.mu.Lock()
	n.mu.cut[[2]uint64{a, b}] = true
	n.mu.Unlock()
}

// Isolate cuts node from every other node in both directions.
func (n *MemNetwork) Isolate(node uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id := range n.mu.nodes {
		if id != node {
			n.mu.cut[[2]uint64{id, node}] = true
			n.mu.cut[[2]uint64{node, id}] = true
		}
	}
}

// Heal restores every link and stops dropping.
func (n *MemNetwork) Heal() {
	n.mu.Lock()
	n.mu.cut = make(map[[2]uint64]bool)
	n.mu.dropRate = 0
	n.mu.Unlock()
}

// SetDropRate drops each message with probability p.
func (n *MemNetwork) SetDropRate(p float64) {
	n.mu.Lock()
	n.mu.dropRate = p
	n.mu.Unlock()
}

// SetDelay delays every message by d.
func (n *MemNetwork) SetDelay(d time.Duration) {
	n.mu.Lock()
	n.mu.delay = d
	n.mu.Unlock()
}

// Close stops delivery.
func (n *MemNetwork) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return
	}
	n.mu.closed = true
	for _, nd := range n.mu.nodes {
		close(nd.done)
	}
}

func (nd *memNode) run() {
	for {
		select {
		case <-nd.done:
			return
		case d := <-nd.queue:
			if wait := time.Until(d.at); wait > 0 {
				select {
				case <-time.After(wait):
				case <-nd.done:
					return
				}
			}
			nd.mu.Lock()
			in := nd.in
			nd.mu.Unlock()
			if in != nil {
				in.Receive(d.group, d.msg, d.quiesce)
			}
		}
	}
}

// MemTransport is one node's side of a MemNetwork.
type MemTransport struct {
	net  *MemNetwork
	from uint64
}

var _ Transport = (*MemTransport)(nil)

// Send implements Transport.
func (t *MemTransport) Send(group uint64, msgs []*pb.Message) {
	for _, m := range msgs {
		t.send(group, m, false)
	}
}

// SendQuiesce implements Transport.
func (t *MemTransport) SendQuiesce(group uint64, m *pb.Message) { t.send(group, m, true) }

func (t *MemTransport) send(group uint64, m *pb.Message, quiesce bool) {
	n := t.net
	n.mu.Lock()
	to := n.mu.nodes[m.GetTo()]
	drop := n.mu.closed || to == nil || n.mu.cut[[2]uint64{t.from, m.GetTo()}] ||
		(n.mu.dropRate > 0 && n.mu.rng.Float64() < n.mu.dropRate)
	at := time.Now().Add(n.mu.delay)
	n.mu.Unlock()
	if drop {
		return
	}
	// Copy: the receiver must not share memory with the sender's raft.
	d := memDelivery{group: group, msg: proto.CloneOf(m), quiesce: quiesce, at: at}
	select {
	case to.queue <- d:
	default: // full: dropped, as a real network would
	}
}
