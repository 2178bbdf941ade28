package broker

// DeleteTopics (key 20), versions 0–6.
//
// The controller appends a TopicDeleted record; every replica then stops
// its partition groups and deletes their data. Topics are named, or from v6
// named or identified by id. Other brokers answer NOT_CONTROLLER.

import (
	"context"
	"time"

	"github.com/raftka/raftka/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DeleteTopics.Int16(), 0, 6, handleDeleteTopics) }

func handleDeleteTopics(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
		timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
		if timeout <= 0 || timeout > time.Minute {
			timeout = 30 * time.Second
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		topics := req.Topics
		if req.Version < 6 {
			topics = nil
			for _, n := range req.TopicNames {
				rt := kmsg.NewDeleteTopicsRequestTopic()
				rt.Topic = &n
				topics = append(topics, rt)
			}
		}
		for _, rt := range topics {
			st := kmsg.NewDeleteTopicsResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			var t *metadata.Topic
			view := b.meta.View()
			if rt.Topic != nil {
				t = view.Topics[*rt.Topic]
			} else {
				t = view.TopicByID(rt.TopicID)
			}
			if t == nil {
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if rt.Topic == nil {
					st.ErrorCode = kerr.UnknownTopicID.Code
				}
				resp.Topics = append(resp.Topics, st)
				continue
			}
			name := t.Name
			st.Topic, st.TopicID = &name, t.ID
			if isInternalTopic(name) {
				err := errInternalTopic(name, "delete")
				st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
				resp.Topics = append(resp.Topics, st)
				continue
			}
			if _, err := b.meta.DeleteTopic(ctx, t.Name); err != nil {
				st.ErrorCode = controllerErrorCode(err)
				st.ErrorMessage = errorMessage(err)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
}
