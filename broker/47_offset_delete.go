package broker

// OffsetDelete (key 47), version 0.
//
// Deletes a group's committed offsets for some partitions (KIP-496); the
// tombstones are written before the answer. Partitions of topics the
// group's members still subscribe to answer GROUP_SUBSCRIBED_TO_TOPIC; a
// non-consumer group with members answers NON_EMPTY_GROUP; an unknown
// group GROUP_ID_NOT_FOUND.

import (
	"context"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.OffsetDelete.Int16(), 0, 0, handleOffsetDelete) }

func handleOffsetDelete(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	fail := func(code int16) *kmsg.OffsetDeleteResponse {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = code
		return resp
	}
	if req.Group == "" {
		return immediate(fail(kerr.InvalidGroupID.Code))
	}
	r, code := b.coordinatorFor(req.Group)
	if code != 0 {
		return immediate(fail(code))
	}
	exists := partitionExists(b.meta.View())
	wait := submit(r, func(s *coordinator.Shard, now time.Time, respond func(*kmsg.OffsetDeleteResponse)) {
		s.DeleteOffsets(now, req, exists, respond)
	})
	return func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, groupWaitCap)
		defer cancel()
		if resp, ok := wait(ctx); ok {
			return resp
		}
		if ctx.Err() != nil {
			return fail(kerr.RequestTimedOut.Code)
		}
		return fail(kerr.NotCoordinator.Code)
	}
}
