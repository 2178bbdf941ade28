package broker

// LeaveGroup (key 13), versions 0–5.
//
// Removes members from a group at once, so the group rebalances without
// waiting for their sessions to end. v0–2 name one member; v3+ a batch,
// each by member id or by group instance id (a static member leaving for
// good, KIP-345), with an error per member.

import (
	"context"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.LeaveGroup.Int16(), 0, 5, handleLeaveGroup) }

func handleLeaveGroup(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.LeaveGroupRequest)
	fail := func(code int16) *kmsg.LeaveGroupResponse {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	}
	r, code := b.coordinatorFor(req.Group)
	if code != 0 {
		return immediate(fail(code))
	}
	wait := submit(r, func(s *coordinator.Shard, now time.Time, respond func(*kmsg.LeaveGroupResponse)) {
		respond(s.LeaveGroup(now, req))
	})
	return func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, groupWaitCap)
		defer cancel()
		if resp, ok := wait(ctx); ok {
			return resp
		}
		return fail(kerr.NotCoordinator.Code)
	}
}
