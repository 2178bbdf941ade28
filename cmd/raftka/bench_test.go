package main

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// quickBench are flags that keep a bench run to a couple of seconds.
var quickBench = []string{"--duration", "1500ms", "--warmup", "500ms", "--record-size", "100", "--partitions", "3"}

func TestBenchProduceInProcessWritesJSONAndReport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	jsonPath, reportDir := filepath.Join(dir, "r.json"), filepath.Join(dir, "out")
	args := append([]string{"bench", "produce", "--in-process", "1", "--storage", "memory", "--json", jsonPath, "--report", reportDir}, quickBench...)
	r := mustRun(t, "", args...)
	for _, want := range []string{"produced", "records/s", "send → ack", "P99"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	// Not a terminal: plain progress lines, one a second.
	if !strings.Contains(r.stderr, "[  1.0s") && !strings.Contains(r.stderr, "rec/s") {
		t.Errorf("no progress lines on stderr:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "\r") {
		t.Errorf("terminal control characters in non-terminal output:\n%q", r.stderr)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Kind    string         `json:"kind"`
		Command []string       `json:"command"`
		Config  map[string]any `json:"config"`
		Result  map[string]any `json:"result"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != "produce" || got.Config["target"] != "1 in-process broker (memory)" || got.Config["record_size"] != "100" {
		t.Errorf("json config: %v", got.Config)
	}
	if got.Result["produced"] == nil || got.Result["produce_latency"] == nil {
		t.Errorf("json result: %v", got.Result)
	}
	if !strings.Contains(strings.Join(got.Command, " "), "--in-process=1") {
		t.Errorf("command %v", got.Command)
	}
	page, err := os.ReadFile(filepath.Join(reportDir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "<svg") {
		t.Error("report has no chart")
	}
}

func TestBenchE2EAndConsumeInProcess(t *testing.T) {
	t.Parallel()
	r := mustRun(t, "", append([]string{"bench", "e2e", "--in-process", "1", "--storage", "memory", "--rate", "2000"}, quickBench...)...)
	if !strings.Contains(r.stdout, "send → consume") || !strings.Contains(r.stdout, "consumed") {
		t.Errorf("e2e summary:\n%s", r.stdout)
	}
	r = mustRun(t, "", "bench", "consume", "--in-process", "1", "--storage", "memory", "--fill-records", "3000", "--record-size", "100", "--duration", "2s")
	if !strings.Contains(r.stdout, "3000 records") {
		t.Errorf("consume summary:\n%s", r.stdout)
	}
}

func TestBenchAgainstKfake(t *testing.T) {
	t.Parallel()
	// --kfake starts the fake in process…
	r := mustRun(t, "", append([]string{"bench", "produce", "--kfake"}, quickBench...)...)
	if !strings.Contains(r.stdout, "kfake") {
		t.Errorf("target not named:\n%s", r.stdout)
	}
	// …and --brokers reaches one started elsewhere, unchanged.
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustRun(t, "", append([]string{"bench", "produce", "--brokers", strings.Join(c.ListenAddrs(), ","), "--replicas", "3"}, quickBench...)...)
	mustRun(t, "", append([]string{"bench", "e2e", "--brokers", c.ListenAddrs()[0], "--rate", "1000"}, quickBench...)...)
}

func TestBenchStorageAndPartitions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	r := mustRun(t, "", "bench", "storage", "--record-size", "100", "--duration", "300ms", "--data-dir", dir, "--json", filepath.Join(dir, "s.json"),
		"--cpu-profile", cpu, "--mem-profile", mem)
	if !strings.Contains(r.stdout, "synced batches/s") {
		t.Errorf("storage summary:\n%s", r.stdout)
	}
	for _, path := range []string{cpu, mem} {
		// A pprof profile is a gzipped protocol buffer.
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Errorf("%s is not a pprof profile: %v", path, err)
		} else if b, err := io.ReadAll(zr); err != nil || len(b) == 0 {
			t.Errorf("%s: %d bytes of profile, %v", path, len(b), err)
		}
		f.Close()
	}
	// At a target rate, the commit latency counts from the due times.
	r = mustRun(t, "", "bench", "storage", "--record-size", "100", "--rate", "20000", "--batch-records", "16", "--value-records", "4", "--warmup", "100ms",
		"--duration", "300ms", "--data-dir", dir, "--json", filepath.Join(dir, "rate.json"))
	if !strings.Contains(r.stdout, "from each batch's due time, target 20000 records/s") || !strings.Contains(r.stdout, "16 per batch, 4 per key") {
		t.Errorf("storage summary at a rate:\n%s", r.stdout)
	}
	var rated struct {
		Config struct {
			Rate         float64 `json:"rate"`
			ValueRecords int     `json:"value_records"`
		} `json:"config"`
		Result struct {
			Records       int64 `json:"records"`
			CommitLatency struct {
				Count int64   `json:"count"`
				P99   float64 `json:"p99_ms"`
			} `json:"commit_latency"`
		} `json:"result"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "rate.json")); err != nil {
		t.Error(err)
	} else if err := json.Unmarshal(b, &rated); err != nil {
		t.Error(err)
	} else if rated.Config.Rate != 20000 || rated.Config.ValueRecords != 4 || rated.Result.CommitLatency.Count != rated.Result.Records/16 || rated.Result.CommitLatency.P99 <= 0 {
		t.Errorf("storage JSON at a rate: %+v", rated)
	}
	r = runCLI(t, "", "bench", "storage", "--rate", "-5", "--data-dir", dir)
	if r.code != 2 || !strings.Contains(r.stderr, "rate must be >= 0 records/s") {
		t.Errorf("--rate -5: exit %d\n%s", r.code, r.stderr)
	}
	// A profile that cannot be written fails before the run, not after.
	r = runCLI(t, "", "bench", "storage", "--duration", "1h", "--data-dir", dir, "--mem-profile", filepath.Join(dir, "no", "such", "dir", "mem.prof"))
	if r.code == 0 || !strings.Contains(r.stderr, "--mem-profile") {
		t.Errorf("unwritable --mem-profile: exit %d\n%s", r.code, r.stderr)
	}
	r = mustRun(t, "", "bench", "partitions", "--in-process", "1", "--storage", "memory", "--count", "10", "--idle-window", "200ms",
		"--report", filepath.Join(dir, "p"))
	for _, want := range []string{"10 partitions", "idle cpu", "per replica"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("partitions summary lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestBenchUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"bench", "produce", "--in-process", "1", "--brokers", "127.0.0.1:1"},
		{"bench", "produce", "--in-process", "1", "--kfake"},
		{"bench", "produce", "--in-process", "9"},
		{"bench", "produce", "--record-size", "uniform:5"},
		{"bench", "produce", "--acks", "1", "--idempotence"},
		{"bench", "produce", "--keys", "zipf"},
		{"bench", "storage", "--kfake"},
		{"bench", "nosuch"},
	} {
		r := runCLI(t, "", args...)
		if r.code != exitUsage {
			t.Errorf("raftka %s: exit %d, want %d\n%s", strings.Join(args, " "), r.code, exitUsage, r.stderr)
		}
	}
	// --acks 1 turns idempotence off by itself.
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := mustRun(t, "", append([]string{"bench", "produce", "--brokers", c.ListenAddrs()[0], "--acks", "1"}, quickBench...)...)
	if !strings.Contains(r.stdout, "idempotent=false") {
		t.Errorf("summary:\n%s", r.stdout)
	}
}

func TestBenchUnreachableBrokers(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "", "bench", "produce", "--brokers", "127.0.0.1:1", "--timeout", "1s", "--duration", "1s")
	if r.code != exitError || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("exit %d\n%s", r.code, r.stderr)
	}
}
