package broker

import "github.com/prometheus/client_golang/prometheus"

// brokerMetrics are the Kafka-facing Prometheus collectors.
type brokerMetrics struct {
	connections    prometheus.Gauge
	malformed      prometheus.Counter
	requests       *prometheus.CounterVec
	requestLatency *prometheus.HistogramVec
	producedBytes  prometheus.Counter
	producedBatch  *prometheus.CounterVec
	fetchedBytes   prometheus.Counter
}

func newBrokerMetrics() *brokerMetrics {
	return &brokerMetrics{
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
	}
}

func (m *brokerMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.connections, m.malformed, m.requests, m.requestLatency, m.producedBytes, m.producedBatch, m.fetchedBytes}
}
