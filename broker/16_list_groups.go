package broker

// ListGroups (key 16), versions 0–4.
//
// Lists the groups this broker coordinates (as in Kafka, a client asks
// every broker and merges), with their states from v4, optionally only
// those in the states asked for (case-insensitive). While a coordinator is
// still loading, the answer is COORDINATOR_LOAD_IN_PROGRESS with the
// groups of the others.

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ListGroups.Int16(), 0, 4, handleListGroups) }

func handleListGroups(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ListGroupsRequest)
	var (
		waits   []func(context.Context) ([]kmsg.ListGroupsResponseGroup, bool)
		loading bool
	)
	if gc := groupsOf(b); gc != nil {
		gc.mu.Lock()
		runners := make([]*shardRunner, 0, len(gc.mu.shards))
		for _, r := range gc.mu.shards {
			runners = append(runners, r)
		}
		gc.mu.Unlock()
		for _, r := range runners {
			if !r.loaded.Load() {
				loading = loading || !r.stopped()
				continue
			}
			waits = append(waits, submit(r, func(s *coordinator.Shard, _ time.Time, respond func([]kmsg.ListGroupsResponseGroup)) {
				respond(s.ListGroups(req.StatesFilter))
			}))
		}
	}
	return func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, groupWaitCap)
		defer cancel()
		resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
		resp.Groups = []kmsg.ListGroupsResponseGroup{}
		for _, w := range waits {
			groups, ok := w(ctx)
			if !ok {
				// The coordinator stopped: its groups are listed by the
				// next one.
				continue
			}
			resp.Groups = append(resp.Groups, groups...)
		}
		slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
		if loading {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		}
		return resp
	}
}
