package broker

// ListPartitionReassignments (key 46), version 0.
//
// Lists partitions whose replicas are moving: all replicas (current and
// target), the ones being added and the ones being removed. Null topics
// list every reassignment in progress.

import (
	"context"
	"slices"

	"github.com/raftka/raftka/metadata"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.ListPartitionReassignments.Int16(), 0, 0, handleListPartitionReassignments)
}

func handleListPartitionReassignments(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ListPartitionReassignmentsRequest)
	return func(context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
		view := b.meta.View()
		describe := func(t *metadata.Topic, only []int32) {
			st := kmsg.NewListPartitionReassignmentsResponseTopic()
			st.Topic = t.Name
			for _, p := range t.Partitions {
				if p.Target == nil || (only != nil && !slices.Contains(only, p.Index)) {
					continue
				}
				sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
				sp.Partition = p.Index
				sp.Replicas = p.AllReplicas()
				sp.AddingReplicas, sp.RemovingReplicas = []int32{}, []int32{}
				for _, r := range p.Target {
					if !slices.Contains(p.Replicas, r) {
						sp.AddingReplicas = append(sp.AddingReplicas, r)
					}
				}
				for _, r := range p.Replicas {
					if !slices.Contains(p.Target, r) {
						sp.RemovingReplicas = append(sp.RemovingReplicas, r)
					}
				}
				st.Partitions = append(st.Partitions, sp)
			}
			if len(st.Partitions) > 0 {
				resp.Topics = append(resp.Topics, st)
			}
		}
		if req.Topics == nil {
			for _, name := range view.TopicNames() {
				describe(view.Topics[name], nil)
			}
			return resp
		}
		for _, rt := range req.Topics {
			if t := view.Topics[rt.Topic]; t != nil {
				describe(t, rt.Partitions)
			}
		}
		return resp
	}
}
