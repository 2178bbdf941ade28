package broker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftka/raftka/storage"
)

// brokerMetrics are the broker's own Prometheus collectors: the Kafka-facing
// ones and those of its storage engine's commits.
type brokerMetrics struct {
	connections    prometheus.Gauge
	malformed      prometheus.Counter
	requests       *prometheus.CounterVec
	requestLatency *prometheus.HistogramVec
	producedBytes  prometheus.Counter
	producedBatch  *prometheus.CounterVec
	fetchedBytes   prometheus.Counter

	// Storage commits (Pebble only; see storage.CommitStats).
	storageCommit *prometheus.HistogramVec
	walSync       prometheus.Histogram
	walRotation   prometheus.Counter
	writeStall    prometheus.Counter
	// commitSynced and commitUnsynced are storageCommit's two series,
	// resolved once: observeCommit runs on every log write.
	commitSynced, commitUnsynced prometheus.Observer
}

// storageCommitBuckets span 25 µs (an unsynced commit) to about 0.8 s (a
// synced one behind a stalled disk).
var storageCommitBuckets = prometheus.ExponentialBuckets(25e-6, 2, 16)

func newBrokerMetrics() *brokerMetrics {
	m := &brokerMetrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "raftka_kafka_connections", Help: "Open Kafka client connections.",
		}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "raftka_kafka_malformed_requests_total", Help: "Connections closed for a malformed or oversized frame.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "raftka_kafka_requests_total", Help: "Kafka requests by API and outcome.",
		}, []string{"api", "outcome"}),
		requestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "raftka_kafka_request_seconds", Help: "Time from reading a request to having its response.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 18),
		}, []string{"api"}),
		producedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "raftka_produced_bytes_total", Help: "Record batch bytes appended by produce requests.",
		}),
		producedBatch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "raftka_produced_batches_total", Help: "Record batches by produce outcome (Kafka error name or ok).",
		}, []string{"outcome"}),
		fetchedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "raftka_fetched_bytes_total", Help: "Record batch bytes returned by fetch requests.",
		}),
		storageCommit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "raftka_storage_commit_seconds", Help: "Time of one storage commit, synced (a log write that waits for fsync) or not.",
			Buckets: storageCommitBuckets,
		}, []string{"synced"}),
		walSync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "raftka_storage_wal_sync_seconds", Help: "Wait of a synced storage commit for its write-ahead log write and fsync.",
			Buckets: storageCommitBuckets,
		}),
		walRotation: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "raftka_storage_wal_rotation_seconds_total", Help: "Time commits spent switching to a new write-ahead log, during which every commit waits.",
		}),
		writeStall: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "raftka_storage_write_stall_seconds_total", Help: "Time commits waited in write stalls (flushes or L0 compactions behind); non-zero means the disk or CPU cannot keep up.",
		}),
	}
	m.commitSynced = m.storageCommit.WithLabelValues("true")
	m.commitUnsynced = m.storageCommit.WithLabelValues("false")
	return m
}

// observeCommit records one storage commit (storage.PebbleOptions.OnCommit).
func (m *brokerMetrics) observeCommit(st storage.CommitStats) {
	if st.Synced {
		m.commitSynced.Observe(st.Total.Seconds())
		m.walSync.Observe(st.SyncWait.Seconds())
	} else {
		m.commitUnsynced.Observe(st.Total.Seconds())
	}
	if st.WALRotation > 0 {
		m.walRotation.Add(st.WALRotation.Seconds())
	}
	if st.WriteStall > 0 {
		m.writeStall.Add(st.WriteStall.Seconds())
	}
}

func (m *brokerMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.connections, m.malformed, m.requests, m.requestLatency, m.producedBytes, m.producedBatch, m.fetchedBytes,
		m.storageCommit, m.walSync, m.walRotation, m.writeStall}
}
