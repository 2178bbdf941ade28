package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftka/raftka/cluster"
	"github.com/raftka/raftka/raftlog"
	pb "go.etcd.io/raft/v3/raftpb"
)

// swapTransport drops Raft messages until the broker has started its real
// transport (Raft resends), then forwards to it. The scheduler needs a
// transport when the broker is created, before it binds ports.
type swapTransport struct {
	t atomic.Pointer[transportBox]
}

type transportBox struct{ raftlog.Transport }

func (s *swapTransport) set(t raftlog.Transport) { s.t.Store(&transportBox{t}) }

func (s *swapTransport) Send(group uint64, msgs []*pb.Message) {
	if b := s.t.Load(); b != nil {
		b.Send(group, msgs)
	}
}

func (s *swapTransport) SendQuiesce(group uint64, m *pb.Message) {
	if b := s.t.Load(); b != nil {
		b.SendQuiesce(group, m)
	}
}

// startCluster starts the Raft transport and gossip membership.
func (b *Broker) startCluster() error {
	if n := b.cfg.RaftNetwork; n != nil {
		b.transport.set(n.Transport(uint64(b.cfg.NodeID)))
		n.SetInbound(uint64(b.cfg.NodeID), b.sched)
		b.raftAddr = "127.0.0.1:1" // unused: the in-memory network routes by node id
	} else {
		tt, err := raftlog.NewTCPTransport(raftlog.TCPTransportConfig{
			NodeID:     uint64(b.cfg.NodeID),
			ListenAddr: b.cfg.RaftAddr,
			Resolve:    b.resolveRaft,
			Logger:     b.log,
		})
		if err != nil {
			return fmt.Errorf("%w (set --raft-addr)", err)
		}
		tt.SetInbound(b.sched)
		b.tcp = tt
		b.transport.set(tt)
		b.raftAddr = tt.Addr()
		if b.cfg.AdvertiseRaftAddr != "" {
			b.raftAddr = b.cfg.AdvertiseRaftAddr
		}
	}
	cc := cluster.DefaultConfig()
	if b.cfg.GossipPreset == "local" {
		cc = cluster.LocalConfig()
	}
	cc.BindAddr = b.cfg.GossipAddr
	cc.Join = b.cfg.Join
	cc.Logger = b.log
	cc.Self = cluster.Member{
		ID:        b.cfg.NodeID,
		KafkaAddr: net.JoinHostPort(b.advHost, strconv.Itoa(int(b.advPort))),
		RaftAddr:  b.raftAddr,
		AdminAddr: b.adminAddr,
		Rack:      b.cfg.Rack,
		Version:   Version,
	}
	cc.LocalState = b.leaders.encodeLocal
	cc.OnRemoteState = b.leaders.merge
	cl, err := cluster.Start(cc)
	if err != nil {
		if b.tcp != nil {
			b.tcp.Close()
		}
		return fmt.Errorf("gossip: %w (set --gossip-addr)", err)
	}
	b.gossip = cl
	b.wg.Add(4)
	go func() {
		defer b.wg.Done()
		b.membershipLoop()
	}()
	go func() {
		defer b.wg.Done()
		b.reassignLoop()
	}()
	go func() {
		defer b.wg.Done()
		b.leadershipLoop()
	}()
	go func() {
		defer b.wg.Done()
		b.controllerLoop()
	}()
	return nil
}

// Version is reported in gossip metadata.
const Version = "0.1.0"

// GossipAddr returns the bound gossip address.
func (b *Broker) GossipAddr() string { return b.gossip.GossipAddr() }

// RaftAddr returns the bound Raft address.
func (b *Broker) RaftAddr() string { return b.raftAddr }

// stopCluster leaves the gossip cluster and stops the transport.
func (b *Broker) stopCluster() {
	if b.gossip != nil {
		_ = b.gossip.Leave(500 * time.Millisecond)
		_ = b.gossip.Close()
	}
	if b.tcp != nil {
		_ = b.tcp.Close()
	}
}

// resolveRaft finds a peer's Raft address in the gossip membership.
func (b *Broker) resolveRaft(node uint64) (string, bool) {
	if b.gossip == nil {
		return "", false
	}
	m, ok := b.gossip.Member(int32(node))
	if !ok || m.RaftAddr == "" {
		return "", false
	}
	return m.RaftAddr, true
}

// alive reports whether gossip sees broker id alive.
func (b *Broker) alive(id int32) bool {
	if id == b.cfg.NodeID {
		return true
	}
	if b.gossip == nil {
		return false
	}
	_, ok := b.gossip.Member(id)
	return ok
}

// membershipLoop reacts to gossip events: when a broker leaves or fails,
// quiesced groups wake so that those it led elect new leaders.
func (b *Broker) membershipLoop() {
	for {
		select {
		case <-b.ctx.Done():
			return
		case ev, ok := <-b.gossip.Events():
			if !ok {
				return
			}
			b.log.Info("membership", "event", ev.Type.String(), "member", ev.Member.ID, "kafka", ev.Member.KafkaAddr)
			if ev.Type == cluster.EventLeave {
				b.sched.UnquiesceAll()
				b.leaders.forgetLeader(ev.Member.ID)
			}
		case msg, ok := <-b.gossip.Messages():
			if !ok {
				return
			}
			b.leaders.merge(msg)
		}
	}
}

// leadershipLoop publishes, by gossip, the partitions this broker leads,
// so that every broker can answer Metadata for every partition; and hands
// leadership back to preferred replicas.
func (b *Broker) leadershipLoop() {
	publish := time.NewTicker(200 * time.Millisecond)
	defer publish.Stop()
	var balance <-chan time.Time
	if b.cfg.LeaderBalanceInterval > 0 {
		t := time.NewTicker(b.cfg.LeaderBalanceInterval)
		defer t.Stop()
		balance = t.C
	}
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-publish.C:
			for _, msg := range b.leaders.refreshLocal(b.localLeaderships()) {
				_ = b.gossip.Broadcast(msg)
			}
		case <-balance:
			b.balanceLeaders()
		}
	}
}

// localLeaderships lists the partitions this broker leads now.
func (b *Broker) localLeaderships() map[uint64]leadership {
	b.mu.RLock()
	parts := make([]*raftlog.Partition, 0, len(b.mu.partitions))
	for _, p := range b.mu.partitions {
		parts = append(parts, p)
	}
	b.mu.RUnlock()
	out := make(map[uint64]leadership)
	for _, p := range parts {
		o := p.Offsets()
		if o.Leader != uint64(b.cfg.NodeID) {
			continue
		}
		isr := p.Group().InSync()
		if isr == nil {
			continue
		}
		l := leadership{leader: b.cfg.NodeID, epoch: o.LeaderEpoch}
		for _, id := range isr {
			l.isr = append(l.isr, int32(id))
		}
		slices.Sort(l.isr)
		out[p.Group().ID()] = l
	}
	return out
}

// balanceLeaders transfers leadership of each partition this broker leads
// to its preferred replica when that replica is alive and caught up.
func (b *Broker) balanceLeaders() {
	v := b.meta.View()
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			if len(p.Replicas) < 2 || p.Replicas[0] == b.cfg.NodeID || p.Target != nil {
				continue
			}
			rp := b.partition(p.GroupID)
			if rp == nil || rp.Offsets().Leader != uint64(b.cfg.NodeID) {
				continue
			}
			pref := p.Replicas[0]
			if br := v.Brokers[pref]; br == nil || br.Fenced || !b.alive(pref) || !rp.Group().CaughtUp(uint64(pref)) {
				continue
			}
			b.log.Debug("handing leadership to the preferred replica", "topic", t.Name, "partition", p.Index, "to", pref)
			rp.Group().TransferLeadership(uint64(pref))
		}
	}
}

// controllerLoop runs on every broker but acts only on the controller (the
// metadata group's leader): it fences registered brokers that gossip has
// not seen for FenceAfter, and unfences them when they are back.
func (b *Broker) controllerLoop() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	missing := map[int32]time.Time{}
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		if !b.meta.Group().IsLeader() {
			clear(missing)
			continue
		}
		b.addMetadataLearners()
		now := time.Now()
		for id, br := range b.meta.View().Brokers {
			alive := b.alive(id)
			switch {
			case alive:
				delete(missing, id)
				if br.Fenced {
					b.changeFence(id, false)
				}
			case br.Fenced:
			default:
				since, ok := missing[id]
				if !ok {
					missing[id] = now
				} else if now.Sub(since) >= b.cfg.FenceAfter {
					b.changeFence(id, true)
				}
			}
		}
	}
}

// addMetadataLearners adds every broker gossip knows that is not yet in
// the metadata group as a learner, one per call (Raft applies one
// configuration change at a time): it then receives the metadata log and
// keeps its own metadata cache, and its proposals are forwarded to the
// controller.
func (b *Broker) addMetadataLearners() {
	voters, learners := b.meta.Group().ConfState()
	for _, m := range b.gossip.Members() {
		id := uint64(m.ID)
		if slices.Contains(voters, id) || slices.Contains(learners, id) {
			continue
		}
		b.log.Info("adding broker to the metadata group as a learner", "broker", m.ID)
		_ = b.meta.Group().ProposeConfChange(raftlog.AddLearner, id)
		return
	}
}

func (b *Broker) changeFence(id int32, fence bool) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	var err error
	if fence {
		err = b.meta.FenceBroker(ctx, id)
	} else {
		err = b.meta.UnfenceBroker(ctx, id)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		b.log.Warn("changing broker fence", "broker", id, "fence", fence, "err", err)
		return
	}
	b.log.Info("broker fence changed", "broker", id, "fenced", fence)
}

// leadership is what the cluster knows of one partition's leader.
type leadership struct {
	leader int32
	epoch  int32
	isr    []int32
}

// leaderTable is this broker's view of every partition's leader, from its
// own replicas and from gossip. Entries only move to higher epochs, so
// duplicated and reordered gossip does no harm.
type leaderTable struct {
	mu struct {
		sync.Mutex
		all   map[uint64]leadership
		local map[uint64]leadership // what this broker last published
	}
}

func newLeaderTable() *leaderTable {
	t := &leaderTable{}
	t.mu.all = make(map[uint64]leadership)
	t.mu.local = make(map[uint64]leadership)
	return t
}

func (t *leaderTable) get(group uint64) (leadership, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.mu.all[group]
	return l, ok
}

func (t *leaderTable) putLocked(group uint64, l leadership) {
	if cur, ok := t.mu.all[group]; !ok || l.epoch >= cur.epoch {
		t.mu.all[group] = l
	}
}

// forgetLeader drops entries led by a broker that left.
func (t *leaderTable) forgetLeader(id int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for g, l := range t.mu.all {
		if l.leader == id {
			delete(t.mu.all, g)
		}
	}
}

// refreshLocal records what this broker leads now and returns gossip
// messages for what changed.
func (t *leaderTable) refreshLocal(now map[uint64]leadership) [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	var changed []uint64
	for g, l := range now {
		if old, ok := t.mu.local[g]; !ok || old.epoch != l.epoch || !slices.Equal(old.isr, l.isr) {
			changed = append(changed, g)
		}
		t.putLocked(g, l)
	}
	t.mu.local = now
	return encodeLeaderships(now, changed)
}

// encodeLocal returns everything this broker leads, for push/pull sync.
func (t *leaderTable) encodeLocal() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	var groups []uint64
	for g := range t.mu.local {
		groups = append(groups, g)
	}
	msgs := encodeLeaderships(t.mu.local, groups)
	var out []byte
	for _, m := range msgs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(m)))
		out = append(out, m...)
	}
	return out
}

// merge applies gossip: one message, or a push/pull state of several.
func (t *leaderTable) merge(b []byte) {
	if len(b) > 0 && b[0] == leadershipMsgV1 {
		t.mergeOne(b)
		return
	}
	for len(b) >= 4 {
		n := binary.BigEndian.Uint32(b)
		if uint32(len(b)-4) < n {
			return
		}
		t.mergeOne(b[4 : 4+n])
		b = b[4+n:]
	}
}

func (t *leaderTable) mergeOne(b []byte) {
	if len(b) < 3 || b[0] != leadershipMsgV1 {
		return
	}
	count := int(binary.BigEndian.Uint16(b[1:]))
	b = b[3:]
	t.mu.Lock()
	defer t.mu.Unlock()
	for range count {
		if len(b) < 17 {
			return
		}
		g := binary.BigEndian.Uint64(b)
		l := leadership{leader: int32(binary.BigEndian.Uint32(b[8:])), epoch: int32(binary.BigEndian.Uint32(b[12:]))}
		n := int(b[16])
		b = b[17:]
		if len(b) < 4*n {
			return
		}
		for i := range n {
			l.isr = append(l.isr, int32(binary.BigEndian.Uint32(b[4*i:])))
		}
		b = b[4*n:]
		t.putLocked(g, l)
	}
}

// Leadership gossip, version 1: [1][count u16] then count × (group u64,
// leader i32, epoch i32, n u8, n × isr i32). Messages stay under
// maxLeadershipMsg bytes so they fit one gossip packet.
const (
	leadershipMsgV1  = 1
	maxLeadershipMsg = 900
)

func encodeLeaderships(all map[uint64]leadership, groups []uint64) [][]byte {
	var out [][]byte
	var cur []byte
	count := 0
	flush := func() {
		if count > 0 {
			binary.BigEndian.PutUint16(cur[1:], uint16(count))
			out = append(out, cur)
		}
		cur, count = nil, 0
	}
	for _, g := range groups {
		l := all[g]
		size := 17 + 4*len(l.isr)
		if cur != nil && len(cur)+size > maxLeadershipMsg {
			flush()
		}
		if cur == nil {
			cur = []byte{leadershipMsgV1, 0, 0}
		}
		cur = binary.BigEndian.AppendUint64(cur, g)
		cur = binary.BigEndian.AppendUint32(cur, uint32(l.leader))
		cur = binary.BigEndian.AppendUint32(cur, uint32(l.epoch))
		cur = append(cur, byte(len(l.isr)))
		for _, r := range l.isr {
			cur = binary.BigEndian.AppendUint32(cur, uint32(r))
		}
		count++
	}
	flush()
	return out
}
