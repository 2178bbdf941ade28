package bench

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/raftka/raftka/broker"
)

// histOf returns the state of a histogram with bounds 1, 2, 4, 8 and 16 ms
// after observing each of secs.
func histOf(t *testing.T, h prometheus.Histogram, secs ...float64) brokerHist {
	t.Helper()
	for _, s := range secs {
		h.Observe(s)
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	var b brokerHist
	b.add(m.GetHistogram())
	return b
}

func newTestHist() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "t", Buckets: prometheus.ExponentialBuckets(1e-3, 2, 5)})
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestBrokerHistQuantile(t *testing.T) {
	h := newTestHist()
	if got := histOf(t, h).quantileMs(0.99); got != 0 {
		t.Errorf("empty histogram p99 = %v, want 0", got)
	}
	// 98 observations in (1, 2] ms and 2 in (8, 16] ms.
	b := histOf(t, h, append(repeat(0.0015, 98), 0.012, 0.012)...)
	if b.total() != 100 {
		t.Fatalf("total %d, want 100", b.total())
	}
	if p50 := b.quantileMs(0.5); p50 < 1 || p50 > 2 {
		t.Errorf("p50 = %v ms, want within the (1, 2] ms bucket", p50)
	}
	// Rank 99 is the first of the two in (8, 16]: halfway through it.
	if p99 := b.quantileMs(0.99); math.Abs(p99-12) > 1e-9 {
		t.Errorf("p99 = %v ms, want 12 (interpolated in the (8, 16] ms bucket)", p99)
	}
	// Beyond the last finite bound the estimate is that bound.
	over := histOf(t, newTestHist(), repeat(1.0, 10)...)
	if got := over.quantileMs(0.99); math.Abs(got-16) > 1e-9 {
		t.Errorf("p99 of observations above every bound = %v, want 16", got)
	}
}

func TestBrokerHistSinceAndPlus(t *testing.T) {
	h := newTestHist()
	before := histOf(t, h, repeat(0.0015, 50)...)
	after := histOf(t, h, repeat(0.012, 50)...)
	d := after.since(before)
	if d.total() != 50 {
		t.Fatalf("interval has %d observations, want the 50 made after the first reading", d.total())
	}
	if p50 := d.quantileMs(0.5); p50 <= 8 || p50 > 16 {
		t.Errorf("interval p50 = %v ms, want in (8, 16]: the earlier observations must not count", p50)
	}
	sum := d.plus(before)
	if sum.total() != 100 || sum.quantileMs(0.25) > 2 {
		t.Errorf("sum has %d observations, p25 %v ms; want 100 and the fast half first", sum.total(), sum.quantileMs(0.25))
	}
	// A counter that went backwards (a broker left out of a reading)
	// gives no negative counts.
	if back := before.since(after); back.total() != 0 {
		t.Errorf("going backwards gave %d observations, want 0", back.total())
	}
	var empty brokerHist
	if got := empty.plus(d); got.total() != 50 {
		t.Errorf("empty plus interval = %d observations, want 50", got.total())
	}
}

// TestBrokerStatsInProcess runs a short produce against a Pebble broker in
// this process and checks that the samples and the result carry the
// broker's own figures: the metric names in brokerstats.go must match the
// broker's.
func TestBrokerStatsInProcess(t *testing.T) {
	t.Parallel()
	c, err := StartInProcess(context.Background(), InProcessConfig{Brokers: 1, Storage: broker.StoragePebble, DataDir: t.TempDir(), ReadyTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cfg := quickConfig(WorkloadProduce, c.Seeds())
	cfg.Target = c.Describe()
	cfg.Rate = 2000
	cfg.Warmup = 1200 * time.Millisecond
	cfg.Duration = 2 * time.Second
	res, err := Run(context.Background(), cfg, RunOptions{Brokers: c.Gatherers()})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, true, false)
	b := res.Brokers
	if b == nil {
		t.Fatal("result has no broker figures")
	}
	if b.ProduceRequests == 0 || b.ProduceP99Ms <= 0 || b.ProduceP50Ms > b.ProduceP99Ms {
		t.Errorf("window produce figures %+v: want requests and 0 < p50 <= p99", b)
	}
	// acks=all on Pebble: every acknowledged batch was in a synced write.
	if b.LogWrites == 0 || b.LogWriteP99Ms <= 0 || b.WALSyncP99Ms <= 0 {
		t.Errorf("window log write figures %+v: want synced writes with their latencies", b)
	}
	checkRequestLatency(t, res)
	var inWindow uint64
	for _, s := range res.Samples {
		if s.Brokers == nil {
			t.Fatalf("sample at %.1fs has no broker figures", s.T)
		}
		if s.Phase == phaseMeasure {
			inWindow += s.Brokers.ProduceRequests
		}
	}
	if inWindow != b.ProduceRequests {
		t.Errorf("window counts %d produce requests, its samples %d", b.ProduceRequests, inWindow)
	}
	var sb strings.Builder
	if err := WriteSummary(&sb, cfg, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "synced log writes p99") {
		t.Errorf("summary lacks the brokers' figures:\n%s", sb.String())
	}
	rdir := t.TempDir()
	rep := Report{Kind: cfg.Workload, Target: cfg.Target, Time: res.Started, Config: cfg, Result: res}
	if err := WriteHTMLReport(rdir, rep); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rdir, "brokers.svg")); err != nil {
		t.Errorf("report has no chart of the brokers' figures: %v", err)
	}
	for _, s := range res.Samples {
		if s.Brokers.ProduceRequests > 0 && !strings.Contains(FormatSample(s, cfg.Workload), "broker p99") {
			t.Errorf("progress line lacks the broker's p99: %s", FormatSample(s, cfg.Workload))
		}
	}
}

func TestNoBrokerStatsWithoutGatherers(t *testing.T) {
	t.Parallel()
	k := startKfake(t)
	cfg := quickConfig(WorkloadProduce, k.Seeds())
	cfg.Rate = 2000
	res, err := Run(context.Background(), cfg, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Brokers != nil {
		t.Errorf("result has broker figures %+v without gatherers", res.Brokers)
	}
	// The client's own timing of its requests needs no broker's help.
	checkRequestLatency(t, res)
	for _, s := range res.Samples {
		if s.Brokers != nil {
			t.Errorf("sample has broker figures %+v without gatherers", s.Brokers)
		}
	}
}

// checkRequestLatency checks that a produce run timed its Produce requests:
// in the result, in every sample that completed records, and below the
// slowest record (a record waits at least for its request).
func checkRequestLatency(t *testing.T, res *Result) {
	t.Helper()
	rl := res.RequestLatency
	if rl == nil || rl.Count == 0 {
		t.Fatalf("no Produce request timed in the window: %+v", rl)
	}
	if rl.P50Ms <= 0 || rl.P50Ms > res.ProduceLatency.MaxMs {
		t.Errorf("request p50 %.3f ms, want above 0 and at most the slowest record's %.3f ms", rl.P50Ms, res.ProduceLatency.MaxMs)
	}
	for _, s := range res.Samples {
		if s.Latency != nil && s.Latency.Count > 0 && (s.Requests == nil || s.Requests.Count == 0) {
			t.Errorf("sample at %.1fs completed %d records but timed no request", s.T, s.Latency.Count)
		}
	}
}
