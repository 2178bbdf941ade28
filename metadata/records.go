// Package metadata is the cluster's source of truth: a Raft group (the
// controller quorum, like Kafka's KRaft) whose log holds versioned metadata
// records — brokers registered, topics created and deleted, partitions
// assigned, configs changed, producer ids allocated — and the state machine
// that applies them. Every broker applies the same records in the same order
// and so keeps the same metadata cache; the group's leader is the active
// controller.
package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
)

// RecordType identifies a metadata record. Values are only ever appended.
type RecordType byte

// Record types.
const (
	RecordBrokerRegistered  RecordType = 1
	RecordTopicCreated      RecordType = 2
	RecordTopicDeleted      RecordType = 3
	RecordPartitionsCreated RecordType = 4
	RecordConfigChanged     RecordType = 5
	RecordProducerIDsBlock  RecordType = 6
	RecordBrokerFenced      RecordType = 7
	RecordBrokerUnfenced    RecordType = 8
	RecordPartitionReassign RecordType = 9
	RecordPartitionMoved    RecordType = 10
)

func (t RecordType) String() string {
	switch t {
	case RecordBrokerRegistered:
		return "BrokerRegistered"
	case RecordTopicCreated:
		return "TopicCreated"
	case RecordTopicDeleted:
		return "TopicDeleted"
	case RecordPartitionsCreated:
		return "PartitionsCreated"
	case RecordConfigChanged:
		return "ConfigChanged"
	case RecordProducerIDsBlock:
		return "ProducerIDsBlock"
	case RecordBrokerFenced:
		return "BrokerFenced"
	case RecordBrokerUnfenced:
		return "BrokerUnfenced"
	case RecordPartitionReassign:
		return "PartitionReassign"
	case RecordPartitionMoved:
		return "PartitionMoved"
	}
	return fmt.Sprintf("RecordType(%d)", byte(t))
}

// recordFormatV1 is the encoding version of records: [1][type][JSON body].
// JSON keeps records readable in a debugger and tolerant of added fields;
// the metadata log is small next to partition logs.
const recordFormatV1 = 1

// BrokerRegistered records a broker joining the cluster, or re-registering
// with new addresses.
type BrokerRegistered struct {
	BrokerID  int32  `json:"broker_id"`
	KafkaAddr string `json:"kafka_addr"`
	Rack      string `json:"rack,omitempty"`
}

// TopicCreated records a new topic. The controller chose its id and the
// replicas of each partition; group ids are assigned when it is applied.
type TopicCreated struct {
	Name       string            `json:"name"`
	ID         [16]byte          `json:"id"`
	Partitions [][]int32         `json:"partitions"` // replicas per partition
	Configs    map[string]string `json:"configs,omitempty"`
}

// TopicDeleted records a topic's deletion.
type TopicDeleted struct {
	Name string   `json:"name"`
	ID   [16]byte `json:"id"`
}

// PartitionsCreated records partitions added to a topic.
type PartitionsCreated struct {
	Topic      string    `json:"topic"`
	Partitions [][]int32 `json:"partitions"` // replicas of each new partition
}

// ConfigChanged records a topic's config being set (a nil value deletes a key).
type ConfigChanged struct {
	Topic   string             `json:"topic"`
	Configs map[string]*string `json:"configs"`
}

// ProducerIDsBlock records the allocation of producer ids [Start, Start+Size).
type ProducerIDsBlock struct {
	BrokerID int32 `json:"broker_id"`
	Start    int64 `json:"start"`
	Size     int64 `json:"size"`
}

// BrokerFenced records that the controller stopped counting on a broker: it
// stopped answering gossip probes. Fenced brokers get no new replicas and
// are not shown to clients.
type BrokerFenced struct {
	BrokerID int32 `json:"broker_id"`
}

// BrokerUnfenced records that a fenced broker is back.
type BrokerUnfenced struct {
	BrokerID int32 `json:"broker_id"`
}

// PartitionReassign records that a partition's replicas are to move to
// Target. The partition's leader carries the move out by Raft
// configuration changes (new replicas join as learners, are promoted once
// caught up, then old replicas are removed) and records PartitionMoved.
type PartitionReassign struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Target    []int32 `json:"target"`
}

// PartitionMoved records that a reassignment finished: the partition's
// Raft group has exactly Replicas as voters.
type PartitionMoved struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
}

// EncodeRecord returns the stable encoding of a record.
func EncodeRecord(r any) ([]byte, error) {
	var t RecordType
	switch r.(type) {
	case *BrokerRegistered:
		t = RecordBrokerRegistered
	case *TopicCreated:
		t = RecordTopicCreated
	case *TopicDeleted:
		t = RecordTopicDeleted
	case *PartitionsCreated:
		t = RecordPartitionsCreated
	case *ConfigChanged:
		t = RecordConfigChanged
	case *ProducerIDsBlock:
		t = RecordProducerIDsBlock
	case *BrokerFenced:
		t = RecordBrokerFenced
	case *BrokerUnfenced:
		t = RecordBrokerUnfenced
	case *PartitionReassign:
		t = RecordPartitionReassign
	case *PartitionMoved:
		t = RecordPartitionMoved
	default:
		return nil, fmt.Errorf("metadata: cannot encode %T", r)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append([]byte{recordFormatV1, byte(t)}, body...), nil
}

// ErrUnknownRecord is returned for records of a newer format or type.
var ErrUnknownRecord = errors.New("metadata: unknown record")

// DecodeRecord decodes a record encoded by EncodeRecord.
func DecodeRecord(b []byte) (any, error) {
	if len(b) < 2 || b[0] != recordFormatV1 {
		return nil, fmt.Errorf("%w: format %v", ErrUnknownRecord, b[:min(len(b), 1)])
	}
	var r any
	switch RecordType(b[1]) {
	case RecordBrokerRegistered:
		r = &BrokerRegistered{}
	case RecordTopicCreated:
		r = &TopicCreated{}
	case RecordTopicDeleted:
		r = &TopicDeleted{}
	case RecordPartitionsCreated:
		r = &PartitionsCreated{}
	case RecordConfigChanged:
		r = &ConfigChanged{}
	case RecordProducerIDsBlock:
		r = &ProducerIDsBlock{}
	case RecordBrokerFenced:
		r = &BrokerFenced{}
	case RecordBrokerUnfenced:
		r = &BrokerUnfenced{}
	case RecordPartitionReassign:
		r = &PartitionReassign{}
	case RecordPartitionMoved:
		r = &PartitionMoved{}
	default:
		return nil, fmt.Errorf("%w: type %d", ErrUnknownRecord, b[1])
	}
	if err := json.Unmarshal(b[2:], r); err != nil {
		return nil, fmt.Errorf("metadata: decode %s: %w", RecordType(b[1]), err)
	}
	return r, nil
}
