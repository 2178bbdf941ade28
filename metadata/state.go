package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/raftka/raftka/storage"
)

// Errors a metadata change can be refused with. The broker maps them to
// Kafka error codes.
var (
	ErrTopicExists              = errors.New("metadata: topic already exists")
	ErrUnknownTopic             = errors.New("metadata: unknown topic")
	ErrInvalidTopic             = errors.New("metadata: invalid topic name")
	ErrInvalidPartitions        = errors.New("metadata: invalid partition count")
	ErrInvalidReplicationFactor = errors.New("metadata: invalid replication factor")
	ErrInvalidConfig            = errors.New("metadata: invalid config")
)

// Topic is a topic as the metadata log describes it. Values handed out by
// the Store are immutable: never modify them.
type Topic struct {
	Name       string            `json:"name"`
	ID         [16]byte          `json:"id"`
	Partitions []Partition       `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// Partition is one partition of a topic and the Raft group that holds it.
type Partition struct {
	Index    int32   `json:"index"`
	GroupID  uint64  `json:"group_id"`
	Replicas []int32 `json:"replicas"`
	// InitialReplicas are the voters the group was created with. A replica
	// added later starts from this configuration and an empty log, and
	// replays the configuration changes from the leader.
	InitialReplicas []int32 `json:"initial_replicas,omitempty"`
	// Target, while a reassignment is in progress, is where the replicas
	// are moving to.
	Target []int32 `json:"target,omitempty"`
}

// Bootstrap returns the voters a new replica of p starts with.
func (p Partition) Bootstrap() []int32 {
	if len(p.InitialReplicas) > 0 {
		return p.InitialReplicas
	}
	return p.Replicas
}

// AllReplicas returns the replicas and, during a reassignment, the target
// replicas not among them.
func (p Partition) AllReplicas() []int32 {
	out := slices.Clone(p.Replicas)
	for _, r := range p.Target {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// Broker is a registered broker.
type Broker struct {
	ID        int32  `json:"id"`
	KafkaAddr string `json:"kafka_addr"`
	Rack      string `json:"rack,omitempty"`
	// Fenced brokers stopped answering; they get no new replicas.
	Fenced bool `json:"fenced,omitempty"`
}

// firstPartitionGroup is the first Raft group id given to a partition; ids
// below it are reserved for internal groups (1 is the metadata group).
const firstPartitionGroup = 1024

// counters are the allocation counters of the metadata state.
type counters struct {
	NextGroupID    uint64 `json:"next_group_id"`
	NextProducerID int64  `json:"next_producer_id"`
}

// state is the metadata state machine's data. It is owned by the scheduler
// goroutine that applies records; readers see immutable Views.
type state struct {
	topics   map[string]*Topic
	brokers  map[int32]*Broker
	counters counters
}

func newState() *state {
	return &state{
		topics:   make(map[string]*Topic),
		brokers:  make(map[int32]*Broker),
		counters: counters{NextGroupID: firstPartitionGroup},
	}
}

// Keys of the persisted state, in the metadata group's private key space.
const (
	keyTopicPrefix  = "topic/"
	keyBrokerPrefix = "broker/"
	keyCounters     = "counters"
)

// apply applies one decoded record, writing what changed to b under keys
// made by key. It returns the record's result for the proposer.
func (s *state) apply(b storage.Batch, key func(string) []byte, rec any) (any, error) {
	switch r := rec.(type) {
	case *BrokerRegistered:
		br := &Broker{ID: r.BrokerID, KafkaAddr: r.KafkaAddr, Rack: r.Rack}
		s.brokers[r.BrokerID] = br
		return br, putJSON(b, key(keyBrokerPrefix+strconv.Itoa(int(r.BrokerID))), br)

	case *BrokerFenced, *BrokerUnfenced:
		id, fenced := int32(0), false
		if f, ok := r.(*BrokerFenced); ok {
			id, fenced = f.BrokerID, true
		} else {
			id = r.(*BrokerUnfenced).BrokerID
		}
		old, ok := s.brokers[id]
		if !ok {
			return nil, fmt.Errorf("metadata: broker %d is not registered", id)
		}
		br := *old
		br.Fenced = fenced
		s.brokers[id] = &br
		return &br, putJSON(b, key(keyBrokerPrefix+strconv.Itoa(int(id))), &br)

	case *TopicCreated:
		if _, ok := s.topics[r.Name]; ok {
			return nil, fmt.Errorf("%w: %q", ErrTopicExists, r.Name)
		}
		t := &Topic{Name: r.Name, ID: r.ID, Configs: r.Configs}
		for i, replicas := range r.Partitions {
			t.Partitions = append(t.Partitions, Partition{Index: int32(i), GroupID: s.counters.NextGroupID, Replicas: replicas, InitialReplicas: replicas})
			s.counters.NextGroupID++
		}
		s.topics[r.Name] = t
		if err := putJSON(b, key(keyTopicPrefix+r.Name), t); err != nil {
			return nil, err
		}
		return t, putJSON(b, key(keyCounters), s.counters)

	case *TopicDeleted:
		t, ok := s.topics[r.Name]
		if !ok || t.ID != r.ID {
			return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, r.Name)
		}
		delete(s.topics, r.Name)
		return t, b.Delete(key(keyTopicPrefix + r.Name))

	case *PartitionsCreated:
		old, ok := s.topics[r.Topic]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, r.Topic)
		}
		t := *old
		t.Partitions = slices.Clone(old.Partitions)
		for _, replicas := range r.Partitions {
			t.Partitions = append(t.Partitions, Partition{Index: int32(len(t.Partitions)), GroupID: s.counters.NextGroupID, Replicas: replicas, InitialReplicas: replicas})
			s.counters.NextGroupID++
		}
		s.topics[r.Topic] = &t
		if err := putJSON(b, key(keyTopicPrefix+r.Topic), &t); err != nil {
			return nil, err
		}
		return &t, putJSON(b, key(keyCounters), s.counters)

	case *ConfigChanged:
		old, ok := s.topics[r.Topic]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, r.Topic)
		}
		t := *old
		t.Configs = maps.Clone(old.Configs)
		if t.Configs == nil {
			t.Configs = make(map[string]string)
		}
		for k, v := range r.Configs {
			if v == nil {
				delete(t.Configs, k)
			} else {
				t.Configs[k] = *v
			}
		}
		s.topics[r.Topic] = &t
		return &t, putJSON(b, key(keyTopicPrefix+r.Topic), &t)

	case *PartitionReassign, *PartitionMoved:
		var (
			topic string
			index int32
		)
		if ra, ok := r.(*PartitionReassign); ok {
			topic, index = ra.Topic, ra.Partition
		} else {
			pm := r.(*PartitionMoved)
			topic, index = pm.Topic, pm.Partition
		}
		old, ok := s.topics[topic]
		if !ok || index < 0 || int(index) >= len(old.Partitions) {
			return nil, fmt.Errorf("%w: %s/%d", ErrUnknownTopic, topic, index)
		}
		t := *old
		t.Partitions = slices.Clone(old.Partitions)
		p := &t.Partitions[index]
		switch r := r.(type) {
		case *PartitionReassign:
			p.Target = slices.Clone(r.Target)
		case *PartitionMoved:
			if !slices.Equal(p.Target, r.Replicas) {
				return nil, fmt.Errorf("metadata: %s/%d: stale reassignment completion", topic, index)
			}
			p.Replicas, p.Target = slices.Clone(r.Replicas), nil
		}
		s.topics[topic] = &t
		return &t, putJSON(b, key(keyTopicPrefix+topic), &t)

	case *ProducerIDsBlock:
		if r.Size <= 0 {
			return nil, fmt.Errorf("metadata: producer id block size %d", r.Size)
		}
		start := s.counters.NextProducerID
		s.counters.NextProducerID += r.Size
		return start, putJSON(b, key(keyCounters), s.counters)
	}
	return nil, fmt.Errorf("%w: %T", ErrUnknownRecord, rec)
}

func putJSON(b storage.Batch, k []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Set(k, buf)
}

// load reads the persisted state from the engine.
func (s *state) load(eng storage.Engine, key func(string) []byte) error {
	if v, err := eng.Get(key(keyCounters)); err == nil {
		if err := json.Unmarshal(v, &s.counters); err != nil {
			return fmt.Errorf("metadata: counters: %w", err)
		}
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err := scanJSON(eng, key(keyTopicPrefix), func(v []byte) error {
		t := &Topic{}
		if err := json.Unmarshal(v, t); err != nil {
			return err
		}
		s.topics[t.Name] = t
		return nil
	}); err != nil {
		return fmt.Errorf("metadata: topics: %w", err)
	}
	if err := scanJSON(eng, key(keyBrokerPrefix), func(v []byte) error {
		br := &Broker{}
		if err := json.Unmarshal(v, br); err != nil {
			return err
		}
		s.brokers[br.ID] = br
		return nil
	}); err != nil {
		return fmt.Errorf("metadata: brokers: %w", err)
	}
	return nil
}

func scanJSON(eng storage.Engine, prefix []byte, fn func([]byte) error) error {
	end := append(slices.Clone(prefix), 0xff)
	it, err := eng.NewIter(prefix, end)
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}
