package broker

// OffsetForLeaderEpoch (key 23), versions 0–4.
//
// Leader epochs are Raft terms. For the current epoch the end offset is the
// high watermark; for an earlier epoch it is the first offset of the next
// epoch that wrote records, with the largest epoch at or below the one
// asked (clients use this to detect log truncation after a leader change;
// Raft never truncates committed records, so they never find any). The
// client's current leader epoch is checked like Fetch's. A new leader that
// has not yet applied an entry of its own term answers OFFSET_NOT_AVAILABLE
// (retriable), as Kafka does while a new leader's high watermark lags: that
// high watermark may be below what the client read from the old leader, and
// a client told the log ends before its position takes it for truncation
// and goes back.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.OffsetForLeaderEpoch.Int16(), 0, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	return func(context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
		view := b.meta.View()
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetForLeaderEpochResponseTopic()
			st.Topic = rt.Topic
			t := view.Topics[rt.Topic]
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.LeaderEpoch, sp.EndOffset = -1, -1
				p, code := b.partitionFor(t, rp.Partition)
				if code == 0 && !p.Group().IsLeader() {
					code = kerr.NotLeaderForPartition.Code
				}
				if code == 0 {
					code = checkLeaderEpoch(rp.CurrentLeaderEpoch, p.Offsets().LeaderEpoch)
				}
				if code == 0 {
					var err error
					sp.LeaderEpoch, sp.EndOffset, err = p.EndOffsetForEpoch(rp.LeaderEpoch)
					code = errorCode(err)
				}
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
}
