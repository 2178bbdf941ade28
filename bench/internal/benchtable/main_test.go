package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeRun puts one run's JSON into dir/group.
func writeRun(t *testing.T, dir, group, js string) {
	t.Helper()
	d := filepath.Join(dir, group)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "run-1.json"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRenderLatencyFloor checks the latency table: a broker row from
// produce_latency, the storage engine's row from commit_latency, the
// engine's note, and the throughput ratio to the ceiling.
func TestRenderLatencyFloor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeRun(t, dir, "10-storage-1024", `{"kind":"storage","target":"pebble","config":{"record_size":1024,"batch_records":256,"writers":1},
		"result":{"records_per_s":100000,"mb_per_s":100}}`)
	writeRun(t, dir, "11-produce-rf1-1024", `{"kind":"produce","target":"1 in-process broker (pebble)","config":{"record_size":"1024","acks":"all","partitions":8},
		"result":{"replication_factor":1,"produced":{"records_per_s":150000,"mb_per_s":150},"produce_latency":{"p50_ms":300,"p99_ms":500}}}`)
	writeRun(t, dir, "33-latency-rf1-1024", `{"kind":"produce","target":"1 in-process broker (pebble)","config":{"record_size":"1024","acks":"all","partitions":8,"rate":75000},
		"result":{"replication_factor":1,"produced":{"records_per_s":74990,"mb_per_s":76.8},"produce_latency":{"p50_ms":4.5,"p99_ms":21.25,"p99_9_ms":30,"max_ms":40},
		"produce_request_latency":{"p99_ms":9.5},"brokers":{"produce_p99_ms":8.25,"wal_sync_p99_ms":3.125,"write_stall_ms":12}}}`)
	writeRun(t, dir, "34-latency-storage-1024", `{"kind":"storage","target":"pebble","config":{"record_size":1024,"batch_records":16,"value_records":16,"rate":75000},
		"result":{"records_per_s":75000,"mb_per_s":76.8,"commit_latency":{"p50_ms":1.5,"p99_ms":12.5,"p99_9_ms":20,"max_ms":25}}}`)
	groups, err := loadGroups(dir)
	if err != nil {
		t.Fatal(err)
	}
	md := render(groups, "")
	for _, want := range []string{
		"| 1 in-process broker (pebble), RF=1, acks=all, 8 partitions | 1024 B | 1 | 150000 | 150.0 | 150% |",
		"| 1 in-process broker (pebble), RF=1, acks=all, 8 partitions | 1024 B | 75000 | 74990–74990 | 1 | 4.50 | 21.25 | 30.00 | 40.0 | 9.50 | 8.25 | 3.12 | 12 |",
		"| storage engine alone: Pebble, synced group commits of 16-record values | 1024 B | 75000 | 75000–75000 | 1 | 1.50 | 12.50 | 20.00 | 25.0 | – | – | – | – |",
		"a floor under the broker's",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("tables lack %q:\n%s", want, md)
		}
	}
	// The engine's latency run is not a storage ceiling.
	if strings.Count(md, "storage ceiling: Pebble") != 1 {
		t.Errorf("want one storage ceiling row:\n%s", md)
	}
}
