package bench

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftka/raftka/broker"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSummarizePercentiles(t *testing.T) {
	t.Parallel()
	h := newHistogram()
	for ms := 1; ms <= 1000; ms++ { // 1 ms … 1 s, one each
		if err := h.RecordValue(int64(ms) * 1000); err != nil {
			t.Fatal(err)
		}
	}
	s := Summarize(h)
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > want*0.002+0.001 { // three significant digits
			t.Errorf("%s = %.3f ms, want %.3f", name, got, want)
		}
	}
	if s.Count != 1000 {
		t.Errorf("count %d", s.Count)
	}
	near("min", s.MinMs, 1)
	near("p50", s.P50Ms, 500)
	near("p90", s.P90Ms, 900)
	near("p99", s.P99Ms, 990)
	near("p99.9", s.P999Ms, 999)
	near("max", s.MaxMs, 1000)
	near("mean", s.MeanMs, 500.5)
	if len(s.Percentiles) != len(summaryPercentiles) {
		t.Errorf("%d percentile points, want %d", len(s.Percentiles), len(summaryPercentiles))
	}
	if empty := Summarize(newHistogram()); empty.Count != 0 || empty.MaxMs != 0 {
		t.Errorf("empty histogram summarised as %+v", empty)
	}
}

func TestLatencyRecorderWindow(t *testing.T) {
	t.Parallel()
	r := newLatencyRecorder()
	r.record(time.Millisecond, false)
	r.record(2*time.Millisecond, true)
	r.record(-time.Second, true) // clamped, not dropped
	iv, win := newHistogram(), newHistogram()
	r.drainInterval(iv)
	r.mergeWindow(win)
	if iv.TotalCount() != 3 || win.TotalCount() != 2 {
		t.Errorf("interval %d, window %d records; want 3 and 2", iv.TotalCount(), win.TotalCount())
	}
	iv.Reset()
	r.drainInterval(iv)
	if iv.TotalCount() != 0 {
		t.Errorf("interval not reset after drain: %d", iv.TotalCount())
	}
}

func TestParseSizeDist(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]SizeDist{"1024": {1024, 1024}, "uniform:100-2000": {100, 2000}, " uniform: 0 - 10 ": {0, 10}} {
		got, err := ParseSizeDist(in)
		if err != nil || got != want {
			t.Errorf("ParseSizeDist(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-5", "abc", "uniform:", "uniform:10", "uniform:20-10", "normal:5-6", "99999999999"} {
		if _, err := ParseSizeDist(in); err == nil {
			t.Errorf("ParseSizeDist(%q) succeeded", in)
		}
	}
	if got := (SizeDist{100, 2000}).String(); got != "uniform:100-2000" {
		t.Errorf("String = %q", got)
	}
}

func TestRecordGen(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.RecordSize = SizeDist{100, 200}
	cfg.Keys, cfg.KeyCount = KeysSequential, 3
	g := newRecordGen(cfg, newPayload(cfg), newKeys(cfg), 1)
	for i := range 1000 {
		r := g.next()
		if n := len(r.Value); n < 100 || n > 200 {
			t.Fatalf("value of %d bytes outside 100..200", n)
		}
		if want := []string{"key-00000000", "key-00000001", "key-00000002"}[i%3]; string(r.Key) != want {
			t.Fatalf("record %d key %q, want %q", i, r.Key, want)
		}
	}
	cfg.Keys = KeysNone
	if r := newRecordGen(cfg, newPayload(cfg), newKeys(cfg), 1).next(); r.Key != nil {
		t.Errorf("keys none gave key %q", r.Key)
	}
}

func TestConfigValidateReportsEverything(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Brokers = nil
	cfg.Acks = "1" // with idempotence on
	cfg.Partitions = 0
	cfg.Compression = "brotli"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"broker", "idempotence needs acks=all", "partitions", "compression"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// quickConfig is a short run with small records: seconds, not minutes.
func quickConfig(workload string, brokers []string) Config {
	cfg := DefaultConfig()
	cfg.Workload = workload
	cfg.Brokers = brokers
	cfg.Partitions = 3
	cfg.RecordSize = FixedSize(100)
	cfg.Duration = 1500 * time.Millisecond
	cfg.Warmup = 500 * time.Millisecond
	cfg.FillRecords = 5000
	cfg.DrainTimeout = 10 * time.Second
	cfg.RequestTimeout = 20 * time.Second
	return cfg
}

func startMemoryBroker(t *testing.T) *InProcess {
	t.Helper()
	c, err := StartInProcess(context.Background(), InProcessConfig{Brokers: 1, Storage: broker.StorageMemory, ReadyTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func startKfake(t *testing.T) *Kfake {
	t.Helper()
	k, err := StartKfake(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func checkResult(t *testing.T, res *Result, produce, consume bool) {
	t.Helper()
	// A consume run may read everything in less than a sampling interval.
	if res.WindowSeconds <= 0 || (produce && len(res.Samples) == 0) {
		t.Errorf("window %.2fs with %d samples", res.WindowSeconds, len(res.Samples))
	}
	if res.ErrorsTotal != 0 {
		t.Errorf("%d errors, first: %s", res.ErrorsTotal, res.FirstError)
	}
	if produce && (res.Produced == nil || res.Produced.Records == 0 || res.ProduceLatency == nil || res.ProduceLatency.Count == 0) {
		t.Errorf("nothing produced in the window: %+v", res.Produced)
	}
	if consume && (res.Consumed == nil || res.Consumed.Records == 0) {
		t.Errorf("nothing consumed in the window: %+v", res.Consumed)
	}
}

func TestRunProduceInProcess(t *testing.T) {
	t.Parallel()
	c := startMemoryBroker(t)
	cfg := quickConfig(WorkloadProduce, c.Seeds())
	cfg.Target = c.Describe()
	cfg.Keys = KeysRandom
	cfg.Warmup = 1200 * time.Millisecond // the first one-second sample is in it
	var mu sync.Mutex
	var samples []Sample
	res, err := Run(context.Background(), cfg, RunOptions{Progress: func(s Sample) {
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, true, false)
	if len(samples) == 0 || samples[0].Phase != "warmup" {
		t.Errorf("progress samples %+v, want the first in warm-up", samples)
	}

	// JSON has the configuration and every figure.
	dir := t.TempDir()
	rep := Report{Kind: cfg.Workload, Target: cfg.Target, Time: res.Started, Environment: CollectEnvironment("test"), Config: cfg, Result: res}
	path := filepath.Join(dir, "r.json")
	if err := WriteJSON(path, rep); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Config      map[string]any `json:"config"`
		Environment map[string]any `json:"environment"`
		Result      struct {
			Produced       map[string]float64 `json:"produced"`
			ProduceLatency map[string]any     `json:"produce_latency"`
			Samples        []map[string]any   `json:"samples"`
		} `json:"result"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"workload": "produce", "record_size": "100", "acks": "all", "duration": "1.5s", "keys": "random", "partitions": 3.0} {
		if got.Config[k] != want {
			t.Errorf("config %s = %v, want %v", k, got.Config[k], want)
		}
	}
	if got.Environment["cpus"] == nil {
		t.Error("environment missing")
	}
	if got.Result.Produced["records_per_s"] <= 0 || got.Result.ProduceLatency["p99_ms"] == nil || len(got.Result.Samples) == 0 {
		t.Errorf("result incomplete: %s", b)
	}
	// Every second records what the process used; a second of loading a
	// broker in this process costs some CPU, and Linux says how much
	// memory is resident.
	busy := false
	for _, smp := range got.Result.Samples {
		proc, _ := smp["process"].(map[string]any)
		if proc == nil {
			t.Fatalf("sample without process usage: %v", smp)
		}
		if cpu, _ := proc["cpu_percent"].(float64); cpu > 0 {
			busy = true
		}
		if rss, _ := proc["rss_mb"].(float64); runtime.GOOS == "linux" && rss <= 0 {
			t.Errorf("sample without resident memory: %v", proc)
		}
	}
	if !busy {
		t.Error("no sample used any CPU")
	}

	// The report is a page with SVG charts.
	rdir := filepath.Join(dir, "report")
	if err := WriteHTMLReport(rdir, rep); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(rdir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!doctype html>", "<svg", "Throughput", "Latency by percentile", "polyline", "page faults per second"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(string(page), "<script") || strings.Contains(string(page), "http://") && !strings.Contains(string(page), "xmlns=\"http://www.w3.org/2000/svg\"") {
		t.Error("report is not self-contained")
	}
	if _, err := os.Stat(filepath.Join(rdir, "latency.svg")); err != nil {
		t.Error(err)
	}
}

func TestRunE2EAtRateInProcess(t *testing.T) {
	t.Parallel()
	c := startMemoryBroker(t)
	cfg := quickConfig(WorkloadE2E, c.Seeds())
	cfg.Rate = 2000
	cfg.Consumers = 2
	res, err := Run(context.Background(), cfg, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, true, true)
	if res.E2ELatency == nil || res.E2ELatency.Count == 0 {
		t.Fatalf("no e2e latency: %+v", res.E2ELatency)
	}
	// At a target rate the schedule fixes how many records are due in the
	// window: 2,000/s × 1.5 s.
	if n := res.ProduceLatency.Count; n != 3000 {
		t.Errorf("%d records due in the window, want 3000", n)
	}
}

func TestRunConsumeInProcess(t *testing.T) {
	t.Parallel()
	c := startMemoryBroker(t)
	cfg := quickConfig(WorkloadConsume, c.Seeds())
	cfg.Warmup = 0
	res, err := Run(context.Background(), cfg, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, false, true)
	if res.Fill == nil || res.Fill.Records != 5000 {
		t.Errorf("fill %+v, want 5000 records", res.Fill)
	}
	if res.Consumed.Records != 5000 {
		t.Errorf("consumed %d of 5000 records", res.Consumed.Records)
	}
	// The fill's Produce requests are not the run's.
	if res.RequestLatency != nil {
		t.Errorf("consume run reports Produce requests %+v", res.RequestLatency)
	}
	for _, s := range res.Samples {
		if s.Requests != nil {
			t.Errorf("consume sample at %.1fs reports Produce requests %+v", s.T, s.Requests)
		}
	}
}

func TestRunAgainstKfake(t *testing.T) {
	t.Parallel()
	k := startKfake(t)
	for _, w := range []string{WorkloadProduce, WorkloadE2E, WorkloadConsume} {
		cfg := quickConfig(w, k.Seeds())
		if w == WorkloadConsume {
			// A warm-up would read the whole fill before the window.
			cfg.Duration, cfg.Warmup = time.Second, 0
		}
		// Producing keeps quickConfig's warm-up: without one, a client
		// that takes a second to connect and learn metadata on a loaded
		// machine (the race detector, tests in parallel) acknowledges
		// nothing in the window.
		if w == WorkloadE2E {
			cfg.Rate = 1000
		}
		res, err := Run(context.Background(), cfg, RunOptions{})
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		checkResult(t, res, w != WorkloadConsume, w != WorkloadProduce)
	}
}

func TestRunPartitionsInProcess(t *testing.T) {
	t.Parallel()
	c := startMemoryBroker(t)
	res, err := RunPartitions(context.Background(), PartitionsConfig{
		Brokers: c.Seeds(), Count: 20, Replicas: 1, IdleWindow: 300 * time.Millisecond,
		QuiesceTimeout: 10 * time.Second, CreateTimeout: 20 * time.Second,
	}, c, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Count != 20 || res.Replicas != 1 || res.LeadersSeconds <= 0 || !res.Local || res.HeapAfter == 0 {
		t.Errorf("result %+v", res)
	}
}

func TestRunStorageReport(t *testing.T) {
	t.Parallel()
	r, err := RunStorage(context.Background(), StorageConfig{Dir: t.TempDir(), RecordSize: 100, BatchRecords: 16, Writers: 1, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := NewStorageReport(r)
	if s.Records == 0 || s.RecordsPerSec <= 0 || s.SyncsPerSec <= 0 {
		t.Errorf("storage report %+v", s)
	}
}

// TestRunStorageAtRate writes at a target rate: the records come in
// batches of values of several records, every batch's latency is counted
// once, and the run stops at the record count.
func TestRunStorageAtRate(t *testing.T) {
	t.Parallel()
	r, err := RunStorage(context.Background(), StorageConfig{Dir: t.TempDir(), RecordSize: 100, BatchRecords: 16, ValueRecords: 4,
		Writers: 2, Rate: 20000, Records: 640})
	if err != nil {
		t.Fatal(err)
	}
	// Writers claim whole groups of batches, so the count may overshoot
	// by less than one group (at most 8 MiB) per writer.
	if r.Records < 640 || r.Records%16 != 0 || r.Latency == nil || r.Latency.TotalCount() != r.Records/16 {
		t.Fatalf("%d records, latency count %v; want >= 640 in batches of 16, one latency per batch", r.Records, r.Latency)
	}
	if r.Batches < 1 || r.Batches > r.Records/16 {
		t.Errorf("%d synced commits for %d batches", r.Batches, r.Records/16)
	}
	// 640 records at 20,000/s are due over 32 ms.
	if r.Elapsed < 25*time.Millisecond {
		t.Errorf("took %v: the schedule was not followed", r.Elapsed)
	}
	s := NewStorageReport(r)
	if s.CommitLatency.Count != r.Records/16 || s.CommitLatency.P50Ms <= 0 {
		t.Errorf("commit latency %+v", s.CommitLatency)
	}
}

// TestRunStorageWarmup counts only what is due after the warm-up.
func TestRunStorageWarmup(t *testing.T) {
	t.Parallel()
	r, err := RunStorage(context.Background(), StorageConfig{Dir: t.TempDir(), RecordSize: 100, BatchRecords: 10, Writers: 1,
		Rate: 10000, Warmup: 100 * time.Millisecond, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// 1,000 batches/s for 100 ms after the warm-up: 100 batches, 1,000
	// records; the 100 batches due during the warm-up are not counted.
	if r.Records != 1000 || r.Latency.TotalCount() != 100 {
		t.Errorf("%d records, %d latencies; want the window's 1000 and 100", r.Records, r.Latency.TotalCount())
	}
	if r.Elapsed < 90*time.Millisecond || r.Elapsed > 5*time.Second {
		t.Errorf("elapsed %v, want the measured window", r.Elapsed)
	}
}

// TestStorageConfigPayload checks that the storage ceiling takes the
// produce runs' payload kinds and refuses others by name.
func TestStorageConfigPayload(t *testing.T) {
	t.Parallel()
	base := StorageConfig{Dir: "d", RecordSize: 100, BatchRecords: 16, Writers: 1, Duration: time.Second}
	for _, p := range []string{"", PayloadRandom, PayloadText, PayloadZeros} {
		c := base
		c.Payload = p
		if err := c.Validate(); err != nil {
			t.Errorf("payload %q: %v", p, err)
		}
	}
	for _, bad := range []struct {
		mutate func(*StorageConfig)
		want   string
	}{
		{func(c *StorageConfig) { c.Rate = -1 }, "rate must be >= 0"},
		{func(c *StorageConfig) { c.Rate = math.Inf(1) }, "rate must be >= 0"},
		{func(c *StorageConfig) { c.ValueRecords = -2 }, "value records must be >= 0"},
		{func(c *StorageConfig) { c.Warmup = -time.Second }, "warm-up must be >= 0"},
		{func(c *StorageConfig) { c.Duration, c.Records, c.Warmup = 0, 10, time.Second }, "needs a duration"},
	} {
		c := base
		bad.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want %q", c, err, bad.want)
		}
	}
	c := base
	c.Payload = "lorem"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `payload must be random, text or zeros, got "lorem"`) {
		t.Errorf("payload lorem: %v", err)
	}
	r, err := RunStorage(context.Background(), StorageConfig{Dir: t.TempDir(), RecordSize: 100, BatchRecords: 16, Writers: 2, Records: 64, Payload: PayloadText})
	if err != nil || r.Records != 64 {
		t.Errorf("text payload run: %d records, %v; want 64", r.Records, err)
	}
}

func TestChartSVG(t *testing.T) {
	t.Parallel()
	svg := chart{Title: "a < b", LogY: true, Series: []chartSeries{{Name: "p99", X: []float64{1, 2, 3}, Y: []float64{0.5, 12, 0}}},
		ShadeTo: 1, ShadeLabel: "warm-up"}.SVG()
	for _, want := range []string{"<svg", "</svg>", "polyline", "a &lt; b", "warm-up", ">10<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q:\n%s", want, svg)
		}
	}
	if empty := (chart{Title: "x"}).SVG(); !strings.Contains(empty, "no data") {
		t.Errorf("empty chart: %s", empty)
	}
}

func TestRunEndsWhenTheClusterStopsAcknowledging(t *testing.T) {
	t.Parallel()
	k := startKfake(t)
	// Once the topic exists, kfake swallows every produce request: the
	// client never hears back, its buffer fills and Produce blocks.
	var swallowed atomic.Int64
	k.c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.c.KeepControl()
		swallowed.Add(1)
		return nil, nil, true
	})
	cfg := quickConfig(WorkloadProduce, k.Seeds())
	cfg.Warmup, cfg.Duration, cfg.DrainTimeout = 0, 300*time.Millisecond, 700*time.Millisecond
	cfg.MaxBufferedRecords = 16
	done := make(chan struct{})
	var res *Result
	var err error
	go func() {
		defer close(done)
		res, err = Run(context.Background(), cfg, RunOptions{})
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the run did not end within 20 s of a cluster that never acknowledges")
	}
	if swallowed.Load() == 0 {
		t.Fatal("no produce request reached the cluster")
	}
	if err == nil && (res == nil || res.ErrorsTotal == 0) {
		t.Fatalf("a run with nothing acknowledged reported no error: %+v", res)
	}
}

func TestProcessUsageSince(t *testing.T) {
	prev := processUsage{cpu: 2 * time.Second, faults: 1000, rss: 50e6}
	now := processUsage{cpu: 3500 * time.Millisecond, faults: 31000, rss: 80e6}
	got := now.since(prev, 2)
	want := ProcessSample{CPUPercent: 75, PageFaultsPerSec: 15000, RSSMB: 80}
	if got != want {
		t.Errorf("since: got %+v, want %+v", got, want)
	}
	// An empty interval has no rates, only the resident memory.
	if got := now.since(prev, 0); got != (ProcessSample{RSSMB: 80}) {
		t.Errorf("since over 0 s: %+v", got)
	}
}

func TestWindowProcessCoversOnlyTheWindow(t *testing.T) {
	samples := []Sample{
		{T: 1, Phase: phaseWarmup, Process: ProcessSample{CPUPercent: 190, PageFaultsPerSec: 90000, RSSMB: 900}},
		{T: 2, Phase: phaseMeasure, Process: ProcessSample{CPUPercent: 100, PageFaultsPerSec: 10, RSSMB: 500}},
		{T: 3, Phase: phaseMeasure, Process: ProcessSample{CPUPercent: 50, PageFaultsPerSec: 30, RSSMB: 600}},
		{T: 3.5, Phase: phaseMeasure, Process: ProcessSample{CPUPercent: 20, PageFaultsPerSec: 100, RSSMB: 550}},
		{T: 4, Phase: phaseDrain, Process: ProcessSample{CPUPercent: 10, PageFaultsPerSec: 5000, RSSMB: 2000}},
	}
	got, ok := windowProcess(samples)
	// 2.5 s: cpu (100+50+10)/2.5 = 64%; faults 10+30+50 = 90; peak 600 MB.
	if want := "cpu 64% of a core on average, 90 page faults, resident memory up to 600 MB"; !ok || got != want {
		t.Errorf("got %q, %v; want %q", got, ok, want)
	}
	if _, ok := windowProcess(samples[:1]); ok {
		t.Error("a run without a window has no process summary")
	}
}
