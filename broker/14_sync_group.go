package broker

// SyncGroup (key 14), versions 0–5.
//
// The leader sends the assignment it computed; every member receives its
// part. The answers wait until the assignment is committed in the group's
// __consumer_offsets partition, so that a coordinator failover cannot
// forget an assignment members already work on. From v5 the protocol
// type and name are checked (INCONSISTENT_GROUP_PROTOCOL).

import (
	"context"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.SyncGroup.Int16(), 0, 5, handleSyncGroup) }

func handleSyncGroup(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.SyncGroupRequest)
	fail := func(code int16) *kmsg.SyncGroupResponse {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode, resp.MemberAssignment = code, []byte{}
		return resp
	}
	r, code := b.coordinatorFor(req.Group)
	if code != 0 {
		return immediate(fail(code))
	}
	wait := submit(r, func(s *coordinator.Shard, now time.Time, respond func(*kmsg.SyncGroupResponse)) {
		s.SyncGroup(now, req, respond)
	})
	return func(ctx context.Context) kmsg.Response {
		// A follower waits for the leader's assignment, which comes
		// within the group's rebalance timeout.
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if resp, ok := wait(ctx); ok {
			return resp
		}
		if ctx.Err() != nil {
			return fail(kerr.RebalanceInProgress.Code)
		}
		return fail(kerr.NotCoordinator.Code)
	}
}
