package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/raftka/raftka/raftlog"
	"github.com/raftka/raftka/storage"
)

// Storage engine names for Config.Storage.
const (
	StoragePebble = "pebble"
	StorageMemory = "memory"
)

// Config configures a broker. Start from DefaultConfig (production),
// or TestConfig (in-memory, ephemeral ports); set fields; New validates.
type Config struct {
	// NodeID is the broker id, unique in the cluster (Kafka's node.id).
	NodeID int32 `yaml:"node-id"`
	// DataDir holds the Pebble engine.
	DataDir string `yaml:"data-dir"`
	// KafkaAddr is where the Kafka listener binds. Port 0 picks a free one.
	KafkaAddr string `yaml:"kafka-addr"`
	// AdvertiseKafkaAddr is the address clients are told to connect to;
	// empty means the bound Kafka address.
	AdvertiseKafkaAddr string `yaml:"advertise-kafka-addr"`
	// AdminAddr serves /healthz and Prometheus /metrics; empty disables it.
	AdminAddr string `yaml:"admin-addr"`
	// Storage is the engine: "pebble" (durable) or "memory" (lost on exit).
	Storage string `yaml:"storage"`
	// CacheLogPages writes the record batches the engine flushes through
	// the OS page cache and keeps them there. Off by default: they are
	// written with direct I/O and evicted once synced (see
	// storage.PebbleOptions.CacheBlobPages), which costs consumers catching
	// up on old data a disk read and saves the CPU of a page cache that
	// grows by every byte written.
	CacheLogPages bool `yaml:"cache-log-pages"`
	// Rack is the broker's rack, for rack-aware placement.
	Rack string `yaml:"rack"`
	// ClusterID is reported to clients in Metadata and DescribeCluster.
	ClusterID string `yaml:"cluster-id"`
	// MetadataVoters are the broker ids of the controller quorum.
	MetadataVoters []uint64 `yaml:"metadata-voters"`
	// RaftAddr is where the Raft transport listens for peers.
	RaftAddr string `yaml:"raft-addr"`
	// AdvertiseRaftAddr is the Raft address peers are told; empty means
	// the bound address.
	AdvertiseRaftAddr string `yaml:"advertise-raft-addr"`
	// GossipAddr is where memberlist gossip binds.
	GossipAddr string `yaml:"gossip-addr"`
	// Join lists gossip addresses of brokers to join.
	Join []string `yaml:"join"`
	// GossipPreset is "lan" or "local" (fast failure detection, for
	// brokers on one machine).
	GossipPreset string `yaml:"gossip-preset"`
	// FenceAfter is how long a broker may be unreachable before the
	// controller fences it.
	FenceAfter time.Duration `yaml:"fence-after"`
	// LeaderBalanceInterval is how often a broker hands leadership of
	// partitions back to their preferred (first) replica; 0 disables it.
	LeaderBalanceInterval time.Duration `yaml:"leader-balance-interval"`

	// MaxFrameBytes bounds one request frame (Kafka's
	// socket.request.max.bytes); a larger frame closes the connection.
	MaxFrameBytes int32 `yaml:"max-frame-bytes"`
	// MaxInflightRequests bounds the requests one connection may have in
	// flight; with MaxFrameBytes it bounds a connection's memory.
	MaxInflightRequests int `yaml:"max-inflight-requests"`
	// MaxMessageBytes is the broker default for a topic's
	// max.message.bytes (Kafka's message.max.bytes).
	MaxMessageBytes int `yaml:"max-message-bytes"`
	// AutoCreateTopics creates unknown topics named in Metadata requests
	// (Kafka's auto.create.topics.enable). Off by default.
	AutoCreateTopics bool `yaml:"auto-create-topics"`
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that ask for -1 (Kafka's num.partitions).
	DefaultPartitions int32 `yaml:"default-partitions"`
	// DefaultReplicationFactor is used when a request asks for -1.
	DefaultReplicationFactor int16 `yaml:"default-replication-factor"`
	// MaxFetchWait caps a fetch request's long-poll wait.
	MaxFetchWait time.Duration `yaml:"max-fetch-wait"`
	// ShutdownTimeout bounds how long Close waits for in-flight requests.
	ShutdownTimeout time.Duration `yaml:"shutdown-timeout"`

	// UnsafeAckBeforeCommit answers produce requests as soon as their
	// batches are proposed, before Raft commits them. It exists only to
	// prove that `raftka chaos` catches lost acknowledged writes; never
	// use it otherwise.
	UnsafeAckBeforeCommit bool `yaml:"unsafe-ack-before-commit"`

	// Raft tunes the partition and metadata Raft groups.
	Raft raftlog.Config `yaml:"-"`
	// Engine, if set, is used instead of opening Storage; the broker does not
	// close it. Tests use it to share or crash an engine.
	Engine storage.Engine `yaml:"-"`
	// RaftNetwork, if set, carries Raft messages in memory instead of TCP
	// (tests that cut links).
	RaftNetwork *raftlog.MemNetwork `yaml:"-"`
	// Logger receives the broker's logs; nil means slog.Default().
	Logger *slog.Logger `yaml:"-"`

	// OffsetsTopicPartitions is the partition count of __consumer_offsets
	// when a broker creates it (Kafka's offsets.topic.num.partitions).
	OffsetsTopicPartitions int32 `yaml:"offsets-topic-partitions"`
	// OffsetsRetention is how long committed offsets of an empty group
	// are kept (Kafka's offsets.retention.minutes).
	OffsetsRetention time.Duration `yaml:"offsets-retention"`
	// GroupInitialRebalanceDelay holds back the first rebalance of an
	// empty group so members starting together join one generation
	// (Kafka's group.initial.rebalance.delay.ms); 0 disables it.
	GroupInitialRebalanceDelay time.Duration `yaml:"group-initial-rebalance-delay"`
	// GroupMinSessionTimeout and GroupMaxSessionTimeout bound the session
	// timeout a group member may ask for (Kafka's
	// group.min.session.timeout.ms and group.max.session.timeout.ms).
	GroupMinSessionTimeout time.Duration `yaml:"group-min-session-timeout"`
	GroupMaxSessionTimeout time.Duration `yaml:"group-max-session-timeout"`
}

// DefaultConfig returns the defaults of `raftka start`.
func DefaultConfig() Config {
	return Config{
		NodeID:    1,
		DataDir:   "./raftka-data",
		KafkaAddr: "127.0.0.1:9092",
		AdminAddr: "127.0.0.1:9644",
		Storage:   StoragePebble,
		ClusterID: "raftka",
		// Kafka's socket.request.max.bytes.
		MaxFrameBytes: 100 << 20,
		// Clients pipeline at most 5 produce requests (idempotence) and a
		// handful of others; 32 leaves room without unbounded memory.
		MaxInflightRequests:      32,
		MaxMessageBytes:          1048588,
		DefaultPartitions:        1,
		DefaultReplicationFactor: 1,
		MaxFetchWait:             30 * time.Second,
		ShutdownTimeout:          10 * time.Second,
		RaftAddr:                 "127.0.0.1:9093",
		GossipAddr:               "127.0.0.1:9094",
		GossipPreset:             "lan",
		// Longer than a few failed gossip probes, so a GC pause does not
		// fence a broker.
		FenceAfter:            6 * time.Second,
		LeaderBalanceInterval: 30 * time.Second,
		Raft:                  raftlog.DefaultConfig(1),
		// Kafka's defaults: 50 partitions, 7 days.
		OffsetsTopicPartitions: 50,
		OffsetsRetention:       7 * 24 * time.Hour,
		// Kafka's defaults: 3 s, 6 s, 30 min.
		GroupInitialRebalanceDelay: 3 * time.Second,
		GroupMinSessionTimeout:     6 * time.Second,
		GroupMaxSessionTimeout:     30 * time.Minute,
	}
}

// TestConfig returns a configuration for tests: in-memory storage,
// ephemeral loopback ports, no admin server, fast Raft ticks.
func TestConfig() Config {
	c := DefaultConfig()
	c.DataDir = ""
	c.KafkaAddr = "127.0.0.1:0"
	c.AdminAddr = ""
	c.Storage = StorageMemory
	c.RaftAddr = "127.0.0.1:0"
	c.GossipAddr = "127.0.0.1:0"
	c.GossipPreset = "local"
	c.FenceAfter = 2 * time.Second
	c.LeaderBalanceInterval = time.Second
	c.Raft.TickInterval = 10 * time.Millisecond
	// Fewer Raft groups for __consumer_offsets: tests start many brokers.
	c.OffsetsTopicPartitions = 4
	return c
}

// applyDerived fills fields derived from others.
func (c *Config) applyDerived() {
	c.Raft.NodeID = uint64(c.NodeID)
	if len(c.MetadataVoters) == 0 {
		c.MetadataVoters = []uint64{uint64(c.NodeID)}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Raft.Logger = c.Logger
}

// Validate returns every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeID <= 0 {
		errs = append(errs, fmt.Errorf("node-id must be > 0, got %d", c.NodeID))
	}
	switch c.Storage {
	case StoragePebble:
		if c.DataDir == "" && c.Engine == nil {
			errs = append(errs, errors.New("data-dir is required with pebble storage"))
		}
	case StorageMemory:
	default:
		errs = append(errs, fmt.Errorf("storage must be %q or %q, got %q", StoragePebble, StorageMemory, c.Storage))
	}
	if _, _, err := net.SplitHostPort(c.KafkaAddr); err != nil {
		errs = append(errs, fmt.Errorf("kafka-addr %q: %v", c.KafkaAddr, err))
	}
	if c.AdvertiseKafkaAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertiseKafkaAddr); err != nil {
			errs = append(errs, fmt.Errorf("advertise-kafka-addr %q: %v", c.AdvertiseKafkaAddr, err))
		}
	}
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			errs = append(errs, fmt.Errorf("admin-addr %q: %v", c.AdminAddr, err))
		}
	}
	if c.MaxFrameBytes < 1024 {
		errs = append(errs, fmt.Errorf("max-frame-bytes must be >= 1024, got %d", c.MaxFrameBytes))
	}
	if c.MaxInflightRequests < 1 {
		errs = append(errs, fmt.Errorf("max-inflight-requests must be >= 1, got %d", c.MaxInflightRequests))
	}
	if c.MaxMessageBytes < 1 {
		errs = append(errs, fmt.Errorf("max-message-bytes must be >= 1, got %d", c.MaxMessageBytes))
	}
	if c.DefaultPartitions < 1 {
		errs = append(errs, fmt.Errorf("default-partitions must be >= 1, got %d", c.DefaultPartitions))
	}
	if c.DefaultReplicationFactor < 1 {
		errs = append(errs, fmt.Errorf("default-replication-factor must be >= 1, got %d", c.DefaultReplicationFactor))
	}
	seen := map[uint64]bool{}
	for _, v := range c.MetadataVoters {
		if v == 0 || seen[v] {
			errs = append(errs, fmt.Errorf("metadata-voters %v: ids must be > 0 and distinct", c.MetadataVoters))
			break
		}
		seen[v] = true
	}
	if len(c.MetadataVoters) > 7 {
		errs = append(errs, fmt.Errorf("metadata-voters: %d voters; use 1, 3 or 5 (every other broker follows as a learner)", len(c.MetadataVoters)))
	}
	for name, addr := range map[string]string{"raft-addr": c.RaftAddr, "gossip-addr": c.GossipAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %v", name, addr, err))
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			errs = append(errs, fmt.Errorf("join address %q: %v", j, err))
		}
	}
	if c.GossipPreset != "lan" && c.GossipPreset != "local" {
		errs = append(errs, fmt.Errorf("gossip-preset must be lan or local, got %q", c.GossipPreset))
	}
	if c.FenceAfter <= 0 {
		errs = append(errs, errors.New("fence-after must be > 0"))
	}
	if c.OffsetsTopicPartitions < 1 {
		errs = append(errs, fmt.Errorf("offsets-topic-partitions must be >= 1, got %d", c.OffsetsTopicPartitions))
	}
	if c.OffsetsRetention <= 0 {
		errs = append(errs, errors.New("offsets-retention must be > 0"))
	}
	if c.GroupInitialRebalanceDelay < 0 {
		errs = append(errs, errors.New("group-initial-rebalance-delay must be >= 0"))
	}
	if c.GroupMinSessionTimeout <= 0 || c.GroupMaxSessionTimeout < c.GroupMinSessionTimeout {
		errs = append(errs, fmt.Errorf("need 0 < group-min-session-timeout (%v) <= group-max-session-timeout (%v)", c.GroupMinSessionTimeout, c.GroupMaxSessionTimeout))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("shutdown-timeout must be > 0"))
	}
	if err := c.Raft.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("raft: %w", err))
	}
	return errors.Join(errs...)
}
