package broker

// Metadata (key 3), versions 0–12.
//
// Brokers come from the metadata log's registrations; the controller is
// the leader of the metadata Raft group. A partition's leader is the leader
// of its Raft group and its leader epoch is that leader's Raft term, so a
// client sees the epoch rise on every election. Topics may be named or,
// from v10, given by id. Unknown topics are created only when the broker
// allows auto-creation and the request asks for it.

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/raftka/raftka/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.Metadata.Int16(), 0, 12, handleMetadata) }

func handleMetadata(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.MetadataRequest)
	return func(ctx context.Context) kmsg.Response { return b.metadata(ctx, req) }
}

func (b *Broker) metadata(ctx context.Context, req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	view := b.meta.View()
	resp.Brokers = b.brokerList(view)
	resp.ClusterID = &b.cfg.ClusterID
	resp.ControllerID = b.controllerID()

	// Auto-create what is missing first, so the answer can include it.
	autoCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	if autoCreate && req.Topics != nil {
		created := false
		for _, rt := range req.Topics {
			if rt.Topic == nil || view.Topics[*rt.Topic] != nil || metadata.ValidateTopicName(*rt.Topic) != nil {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			t, err := b.meta.CreateTopic(cctx, metadata.TopicSpec{Name: *rt.Topic, Partitions: b.cfg.DefaultPartitions, ReplicationFactor: b.cfg.DefaultReplicationFactor})
			if err == nil {
				b.waitPartitionsLed(cctx, t)
				created = true
			}
			cancel()
		}
		if created {
			view = b.meta.View()
		}
	}

	var names []string
	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		names = view.TopicNames()
	}
	for _, name := range names {
		resp.Topics = append(resp.Topics, b.topicMetadata(view.Topics[name]))
	}
	for _, rt := range req.Topics {
		var t *metadata.Topic
		if rt.Topic != nil {
			t = view.Topics[*rt.Topic]
		} else if req.Version >= 10 {
			t = view.TopicByID(rt.TopicID)
		}
		if t != nil {
			resp.Topics = append(resp.Topics, b.topicMetadata(t))
			continue
		}
		st := kmsg.NewMetadataResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if rt.Topic == nil {
			st.ErrorCode = kerr.UnknownTopicID.Code
		} else if metadata.ValidateTopicName(*rt.Topic) != nil {
			st.ErrorCode = kerr.InvalidTopicException.Code
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// topicMetadata describes t as this broker sees it.
func (b *Broker) topicMetadata(t *metadata.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	name := t.Name
	st.Topic, st.TopicID = &name, t.ID
	st.IsInternal = isInternalTopic(name)
	for _, p := range t.Partitions {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = p.Index
		sp.Replicas = p.AllReplicas()
		sp.Leader, sp.LeaderEpoch = -1, -1
		sp.ISR = nil
		gossiped, known := b.leaders.get(p.GroupID)
		if rp := b.partition(p.GroupID); rp != nil {
			// A replica here knows the leader from Raft itself.
			if o := rp.Offsets(); o.Leader != 0 {
				sp.Leader, sp.LeaderEpoch = int32(o.Leader), o.LeaderEpoch
				if known && gossiped.epoch == o.LeaderEpoch && gossiped.leader == sp.Leader {
					sp.ISR = gossiped.isr
				}
			}
		} else if known {
			sp.Leader, sp.LeaderEpoch, sp.ISR = gossiped.leader, gossiped.epoch, gossiped.isr
		}
		if sp.Leader >= 0 && b.meta.View().Brokers[sp.Leader] == nil {
			sp.Leader, sp.LeaderEpoch, sp.ISR = -1, -1, nil
		}
		switch {
		case sp.Leader < 0:
			sp.ErrorCode = kerr.LeaderNotAvailable.Code
			sp.ISR = []int32{}
		case sp.ISR == nil:
			sp.ISR = []int32{sp.Leader}
		}
		sp.OfflineReplicas = []int32{}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}

// brokerList returns the registered brokers, and this broker even before
// its registration is applied, so clients always have somewhere to go.
func (b *Broker) brokerList(view *metadata.View) []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	self := false
	for _, id := range sortedBrokerIDs(view) {
		br := view.Brokers[id]
		if br.Fenced {
			continue
		}
		host, port, err := net.SplitHostPort(br.KafkaAddr)
		if err != nil {
			continue
		}
		p, _ := strconv.Atoi(port)
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = br.ID, host, int32(p)
		if br.Rack != "" {
			rack := br.Rack
			mb.Rack = &rack
		}
		out = append(out, mb)
		self = self || br.ID == b.cfg.NodeID
	}
	if !self {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = b.cfg.NodeID, b.advHost, b.advPort
		out = append(out, mb)
	}
	return out
}

// controllerID is the broker leading the metadata group, or -1.
func (b *Broker) controllerID() int32 {
	if l := b.meta.Group().Status().Leader; l != 0 {
		return int32(l)
	}
	return -1
}
