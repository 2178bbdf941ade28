package metadata

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/raftka/raftka/raftlog"
	"github.com/raftka/raftka/storage"
)

// GroupID is the Raft group id of the metadata log.
const GroupID uint64 = 1

// View is an immutable snapshot of the cluster metadata.
type View struct {
	// Version increases with every applied record.
	Version uint64
	Topics  map[string]*Topic
	Brokers map[int32]*Broker
	// Changed is closed when a newer View is published.
	Changed <-chan struct{}
}

// TopicNames returns the names of all topics, sorted.
func (v *View) TopicNames() []string {
	names := slices.Collect(maps.Keys(v.Topics))
	sort.Strings(names)
	return names
}

// TopicByID returns the topic with id, or nil.
func (v *View) TopicByID(id [16]byte) *Topic {
	for _, t := range v.Topics {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// Store is a broker's replica of the metadata log: the state machine of the
// metadata Raft group, an immutable View of it for readers, and the calls
// that propose changes.
type Store struct {
	eng   storage.Engine
	log   *slog.Logger
	group *raftlog.Group

	// st and version are owned by the scheduler goroutine (Apply, Publish).
	st      *state
	version uint64
	dirty   bool

	view    atomic.Pointer[View]
	changed chan struct{} // owned by Publish
	mu      sync.Mutex    // serializes Publish against Close
}

var _ raftlog.StateMachine = (*Store)(nil)

// Open loads the metadata state from the engine and starts the metadata
// group on s. voters are the broker ids of the controller quorum; they are
// used only when the group is bootstrapped for the first time.
func Open(s *raftlog.Scheduler, voters []uint64, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	m := &Store{eng: s.Engine(), log: log.With("group", "metadata"), st: newState(), changed: make(chan struct{})}
	if err := s.Bootstrap(GroupID, voters, nil); err != nil {
		return nil, fmt.Errorf("metadata: bootstrap: %w", err)
	}
	if err := m.st.load(m.eng, m.key); err != nil {
		return nil, err
	}
	m.publishView()
	// Any broker may propose metadata changes: raft forwards them to the
	// controller. The metadata group is one group: it never quiesces, so a
	// controller failure is noticed by election timeout alone.
	g, err := s.AddGroupWithOptions(GroupID, m, raftlog.GroupOptions{ForwardProposals: true, NoQuiesce: true})
	if err != nil {
		return nil, err
	}
	m.group = g
	return m, nil
}

func (m *Store) key(name string) []byte { return raftlog.PrivateKey(GroupID, name) }

// Group returns the metadata Raft group.
func (m *Store) Group() *raftlog.Group { return m.group }

// View returns the current metadata.
func (m *Store) View() *View { return m.view.Load() }

// Apply implements raftlog.StateMachine.
func (m *Store) Apply(b storage.Batch, index, term uint64, payload []byte) any {
	rec, err := DecodeRecord(payload)
	if err != nil {
		m.log.Error("skipping undecodable metadata record", "index", index, "err", err)
		return applyResult{err: err}
	}
	res, err := m.st.apply(b, m.key, rec)
	m.version = index
	m.dirty = true
	if err != nil {
		return applyResult{err: err}
	}
	m.log.Debug("applied metadata record", "index", index, "record", fmt.Sprintf("%T", rec))
	return applyResult{value: res}
}

type applyResult struct {
	value any
	err   error
}

// Publish implements raftlog.StateMachine.
func (m *Store) Publish() {
	if !m.dirty {
		return
	}
	m.dirty = false
	m.publishView()
}

// publishView builds a View from the applied state and wakes its watchers.
func (m *Store) publishView() {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.changed
	m.changed = make(chan struct{})
	m.view.Store(&View{
		Version: m.version,
		Topics:  maps.Clone(m.st.topics),
		Brokers: maps.Clone(m.st.brokers),
		Changed: m.changed,
	})
	close(old)
}

// LeadershipChanged implements raftlog.StateMachine.
func (m *Store) LeadershipChanged(leader, term uint64) {
	m.log.Info("metadata leadership", "leader", leader, "term", term)
}

// propose proposes rec and waits for its result.
func (m *Store) propose(ctx context.Context, rec any) (any, error) {
	payload, err := EncodeRecord(rec)
	if err != nil {
		return nil, err
	}
	res, err := m.group.Propose(ctx, payload)
	if err != nil {
		return nil, err
	}
	r, ok := res.(applyResult)
	if !ok {
		return nil, fmt.Errorf("metadata: unexpected result %T", res)
	}
	return r.value, r.err
}

// RegisterBroker records this broker and its addresses.
func (m *Store) RegisterBroker(ctx context.Context, b Broker) error {
	_, err := m.propose(ctx, &BrokerRegistered{BrokerID: b.ID, KafkaAddr: b.KafkaAddr, Rack: b.Rack})
	return err
}

// TopicSpec asks for a new topic.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string
	// Assignment, if set, gives each partition's replicas explicitly.
	Assignment [][]int32
	// ValidateOnly checks the request without creating the topic.
	ValidateOnly bool
}

// MaxPartitionsPerRequest bounds the partitions one request may create.
const MaxPartitionsPerRequest = 100_000

// CreateTopic validates spec, places its replicas and records the topic.
func (m *Store) CreateTopic(ctx context.Context, spec TopicSpec) (*Topic, error) {
	if err := ValidateTopicName(spec.Name); err != nil {
		return nil, err
	}
	if spec.Partitions <= 0 || spec.Partitions > MaxPartitionsPerRequest {
		return nil, fmt.Errorf("%w: %d (must be 1..%d)", ErrInvalidPartitions, spec.Partitions, MaxPartitionsPerRequest)
	}
	if err := ValidateTopicConfigs(spec.Configs); err != nil {
		return nil, err
	}
	v := m.View()
	if _, ok := v.Topics[spec.Name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicExists, spec.Name)
	}
	replicas := spec.Assignment
	if replicas == nil {
		var err error
		replicas, err = placeReplicas(v.Brokers, spec.Partitions, spec.ReplicationFactor, 0)
		if err != nil {
			return nil, err
		}
	}
	if spec.ValidateOnly {
		t := &Topic{Name: spec.Name, Configs: spec.Configs}
		for i, r := range replicas {
			t.Partitions = append(t.Partitions, Partition{Index: int32(i), Replicas: r})
		}
		return t, nil
	}
	rec := &TopicCreated{Name: spec.Name, Partitions: replicas, Configs: spec.Configs}
	if _, err := rand.Read(rec.ID[:]); err != nil {
		return nil, err
	}
	res, err := m.propose(ctx, rec)
	if err != nil {
		return nil, err
	}
	return res.(*Topic), nil
}

// DeleteTopic records the deletion of topic name.
func (m *Store) DeleteTopic(ctx context.Context, name string) (*Topic, error) {
	t, ok := m.View().Topics[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	res, err := m.propose(ctx, &TopicDeleted{Name: name, ID: t.ID})
	if err != nil {
		return nil, err
	}
	return res.(*Topic), nil
}

// CreatePartitions grows topic name to total partitions.
func (m *Store) CreatePartitions(ctx context.Context, name string, total int32, validateOnly bool) (*Topic, error) {
	t, ok := m.View().Topics[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	have := int32(len(t.Partitions))
	if total <= have || total-have > MaxPartitionsPerRequest {
		return nil, fmt.Errorf("%w: topic %q has %d partitions; the new count must be larger (asked %d)", ErrInvalidPartitions, name, have, total)
	}
	rf := int16(len(t.Partitions[0].Replicas))
	replicas, err := placeReplicas(m.View().Brokers, total-have, rf, int(have))
	if err != nil {
		return nil, err
	}
	if validateOnly {
		return t, nil
	}
	res, err := m.propose(ctx, &PartitionsCreated{Topic: name, Partitions: replicas})
	if err != nil {
		return nil, err
	}
	return res.(*Topic), nil
}

// AlterTopicConfigs sets (or, for nil values, removes) topic configs.
func (m *Store) AlterTopicConfigs(ctx context.Context, name string, configs map[string]*string, validateOnly bool) error {
	if _, ok := m.View().Topics[name]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	set := make(map[string]string)
	for k, v := range configs {
		if v != nil {
			set[k] = *v
		}
	}
	if err := ValidateTopicConfigs(set); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	_, err := m.propose(ctx, &ConfigChanged{Topic: name, Configs: configs})
	return err
}

// AllocateProducerIDs reserves n producer ids for broker and returns the
// first.
func (m *Store) AllocateProducerIDs(ctx context.Context, broker int32, n int64) (int64, error) {
	res, err := m.propose(ctx, &ProducerIDsBlock{BrokerID: broker, Size: n})
	if err != nil {
		return 0, err
	}
	return res.(int64), nil
}

// placeReplicas spreads partitions' replicas over the unfenced brokers,
// round-robin over a broker order that alternates racks (as Kafka does), so
// that a partition's replicas land on as many racks as possible; each
// partition starts one broker further, so leaders (the first replica, which
// the broker prefers as leader) spread too.
func placeReplicas(brokers map[int32]*Broker, partitions int32, rf int16, offset int) ([][]int32, error) {
	ids := rackAlternating(brokers)
	if rf == -1 {
		rf = int16(min(len(ids), 3))
	}
	if rf <= 0 || int(rf) > len(ids) {
		return nil, fmt.Errorf("%w: %d, with %d available brokers", ErrInvalidReplicationFactor, rf, len(ids))
	}
	out := make([][]int32, partitions)
	for p := range out {
		r := make([]int32, rf)
		for i := range r {
			r[i] = ids[(p+offset+i)%len(ids)]
		}
		out[p] = r
	}
	return out, nil
}

// rackAlternating orders the unfenced brokers so that consecutive brokers
// are on different racks where possible: racks sorted by name, brokers by
// id within a rack, then taken one per rack in turn.
func rackAlternating(brokers map[int32]*Broker) []int32 {
	byRack := map[string][]int32{}
	for _, id := range slices.Sorted(maps.Keys(brokers)) {
		if b := brokers[id]; !b.Fenced {
			byRack[b.Rack] = append(byRack[b.Rack], id)
		}
	}
	racks := slices.Sorted(maps.Keys(byRack))
	var out []int32
	for i := 0; ; i++ {
		added := false
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// ErrNoReassignment is returned when cancelling a reassignment that is not
// in progress.
var ErrNoReassignment = errors.New("metadata: no reassignment in progress")

// ErrInvalidReplicas is returned for a reassignment target that is empty,
// repeats a broker or names an unknown or fenced broker.
var ErrInvalidReplicas = errors.New("metadata: invalid replica assignment")

// ReassignPartition starts moving a partition's replicas to target; a nil
// target cancels a reassignment in progress by moving back to the current
// replicas.
func (m *Store) ReassignPartition(ctx context.Context, topic string, partition int32, target []int32) error {
	v := m.View()
	t, ok := v.Topics[topic]
	if !ok || partition < 0 || int(partition) >= len(t.Partitions) {
		return fmt.Errorf("%w: %s/%d", ErrUnknownTopic, topic, partition)
	}
	p := t.Partitions[partition]
	if target == nil {
		if p.Target == nil {
			return fmt.Errorf("%w: %s/%d", ErrNoReassignment, topic, partition)
		}
		target = p.Replicas
	}
	seen := map[int32]bool{}
	for _, r := range target {
		if br := v.Brokers[r]; br == nil || br.Fenced || seen[r] {
			return fmt.Errorf("%w: broker %d is unknown, fenced or repeated", ErrInvalidReplicas, r)
		}
		seen[r] = true
	}
	if len(target) == 0 {
		return fmt.Errorf("%w: no replicas", ErrInvalidReplicas)
	}
	_, err := m.propose(ctx, &PartitionReassign{Topic: topic, Partition: partition, Target: target})
	return err
}

// CompleteReassignment records that a partition's group now has exactly
// replicas as voters.
func (m *Store) CompleteReassignment(ctx context.Context, topic string, partition int32, replicas []int32) error {
	_, err := m.propose(ctx, &PartitionMoved{Topic: topic, Partition: partition, Replicas: replicas})
	return err
}

// FenceBroker records that broker id stopped answering.
func (m *Store) FenceBroker(ctx context.Context, id int32) error {
	_, err := m.propose(ctx, &BrokerFenced{BrokerID: id})
	return err
}

// UnfenceBroker records that broker id is back.
func (m *Store) UnfenceBroker(ctx context.Context, id int32) error {
	_, err := m.propose(ctx, &BrokerUnfenced{BrokerID: id})
	return err
}

// IsNotController reports whether err means this broker cannot make the
// change because it does not lead the metadata group.
func IsNotController(err error) bool { return errors.Is(err, raftlog.ErrNotLeader) }
