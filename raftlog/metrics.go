package raftlog

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the scheduler's Prometheus collectors. Register them with
// Collectors.
type Metrics struct {
	groups        prometheus.Gauge
	quiesced      prometheus.Gauge
	passes        prometheus.Counter
	syncs         prometheus.Counter
	splitWrites   prometheus.Counter
	passReadies   prometheus.Histogram
	appendLatency prometheus.Histogram
}

func newMetrics() *Metrics {
	return &Metrics{
		groups: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "raftka_raft_groups", Help: "Raft groups driven by this broker.",
		}),
		quiesced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "raftka_raft_quiesced_groups", Help: "Raft groups that are idle and not ticking.",
		}),
		passes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "raftka_raft_scheduler_passes_total", Help: "Scheduler passes that processed at least one Ready.",
		}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "raftka_raft_log_syncs_total", Help: "Synced log writes (one per pass with durable work).",
		}),
		splitWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "raftka_raft_log_split_writes_total",
			Help: "Passes whose log write was too large for one storage batch and went out as several commits.",
		}),
		passReadies: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "raftka_raft_pass_groups", Help: "Groups with a Ready per scheduler pass (group commit width).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		appendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "raftka_raft_log_write_seconds", Help: "Time to collect and durably write one pass's log entries.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
	}
}

// Collectors returns every collector, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.groups, m.passes, m.syncs, m.splitWrites, m.passReadies, m.appendLatency, m.quiesced}
}
