package broker

// DescribeGroups (key 15), versions 0–5.
//
// Describes groups from their coordinators' state: state, protocol type,
// selected protocol and members (client id and host, instance id from
// v4), with each member's subscription and assignment while the group is
// Stable. A group that does not exist is described as Dead with no error,
// as Kafka does before v6. A group this broker does not coordinate
// answers NOT_COORDINATOR. Authorized operations (v3+) are not reported.

import (
	"context"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeGroups.Int16(), 0, 5, handleDescribeGroups) }

func handleDescribeGroups(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	waits := make([]func(context.Context) (kmsg.DescribeGroupsResponseGroup, bool), len(req.Groups))
	codes := make([]int16, len(req.Groups))
	for i, group := range req.Groups {
		r, code := b.coordinatorFor(group)
		if code != 0 {
			codes[i] = code
			continue
		}
		waits[i] = submit(r, func(s *coordinator.Shard, _ time.Time, respond func(kmsg.DescribeGroupsResponseGroup)) {
			respond(s.DescribeGroup(group))
		})
	}
	return func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, groupWaitCap)
		defer cancel()
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for i, group := range req.Groups {
			var g kmsg.DescribeGroupsResponseGroup
			ok := false
			if waits[i] != nil {
				g, ok = waits[i](ctx)
				if !ok {
					codes[i] = kerr.NotCoordinator.Code
				}
			}
			if !ok {
				g = kmsg.NewDescribeGroupsResponseGroup()
				g.Group, g.ErrorCode = group, codes[i]
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}
}
