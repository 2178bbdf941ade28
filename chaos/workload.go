package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WorkloadConfig describes the clients of a run.
type WorkloadConfig struct {
	Brokers    []string
	Topic      string
	Partitions int32
	// Producers is the number of idempotent acks=all producers.
	Producers int
	// Readers is the number of readers that assign every partition and
	// read from offset 0.
	Readers int
	// Group is the consumer group of the GroupReaders; empty runs none.
	// They run only if the cluster answers FindCoordinator.
	Group        string
	GroupReaders int
	// Rate is the sends per second of all producers together.
	Rate int
	// PoisonEvery sends, once per this interval, a record larger than
	// the topic's max.message.bytes from a separate producer, which the
	// broker must reject (a definite failure, for the aborted-read
	// check); 0 sends none.
	PoisonEvery time.Duration
	// PoisonBytes is the size of a poison record's value.
	PoisonBytes int
	History     *History
	Logger      *slog.Logger
}

// clientOpts are the options every client of the workload shares: short
// timeouts, so a connection into a partition is given up in seconds, and
// fresh metadata, so leader changes are followed quickly.
func clientOpts(brokers []string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.DialTimeout(2 * time.Second),
		kgo.RequestTimeoutOverhead(3 * time.Second),
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.MetadataMaxAge(5 * time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}
}

// Workload runs producers and readers against a topic and records what
// they see in the history.
type Workload struct {
	cfg WorkloadConfig
	log *slog.Logger
	h   *History

	produceCtx    context.Context
	stopProducing context.CancelFunc
	producers     sync.WaitGroup

	readCtx     context.Context
	stopReading context.CancelFunc
	readers     []*reader
	readersWG   sync.WaitGroup
}

// StartWorkload starts the clients. The topic must exist.
func StartWorkload(ctx context.Context, cfg WorkloadConfig) (*Workload, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Workload{cfg: cfg, log: cfg.Logger, h: cfg.History}
	w.produceCtx, w.stopProducing = context.WithCancel(context.WithoutCancel(ctx))
	w.readCtx, w.stopReading = context.WithCancel(context.WithoutCancel(ctx))
	ok := false
	defer func() {
		if !ok {
			w.stopProducing()
			w.stopReading()
			w.producers.Wait()
			w.readersWG.Wait()
		}
	}()
	for i := range cfg.Readers {
		r, err := w.newAssignReader(fmt.Sprintf("r%d", i+1))
		if err != nil {
			return nil, err
		}
		w.startReader(r)
	}
	if cfg.Group != "" && cfg.GroupReaders > 0 {
		if err := probeGroups(ctx, cfg.Brokers, cfg.Group); err != nil {
			note := fmt.Sprintf("consumer-group readers skipped: the cluster does not serve consumer groups (%v)", err)
			w.log.Warn(note)
			w.h.Append(Op{Type: OpNote, Process: "g1", Error: note})
		} else {
			for i := range cfg.GroupReaders {
				r, err := w.newGroupReader(fmt.Sprintf("g%d", i+1))
				if err != nil {
					return nil, err
				}
				w.startReader(r)
			}
		}
	}
	rate := max(cfg.Rate/max(cfg.Producers, 1), 1)
	for i := range cfg.Producers {
		p, err := kgo.NewClient(append(clientOpts(cfg.Brokers),
			kgo.DefaultProduceTopic(cfg.Topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(2*time.Millisecond),
			kgo.ProduceRequestTimeout(5*time.Second),
			kgo.RecordDeliveryTimeout(10*time.Second),
			kgo.MaxBufferedRecords(1000),
		)...)
		if err != nil {
			return nil, err
		}
		w.producers.Go(func() { w.produce(p, fmt.Sprintf("p%d", i+1), i, rate) })
	}
	if cfg.PoisonEvery > 0 {
		p, err := kgo.NewClient(append(clientOpts(cfg.Brokers),
			kgo.DefaultProduceTopic(cfg.Topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.DisableIdempotentWrite(),
			// Uncompressed, so the batch on the wire is as large as
			// the record (max.message.bytes limits the wire size).
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.ProduceRequestTimeout(5*time.Second),
			kgo.RecordDeliveryTimeout(10*time.Second),
		)...)
		if err != nil {
			return nil, err
		}
		w.h.Append(Op{Type: OpNote, Process: "x1", Error: fmt.Sprintf(
			"x1 sends a %d-byte record every %v, over the topic's max.message.bytes: the broker must reject each (the failed sends), and none may be read",
			cfg.PoisonBytes, cfg.PoisonEvery)})
		w.producers.Go(func() { w.poison(p, "x1") })
	}
	ok = true
	return w, nil
}

// probeGroups asks for the group's coordinator, to learn whether the
// cluster serves consumer groups at all. Retriable answers (a coordinator
// still being elected) are retried for a while.
func probeGroups(ctx context.Context, brokers []string, group string) error {
	cl, err := kgo.NewClient(clientOpts(brokers)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		err := findCoordinator(ctx, cl, group)
		if err == nil || !kerr.IsRetriable(err) {
			return err
		}
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return fmt.Errorf("%w (still, after 20s)", err)
		}
	}
}

func findCoordinator(ctx context.Context, cl *kgo.Client, group string) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = group
	req.CoordinatorKeys = []string{group}
	resp, err := req.RequestWith(rctx, cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	for _, c := range resp.Coordinators {
		if err := kerr.ErrorForCode(c.ErrorCode); err != nil {
			return err
		}
	}
	return nil
}

// produce sends unique values at rate per second, round-robin over the
// partitions, until the workload stops producing; then it flushes what is
// buffered (for a while) and closes the client, which fails the rest.
func (w *Workload) produce(cl *kgo.Client, process string, index, rate int) {
	defer cl.Close()
	const inflight = 200
	slots := make(chan struct{}, inflight)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var pending sync.WaitGroup
	for seq := 0; ; seq++ {
		select {
		case <-w.produceCtx.Done():
			flushCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			if err := cl.Flush(flushCtx); err != nil {
				w.log.Warn("producer flush incomplete; the rest are unknown", "process", process, "err", err)
			}
			cancel()
			cl.Close()
			pending.Wait()
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		case <-w.produceCtx.Done():
			continue
		}
		value := fmt.Sprintf("%s-%d", process, seq)
		rec := &kgo.Record{Key: []byte(value), Value: []byte(value),
			Partition: int32((seq + index) % int(w.cfg.Partitions))}
		start := time.Now()
		pending.Add(1)
		// The record's own context is never canceled: canceling could
		// fail records already sent, whose outcome is then unknown.
		cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
			defer pending.Done()
			defer func() { <-slots }()
			op := Op{Type: OpSend, Process: process, Start: start, Partition: r.Partition, Offset: -1, Value: value}
			op.Outcome, op.Error = classifySend(err)
			if err == nil {
				op.Offset = r.Offset
			}
			w.h.Append(op)
		})
	}
}

// poison sends records larger than the topic's max.message.bytes, one at
// a time, each of which the broker must reject.
func (w *Workload) poison(cl *kgo.Client, process string) {
	defer cl.Close()
	tick := time.NewTicker(w.cfg.PoisonEvery)
	defer tick.Stop()
	pad := strings.Repeat("x", w.cfg.PoisonBytes)
	for seq := 0; ; seq++ {
		select {
		case <-w.produceCtx.Done():
			return
		case <-tick.C:
		}
		value := fmt.Sprintf("%s-%d", process, seq)
		rec := &kgo.Record{Key: []byte(value), Value: []byte(value + "|" + pad), Partition: int32(seq % int(w.cfg.Partitions))}
		start := time.Now()
		err := cl.ProduceSync(context.Background(), rec).FirstErr()
		op := Op{Type: OpSend, Process: process, Start: start, Partition: rec.Partition, Offset: -1, Value: value}
		op.Outcome, op.Error = classifySend(err)
		if err == nil {
			op.Offset = rec.Offset
		}
		w.h.Append(op)
	}
}

// definiteErrors are the produce errors after which the record certainly
// was not written: the broker rejects the batch for what it is, and would
// have rejected every earlier attempt of it too.
var definiteErrors = []error{
	kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.InvalidTopicException,
	kerr.InvalidRequiredAcks, kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed,
	kerr.TransactionalIDAuthorizationFailed, kerr.UnsupportedForMessageFormat, kerr.PolicyViolation,
	kerr.InvalidTimestamp,
	kgo.ErrMaxBuffered, // never buffered, so never sent
}

// classifySend turns a produce result into an outcome. Anything not known
// to be definite is unknown: a timed-out or retried-out record may have
// been written by an attempt whose answer was lost.
func classifySend(err error) (outcome, msg string) {
	if err == nil {
		return OutcomeOK, ""
	}
	for _, d := range definiteErrors {
		if errors.Is(err, d) {
			return OutcomeFail, err.Error()
		}
	}
	return OutcomeUnknown, err.Error()
}

// reader is one consuming client and its progress.
type reader struct {
	process string
	cl      *kgo.Client
	group   bool
	mu      struct {
		sync.Mutex
		next map[int32]int64 // partition → next offset to read
	}
}

func (r *reader) position(p int32) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.next[p]
}

// newAssignReader returns a reader of every partition from offset 0,
// without a group.
func (w *Workload) newAssignReader(process string) (*reader, error) {
	parts := map[int32]kgo.Offset{}
	for p := range w.cfg.Partitions {
		parts[p] = kgo.NewOffset().At(0)
	}
	cl, err := kgo.NewClient(append(clientOpts(w.cfg.Brokers),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{w.cfg.Topic: parts}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return nil, err
	}
	r := &reader{process: process, cl: cl}
	r.mu.next = map[int32]int64{}
	for p := range w.cfg.Partitions {
		w.h.Append(Op{Type: OpSeek, Process: process, Partition: p, Offset: 0})
	}
	return r, nil
}

// newGroupReader returns a reader in the workload's consumer group; it
// commits what it read every second.
func (w *Workload) newGroupReader(process string) (*reader, error) {
	r := &reader{process: process, group: true}
	r.mu.next = map[int32]int64{}
	cl, err := kgo.NewClient(append(clientOpts(w.cfg.Brokers),
		kgo.ConsumerGroup(w.cfg.Group),
		kgo.ConsumeTopics(w.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(10*time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			for _, p := range a[w.cfg.Topic] {
				// Where it resumes is the committed offset, which
				// the client looks up: unknown here.
				w.h.Append(Op{Type: OpSeek, Process: process, Group: w.cfg.Group, Partition: p, Offset: -1})
			}
		}),
	)...)
	if err != nil {
		return nil, err
	}
	r.cl = cl
	return r, nil
}

func (w *Workload) startReader(r *reader) {
	w.readers = append(w.readers, r)
	w.readersWG.Go(func() { w.read(r) })
}

// read polls until the workload stops reading, recording every record and
// fetch error; a group reader commits every second.
func (w *Workload) read(r *reader) {
	defer r.cl.Close()
	lastCommit := time.Now()
	lastObserve := time.Now()
	for {
		fs := r.cl.PollFetches(w.readCtx)
		if w.readCtx.Err() != nil {
			if r.group {
				r.cl.AllowRebalance()
			}
			return
		}
		fs.EachError(func(_ string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			w.h.Append(Op{Type: OpFetchError, Process: r.process, Partition: p, Offset: r.position(p), Error: err.Error()})
		})
		fs.EachRecord(func(rec *kgo.Record) {
			w.h.Append(Op{Type: OpPoll, Process: r.process, Group: groupOf(r, w.cfg.Group),
				Partition: rec.Partition, Offset: rec.Offset, Value: string(rec.Key)})
			r.mu.Lock()
			r.mu.next[rec.Partition] = rec.Offset + 1
			r.mu.Unlock()
		})
		if !r.group {
			continue
		}
		if time.Since(lastCommit) >= time.Second {
			lastCommit = time.Now()
			w.commit(r)
		}
		r.cl.AllowRebalance()
		if time.Since(lastObserve) >= 2*time.Second {
			lastObserve = time.Now()
			w.observeCommitted(r)
		}
	}
}

func groupOf(r *reader, group string) string {
	if r.group {
		return group
	}
	return ""
}

// commit commits what r has read and records each partition's outcome.
func (w *Workload) commit(r *reader) {
	offsets := r.cl.UncommittedOffsets()
	if len(offsets) == 0 {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(w.readCtx, 10*time.Second)
	defer cancel()
	r.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		now := time.Now()
		codes := map[int32]int16{}
		if resp != nil {
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					codes[p.Partition] = p.ErrorCode
				}
			}
		}
		for p, eo := range offsets[w.cfg.Topic] {
			op := Op{Type: OpCommit, Process: r.process, Group: w.cfg.Group, Time: now, Start: start, Partition: p, Offset: eo.Offset}
			switch code, answered := codes[p]; {
			case err != nil:
				op.Outcome, op.Error = OutcomeUnknown, err.Error()
			case !answered:
				op.Outcome, op.Error = OutcomeUnknown, "no answer for the partition"
			case code != 0:
				op.Outcome, op.Error = OutcomeFail, kerr.ErrorForCode(code).Error()
			default:
				op.Outcome = OutcomeOK
			}
			w.h.Append(op)
		}
	})
}

// observeCommitted reads the group's committed offsets back.
func (w *Workload) observeCommitted(r *reader) {
	ctx, cancel := context.WithTimeout(w.readCtx, 5*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(r.cl).FetchOffsets(ctx, w.cfg.Group)
	if err != nil {
		return
	}
	now := time.Now()
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic != w.cfg.Topic || o.Err != nil {
			return
		}
		w.h.Append(Op{Type: OpCommitted, Process: r.process, Group: w.cfg.Group, Time: now, Partition: o.Partition, Offset: o.At})
	})
}

// GroupReaders returns how many consumer-group readers run.
func (w *Workload) GroupReaders() int {
	n := 0
	for _, r := range w.readers {
		if r.group {
			n++
		}
	}
	return n
}

// StopProducing stops the producers: each flushes what it buffered (for up
// to 20 s) and closes. It returns when all are done.
func (w *Workload) StopProducing() {
	w.stopProducing()
	w.producers.Wait()
}

// EndOffsets lists the topic's end offsets, repeating until two listings
// in a row agree (a leader that has just taken over may still be behind),
// for up to d.
func EndOffsets(ctx context.Context, brokers []string, topic string, partitions int32, d time.Duration) (map[int32]int64, error) {
	cl, err := kgo.NewClient(clientOpts(brokers)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var prev map[int32]int64
	var lastErr error
	for {
		cur, err := listEnds(ctx, adm, topic, partitions)
		if err == nil && prev != nil && equalEnds(prev, cur) {
			return cur, nil
		}
		if err == nil {
			prev = cur
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if prev != nil {
				return prev, nil
			}
			return nil, fmt.Errorf("end offsets of %s: %w (last error: %v)", topic, ctx.Err(), lastErr)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func listEnds(ctx context.Context, adm *kadm.Client, topic string, partitions int32) (map[int32]int64, error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	listed, err := adm.ListEndOffsets(lctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	var errs []error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", o.Partition, o.Err))
			return
		}
		out[o.Partition] = o.Offset
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if int32(len(out)) != partitions {
		return nil, fmt.Errorf("listed %d of %d partitions", len(out), partitions)
	}
	return out, nil
}

func equalEnds(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for p, o := range a {
		if b[p] != o {
			return false
		}
	}
	return true
}

// CatchUp waits, for up to d, until every reader has read every
// partition up to ends, then stops the readers and records each reader's
// final position (the group reader's does not decide completeness: it
// starts from the committed offsets).
func (w *Workload) CatchUp(ends map[int32]int64, d time.Duration) {
	deadline := time.Now().Add(d)
	done := func() bool {
		for _, r := range w.readers {
			if r.group {
				continue // it may own only some partitions
			}
			for p, end := range ends {
				if r.position(p) < end {
					return false
				}
			}
		}
		return true
	}
	for !done() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	w.stopReading()
	w.readersWG.Wait()
	for _, r := range w.readers {
		for p := range w.cfg.Partitions {
			end := ends[p]
			w.h.Append(Op{Type: OpFinal, Process: r.process, Group: groupOf(r, w.cfg.Group), Partition: p, Offset: end,
				Complete: !r.group && r.position(p) >= end})
		}
	}
}

// FinalRead reads every partition from offset 0 up to ends with a fresh
// client, recording polls and a final op per partition, for up to d.
func FinalRead(ctx context.Context, brokers []string, topic string, ends map[int32]int64, h *History, d time.Duration) {
	const process = "final"
	parts := map[int32]kgo.Offset{}
	next := map[int32]int64{}
	for p, end := range ends {
		if end > 0 {
			parts[p] = kgo.NewOffset().At(0)
			h.Append(Op{Type: OpSeek, Process: process, Partition: p, Offset: 0})
		}
	}
	finish := func() {
		for p, end := range ends {
			h.Append(Op{Type: OpFinal, Process: process, Partition: p, Offset: end, Complete: next[p] >= end})
		}
	}
	if len(parts) == 0 {
		finish()
		return
	}
	cl, err := kgo.NewClient(append(clientOpts(brokers),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		finish()
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	remaining := func() bool {
		for p, end := range ends {
			if next[p] < end {
				return true
			}
		}
		return false
	}
	for remaining() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachError(func(_ string, p int32, err error) {
			h.Append(Op{Type: OpFetchError, Process: process, Partition: p, Offset: next[p], Error: err.Error()})
		})
		fs.EachRecord(func(rec *kgo.Record) {
			h.Append(Op{Type: OpPoll, Process: process, Partition: rec.Partition, Offset: rec.Offset, Value: string(rec.Key)})
			next[rec.Partition] = rec.Offset + 1
		})
	}
	finish()
}
