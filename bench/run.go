package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// RunOptions are the hooks of a run.
type RunOptions struct {
	// Progress, if set, is called once a second from the sampling
	// goroutine with the second that just ended. It must not block long.
	Progress func(Sample)
	// Logf, if set, receives one-line notes on what the run is doing
	// (creating the topic, filling it, draining).
	Logf func(format string, args ...any)
	// Clock is the time source; nil is the wall clock.
	Clock Clock
	// Brokers are the metric registries of brokers running in this process
	// (InProcess.Gatherers). With them every sample, and the result, also
	// carry what the brokers measured themselves (BrokerSample).
	Brokers []prometheus.Gatherer
}

// Sample is one second of a run.
type Sample struct {
	// T is the end of the interval, in seconds since the load began
	// (warm-up included).
	T float64 `json:"t_s"`
	// Phase is "warmup", "measure" or "drain".
	Phase string `json:"phase"`
	// Produced and consumed records and payload megabytes (10^6 bytes)
	// per second over the interval.
	ProducedPerSec   float64 `json:"produced_records_per_s"`
	ProducedMBPerSec float64 `json:"produced_mb_per_s"`
	ConsumedPerSec   float64 `json:"consumed_records_per_s"`
	ConsumedMBPerSec float64 `json:"consumed_mb_per_s"`
	// Errors is the number of failed records or fetches in the interval.
	Errors int64 `json:"errors"`
	// Latency is the interval's distribution of the run's main latency:
	// send to acknowledgement for produce, send to receipt for e2e; nil
	// for consume.
	Latency *IntervalLatency `json:"latency,omitempty"`
	// Requests is the interval's distribution of Produce requests' time on
	// the wire, as the producers' client sees it: from starting to write a
	// request to having read its response (franz-go's HookBrokerE2E). The
	// part of Latency above it was spent in the client before sending (the
	// linger, requests in flight ahead, the load generator); nil for
	// consume.
	Requests *IntervalLatency `json:"produce_requests,omitempty"`
	// Process is what this process used in the interval: the load
	// generator's clients and, with --in-process, the brokers too.
	Process ProcessSample `json:"process"`
	// Brokers is what in-process brokers measured in the interval; nil
	// without RunOptions.Brokers.
	Brokers *BrokerSample `json:"brokers,omitempty"`
}

// ProcessSample is the CPU and memory use of the benchmark process over one
// interval. Page faults are worth watching on a VM, where the host may
// back each newly touched page lazily: there a burst of them (the heap
// growing again after the Go runtime returned memory) stalls everything.
type ProcessSample struct {
	// CPUPercent is user and system CPU time, in percent of one core.
	CPUPercent float64 `json:"cpu_percent"`
	// PageFaultsPerSec counts minor and major page faults.
	PageFaultsPerSec float64 `json:"page_faults_per_s"`
	// RSSMB is the resident set at the end of the interval, in 10^6
	// bytes; 0 where the system does not say (outside Linux).
	RSSMB float64 `json:"rss_mb"`
}

// IntervalLatency is the latency distribution of one interval, in ms.
type IntervalLatency struct {
	Count  int64   `json:"count"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p99_9_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Throughput is what moved during the measured window.
type Throughput struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	RecordsPerSec float64 `json:"records_per_s"`
	MBPerSec      float64 `json:"mb_per_s"`
}

// Result is the outcome of a produce, consume or e2e run. Throughput
// counts completions inside the measured window; latencies count the
// records whose intended send time is inside it, including those that
// completed after it.
type Result struct {
	Workload string    `json:"workload"`
	Topic    string    `json:"topic"`
	Started  time.Time `json:"started"`
	// WindowSeconds is the length of the measured window: Duration, or
	// less if the run was interrupted or (consume) ran out of records.
	WindowSeconds float64 `json:"window_s"`
	// Partitions and ReplicationFactor are the topic's, from metadata.
	Partitions        int `json:"partitions"`
	ReplicationFactor int `json:"replication_factor"`
	// TopicCreateSeconds is the time to create the topic and see a leader
	// for every partition; 0 for an existing topic.
	TopicCreateSeconds float64 `json:"topic_create_s"`
	// Fill is the consume workload's preparatory write, at maximum rate.
	Fill     *Throughput `json:"fill,omitempty"`
	Produced *Throughput `json:"produced,omitempty"`
	Consumed *Throughput `json:"consumed,omitempty"`
	// ProduceLatency is from the intended send time to the acknowledgement.
	ProduceLatency *LatencySummary `json:"produce_latency,omitempty"`
	// RequestLatency is Produce requests' time on the wire (Sample.Requests)
	// for requests that completed in the window.
	RequestLatency *LatencySummary `json:"produce_request_latency,omitempty"`
	// E2ELatency is from the intended send time to the consumer's receipt.
	E2ELatency *LatencySummary `json:"e2e_latency,omitempty"`
	// Errors counts failed records and fetch errors in the window;
	// ErrorsTotal over the whole run.
	Errors      int64  `json:"errors"`
	ErrorsTotal int64  `json:"errors_total"`
	FirstError  string `json:"first_error,omitempty"`
	Interrupted bool   `json:"interrupted"`
	// Brokers is what in-process brokers measured over the seconds whose
	// middle is in the measured window; nil without RunOptions.Brokers.
	Brokers *BrokerSample `json:"brokers,omitempty"`
	// Samples are the per-second figures, warm-up and drain included.
	Samples []Sample `json:"samples"`
}

// ErrNothingMeasured is returned when a run ends before its measured window
// saw any completed record.
var ErrNothingMeasured = errors.New("no record completed in the measured window")

// e2eHeader carries a record's intended send time (Unix nanoseconds,
// big-endian) for the e2e workload.
const e2eHeader = "raftka-bench-sent-ns"

// counter is a count of records and bytes, overall and in the window.
type counter struct {
	records, bytes             atomic.Int64
	windowRecords, windowBytes atomic.Int64
}

func (c *counter) add(bytes int, inWindow bool) {
	c.records.Add(1)
	c.bytes.Add(int64(bytes))
	if inWindow {
		c.windowRecords.Add(1)
		c.windowBytes.Add(int64(bytes))
	}
}

// runner is one run. The times start, measureStart and measureEnd are set
// before any load goroutine starts and are read-only afterwards.
type runner struct {
	ctx   context.Context // the run's; done when it is interrupted
	cfg   Config
	opts  RunOptions
	clock Clock
	topic string

	start, measureStart, measureEnd time.Time

	produced, consumed counter
	errs, windowErrs   atomic.Int64
	firstErr           atomic.Pointer[string]
	stopping           atomic.Bool // the load is ending: cancellation errors are not failures

	prodLat []*latencyRecorder // one per producer
	reqLat  []*latencyRecorder // Produce requests' wire time; one per producer
	e2eLat  []*latencyRecorder // one per consumer

	samplesMu sync.Mutex
	samples   []Sample
	// brokerWindow sums the brokers' figures over the measured window's
	// samples; guarded by samplesMu.
	brokerWindow brokerState
}

// Run runs cfg's workload against cfg.Brokers and returns its result. A
// cancelled ctx ends the run early; the result then covers what was
// measured, with Interrupted set.
func Run(ctx context.Context, cfg Config, opts RunOptions) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &runner{ctx: ctx, cfg: cfg, opts: opts, clock: opts.Clock}
	if r.clock == nil {
		r.clock = realClock{}
	}
	admCl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	adm.SetTimeoutMillis(int32(cfg.RequestTimeout.Milliseconds()))

	res := &Result{Workload: cfg.Workload}
	topic, partitions, created, createdIn, err := r.setupTopic(ctx, adm)
	if err != nil {
		return nil, err
	}
	r.topic, res.Topic, res.TopicCreateSeconds = topic, topic, createdIn.Seconds()
	res.Partitions = len(partitions)
	if md, err := adm.Metadata(ctx, topic); err == nil {
		res.ReplicationFactor = md.Topics[topic].Partitions.NumReplicas()
	}
	if created && !cfg.KeepTopic {
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), cfg.RequestTimeout)
			defer cancel()
			if _, err := adm.DeleteTopic(dctx, topic); err != nil {
				r.logf("could not delete topic %s: %v", topic, err)
			}
		}()
	}

	switch cfg.Workload {
	case WorkloadProduce:
		err = r.runProduce(ctx, res)
	case WorkloadE2E:
		err = r.runE2E(ctx, adm, partitions, res)
	case WorkloadConsume:
		err = r.runConsume(ctx, adm, partitions, res)
	}
	if err != nil {
		return nil, err
	}
	res.Interrupted = ctx.Err() != nil
	if p := r.firstErr.Load(); p != nil {
		res.FirstError = *p
	}
	return res, nil
}

func (r *runner) logf(format string, args ...any) {
	if r.opts.Logf != nil {
		r.opts.Logf(format, args...)
	}
}

func (r *runner) fail(err error) {
	r.errs.Add(1)
	if r.inWindow(r.clock.Now()) {
		r.windowErrs.Add(1)
	}
	s := err.Error()
	r.firstErr.CompareAndSwap(nil, &s)
}

// ignorable reports whether err is the client giving up because the run is
// ending or was interrupted, not a failure of the cluster.
func (r *runner) ignorable(err error) bool {
	return (r.stopping.Load() || r.ctx.Err() != nil) && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, kgo.ErrClientClosed))
}

// inWindow reports whether t is in the measured window.
func (r *runner) inWindow(t time.Time) bool {
	return !t.Before(r.measureStart) && t.Before(r.measureEnd)
}

// setupTopic creates the topic (or finds the named one) and waits until
// every partition has a leader. It returns the partition ids.
func (r *runner) setupTopic(ctx context.Context, adm *kadm.Client) (string, []int32, bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	topic, created := r.cfg.Topic, false
	if topic == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		topic = "raftka-bench-" + hex.EncodeToString(b[:])
	}
	exists := false
	if r.cfg.Topic != "" {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return "", nil, false, 0, fmt.Errorf("topic %s: %w", topic, err)
		}
		exists = td.Has(topic) && td[topic].Err == nil
	}
	if !exists {
		r.logf("creating topic %s: %d partitions, replication factor %d", topic, r.cfg.Partitions, r.cfg.Replicas)
		began := time.Now()
		resp, err := adm.CreateTopic(ctx, r.cfg.Partitions, r.cfg.Replicas, nil, topic)
		if err == nil && resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			err = resp.Err
			if resp.ErrMessage != "" {
				err = fmt.Errorf("%s: %w", resp.ErrMessage, err)
			}
		}
		if err != nil {
			return "", nil, false, 0, fmt.Errorf("create topic %s: %w", topic, err)
		}
		created = r.cfg.Topic == ""
		parts, err := waitLeaders(ctx, adm, topic, -1)
		return topic, parts, created, time.Since(began), err
	}
	parts, err := waitLeaders(ctx, adm, topic, -1)
	return topic, parts, created, 0, err
}

// waitLeaders polls metadata until topic has want partitions (any number
// if want < 0), each with a leader, and returns their ids in order.
func waitLeaders(ctx context.Context, adm *kadm.Client, topic string, want int) ([]int32, error) {
	var last error
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td := md.Topics[topic]
			switch {
			case td.Err != nil:
				err = td.Err
			case len(td.Partitions) == 0 || (want >= 0 && len(td.Partitions) != want):
				err = fmt.Errorf("%d partitions known so far", len(td.Partitions))
			default:
				var ids []int32
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 {
						err = fmt.Errorf("partition %d has no leader yet", p.Partition)
						break
					}
					ids = append(ids, p.Partition)
				}
				if err == nil {
					sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
					return ids, nil
				}
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("topic %s: waiting for partition leaders: %w (last: %v)", topic, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// producerOpts are the client options of one producer.
func (r *runner) producerOpts() ([]kgo.Opt, error) {
	acks, err := r.cfg.acks()
	if err != nil {
		return nil, err
	}
	codec, err := CompressionCodec(r.cfg.Compression)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.DefaultProduceTopic(r.topic),
		kgo.RequiredAcks(acks),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(r.cfg.Linger),
		kgo.ProducerBatchMaxBytes(r.cfg.BatchMaxBytes),
		kgo.MaxBufferedRecords(r.cfg.MaxBufferedRecords),
	}
	if !r.cfg.Idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return opts, nil
}

// producer is one load-generating client.
type producer struct {
	r   *runner
	cl  *kgo.Client
	gen *recordGen
	lat *latencyRecorder
	e2e bool
}

func (r *runner) newProducers(n int, e2e bool) ([]*producer, error) {
	opts, err := r.producerOpts()
	if err != nil {
		return nil, err
	}
	payload := newPayload(r.cfg)
	keys := newKeys(r.cfg)
	var out []*producer
	for i := range n {
		req := newLatencyRecorder()
		cl, err := kgo.NewClient(append(opts, kgo.WithHooks(requestTimer{r: r, lat: req}))...)
		if err != nil {
			for _, p := range out {
				p.cl.Close()
			}
			return nil, err
		}
		lat := newLatencyRecorder()
		r.prodLat = append(r.prodLat, lat)
		r.reqLat = append(r.reqLat, req)
		out = append(out, &producer{r: r, cl: cl, gen: newRecordGen(r.cfg, payload, keys, uint64(i)), lat: lat, e2e: e2e})
	}
	return out, nil
}

// requestTimer records the wire time of a producer's Produce requests.
type requestTimer struct {
	r   *runner
	lat *latencyRecorder
}

var _ kgo.HookBrokerE2E = requestTimer{}

// OnBrokerE2E records a Produce request that was written and answered.
func (t requestTimer) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key != kmsg.Produce.Int16() || e2e.Err() != nil {
		return
	}
	t.lat.record(e2e.DurationE2E(), t.r.inWindow(t.r.clock.Now()))
}

// send produces one record whose intended send time is intended.
func (p *producer) send(ctx context.Context, intended time.Time) {
	rec := p.gen.next()
	if p.e2e {
		var ts [8]byte
		binary.BigEndian.PutUint64(ts[:], uint64(intended.UnixNano()))
		rec.Headers = []kgo.RecordHeader{{Key: e2eHeader, Value: ts[:]}}
	}
	size := len(rec.Key) + len(rec.Value)
	p.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
		r := p.r
		if err != nil {
			if !r.ignorable(err) {
				r.fail(err)
			}
			return
		}
		now := r.clock.Now()
		r.produced.add(size, r.inWindow(now))
		p.lat.record(now.Sub(intended), r.inWindow(intended))
	})
}

// load drives one producer until the end of the window: on the open-loop
// schedule at a target rate, else as fast as the client accepts records.
func (p *producer) load(ctx context.Context, idx, of int) {
	r := p.r
	if r.cfg.Rate > 0 {
		rate := r.cfg.Rate / float64(of)
		// Stagger the producers so their sends interleave evenly.
		first := r.start.Add(time.Duration(float64(idx) * 1e9 / r.cfg.Rate))
		Pace(ctx, r.clock, NewSchedule(first, rate), r.measureEnd, func(t time.Time) { p.send(ctx, t) })
		return
	}
	for ctx.Err() == nil {
		now := r.clock.Now()
		if !now.Before(r.measureEnd) {
			return
		}
		p.send(ctx, now)
	}
}

// beginLoad fixes the run's timeline from now.
func (r *runner) beginLoad() {
	r.start = r.clock.Now()
	r.measureStart = r.start.Add(r.cfg.Warmup)
	r.measureEnd = r.measureStart.Add(r.cfg.Duration)
}

// driveProducers runs the producers to the end of the window, then flushes
// them, waiting up to DrainTimeout. It returns when sending stopped.
func (r *runner) driveProducers(ctx context.Context, ps []*producer) time.Time {
	// A producer whose buffer is full blocks in Produce until a record is
	// acknowledged. If the cluster stops acknowledging, only a deadline
	// ends that wait: a drain timeout after the window, records still
	// waiting fail (and count as errors) instead of hanging the run.
	lctx, lcancel := context.WithTimeout(ctx, r.measureEnd.Sub(r.clock.Now())+r.cfg.DrainTimeout)
	defer lcancel()
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { p.load(lctx, i, len(ps)) })
	}
	wg.Wait()
	stopped := r.clock.Now()
	r.logf("sending stopped; waiting up to %v for outstanding acknowledgements", r.cfg.DrainTimeout)
	fctx, cancel := context.WithTimeout(context.Background(), r.cfg.DrainTimeout)
	defer cancel()
	go func() { // an interrupt also ends the drain
		select {
		case <-ctx.Done():
			cancel()
		case <-fctx.Done():
		}
	}()
	for _, p := range ps {
		wg.Go(func() {
			if err := p.cl.Flush(fctx); err != nil && ctx.Err() == nil {
				r.fail(fmt.Errorf("flush: %w", err))
			}
		})
	}
	wg.Wait()
	return stopped
}

func closeProducers(ps []*producer) {
	for _, p := range ps {
		p.cl.Close()
	}
}

func (r *runner) runProduce(ctx context.Context, res *Result) error {
	ps, err := r.newProducers(r.cfg.Producers, false)
	if err != nil {
		return err
	}
	defer closeProducers(ps)
	r.beginLoad()
	stopSampler := r.startSampler(r.prodLat)
	stopped := r.driveProducers(ctx, ps)
	r.stopping.Store(true)
	stopSampler()
	r.finish(res, stopped)
	return nil
}

func (r *runner) runE2E(ctx context.Context, adm *kadm.Client, partitions []int32, res *Result) error {
	// Consume from the current end, fixed before producing starts, so no
	// record of this run is missed and none from before is counted.
	offsets, err := listOffsets(ctx, adm, r.topic, r.cfg.RequestTimeout, false)
	if err != nil {
		return err
	}
	cs, err := r.newConsumers(partitions, offsets, true)
	if err != nil {
		return err
	}
	defer closeConsumers(cs)
	ps, err := r.newProducers(r.cfg.Producers, true)
	if err != nil {
		return err
	}
	defer closeProducers(ps)

	r.beginLoad()
	stopSampler := r.startSampler(r.e2eLat)
	cctx, cancelConsumers := context.WithCancel(ctx)
	var cwg sync.WaitGroup
	for _, c := range cs {
		cwg.Go(func() { c.load(cctx) })
	}
	stopped := r.driveProducers(ctx, ps)
	// Wait for the consumers to receive everything acknowledged.
	r.logf("waiting up to %v for consumers to receive every acknowledged record", r.cfg.DrainTimeout)
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	for ctx.Err() == nil && r.consumed.records.Load() < r.produced.records.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := r.consumed.records.Load(), r.produced.records.Load(); got < want && ctx.Err() == nil {
		r.fail(fmt.Errorf("consumers received %d of %d acknowledged records within %v", got, want, r.cfg.DrainTimeout))
	}
	r.stopping.Store(true)
	cancelConsumers()
	cwg.Wait()
	stopSampler()
	r.finish(res, stopped)
	return nil
}

func (r *runner) runConsume(ctx context.Context, adm *kadm.Client, partitions []int32, res *Result) error {
	if n := r.cfg.fillRecords(); n > 0 {
		fill, err := r.fill(ctx, n)
		if err != nil {
			return err
		}
		res.Fill = fill
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	start, err := listOffsets(ctx, adm, r.topic, r.cfg.RequestTimeout, true)
	if err != nil {
		return err
	}
	end, err := listOffsets(ctx, adm, r.topic, r.cfg.RequestTimeout, false)
	if err != nil {
		return err
	}
	var total int64
	for p, off := range end {
		total += off - start[p]
	}
	if total == 0 {
		return fmt.Errorf("topic %s has no records to consume; fill it with --fill-records", r.topic)
	}
	r.logf("consuming %d records", total)
	cs, err := r.newConsumers(partitions, start, false)
	if err != nil {
		return err
	}
	defer closeConsumers(cs)
	r.beginLoad()
	stopSampler := r.startSampler(nil)
	cctx, cancelConsumers := context.WithCancel(ctx)
	var cwg sync.WaitGroup
	for _, c := range cs {
		cwg.Go(func() { c.load(cctx) })
	}
	// Run to the end of the window or of the records, whichever is first.
	stopped := r.measureEnd
	for ctx.Err() == nil {
		now := r.clock.Now()
		if !now.Before(r.measureEnd) {
			break
		}
		if r.consumed.records.Load() >= total {
			stopped = now
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ctx.Err() != nil {
		stopped = r.clock.Now()
	}
	r.stopping.Store(true)
	cancelConsumers()
	cwg.Wait()
	stopSampler()
	r.finish(res, stopped)
	return nil
}

// fill writes n records at maximum rate, before a consume run.
func (r *runner) fill(ctx context.Context, n int64) (*Throughput, error) {
	r.logf("filling topic %s with %d records of %s bytes", r.topic, n, r.cfg.RecordSize)
	ps, err := r.newProducers(max(r.cfg.Producers, 1), false)
	if err != nil {
		return nil, err
	}
	defer closeProducers(ps)
	r.prodLat, r.reqLat = nil, nil // the fill is not part of the results
	var sent atomic.Int64
	var bytes, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	began := time.Now()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			for ctx.Err() == nil && sent.Add(1) <= n {
				rec := p.gen.next()
				size := int64(len(rec.Key) + len(rec.Value))
				p.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					bytes.Add(size)
				})
			}
			if err := p.cl.Flush(ctx); err != nil {
				firstErr.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("filling topic %s: %d records failed, first: %w", r.topic, failed.Load(), *e)
	}
	el := time.Since(began).Seconds()
	recs := min(sent.Load(), n) - failed.Load()
	t := &Throughput{Records: recs, Bytes: bytes.Load(), RecordsPerSec: float64(recs) / el, MBPerSec: float64(bytes.Load()) / 1e6 / el}
	r.logf("filled in %.1fs: %.0f records/s, %.1f MB/s", el, t.RecordsPerSec, t.MBPerSec)
	return t, nil
}

// listOffsets returns the start (or end) offset of every partition.
func listOffsets(ctx context.Context, adm *kadm.Client, topic string, timeout time.Duration, start bool) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lo kadm.ListedOffsets
	var err error
	if start {
		lo, err = adm.ListStartOffsets(ctx, topic)
	} else {
		lo, err = adm.ListEndOffsets(ctx, topic)
	}
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("topic %s: list offsets: %w", topic, err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// consumer is one reading client with its share of the partitions.
type consumer struct {
	r   *runner
	cl  *kgo.Client
	lat *latencyRecorder
	e2e bool
}

func (r *runner) newConsumers(partitions []int32, from map[int32]int64, e2e bool) ([]*consumer, error) {
	n := min(r.cfg.Consumers, len(partitions))
	if n < r.cfg.Consumers {
		r.logf("only %d of %d consumers have a partition to read", n, r.cfg.Consumers)
	}
	assign := make([]map[int32]kgo.Offset, n)
	for i := range assign {
		assign[i] = map[int32]kgo.Offset{}
	}
	for i, p := range partitions {
		assign[i%n][p] = kgo.NewOffset().At(from[p])
	}
	var out []*consumer
	for i := range n {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(r.cfg.Brokers...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: assign[i]}),
			kgo.FetchMaxWait(500*time.Millisecond),
		)
		if err != nil {
			closeConsumers(out)
			return nil, err
		}
		lat := newLatencyRecorder()
		r.e2eLat = append(r.e2eLat, lat)
		out = append(out, &consumer{r: r, cl: cl, lat: lat, e2e: e2e})
	}
	return out, nil
}

func closeConsumers(cs []*consumer) {
	for _, c := range cs {
		c.cl.Close()
	}
}

// load polls until ctx ends, counting records and, for e2e, their latency
// from the intended send time in their header.
func (c *consumer) load(ctx context.Context) {
	r := c.r
	for {
		fs := c.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !r.ignorable(err) {
				r.fail(fmt.Errorf("fetch: %w", err))
			}
		})
		now := r.clock.Now()
		in := r.inWindow(now)
		fs.EachRecord(func(rec *kgo.Record) {
			r.consumed.add(len(rec.Key)+len(rec.Value), in)
			if !c.e2e {
				return
			}
			for _, h := range rec.Headers {
				if h.Key == e2eHeader && len(h.Value) == 8 {
					sent := time.Unix(0, int64(binary.BigEndian.Uint64(h.Value)))
					c.lat.record(now.Sub(sent), r.inWindow(sent))
					break
				}
			}
		})
	}
}

// startSampler samples the run once a second until the returned function
// is called. lat is the run's main latency (nil for none).
func (r *runner) startSampler(lat []*latencyRecorder) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var prevP, prevPB, prevC, prevCB, prevE int64
		prev := r.start
		prevUse := readProcessUsage()
		var prevBrokers brokerState
		if len(r.opts.Brokers) > 0 {
			prevBrokers = readBrokers(r.opts.Brokers)
		}
		h, hreq := newHistogram(), newHistogram()
		for {
			final := false
			select {
			case <-done:
				// A last, partial interval, unless it is too short to mean
				// anything.
				if r.clock.Now().Sub(prev) < 100*time.Millisecond {
					return
				}
				final = true
			case <-t.C:
			}
			now := r.clock.Now()
			dt := now.Sub(prev).Seconds()
			mid := prev.Add(now.Sub(prev) / 2) // the phase of the interval is that of its middle
			prev = now
			p, pb := r.produced.records.Load(), r.produced.bytes.Load()
			c, cb := r.consumed.records.Load(), r.consumed.bytes.Load()
			e := r.errs.Load()
			s := Sample{
				T:                now.Sub(r.start).Seconds(),
				Phase:            r.phase(mid),
				ProducedPerSec:   float64(p-prevP) / dt,
				ProducedMBPerSec: float64(pb-prevPB) / 1e6 / dt,
				ConsumedPerSec:   float64(c-prevC) / dt,
				ConsumedMBPerSec: float64(cb-prevCB) / 1e6 / dt,
				Errors:           e - prevE,
			}
			prevP, prevPB, prevC, prevCB, prevE = p, pb, c, cb, e
			use := readProcessUsage()
			s.Process = use.since(prevUse, dt)
			prevUse = use
			var brokers brokerState
			if len(r.opts.Brokers) > 0 {
				cur := readBrokers(r.opts.Brokers)
				brokers = cur.since(prevBrokers)
				prevBrokers = cur
				s.Brokers = brokers.sample()
			}
			if lat != nil {
				h.Reset()
				for _, l := range lat {
					l.drainInterval(h)
				}
				s.Latency = intervalLatency(h)
			}
			if len(r.reqLat) > 0 {
				hreq.Reset()
				for _, l := range r.reqLat {
					l.drainInterval(hreq)
				}
				s.Requests = intervalLatency(hreq)
			}
			r.samplesMu.Lock()
			r.samples = append(r.samples, s)
			if s.Brokers != nil && s.Phase == phaseMeasure {
				r.brokerWindow = r.brokerWindow.plus(brokers)
			}
			r.samplesMu.Unlock()
			if r.opts.Progress != nil {
				r.opts.Progress(s)
			}
			if final {
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// Phases of a run, as in Sample.Phase.
const (
	phaseWarmup  = "warmup"
	phaseMeasure = "measure"
	phaseDrain   = "drain"
)

func (r *runner) phase(t time.Time) string {
	switch {
	case t.Before(r.measureStart):
		return phaseWarmup
	case t.Before(r.measureEnd):
		return phaseMeasure
	}
	return phaseDrain
}

func intervalLatency(h *hdrhistogram.Histogram) *IntervalLatency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return &IntervalLatency{
		Count: h.TotalCount(),
		P50Ms: ms(h.ValueAtQuantile(50)), P90Ms: ms(h.ValueAtQuantile(90)), P99Ms: ms(h.ValueAtQuantile(99)),
		P999Ms: ms(h.ValueAtQuantile(99.9)), MaxMs: ms(h.Max()),
	}
}

// finish fills res from the counters; stopped is when the load ended.
func (r *runner) finish(res *Result, stopped time.Time) {
	res.Started = r.start
	end := r.measureEnd
	if stopped.Before(end) {
		end = stopped
	}
	window := math.Max(end.Sub(r.measureStart).Seconds(), 0)
	res.WindowSeconds = window
	tp := func(c *counter) *Throughput {
		t := &Throughput{Records: c.windowRecords.Load(), Bytes: c.windowBytes.Load()}
		if window > 0 {
			t.RecordsPerSec = float64(t.Records) / window
			t.MBPerSec = float64(t.Bytes) / 1e6 / window
		}
		return t
	}
	merged := func(ls []*latencyRecorder) *LatencySummary {
		h := newHistogram()
		for _, l := range ls {
			l.mergeWindow(h)
		}
		s := Summarize(h)
		return &s
	}
	switch r.cfg.Workload {
	case WorkloadProduce:
		res.Produced = tp(&r.produced)
		res.ProduceLatency = merged(r.prodLat)
		res.RequestLatency = merged(r.reqLat)
	case WorkloadE2E:
		res.Produced = tp(&r.produced)
		res.Consumed = tp(&r.consumed)
		res.ProduceLatency = merged(r.prodLat)
		res.RequestLatency = merged(r.reqLat)
		res.E2ELatency = merged(r.e2eLat)
	case WorkloadConsume:
		res.Consumed = tp(&r.consumed)
	}
	res.Errors = r.windowErrs.Load()
	res.ErrorsTotal = r.errs.Load()
	r.samplesMu.Lock()
	res.Samples = append([]Sample(nil), r.samples...)
	if len(r.opts.Brokers) > 0 {
		res.Brokers = r.brokerWindow.sample()
	}
	r.samplesMu.Unlock()
}
