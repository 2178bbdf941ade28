package broker

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// histogramCount returns the sample count of the histogram series name
// whose labels include want (nil: the unlabelled series).
func histogramCount(t *testing.T, b *Broker, name string, want map[string]string) uint64 {
	t.Helper()
	mfs, err := b.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			return m.GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no histogram series %s%v", name, want)
	return 0
}

// TestStorageCommitMetrics checks that a Pebble broker exports where its log
// writes spend their time, and that the metrics pass Prometheus's lint.
func TestStorageCommitMetrics(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(c *Config) {
		c.Storage = StoragePebble
		c.DataDir = t.TempDir()
	})
	createTopic(t, b.Addr(), "commits", 1)
	produceConsume(t, b.Addr(), "commits", "counted")

	if n := histogramCount(t, b, "raftka_storage_commit_seconds", map[string]string{"synced": "true"}); n == 0 {
		t.Error("no synced commit observed after an acks=all produce")
	}
	if n := histogramCount(t, b, "raftka_storage_commit_seconds", map[string]string{"synced": "false"}); n == 0 {
		t.Error("no unsynced commit observed (applied state is written unsynced)")
	}
	if n := histogramCount(t, b, "raftka_storage_wal_sync_seconds", nil); n == 0 {
		t.Error("no WAL sync observed")
	}
	// Counters exist from the start, at zero until a rotation or a stall.
	for _, name := range []string{"raftka_storage_wal_rotation_seconds_total", "raftka_storage_write_stall_seconds_total"} {
		if v := counterValue(t, b, name); v < 0 {
			t.Errorf("%s = %v", name, v)
		}
	}
	problems, err := testutil.GatherAndLint(b.Registry(),
		"raftka_storage_commit_seconds", "raftka_storage_wal_sync_seconds",
		"raftka_storage_wal_rotation_seconds_total", "raftka_storage_write_stall_seconds_total")
	if err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

// TestStorageCommitMetricsMemory checks that a broker on the memory engine,
// which has no commit statistics, still serves the series, empty.
func TestStorageCommitMetricsMemory(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	createTopic(t, b.Addr(), "commits", 1)
	produceConsume(t, b.Addr(), "commits", "not counted")
	if n := histogramCount(t, b, "raftka_storage_wal_sync_seconds", nil); n != 0 {
		t.Errorf("memory engine: %d WAL syncs observed, want 0", n)
	}
}
