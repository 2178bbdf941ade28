package bench

import (
	"math"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The broker metrics a run reads from in-process brokers (see
// broker/metrics.go, where they are defined; TestBrokerStatsInProcess
// fails if one is renamed).
const (
	metricRequestSeconds = "raftka_kafka_request_seconds"
	metricCommitSeconds  = "raftka_storage_commit_seconds"
	metricWALSyncSeconds = "raftka_storage_wal_sync_seconds"
	metricWriteStall     = "raftka_storage_write_stall_seconds_total"
	metricWALRotation    = "raftka_storage_wal_rotation_seconds_total"
)

// BrokerSample is what the in-process brokers measured themselves over an
// interval (a second, or the measured window), summed over the brokers.
// It splits a produce latency into the broker's part and the rest (the
// client, the network and the load generator), and says whether the disk
// was the broker's bottleneck. The percentiles are estimated from the
// brokers' Prometheus histograms, whose buckets are a factor of two apart,
// by linear interpolation within a bucket (as Prometheus's
// histogram_quantile does); they are 0 when nothing was observed.
type BrokerSample struct {
	// ProduceRequests is the number of Produce requests answered.
	ProduceRequests uint64 `json:"produce_requests"`
	// ProduceP50Ms and ProduceP99Ms are Produce request latencies as the
	// broker sees them: from reading a request to having its response,
	// which for acks=all includes replication and the synced log write.
	ProduceP50Ms float64 `json:"produce_p50_ms"`
	ProduceP99Ms float64 `json:"produce_p99_ms"`
	// LogWrites is the number of synced storage commits (log writes that
	// waited for fsync), and LogWriteP99Ms their p99 duration.
	LogWrites     uint64  `json:"log_writes"`
	LogWriteP99Ms float64 `json:"log_write_p99_ms"`
	// WALSyncP99Ms is the p99 of those commits' wait for the write-ahead
	// log's write and fsync: the disk's share of a log write.
	WALSyncP99Ms float64 `json:"wal_sync_p99_ms"`
	// WriteStallMs is the time commits waited in storage write stalls
	// (flushes or compactions behind), summed over commits; above 0 the
	// disk or the CPU did not keep up.
	WriteStallMs float64 `json:"write_stall_ms"`
	// WALRotationMs is the time commits spent switching write-ahead logs.
	WALRotationMs float64 `json:"wal_rotation_ms"`
}

// brokerHist is a cumulative Prometheus histogram: counts[i] observations
// at most bounds[i] seconds; the last count, with bound +Inf, is the total.
type brokerHist struct {
	bounds []float64
	counts []uint64
}

// add adds h's counts to b's; a b without buckets takes h's bounds. Two
// histograms of the same metric have the same bounds.
func (b *brokerHist) add(h *dto.Histogram) {
	if h == nil {
		return
	}
	if b.bounds == nil {
		for _, bk := range h.GetBucket() {
			b.bounds = append(b.bounds, bk.GetUpperBound())
		}
		b.bounds = append(b.bounds, math.Inf(1))
		b.counts = make([]uint64, len(b.bounds))
	}
	bks := h.GetBucket()
	if len(bks)+1 != len(b.bounds) {
		return
	}
	for i, bk := range bks {
		b.counts[i] += bk.GetCumulativeCount()
	}
	b.counts[len(bks)] += h.GetSampleCount()
}

// since returns the observations of b that are not in prev, an earlier
// state of the same histogram.
func (b brokerHist) since(prev brokerHist) brokerHist {
	if len(prev.counts) != len(b.counts) {
		return b
	}
	d := brokerHist{bounds: b.bounds, counts: make([]uint64, len(b.counts))}
	for i := range b.counts {
		if b.counts[i] >= prev.counts[i] {
			d.counts[i] = b.counts[i] - prev.counts[i]
		}
	}
	return d
}

// plus returns the sum of b and o, two histograms of the same metric.
func (b brokerHist) plus(o brokerHist) brokerHist {
	if len(b.counts) == 0 {
		return o
	}
	if len(o.counts) != len(b.counts) {
		return b
	}
	s := brokerHist{bounds: b.bounds, counts: make([]uint64, len(b.counts))}
	for i := range b.counts {
		s.counts[i] = b.counts[i] + o.counts[i]
	}
	return s
}

func (b brokerHist) total() uint64 {
	if len(b.counts) == 0 {
		return 0
	}
	return b.counts[len(b.counts)-1]
}

// quantileMs estimates the q-quantile (0 < q < 1) in milliseconds: the
// rank's bucket is found, and the value interpolated linearly between the
// bucket's bounds (from 0 for the first). A rank in the +Inf bucket gets
// the largest finite bound. 0 when b is empty.
func (b brokerHist) quantileMs(q float64) float64 {
	n := b.total()
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	i := sort.Search(len(b.counts), func(i int) bool { return float64(b.counts[i]) >= rank })
	if i >= len(b.counts)-1 {
		if len(b.bounds) < 2 {
			return 0
		}
		return b.bounds[len(b.bounds)-2] * 1000
	}
	lo, below := 0.0, uint64(0)
	if i > 0 {
		lo, below = b.bounds[i-1], b.counts[i-1]
	}
	in := b.counts[i] - below
	if in == 0 {
		return b.bounds[i] * 1000
	}
	return (lo + (b.bounds[i]-lo)*(rank-float64(below))/float64(in)) * 1000
}

// brokerState is the brokers' cumulative figures at one moment.
type brokerState struct {
	produce, commitSynced, walSync brokerHist
	stallSec, rotationSec          float64
}

// since returns what happened between prev and s.
func (s brokerState) since(prev brokerState) brokerState {
	return brokerState{
		produce:      s.produce.since(prev.produce),
		commitSynced: s.commitSynced.since(prev.commitSynced),
		walSync:      s.walSync.since(prev.walSync),
		stallSec:     max(s.stallSec-prev.stallSec, 0),
		rotationSec:  max(s.rotationSec-prev.rotationSec, 0),
	}
}

// plus adds two intervals' figures.
func (s brokerState) plus(o brokerState) brokerState {
	return brokerState{
		produce:      s.produce.plus(o.produce),
		commitSynced: s.commitSynced.plus(o.commitSynced),
		walSync:      s.walSync.plus(o.walSync),
		stallSec:     s.stallSec + o.stallSec,
		rotationSec:  s.rotationSec + o.rotationSec,
	}
}

// sample summarizes an interval's figures.
func (s brokerState) sample() *BrokerSample {
	return &BrokerSample{
		ProduceRequests: s.produce.total(),
		ProduceP50Ms:    s.produce.quantileMs(0.50),
		ProduceP99Ms:    s.produce.quantileMs(0.99),
		LogWrites:       s.commitSynced.total(),
		LogWriteP99Ms:   s.commitSynced.quantileMs(0.99),
		WALSyncP99Ms:    s.walSync.quantileMs(0.99),
		WriteStallMs:    s.stallSec * 1000,
		WALRotationMs:   s.rotationSec * 1000,
	}
}

// readBrokers gathers the brokers' cumulative figures. A broker whose
// registry fails to gather is left out of this reading; its figures then
// show as a drop, which since clamps at zero.
func readBrokers(gs []prometheus.Gatherer) brokerState {
	var s brokerState
	for _, g := range gs {
		mfs, err := g.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			switch mf.GetName() {
			case metricRequestSeconds:
				for _, m := range mf.GetMetric() {
					if labelIs(m, "api", "Produce") {
						s.produce.add(m.GetHistogram())
					}
				}
			case metricCommitSeconds:
				for _, m := range mf.GetMetric() {
					if labelIs(m, "synced", "true") {
						s.commitSynced.add(m.GetHistogram())
					}
				}
			case metricWALSyncSeconds:
				for _, m := range mf.GetMetric() {
					s.walSync.add(m.GetHistogram())
				}
			case metricWriteStall:
				for _, m := range mf.GetMetric() {
					s.stallSec += m.GetCounter().GetValue()
				}
			case metricWALRotation:
				for _, m := range mf.GetMetric() {
					s.rotationSec += m.GetCounter().GetValue()
				}
			}
		}
	}
	return s
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}
