package broker

// JoinGroup (key 11), versions 0–9.
//
// Served by the group's coordinator (see groups.go and the coordinator
// package): the classic rebalance protocol, with member ids required from
// v4 (MEMBER_ID_REQUIRED hands one out, KIP-394), static membership from
// v5 (group.instance.id, KIP-345; FENCED_INSTANCE_ID for an old
// incarnation) and the leader's skip-assignment from v9 (KIP-814). The
// response waits for the rebalance: until every member has rejoined, at
// most the group's longest rebalance timeout (the first rebalance of an
// empty group waits group.initial.rebalance.delay.ms, 3 s, for more
// members). A broker that does not coordinate the group answers
// NOT_COORDINATOR, or COORDINATOR_LOAD_IN_PROGRESS while it loads.
//
// Member ids are "client id-UUID" as in Kafka; the client id of a
// request header is not yet passed to handlers, so it is empty here.

import (
	"context"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.JoinGroup.Int16(), 0, 9, handleJoinGroup) }

func handleJoinGroup(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.JoinGroupRequest)
	fail := func(code int16) reply {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, req.MemberID
		return immediate(resp)
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	r, code := b.coordinatorFor(req.Group)
	if code != 0 {
		return fail(code)
	}
	client := coordinator.Client{ID: cc.clientID, Host: cc.clientHost()}
	wait := submit(r, func(s *coordinator.Shard, now time.Time, respond func(*kmsg.JoinGroupResponse)) {
		s.JoinGroup(now, client, req, respond)
	})
	// The join waits for the rebalance, up to the rebalance timeout (and
	// the initial delay, extended once per new member at most up to it).
	timeout := time.Duration(max(req.RebalanceTimeoutMillis, req.SessionTimeoutMillis))*time.Millisecond + groupWaitCap
	return func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		resp, ok := wait(ctx)
		if !ok {
			code := kerr.NotCoordinator.Code
			if ctx.Err() != nil {
				code = kerr.RebalanceInProgress.Code
			}
			r := req.ResponseKind().(*kmsg.JoinGroupResponse)
			r.ErrorCode, r.Generation, r.MemberID = code, -1, req.MemberID
			return r
		}
		return resp
	}
}
