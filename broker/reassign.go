package broker

import (
	"context"
	"slices"
	"time"

	"github.com/raftka/raftka/metadata"
	"github.com/raftka/raftka/raftlog"
)

// reassignLoop carries out partition reassignments for the partitions this
// broker leads: it moves each group's voters to the target one Raft
// configuration change at a time — new replicas join as learners and are
// promoted once caught up, then the replicas that leave are removed (the
// leader hands its leadership to a target replica first if it is leaving)
// — and records the completion in the metadata log.
func (b *Broker) reassignLoop() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		for _, tp := range b.meta.View().Topics {
			for _, p := range tp.Partitions {
				if p.Target == nil {
					continue
				}
				if rp := b.partition(p.GroupID); rp != nil && rp.Group().IsLeader() {
					b.reassignStep(tp.Name, p, rp.Group())
				}
			}
		}
	}
}

// reassignStep makes the next configuration change towards p.Target.
func (b *Broker) reassignStep(topic string, p metadata.Partition, g *raftlog.Group) {
	voters, learners := g.ConfState()
	target := make([]uint64, len(p.Target))
	for i, r := range p.Target {
		target[i] = uint64(r)
	}
	log := b.log.With("topic", topic, "partition", p.Index)
	for _, r := range target {
		if !slices.Contains(voters, r) && !slices.Contains(learners, r) {
			log.Info("reassignment: adding learner", "replica", r)
			_ = g.ProposeConfChange(raftlog.AddLearner, r)
			return
		}
	}
	for _, r := range learners {
		if slices.Contains(target, r) {
			if g.CaughtUp(r) {
				log.Info("reassignment: promoting caught-up learner", "replica", r)
				_ = g.ProposeConfChange(raftlog.AddVoter, r)
			}
			return
		}
	}
	for _, r := range append(voters, learners...) {
		if slices.Contains(target, r) {
			continue
		}
		if r == uint64(b.cfg.NodeID) {
			for _, to := range target {
				if g.CaughtUp(to) {
					log.Info("reassignment: leader leaves, handing over leadership", "to", to)
					g.TransferLeadership(to)
					return
				}
			}
			return
		}
		log.Info("reassignment: removing replica", "replica", r)
		_ = g.ProposeConfChange(raftlog.RemoveNode, r)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if err := b.meta.CompleteReassignment(ctx, topic, p.Index, p.Target); err != nil {
		log.Debug("reassignment: recording completion", "err", err)
		return
	}
	log.Info("reassignment complete", "replicas", p.Target)
}
