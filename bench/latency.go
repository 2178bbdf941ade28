package bench

import (
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to one hour, with three
// significant digits: 0.1% resolution at every magnitude.
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histSigFigs = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histSigFigs)
}

// latencyRecorder collects the latencies observed by one client. It keeps
// two histograms: the interval one (every record since the last progress
// tick, warm-up included) and the window one (records whose intended send
// time is in the measured window). The client's callbacks record; the
// sampler drains.
type latencyRecorder struct {
	mu struct {
		sync.Mutex
		interval *hdrhistogram.Histogram
		window   *hdrhistogram.Histogram
	}
}

func newLatencyRecorder() *latencyRecorder {
	r := &latencyRecorder{}
	r.mu.interval = newHistogram()
	r.mu.window = newHistogram()
	return r
}

// record adds one latency; inWindow also counts it in the results.
func (r *latencyRecorder) record(d time.Duration, inWindow bool) {
	v := clampMicros(d)
	r.mu.Lock()
	_ = r.mu.interval.RecordValue(v)
	if inWindow {
		_ = r.mu.window.RecordValue(v)
	}
	r.mu.Unlock()
}

// drainInterval adds the interval histogram to into and resets it.
func (r *latencyRecorder) drainInterval(into *hdrhistogram.Histogram) {
	r.mu.Lock()
	into.Merge(r.mu.interval)
	r.mu.interval.Reset()
	r.mu.Unlock()
}

// mergeWindow adds the window histogram to into.
func (r *latencyRecorder) mergeWindow(into *hdrhistogram.Histogram) {
	r.mu.Lock()
	into.Merge(r.mu.window)
	r.mu.Unlock()
}

// clampMicros converts d to microseconds within the histogram's range; a
// latency below 1 µs counts as 1 µs, above an hour as an hour.
func clampMicros(d time.Duration) int64 {
	return min(max(d.Microseconds(), histLowest), histHighest)
}

// LatencySummary is a latency distribution in milliseconds.
type LatencySummary struct {
	Count  int64   `json:"count"`
	MinMs  float64 `json:"min_ms"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p99_9_ms"`
	MaxMs  float64 `json:"max_ms"`
	// Percentiles is the distribution at the percentiles of
	// summaryPercentiles, for plots of latency by percentile.
	Percentiles []PercentilePoint `json:"percentiles"`
}

// PercentilePoint is the latency at one percentile.
type PercentilePoint struct {
	Percentile float64 `json:"percentile"`
	Ms         float64 `json:"ms"`
}

// summaryPercentiles are the points of LatencySummary.Percentiles: dense
// in the tail, where the interesting differences are.
var summaryPercentiles = []float64{0, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.75, 99.9, 99.95, 99.975, 99.99, 99.995, 99.999, 100}

// Summarize returns h's distribution; h holds microseconds.
func Summarize(h *hdrhistogram.Histogram) LatencySummary {
	s := LatencySummary{Count: h.TotalCount()}
	if s.Count == 0 {
		return s
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	s.MinMs = ms(h.Min())
	s.MeanMs = h.Mean() / 1000
	s.P50Ms = ms(h.ValueAtQuantile(50))
	s.P90Ms = ms(h.ValueAtQuantile(90))
	s.P99Ms = ms(h.ValueAtQuantile(99))
	s.P999Ms = ms(h.ValueAtQuantile(99.9))
	s.MaxMs = ms(h.Max())
	for _, p := range summaryPercentiles {
		s.Percentiles = append(s.Percentiles, PercentilePoint{Percentile: p, Ms: ms(h.ValueAtQuantile(p))})
	}
	return s
}

// String is s's main percentiles on one line, in milliseconds.
func (s LatencySummary) String() string {
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s ms", ms(s.P50Ms), ms(s.P90Ms), ms(s.P99Ms), ms(s.P999Ms), ms(s.MaxMs))
}
