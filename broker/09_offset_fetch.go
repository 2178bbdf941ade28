package broker

// OffsetFetch (key 9), versions 0–8.
//
// Returns a group's committed offsets: for the partitions asked, or (null
// topics, v2+) for every partition the group committed. A partition
// without a commit, or a group that does not exist, answers offset -1 with
// no error, as Kafka does. v8 asks for several groups at once, each
// answered by its own coordinator's state (a group this broker does not
// coordinate gets NOT_COORDINATOR). With require_stable (v7+), a partition
// whose commit is still being written answers UNSTABLE_OFFSET_COMMIT,
// which clients retry. v0–1 have no top-level error, so a coordinator
// error is given on every partition.

import (
	"context"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.OffsetFetch.Int16(), 0, 8, handleOffsetFetch) }

func handleOffsetFetch(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.OffsetFetchRequest)
	groups := req.Groups
	if req.Version < 8 {
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = req.Group
		if req.Topics != nil || req.Version < 2 {
			g.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
			for _, t := range req.Topics {
				g.Topics = append(g.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		groups = []kmsg.OffsetFetchRequestGroup{g}
	}
	// Each group's answer is asked for now, in request order; the reply
	// collects them.
	waits := make([]func(context.Context) (kmsg.OffsetFetchResponseGroup, int16), len(groups))
	for i, rg := range groups {
		r, code := b.coordinatorFor(rg.Group)
		if code != 0 {
			waits[i] = func(context.Context) (kmsg.OffsetFetchResponseGroup, int16) {
				return kmsg.OffsetFetchResponseGroup{}, code
			}
			continue
		}
		topics, stable := rg.Topics, req.RequireStable
		w := submit(r, func(s *coordinator.Shard, _ time.Time, respond func(kmsg.OffsetFetchResponseGroup)) {
			respond(s.FetchOffsets(rg.Group, topics, stable))
		})
		waits[i] = func(ctx context.Context) (kmsg.OffsetFetchResponseGroup, int16) {
			g, ok := w(ctx)
			if !ok {
				return g, kerr.NotCoordinator.Code
			}
			return g, 0
		}
	}
	return func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, groupWaitCap)
		defer cancel()
		answers := make([]kmsg.OffsetFetchResponseGroup, len(groups))
		for i, rg := range groups {
			g, code := waits[i](ctx)
			if code != 0 {
				g = groupFetchError(rg, code)
			}
			answers[i] = g
		}
		return offsetFetchResponse(req, answers)
	}
}

// groupFetchError answers group rg with a group-level error.
func groupFetchError(rg kmsg.OffsetFetchRequestGroup, code int16) kmsg.OffsetFetchResponseGroup {
	g := kmsg.NewOffsetFetchResponseGroup()
	g.Group, g.ErrorCode = rg.Group, code
	for _, t := range rg.Topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			rp.Partition, rp.Offset, rp.Metadata = p, -1, kmsg.StringPtr("")
			rt.Partitions = append(rt.Partitions, rp)
		}
		g.Topics = append(g.Topics, rt)
	}
	return g
}

// offsetFetchResponse shapes per-group answers as req's version wants.
func offsetFetchResponse(req *kmsg.OffsetFetchRequest, groups []kmsg.OffsetFetchResponseGroup) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		resp.Groups = groups
		return resp
	}
	g := groups[0]
	resp.ErrorCode = g.ErrorCode
	for _, t := range g.Topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			if req.Version < 2 && rp.ErrorCode == 0 {
				rp.ErrorCode = g.ErrorCode
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
