package broker

// OffsetCommit (key 8), versions 0–8.
//
// Commits a group's consumed positions. The response is sent only once the
// commit's records are committed in the group's __consumer_offsets
// partition by its Raft quorum, so an acknowledged commit survives the
// loss of the coordinator. Members commit with their generation
// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS while the
// group awaits its assignment, FENCED_INSTANCE_ID); a generation of -1
// commits for an empty group (manual assignment, or an admin resetting
// offsets). Partitions of unknown topics answer UNKNOWN_TOPIC_OR_PARTITION
// and metadata over 4096 bytes OFFSET_METADATA_TOO_LARGE. The v2–v4
// retention time is kept per offset; otherwise offsets-retention applies.

import (
	"context"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/raftka/raftka/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.OffsetCommit.Int16(), 0, 8, handleOffsetCommit) }

func handleOffsetCommit(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.OffsetCommitRequest)
	fail := func(code int16) *kmsg.OffsetCommitResponse {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
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
	wait := submit(r, func(s *coordinator.Shard, now time.Time, respond func(*kmsg.OffsetCommitResponse)) {
		s.CommitOffsets(now, req, exists, respond)
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

// partitionExists answers whether a topic partition exists in v.
func partitionExists(v *metadata.View) coordinator.PartitionExists {
	return func(topic string, partition int32) bool {
		t := v.Topics[topic]
		return t != nil && partition >= 0 && int(partition) < len(t.Partitions)
	}
}
