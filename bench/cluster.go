package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raftka/raftka/broker"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Cluster is a set of brokers the load generator can run against.
type Cluster interface {
	// Seeds are the Kafka addresses to bootstrap from.
	Seeds() []string
	// Describe says what the cluster is, for reports.
	Describe() string
	// Close stops what the benchmark started; it is a no-op for external
	// brokers.
	Close() error
}

// External is a cluster the benchmark did not start: any Kafka endpoint.
type External struct {
	Addrs []string
}

var _ Cluster = External{}

// Seeds returns the addresses.
func (e External) Seeds() []string { return e.Addrs }

// Describe names the addresses.
func (e External) Describe() string { return fmt.Sprintf("brokers %v", e.Addrs) }

// Close does nothing: the brokers are not ours.
func (External) Close() error { return nil }

// MaxInProcessBrokers is the largest in-process cluster: every broker is a
// metadata voter, and a controller quorum has at most 5 voters.
const MaxInProcessBrokers = 5

// InProcessConfig configures brokers started in this process.
type InProcessConfig struct {
	// Brokers is the number of brokers, 1 to MaxInProcessBrokers.
	Brokers int
	// Storage is broker.StoragePebble or broker.StorageMemory.
	Storage string
	// DataDir is where a temporary directory for Pebble is made; empty
	// means the system's temporary directory. It should be on the disk
	// being measured.
	DataDir string
	// Logger receives the brokers' logs; nil discards them.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for every broker to register.
	ReadyTimeout time.Duration
}

// InProcess is a cluster of brokers running in this process, on loopback
// ports and a temporary directory that Close removes.
type InProcess struct {
	cfg     InProcessConfig
	dir     string
	brokers []*broker.Broker
	once    sync.Once
	err     error
}

var _ Cluster = (*InProcess)(nil)

// StartInProcess starts cfg.Brokers brokers, all metadata voters, and
// returns once every one is registered. The brokers use production Raft
// timing (100 ms ticks), not the fast ticks of tests, so that idle cost and
// latency are what a deployment would see.
func StartInProcess(ctx context.Context, cfg InProcessConfig) (*InProcess, error) {
	if cfg.Brokers < 1 || cfg.Brokers > MaxInProcessBrokers {
		return nil, fmt.Errorf("in-process brokers must be between 1 and %d, got %d", MaxInProcessBrokers, cfg.Brokers)
	}
	if cfg.Storage != broker.StoragePebble && cfg.Storage != broker.StorageMemory {
		return nil, fmt.Errorf("storage must be %s or %s, got %q", broker.StoragePebble, broker.StorageMemory, cfg.Storage)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = time.Minute
	}
	c := &InProcess{cfg: cfg}
	if cfg.Storage == broker.StoragePebble {
		dir, err := os.MkdirTemp(cfg.DataDir, "raftka-bench-")
		if err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		c.dir = dir
	}
	voters := make([]uint64, cfg.Brokers)
	for i := range voters {
		voters[i] = uint64(i + 1)
	}
	defaults := broker.DefaultConfig()
	for i := range cfg.Brokers {
		bc := broker.TestConfig() // loopback, ephemeral ports, no admin server
		bc.NodeID = int32(i + 1)
		bc.MetadataVoters = voters
		bc.Storage = cfg.Storage
		if c.dir != "" {
			bc.DataDir = filepath.Join(c.dir, fmt.Sprintf("broker-%d", i+1))
		}
		// Production timing: the test preset's 10 ms ticks would make
		// idle groups and heartbeats cost far more than they do deployed,
		// and its short fencing would fence brokers starved of CPU by the
		// load generator running beside them.
		bc.Raft.TickInterval = defaults.Raft.TickInterval
		bc.FenceAfter = defaults.FenceAfter
		bc.LeaderBalanceInterval = defaults.LeaderBalanceInterval
		bc.DefaultReplicationFactor = int16(min(cfg.Brokers, 3))
		bc.Logger = cfg.Logger.With("broker", i+1)
		if i > 0 {
			bc.Join = []string{c.brokers[0].GossipAddr()}
		}
		b, err := broker.New(bc)
		if err == nil {
			err = b.Start()
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("broker %d did not start: %w", i+1, err)
		}
		c.brokers = append(c.brokers, b)
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()
	for _, b := range c.brokers {
		if err := b.WaitReady(rctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Brokers returns the running brokers.
func (c *InProcess) Brokers() []*broker.Broker { return c.brokers }

// Gatherers returns the brokers' metric registries, for RunOptions.Brokers.
func (c *InProcess) Gatherers() []prometheus.Gatherer {
	gs := make([]prometheus.Gatherer, len(c.brokers))
	for i, b := range c.brokers {
		gs[i] = b.Registry()
	}
	return gs
}

// Seeds returns every broker's Kafka address.
func (c *InProcess) Seeds() []string {
	out := make([]string, len(c.brokers))
	for i, b := range c.brokers {
		out[i] = b.Addr()
	}
	return out
}

// Describe says how many brokers run on which storage.
func (c *InProcess) Describe() string {
	s := "s"
	if c.cfg.Brokers == 1 {
		s = ""
	}
	return fmt.Sprintf("%d in-process broker%s (%s)", c.cfg.Brokers, s, c.cfg.Storage)
}

// QuiescedGroups is the number of quiesced Raft groups over all brokers.
func (c *InProcess) QuiescedGroups() int {
	n := 0
	for _, b := range c.brokers {
		n += b.QuiescedGroups()
	}
	return n
}

// Close stops every broker at once and removes the data directory. It is
// safe to call more than once.
func (c *InProcess) Close() error {
	c.once.Do(func() {
		errs := make([]error, len(c.brokers))
		var wg sync.WaitGroup
		for i, b := range c.brokers {
			wg.Go(func() {
				if err := b.Close(); err != nil {
					errs[i] = fmt.Errorf("broker %d: %w", b.NodeID(), err)
				}
			})
		}
		wg.Wait()
		if c.dir != "" {
			if err := os.RemoveAll(c.dir); err != nil {
				errs = append(errs, err)
			}
		}
		c.err = errors.Join(errs...)
	})
	return c.err
}

// Kfake is franz-go's in-process fake Kafka cluster: it keeps records in
// memory, does not replicate and does not fsync. It is the reference of
// what the load generator and the client reach with a broker that costs
// (almost) nothing.
type Kfake struct {
	c *kfake.Cluster
	n int
}

var _ Cluster = (*Kfake)(nil)

// StartKfake starts a kfake cluster of n brokers on loopback ports. Its
// brokers share one goroutine that serves every request, so more brokers
// only allow a higher replication factor in CreateTopics.
func StartKfake(n int) (*Kfake, error) {
	n = max(n, 1)
	c, err := kfake.NewCluster(kfake.NumBrokers(n))
	if err != nil {
		return nil, fmt.Errorf("kfake: %w", err)
	}
	return &Kfake{c: c, n: n}, nil
}

// Seeds returns the fake brokers' addresses.
func (k *Kfake) Seeds() []string { return k.c.ListenAddrs() }

// Describe names kfake and its size.
func (k *Kfake) Describe() string {
	s := "s"
	if k.n == 1 {
		s = ""
	}
	return fmt.Sprintf("kfake (%d fake broker%s, in-process, in memory, not replicated)", k.n, s)
}

// Close stops the fake cluster.
func (k *Kfake) Close() error {
	k.c.Close()
	return nil
}
