package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("cluster: closed")

// Join retry backoff: doubling from joinBackoffMin to joinBackoffMax, with
// jitter so that brokers started together do not retry in lockstep.
const (
	joinBackoffMin = 100 * time.Millisecond
	joinBackoffMax = 5 * time.Second
)

// Cluster is this broker's membership in the gossip cluster: its view of
// which brokers are alive and where they are. Its methods are safe for
// concurrent use.
//
// Lock order: lifeMu, then mu. The delegates never take lifeMu.
type Cluster struct {
	cfg        Config
	log        *slog.Logger
	ml         *memberlist.Memberlist
	gossipAddr string

	gossip    *gossip
	events    *eventQueue
	eventsOut chan Event

	localState  atomic.Pointer[func() []byte]
	remoteState atomic.Pointer[func([]byte)]

	stats    counters
	numAlive atomic.Int64 // len(mu.members), for the broadcast retransmit limit

	joined chan struct{} // closed once a seed answered (or there were none)
	done   chan struct{} // closed by Close: stops the join loop and the pump
	wg     sync.WaitGroup

	// lifeMu serializes Leave, UpdateSelf and Close: memberlist panics on a
	// Leave after Shutdown.
	lifeMu    sync.Mutex
	closed    atomic.Bool // set under lifeMu; read anywhere
	closeOnce sync.Once
	closeErr  error

	mu struct {
		sync.Mutex
		self Member
		meta []byte // encodeMeta(self), what NodeMeta advertises
		// members maps memberlist node names to the alive members, as the
		// events delegate reported them. Members is derived from it rather
		// than from memberlist.Members, whose *Node values memberlist keeps
		// rewriting in place under its own lock: only the delegates, called
		// under that lock, see a node consistently.
		//
		// Invariant: members holds a node from its join event until its
		// leave event, with the metadata and address of its latest event.
		// Memberlist changes a node's address only across a leave or
		// failure, so join, update and leave events cover every change.
		members map[string]Member
	}
}

// counters are the Cluster's statistics; see Stats.
type counters struct {
	eventsMerged      atomic.Uint64
	messagesDropped   atomic.Uint64
	messagesDuplicate atomic.Uint64
	messagesInvalid   atomic.Uint64
	broadcastsPruned  atomic.Uint64
	aliveRejected     atomic.Uint64
}

// Stats counts what a Cluster merged, dropped or rejected to never block
// gossip. All counts are totals since Start.
type Stats struct {
	// EventsMerged counts events merged into an event still pending for the
	// same member because the Events consumer was behind.
	EventsMerged uint64
	// MessagesDropped counts received broadcasts dropped because Messages
	// was full.
	MessagesDropped uint64
	// MessagesDuplicate counts received broadcasts already seen.
	MessagesDuplicate uint64
	// MessagesInvalid counts received user messages that were not a
	// broadcast envelope this version understands.
	MessagesInvalid uint64
	// BroadcastsPruned counts outgoing broadcasts discarded, before being
	// gossiped as often as planned, because the queue was full.
	BroadcastsPruned uint64
	// AliveRejected counts alive messages ignored because their metadata
	// was not a Member (for example another memberlist cluster).
	AliveRejected uint64
}

// Start validates cfg, starts gossiping on cfg.BindAddr and, if cfg.Join is
// set, starts joining in the background (see Joined). The returned Cluster
// already lists itself as a member. Close stops it.
func Start(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster: config: %w", err)
	}
	self := cfg.Self
	self.GossipAddr, self.Alive = "", false
	meta, err := encodeMeta(self)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With(slog.Int("broker", int(self.ID)))

	c := &Cluster{
		cfg:       cfg,
		log:       logger,
		events:    newEventQueue(),
		eventsOut: make(chan Event, cfg.EventBuffer),
		joined:    make(chan struct{}),
		done:      make(chan struct{}),
	}
	c.mu.self = self
	c.mu.meta = meta
	c.mu.members = make(map[string]Member)
	c.SetLocalState(cfg.LocalState)
	c.OnRemoteState(cfg.OnRemoteState)

	mc := cfg.memberlistConfig()
	c.gossip = &gossip{
		origin: rand.Uint64(),
		queue: &memberlist.TransmitLimitedQueue{
			RetransmitMult: mc.RetransmitMult,
			NumNodes:       func() int { return max(1, int(c.numAlive.Load())) },
		},
		stats: &c.stats,
		out:   make(chan []byte, cfg.MessageBuffer),
	}
	d := delegate{c}
	mc.Delegate = d
	mc.Events = d
	mc.Alive = d
	mc.Conflict = d
	mc.Logger = newMemberlistLogger(logger)

	// The pump runs before memberlist so that this node's own join, which
	// memberlist reports from Create, flows like any other event.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.events.pump(c.eventsOut, c.done)
	}()
	ml, err := memberlist.Create(mc)
	if err != nil {
		close(c.done)
		c.wg.Wait()
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", cfg.BindAddr, err)
	}
	c.ml = ml
	// Create reported this node's own join before returning.
	c.mu.Lock()
	c.gossipAddr = c.mu.members[mc.Name].GossipAddr
	c.mu.Unlock()
	logger.Info("cluster: gossiping", slog.String("gossip_addr", c.gossipAddr), slog.String("preset", cfg.Preset))

	var seeds []string
	for _, s := range cfg.Join {
		if s != c.gossipAddr && s != cfg.BindAddr {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		close(c.joined)
	} else {
		c.wg.Add(1)
		go c.joinLoop(seeds)
	}
	return c, nil
}

// joinLoop contacts seeds until one answers or the Cluster is closed. An
// attempt that is under way when Close is called finishes first; it is
// bounded by memberlist's TCPTimeout per seed (1 s local, 10 s LAN).
func (c *Cluster) joinLoop(seeds []string) {
	defer c.wg.Done()
	backoff := joinBackoffMin
	for attempt := 1; ; attempt++ {
		n, err := c.ml.Join(seeds)
		if n > 0 {
			c.log.Info("cluster: joined", slog.Int("seeds_answered", n), slog.Int("attempts", attempt))
			close(c.joined)
			return
		}
		level := slog.LevelDebug
		if attempt == 1 || attempt%10 == 0 {
			level = slog.LevelWarn
		}
		c.log.Log(context.Background(), level, "cluster: no seed answered; retrying",
			slog.Any("seeds", seeds), slog.Int("attempt", attempt), slog.Any("err", err))
		// Jitter over the upper half of the backoff: [backoff/2, backoff).
		wait := backoff/2 + rand.N(backoff/2)
		t := time.NewTimer(wait)
		select {
		case <-c.done:
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, joinBackoffMax)
	}
}

// Joined returns a channel closed once a seed has answered, or at once if
// Config.Join named no other node. It stays open if the Cluster is closed
// before joining.
func (c *Cluster) Joined() <-chan struct{} { return c.joined }

// Members returns the alive members, this broker included (unless it has
// left), sorted by ID. A member that is suspect but not yet declared dead is
// alive. If two nodes claim one broker id, the one named "broker-<id>" wins.
// After Close it returns nil.
func (c *Cluster) Members() []Member {
	if c.closed.Load() {
		return nil
	}
	type named struct {
		Member
		misnamed bool
	}
	c.mu.Lock()
	all := make([]named, 0, len(c.mu.members))
	for name, m := range c.mu.members {
		all = append(all, named{m, name != nodeName(m.ID)})
	}
	c.mu.Unlock()
	slices.SortFunc(all, func(a, b named) int {
		if c := cmp.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		if a.misnamed != b.misnamed {
			if a.misnamed {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.GossipAddr, b.GossipAddr)
	})
	out := make([]Member, 0, len(all))
	for _, n := range all {
		if len(out) > 0 && out[len(out)-1].ID == n.ID {
			continue
		}
		out = append(out, n.Member)
	}
	return out
}

// Member returns the alive member with broker id id.
func (c *Cluster) Member(id int32) (Member, bool) {
	for _, m := range c.Members() {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// Self returns this broker's Member as it advertises it; Alive is false
// after Leave or Close.
func (c *Cluster) Self() Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.mu.self
	m.GossipAddr = c.gossipAddr
	_, m.Alive = c.mu.members[nodeName(m.ID)]
	m.Alive = m.Alive && !c.closed.Load()
	return m
}

// Events returns the membership changes this node observes, starting with its
// own join. The channel has Config.EventBuffer slots and is closed by Close.
//
// Memberlist never waits for the consumer. While the consumer is behind,
// events queue outside the channel, at most one per member: a new event for a
// member whose previous event has not been received replaces it (a join
// followed by updates stays a join, with the latest metadata), and keeps its
// place in the order. Nothing is dropped: when the consumer catches up, the
// last event it received for each member describes that member as Members
// does, though it may have missed intermediate states (a broker that failed
// and came back shows only as a join). Stats.EventsMerged counts the merges.
// Members is always current, whatever the consumer does.
func (c *Cluster) Events() <-chan Event { return c.eventsOut }

// Broadcast gossips msg to every other alive node, where it arrives on
// Messages; it is not delivered to this node. It returns at once, copying
// msg.
//
// Delivery is best effort and epidemic: every node that receives a message
// re-gossips it a few times (memberlist's RetransmitMult × log10 n), so it
// reaches every node in a healthy cluster within a few gossip intervals.
// A message may arrive more than once, out of order relative to others, or
// never (at a node that is down or cut off while it spreads, or whose
// Messages channel is full). State that must converge belongs in
// Config.LocalState.
//
// It returns ErrMessageTooLarge above MaxMessageBytes and ErrClosed after
// Close. If more than 1024 messages are waiting to be gossiped, the oldest
// are discarded (Stats.BroadcastsPruned).
func (c *Cluster) Broadcast(msg []byte) error { return c.gossip.broadcast(msg) }

// Messages returns the payloads of other nodes' broadcasts. The channel has
// Config.MessageBuffer slots; when it is full, new messages are dropped and
// counted in Stats.MessagesDropped. Each payload is the receiver's to keep.
// The channel is closed by Close.
func (c *Cluster) Messages() <-chan []byte { return c.gossip.out }

// SetLocalState replaces the function whose result this node sends in every
// push/pull (see Config.LocalState); nil sends nothing.
func (c *Cluster) SetLocalState(f func() []byte) {
	if f == nil {
		c.localState.Store(nil)
		return
	}
	c.localState.Store(&f)
}

// OnRemoteState replaces the function that receives peers' state after each
// push/pull (see Config.OnRemoteState); nil ignores it. A state that arrives
// while none is set is lost until the next push/pull.
func (c *Cluster) OnRemoteState(f func([]byte)) {
	if f == nil {
		c.remoteState.Store(nil)
		return
	}
	c.remoteState.Store(&f)
}

// UpdateSelf re-advertises this broker with new metadata; the ID cannot
// change. It returns once the new metadata is in the local member list and
// queued for gossip; peers see an EventUpdate within a few gossip intervals.
func (c *Cluster) UpdateSelf(m Member) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	if m.ID != c.cfg.Self.ID {
		return fmt.Errorf("cluster: update self: id %d cannot change to %d", c.cfg.Self.ID, m.ID)
	}
	if errs := validateSelf(m); len(errs) > 0 {
		return fmt.Errorf("cluster: update self: %w", errors.Join(errs...))
	}
	m.GossipAddr, m.Alive = "", false
	meta, err := encodeMeta(m)
	if err != nil {
		return fmt.Errorf("cluster: update self: %w", err)
	}
	c.mu.Lock()
	c.mu.self = m
	c.mu.meta = meta
	c.mu.Unlock()
	// UpdateNode applies the new alive message locally and queues it before
	// it waits; its only error is that wait timing out, which is the point
	// of the tiny timeout: gossip, not this call, delivers the update.
	_ = c.ml.UpdateNode(time.Nanosecond)
	return nil
}

// GossipAddr returns the host:port this node gossips on, as advertised to
// peers (the bound port if Config.BindAddr had port 0).
func (c *Cluster) GossipAddr() string { return c.gossipAddr }

// Leave tells the cluster this broker is leaving, waiting up to timeout for
// the message to be gossiped; peers then see EventLeave at once instead of
// after failure detection. The node stays reachable until Close, which
// should follow.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.ml.Leave(timeout); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	return nil
}

// Close stops gossip, the join loop and event delivery, and closes the
// Events and Messages channels. Without a prior Leave, peers detect this node
// as failed. Close is idempotent; concurrent calls wait for the first.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.lifeMu.Lock()
		c.closed.Store(true)
		close(c.done)
		if err := c.ml.Shutdown(); err != nil {
			c.closeErr = fmt.Errorf("cluster: shutdown: %w", err)
		}
		c.lifeMu.Unlock()
		c.wg.Wait()
		c.gossip.close()
		close(c.eventsOut)
	})
	return c.closeErr
}

// Stats returns counts of what the Cluster merged, dropped or rejected.
func (c *Cluster) Stats() Stats {
	return Stats{
		EventsMerged:      c.stats.eventsMerged.Load(),
		MessagesDropped:   c.stats.messagesDropped.Load(),
		MessagesDuplicate: c.stats.messagesDuplicate.Load(),
		MessagesInvalid:   c.stats.messagesInvalid.Load(),
		BroadcastsPruned:  c.stats.broadcastsPruned.Load(),
		AliveRejected:     c.stats.aliveRejected.Load(),
	}
}

// selfMeta returns the metadata NodeMeta advertises.
func (c *Cluster) selfMeta() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.meta
}

// notify records a membership change reported by memberlist. It runs under
// memberlist's node lock: it must not block or call memberlist.
func (c *Cluster) notify(t EventType, n *memberlist.Node) {
	m, err := decodeMeta(n.Meta)
	if err != nil {
		// NotifyAlive keeps such nodes out; nothing to report.
		c.log.Debug("cluster: ignoring node without member metadata", slog.String("node", n.Name), slog.Any("err", err))
		return
	}
	m.GossipAddr = n.Address()
	m.Alive = t != EventLeave

	var dupes []string
	c.mu.Lock()
	if t == EventLeave {
		delete(c.mu.members, n.Name)
	} else {
		for name, other := range c.mu.members {
			if other.ID == m.ID && name != n.Name {
				dupes = append(dupes, name)
			}
		}
		c.mu.members[n.Name] = m
	}
	c.numAlive.Store(int64(len(c.mu.members)))
	c.mu.Unlock()

	if n.Name != nodeName(m.ID) || len(dupes) > 0 {
		c.log.Warn("cluster: broker id claimed by another node name; broker ids must be unique",
			slog.String("node", n.Name), slog.Int("id", int(m.ID)), slog.Any("also_claimed_by", dupes))
	}
	if t != EventUpdate && n.Name != nodeName(c.cfg.Self.ID) {
		c.log.Info("cluster: member "+t.String(), slog.Int("id", int(m.ID)), slog.String("gossip_addr", m.GossipAddr))
	}
	if c.events.push(n.Name, Event{Type: t, Member: m}) {
		c.stats.eventsMerged.Add(1)
	}
}
