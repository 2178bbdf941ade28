package broker

import (
	"strings"
	"testing"
	"time"
)

// TestConfigValidateGroupSettings checks that impossible group settings
// are refused with every problem named.
func TestConfigValidateGroupSettings(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.applyDerived()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c.OffsetsTopicPartitions = 0
	c.OffsetsRetention = 0
	c.GroupInitialRebalanceDelay = -time.Second
	c.GroupMinSessionTimeout = time.Minute
	c.GroupMaxSessionTimeout = time.Second
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid group settings accepted")
	}
	for _, w := range []string{"offsets-topic-partitions", "offsets-retention", "group-initial-rebalance-delay", "group-min-session-timeout (1m0s) <= group-max-session-timeout (1s)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not name %q: %v", w, err)
		}
	}
}

func TestMemTableSizeStaggeredByBroker(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	want := map[int32]uint64{1: 16 * mib, 2: 20 * mib, 3: 12 * mib, 4: 16 * mib, 0: 12 * mib, -1: 20 * mib}
	for id, w := range want {
		if got := memTableSizeFor(id); got != w {
			t.Errorf("memTableSizeFor(%d) = %d MiB, want %d MiB", id, got/mib, w/mib)
		}
	}
	// Any three consecutive ids — a partition's usual replicas — differ.
	for id := int32(1); id < 100; id++ {
		a, b, c := memTableSizeFor(id), memTableSizeFor(id+1), memTableSizeFor(id+2)
		if a == b || b == c || a == c {
			t.Fatalf("ids %d..%d share a memtable size: %d %d %d", id, id+2, a, b, c)
		}
	}
}

func TestPebbleOptionsForConfig(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.NodeID = 2
	o := pebbleOptionsFor(cfg, "/data/engine")
	if o.Dir != "/data/engine" || o.MemTableSize != memTableSizeFor(2) || o.CacheBlobPages {
		t.Fatalf("defaults: %+v", o)
	}
	cfg.CacheLogPages = true
	if o := pebbleOptionsFor(cfg, "/data/engine"); !o.CacheBlobPages {
		t.Fatal("cache-log-pages did not reach the engine's CacheBlobPages")
	}
}
