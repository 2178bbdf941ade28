package broker

// DeleteGroups (key 42), versions 0–2.
//
// Deletes empty groups and their committed offsets: tombstones are
// written to __consumer_offsets before the answer. A group with members
// answers NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND, a group this
// broker does not coordinate NOT_COORDINATOR.

import (
	"context"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DeleteGroups.Int16(), 0, 2, handleDeleteGroups) }

func handleDeleteGroups(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	waits := make([]func(context.Context) (int16, bool), len(req.Groups))
	codes := make([]int16, len(req.Groups))
	for i, group := range req.Groups {
		if group == "" {
			codes[i] = kerr.InvalidGroupID.Code
			continue
		}
		r, code := b.coordinatorFor(group)
		if code != 0 {
			codes[i] = code
			continue
		}
		waits[i] = submit(r, func(s *coordinator.Shard, now time.Time, respond func(int16)) {
			s.DeleteGroup(now, group, respond)
		})
	}
	return func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, groupWaitCap)
		defer cancel()
		resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for i, group := range req.Groups {
			code := codes[i]
			if waits[i] != nil {
				c, ok := waits[i](ctx)
				switch {
				case ok:
					code = c
				case ctx.Err() != nil:
					code = kerr.RequestTimedOut.Code
				default:
					code = kerr.NotCoordinator.Code
				}
			}
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = group, code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}
}
