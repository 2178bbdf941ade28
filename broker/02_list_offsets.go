package broker

// ListOffsets (key 2), versions 1–8.
//
// Timestamp -2 answers the log start offset, -1 the high watermark (the
// last stable offset is the same: there are no transactions), -3 (v7+) the
// offset and timestamp of the record with the largest timestamp; any other
// timestamp answers the first batch whose max timestamp is at or after it
// (its base offset, never past the first matching record), or offset and
// timestamp -1 if there is none, as Kafka answers. A new leader that has
// not yet applied an entry of its own term answers everything but -2 with
// OFFSET_NOT_AVAILABLE (retriable), as Kafka does while a new leader's high
// watermark lags: its high watermark may be below what the old leader
// acknowledged.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ListOffsets.Int16(), 1, 8, handleListOffsets) }

func handleListOffsets(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ListOffsetsRequest)
	return func(context.Context) kmsg.Response { return b.listOffsets(req) }
}

func (b *Broker) listOffsets(req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	view := b.meta.View()
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t := view.Topics[rt.Topic]
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			p, code := b.partitionFor(t, rp.Partition)
			if code == 0 && !p.Group().IsLeader() {
				code = kerr.NotLeaderForPartition.Code
			}
			if code != 0 {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			o := p.Offsets()
			sp.LeaderEpoch = o.LeaderEpoch
			if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, o.LeaderEpoch); code != 0 {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if !o.CaughtUp && rp.Timestamp != -2 {
				sp.ErrorCode = kerr.OffsetNotAvailable.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			var err error
			switch rp.Timestamp {
			case -2:
				sp.Offset = o.LogStartOffset
			case -1:
				sp.Offset = o.HighWatermark
			case -3:
				sp.Offset, sp.Timestamp, err = p.MaxTimestamp()
			default:
				if rp.Timestamp < 0 {
					sp.ErrorCode = kerr.InvalidRequest.Code
					break
				}
				sp.Offset, sp.Timestamp, err = p.OffsetForTimestamp(rp.Timestamp)
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
