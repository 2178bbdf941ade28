package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Workloads a Config can run.
const (
	// WorkloadProduce measures producer throughput and the latency from the
	// intended send time to the acknowledgement.
	WorkloadProduce = "produce"
	// WorkloadConsume fills a topic, then measures how fast consumers read it.
	WorkloadConsume = "consume"
	// WorkloadE2E produces and consumes at once and measures the latency
	// from the intended send time to the consumer's receipt.
	WorkloadE2E = "e2e"
)

// Key distributions for Config.Keys.
const (
	KeysNone       = "none"       // no key: the client's sticky partitioner spreads records
	KeysRandom     = "random"     // a key drawn uniformly from KeyCount keys
	KeysSequential = "sequential" // keys 0, 1, …, KeyCount-1, 0, … in turn
)

// Payloads for Config.Payload.
const (
	PayloadRandom = "random" // incompressible bytes
	PayloadText   = "text"   // words from a small vocabulary; compressible
	PayloadZeros  = "zeros"  // all zero bytes; compresses to almost nothing
)

// Config describes one produce, consume or e2e run. Start from
// DefaultConfig; Validate reports every problem at once.
type Config struct {
	// Workload is WorkloadProduce, WorkloadConsume or WorkloadE2E.
	Workload string
	// Target says what the brokers are, for the report ("3 in-process
	// brokers on pebble", "kfake", "brokers 10.0.0.1:9092"). The runner
	// does not interpret it.
	Target string
	// Brokers are the seed addresses.
	Brokers []string
	// Topic is the topic to use. Empty creates a fresh topic named
	// raftka-bench-<random> and deletes it at the end unless KeepTopic.
	// A named topic is created if it does not exist, and kept.
	Topic string
	// KeepTopic keeps a generated topic after the run.
	KeepTopic bool
	// Partitions and Replicas are used when the topic is created.
	// Replicas -1 takes the cluster's default.
	Partitions int32
	Replicas   int16
	// RecordSize is the distribution of value sizes.
	RecordSize SizeDist
	// Keys is KeysNone, KeysRandom or KeysSequential over KeyCount keys.
	Keys     string
	KeyCount int
	// Payload is PayloadRandom, PayloadText or PayloadZeros.
	Payload string
	// Acks is "all", "1" or "0".
	Acks string
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string
	// Idempotent enables the idempotent producer; it needs Acks "all".
	Idempotent bool
	// Linger is how long the client waits for a batch to fill (per
	// partition), as Kafka's linger.ms.
	Linger time.Duration
	// BatchMaxBytes bounds one record batch.
	BatchMaxBytes int32
	// MaxBufferedRecords bounds each producer's records not yet
	// acknowledged; a producer at maximum rate blocks there.
	MaxBufferedRecords int
	// Producers and Consumers are the number of clients of each kind. Each
	// is its own kgo.Client with its own connections.
	Producers int
	Consumers int
	// Duration is the measured window; Warmup runs before it, at the same
	// load, and is not counted in the results.
	Duration time.Duration
	Warmup   time.Duration
	// Rate is the target rate in records per second over all producers,
	// on an open-loop schedule; 0 sends as fast as the cluster takes them.
	Rate float64
	// FillRecords is how many records the consume workload writes before
	// it reads; 0 reads what the topic already holds.
	FillRecords int64
	// DrainTimeout bounds the wait, after the last send, for outstanding
	// acknowledgements and (e2e) for consumers to receive everything sent.
	DrainTimeout time.Duration
	// RequestTimeout bounds admin operations (topic creation, metadata).
	RequestTimeout time.Duration
}

// DefaultConfig returns the defaults of `raftka bench produce`.
func DefaultConfig() Config {
	return Config{
		Workload:   WorkloadProduce,
		Partitions: 8,
		Replicas:   -1,
		RecordSize: FixedSize(1024),
		Keys:       KeysNone,
		KeyCount:   1000,
		Payload:    PayloadRandom,
		Acks:       "all",
		// Compression off: random payloads do not compress, and the
		// benchmark is of the broker, not of the codec.
		Compression: "none",
		Idempotent:  true,
		// 1 ms, as OpenMessaging Benchmark's Kafka driver sets linger.ms
		// (Kafka's own producer defaults to 5 ms, franz-go to 10 ms). With
		// none, a client at a steady target rate sends a request for every
		// few records, and the broker's cost per request dominates: RF=1
		// 1 KiB at 128k records/s on 2 cores took 125-137% CPU and went
		// into backlog in 2 of 3 runs (p99 0.4-0.5 s), against ~100% CPU
		// and p99 10.7-11.0 ms with 1 ms. It adds up to 1 ms to latency at
		// low rates; --linger 0 measures without it.
		Linger:             time.Millisecond,
		BatchMaxBytes:      1 << 20,
		MaxBufferedRecords: 1 << 16,
		Producers:          1,
		Consumers:          1,
		Duration:           30 * time.Second,
		Warmup:             5 * time.Second,
		FillRecords:        -1,
		DrainTimeout:       30 * time.Second,
		RequestTimeout:     30 * time.Second,
	}
}

// Validate returns every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	switch c.Workload {
	case WorkloadProduce, WorkloadConsume, WorkloadE2E:
	default:
		errs = append(errs, fmt.Errorf("workload must be %s, %s or %s, got %q", WorkloadProduce, WorkloadConsume, WorkloadE2E, c.Workload))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no broker addresses"))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions must be >= 1, got %d", c.Partitions))
	}
	if c.Replicas == 0 || c.Replicas < -1 {
		errs = append(errs, fmt.Errorf("replicas must be >= 1 or -1 (the cluster's default), got %d", c.Replicas))
	}
	if err := c.RecordSize.validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.Keys {
	case KeysNone:
	case KeysRandom, KeysSequential:
		if c.KeyCount < 1 {
			errs = append(errs, fmt.Errorf("key count must be >= 1 with %s keys, got %d", c.Keys, c.KeyCount))
		}
	default:
		errs = append(errs, fmt.Errorf("keys must be %s, %s or %s, got %q", KeysNone, KeysRandom, KeysSequential, c.Keys))
	}
	switch c.Payload {
	case PayloadRandom, PayloadText, PayloadZeros:
	default:
		errs = append(errs, fmt.Errorf("payload must be %s, %s or %s, got %q", PayloadRandom, PayloadText, PayloadZeros, c.Payload))
	}
	if _, err := c.acks(); err != nil {
		errs = append(errs, err)
	}
	if _, err := CompressionCodec(c.Compression); err != nil {
		errs = append(errs, err)
	}
	if c.Idempotent && c.Acks != "all" && c.Acks != "-1" {
		errs = append(errs, fmt.Errorf("idempotence needs acks=all, got acks=%s", c.Acks))
	}
	if c.Linger < 0 {
		errs = append(errs, fmt.Errorf("linger must be >= 0, got %v", c.Linger))
	}
	if c.BatchMaxBytes < 1024 {
		errs = append(errs, fmt.Errorf("batch max bytes must be >= 1024, got %d", c.BatchMaxBytes))
	}
	if c.MaxBufferedRecords < 1 {
		errs = append(errs, fmt.Errorf("max buffered records must be >= 1, got %d", c.MaxBufferedRecords))
	}
	if c.Workload != WorkloadConsume || c.FillRecords != 0 {
		if c.Producers < 1 {
			errs = append(errs, fmt.Errorf("producers must be >= 1, got %d", c.Producers))
		}
	}
	if c.Workload != WorkloadProduce && c.Consumers < 1 {
		errs = append(errs, fmt.Errorf("consumers must be >= 1, got %d", c.Consumers))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration must be > 0, got %v", c.Duration))
	}
	if c.Warmup < 0 {
		errs = append(errs, fmt.Errorf("warmup must be >= 0, got %v", c.Warmup))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate must be >= 0 (0 is the maximum rate), got %v", c.Rate))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("drain timeout must be > 0, got %v", c.DrainTimeout))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("request timeout must be > 0, got %v", c.RequestTimeout))
	}
	return errors.Join(errs...)
}

// acks maps Acks to the client's option.
func (c Config) acks() (kgo.Acks, error) {
	switch c.Acks {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, fmt.Errorf("acks must be all, 1 or 0, got %q", c.Acks)
}

// fillRecords is the number of records the consume workload writes: the
// configured count, or by default about 256 MiB of records.
func (c Config) fillRecords() int64 {
	if c.FillRecords >= 0 {
		return c.FillRecords
	}
	return max(1000, int64(256<<20/c.RecordSize.Mean()))
}

// MarshalJSON writes durations as strings ("30s") and the record size
// distribution in its flag form, so a JSON file reads like the command
// line that made it.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain struct {
		Workload           string   `json:"workload"`
		Target             string   `json:"target"`
		Brokers            []string `json:"brokers"`
		Topic              string   `json:"topic"`
		KeepTopic          bool     `json:"keep_topic"`
		Partitions         int32    `json:"partitions"`
		Replicas           int16    `json:"replicas"`
		RecordSize         string   `json:"record_size"`
		RecordSizeMean     float64  `json:"record_size_mean_bytes"`
		Keys               string   `json:"keys"`
		KeyCount           int      `json:"key_count"`
		Payload            string   `json:"payload"`
		Acks               string   `json:"acks"`
		Compression        string   `json:"compression"`
		Idempotent         bool     `json:"idempotent"`
		Linger             string   `json:"linger"`
		BatchMaxBytes      int32    `json:"batch_max_bytes"`
		MaxBufferedRecords int      `json:"max_buffered_records"`
		Producers          int      `json:"producers"`
		Consumers          int      `json:"consumers"`
		Duration           string   `json:"duration"`
		Warmup             string   `json:"warmup"`
		Rate               float64  `json:"rate"`
		FillRecords        int64    `json:"fill_records"`
		DrainTimeout       string   `json:"drain_timeout"`
		RequestTimeout     string   `json:"request_timeout"`
	}
	return json.Marshal(plain{
		Workload: c.Workload, Target: c.Target, Brokers: c.Brokers, Topic: c.Topic, KeepTopic: c.KeepTopic,
		Partitions: c.Partitions, Replicas: c.Replicas, RecordSize: c.RecordSize.String(), RecordSizeMean: c.RecordSize.Mean(),
		Keys: c.Keys, KeyCount: c.KeyCount, Payload: c.Payload, Acks: c.Acks, Compression: c.Compression,
		Idempotent: c.Idempotent, Linger: c.Linger.String(), BatchMaxBytes: c.BatchMaxBytes,
		MaxBufferedRecords: c.MaxBufferedRecords, Producers: c.Producers, Consumers: c.Consumers,
		Duration: c.Duration.String(), Warmup: c.Warmup.String(), Rate: c.Rate, FillRecords: c.FillRecords,
		DrainTimeout: c.DrainTimeout.String(), RequestTimeout: c.RequestTimeout.String(),
	})
}

// CompressionCodec maps a codec name to the client's codec.
func CompressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression must be none, gzip, snappy, lz4 or zstd, got %q", name)
}

// SizeDist is a distribution of record value sizes in bytes: fixed
// (Min == Max) or uniform over [Min, Max].
type SizeDist struct {
	Min, Max int
}

// FixedSize is the distribution of records of exactly n bytes.
func FixedSize(n int) SizeDist { return SizeDist{Min: n, Max: n} }

// maxRecordSize bounds a value: larger records are a different benchmark
// (and above most brokers' max.message.bytes).
const maxRecordSize = 16 << 20

// ParseSizeDist parses "1024" (fixed) or "uniform:100-2000".
func ParseSizeDist(s string) (SizeDist, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("record size %q: want a byte count (1024) or uniform:MIN-MAX (uniform:100-2000)", s)
	if rest, ok := strings.CutPrefix(s, "uniform:"); ok {
		lo, hi, ok := strings.Cut(rest, "-")
		if !ok {
			return SizeDist{}, bad
		}
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := strconv.Atoi(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil {
			return SizeDist{}, bad
		}
		d := SizeDist{Min: a, Max: b}
		return d, d.validate()
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return SizeDist{}, bad
	}
	d := FixedSize(n)
	return d, d.validate()
}

func (d SizeDist) validate() error {
	if d.Min < 0 || d.Max < 1 || d.Min > d.Max || d.Max > maxRecordSize {
		return fmt.Errorf("record size %s: sizes must satisfy 0 <= min <= max, 1 <= max <= %d", d, maxRecordSize)
	}
	return nil
}

// Mean is the mean record size in bytes.
func (d SizeDist) Mean() float64 { return float64(d.Min+d.Max) / 2 }

// Fixed reports whether every record has the same size.
func (d SizeDist) Fixed() bool { return d.Min == d.Max }

// String is the flag form: "1024" or "uniform:100-2000".
func (d SizeDist) String() string {
	if d.Fixed() {
		return strconv.Itoa(d.Min)
	}
	return fmt.Sprintf("uniform:%d-%d", d.Min, d.Max)
}
