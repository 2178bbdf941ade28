package broker

import (
	"fmt"

	"github.com/raftka/raftka/coordinator"
	"github.com/raftka/raftka/metadata"
	"github.com/raftka/raftka/raftlog"
	"github.com/twmb/franz-go/pkg/kerr"
)

// partitionFor resolves a topic partition to its running leader replica.
// It returns the replica, or the Kafka error code that explains why there
// is none: UNKNOWN_TOPIC_OR_PARTITION, or NOT_LEADER_OR_FOLLOWER when the
// partition exists but this broker does not lead it.
func (b *Broker) partitionFor(t *metadata.Topic, partition int32) (*raftlog.Partition, int16) {
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	p := b.partition(t.Partitions[partition].GroupID)
	if p == nil {
		return nil, kerr.NotLeaderForPartition.Code
	}
	return p, 0
}

// checkLeaderEpoch compares a client's current leader epoch with the
// replica's (-1 means the client does not know one).
func checkLeaderEpoch(client, current int32) int16 {
	switch {
	case client < 0 || client == current:
		return 0
	case client < current:
		return kerr.FencedLeaderEpoch.Code
	default:
		return kerr.UnknownLeaderEpoch.Code
	}
}

// maxMessageBytes is the largest batch topic t accepts: its
// max.message.bytes, or the broker's default.
func (b *Broker) maxMessageBytes(t *metadata.Topic) int {
	if _, set := t.Configs["max.message.bytes"]; set {
		return t.MaxMessageBytes()
	}
	return b.cfg.MaxMessageBytes
}

// isInternalTopic reports whether topic belongs to the brokers: Metadata
// marks it internal, and clients may neither produce to it, delete it nor
// add partitions to it (the group of a partition is a hash modulo the
// partition count, so adding partitions would move groups away from their
// offsets).
func isInternalTopic(topic string) bool { return topic == coordinator.OffsetsTopic }

// errInternalTopic is the answer to a client that tries to change an
// internal topic.
func errInternalTopic(topic, what string) error {
	return fmt.Errorf("%w: %s is internal to the brokers and clients may not %s it", kerr.InvalidTopicException, topic, what)
}
