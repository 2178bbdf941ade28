package broker

// AlterPartitionReassignments (key 45), version 0.
//
// Records the target replicas of each partition in the metadata log; the
// partition's leader then moves the Raft group there one configuration
// change at a time (learner first, then voter, then removal of the old
// replicas). Null replicas cancel a reassignment in progress by moving back
// to the replicas it started from.

import (
	"context"
	"errors"
	"time"

	"github.com/raftka/raftka/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(kmsg.AlterPartitionAssignments.Int16(), 0, 0, handleAlterPartitionReassignments)
}

func handleAlterPartitionReassignments(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
		timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
		if timeout <= 0 || timeout > time.Minute {
			timeout = 30 * time.Second
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		for _, rt := range req.Topics {
			st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				sp.Partition = rp.Partition
				err := b.meta.ReassignPartition(ctx, rt.Topic, rp.Partition, rp.Replicas)
				switch {
				case err == nil:
				case errors.Is(err, metadata.ErrNoReassignment):
					sp.ErrorCode = kerr.NoReassignmentInProgress.Code
				case errors.Is(err, metadata.ErrInvalidReplicas):
					sp.ErrorCode = kerr.InvalidReplicaAssignment.Code
				default:
					sp.ErrorCode = controllerErrorCode(err)
				}
				sp.ErrorMessage = errorMessage(err)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
}
