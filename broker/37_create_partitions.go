package broker

// CreatePartitions (key 37), versions 0–3.
//
// Grows a topic to Count partitions; the new partitions get replicas placed
// like a new topic's, with the topic's replication factor. Manual
// assignments are not accepted yet (INVALID_REQUEST). Partition counts only
// grow (INVALID_PARTITIONS otherwise).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.CreatePartitions.Int16(), 0, 3, handleCreatePartitions) }

func handleCreatePartitions(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
		timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
		if timeout <= 0 || timeout > time.Minute {
			timeout = 30 * time.Second
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		for _, rt := range req.Topics {
			st := kmsg.NewCreatePartitionsResponseTopic()
			st.Topic = rt.Topic
			if isInternalTopic(rt.Topic) {
				err := errInternalTopic(rt.Topic, "add partitions to")
				st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
				resp.Topics = append(resp.Topics, st)
				continue
			}
			if len(rt.Assignment) > 0 {
				st.ErrorCode = kerr.InvalidRequest.Code
				st.ErrorMessage = strPtr("manual replica assignment is not supported yet; omit it to place replicas automatically")
				resp.Topics = append(resp.Topics, st)
				continue
			}
			t, err := b.meta.CreatePartitions(ctx, rt.Topic, rt.Count, req.ValidateOnly)
			if err != nil {
				st.ErrorCode = controllerErrorCode(err)
				st.ErrorMessage = errorMessage(err)
			} else if !req.ValidateOnly {
				b.waitPartitionsLed(ctx, t)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
}
