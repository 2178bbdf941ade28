package broker

// Heartbeat (key 12), versions 0–4.
//
// Keeps a member's session alive at its group's coordinator and tells it
// when to rejoin: REBALANCE_IN_PROGRESS while the group prepares a
// rebalance, ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID when the member is
// behind or gone, FENCED_INSTANCE_ID for a replaced static member.

import (
	"context"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.Heartbeat.Int16(), 0, 4, handleHeartbeat) }

func handleHeartbeat(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.HeartbeatRequest)
	fail := func(code int16) *kmsg.HeartbeatResponse {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	}
	r, code := b.coordinatorFor(req.Group)
	if code != 0 {
		return immediate(fail(code))
	}
	wait := submit(r, func(s *coordinator.Shard, now time.Time, respond func(*kmsg.HeartbeatResponse)) {
		respond(s.Heartbeat(now, req))
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
