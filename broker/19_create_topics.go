package broker

// CreateTopics (key 19), versions 0–7.
//
// The controller (the metadata group's leader) validates names, partition
// counts, replication factors and configs, places replicas, and appends a
// TopicCreated record; other brokers answer NOT_CONTROLLER. -1 partitions
// or replication factor take the broker defaults. Manual replica
// assignments are accepted when every partition names existing brokers. The
// response waits (within the request timeout) until this broker leads the
// new partitions it holds, so a client can produce at once.

import (
	"context"
	"fmt"
	"time"

	"github.com/raftka/raftka/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.CreateTopics.Int16(), 0, 7, handleCreateTopics) }

func handleCreateTopics(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.CreateTopicsRequest)
	return func(ctx context.Context) kmsg.Response { return b.createTopics(ctx, req) }
}

func (b *Broker) createTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 || timeout > time.Minute {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Replicas are placed on registered brokers; right after start this
	// broker may not be registered yet.
	_ = b.WaitReady(ctx)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		if seen[rt.Topic] > 1 {
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = strPtr("topic named more than once in the request")
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t, err := b.createTopic(ctx, rt, req.ValidateOnly)
		if err != nil {
			st.ErrorCode = controllerErrorCode(err)
			st.ErrorMessage = errorMessage(err)
		} else {
			st.TopicID = t.ID
			st.NumPartitions = int32(len(t.Partitions))
			st.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
			for _, c := range metadata.TopicConfigs {
				rc := kmsg.NewCreateTopicsResponseTopicConfig()
				rc.Name = c.Name
				v, set := t.Configs[c.Name]
				if !set {
					v = b.topicConfigDefault(c)
				}
				rc.Value = &v
				rc.Source = 5 // DEFAULT_CONFIG
				if set {
					rc.Source = 1 // DYNAMIC_TOPIC_CONFIG
				}
				st.Configs = append(st.Configs, rc)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) createTopic(ctx context.Context, rt kmsg.CreateTopicsRequestTopic, validateOnly bool) (*metadata.Topic, error) {
	spec := metadata.TopicSpec{
		Name:              rt.Topic,
		Partitions:        rt.NumPartitions,
		ReplicationFactor: rt.ReplicationFactor,
		Configs:           map[string]string{},
		ValidateOnly:      validateOnly,
	}
	for _, c := range rt.Configs {
		if c.Value == nil {
			return nil, fmt.Errorf("%w: config %q has a null value", metadata.ErrInvalidConfig, c.Name)
		}
		spec.Configs[c.Name] = *c.Value
	}
	if len(spec.Configs) == 0 {
		spec.Configs = nil
	}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return nil, fmt.Errorf("%w: with a replica assignment, partitions and replication factor must be -1", kerr.InvalidRequest)
		}
		brokers := b.meta.View().Brokers
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) {
				return nil, fmt.Errorf("%w: assignments must list partitions 0..n-1 in order", kerr.InvalidReplicaAssignment)
			}
			seen := map[int32]bool{}
			for _, r := range a.Replicas {
				if brokers[r] == nil || seen[r] {
					return nil, fmt.Errorf("%w: partition %d: replica %d is unknown or repeated", kerr.InvalidReplicaAssignment, i, r)
				}
				seen[r] = true
			}
			if len(a.Replicas) != len(rt.ReplicaAssignment[0].Replicas) || len(a.Replicas) == 0 {
				return nil, fmt.Errorf("%w: every partition needs the same, non-zero number of replicas", kerr.InvalidReplicaAssignment)
			}
			spec.Assignment = append(spec.Assignment, a.Replicas)
		}
		spec.Partitions = int32(len(rt.ReplicaAssignment))
		spec.ReplicationFactor = int16(len(rt.ReplicaAssignment[0].Replicas))
	}
	if spec.Partitions == -1 {
		spec.Partitions = b.cfg.DefaultPartitions
	}
	if spec.ReplicationFactor == -1 {
		spec.ReplicationFactor = b.cfg.DefaultReplicationFactor
	}
	t, err := b.meta.CreateTopic(ctx, spec)
	if err != nil || validateOnly {
		return t, err
	}
	b.waitPartitionsLed(ctx, t)
	return t, nil
}
