// Package bench generates load against Raftka or any Kafka endpoint and
// measures it, and measures the storage ceiling that broker results are
// compared with.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/raftka/raftka/storage"
)

// StorageConfig configures a storage ceiling run: synced batches of records
// written straight to a Pebble engine, as a broker's log writes would be
// with no Raft, no network and no Kafka protocol in between.
type StorageConfig struct {
	// Dir is where the Pebble engine is created. It should be on the disk
	// the broker would use.
	Dir string
	// RecordSize is the value size of one record in bytes.
	RecordSize int
	// BatchRecords is the number of records per synced batch.
	BatchRecords int
	// ValueRecords is the number of records stored under one key; 0 means
	// 1. A broker stores a produced record batch as one Raft entry, one
	// key, so a value of many records writes as a broker's log does; one
	// record per key costs the engine a key per record and so measures a
	// lower, more conservative ceiling.
	ValueRecords int
	// Writers is the number of concurrent committers; Pebble shares one
	// fsync among concurrent commits, as a broker's group commit does.
	Writers int
	// Duration bounds the run; 0 means until Records are written.
	Duration time.Duration
	// Warmup is written before Duration and not counted: Pebble starts
	// with an empty memtable and no flush or compaction running, which is
	// not the steady state a broker's latency is compared with.
	Warmup time.Duration
	// Records, if > 0, stops the run after this many records (warm-up
	// included).
	Records int64
	// Payload is PayloadRandom (the default when empty), PayloadText or
	// PayloadZeros: the same record contents a produce run sends, since
	// Pebble compresses what it can.
	Payload string
	// Rate, if > 0, is the target records/s over all writers: each writer
	// commits its batches on an open-loop schedule (see Schedule), and a
	// commit's latency counts from when its batch was due, so that a slow
	// fsync shows in every batch it delayed. A writer that falls behind
	// commits all its overdue batches at once (up to about 8 MiB), as a
	// broker's group commit does. This is the engine's own latency at a
	// given load, the floor under a broker's produce latency at the same
	// rate. 0 writes as fast as the engine allows and counts each commit
	// from its start.
	Rate float64
}

// Validate returns every problem with c at once.
func (c StorageConfig) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir is required"))
	}
	if c.RecordSize <= 0 {
		errs = append(errs, fmt.Errorf("record size must be > 0, got %d", c.RecordSize))
	}
	if c.BatchRecords <= 0 {
		errs = append(errs, fmt.Errorf("batch records must be > 0, got %d", c.BatchRecords))
	}
	if c.ValueRecords < 0 {
		errs = append(errs, fmt.Errorf("value records must be >= 0, got %d", c.ValueRecords))
	}
	if c.Writers <= 0 {
		errs = append(errs, fmt.Errorf("writers must be > 0, got %d", c.Writers))
	}
	switch c.Payload {
	case "", PayloadRandom, PayloadText, PayloadZeros:
	default:
		errs = append(errs, fmt.Errorf("payload must be %s, %s or %s, got %q", PayloadRandom, PayloadText, PayloadZeros, c.Payload))
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		errs = append(errs, fmt.Errorf("rate must be >= 0 records/s (0: as fast as possible), got %v", c.Rate))
	}
	if c.Warmup < 0 || (c.Warmup > 0 && c.Duration == 0) {
		errs = append(errs, fmt.Errorf("warm-up must be >= 0 and needs a duration, got %v", c.Warmup))
	}
	if c.Duration < 0 || c.Records < 0 || (c.Duration == 0 && c.Records == 0) {
		errs = append(errs, errors.New("need a duration > 0 or a record count > 0"))
	}
	return errors.Join(errs...)
}

// RecordsPerKey is how many records one key holds: ValueRecords, at least
// 1 and at most BatchRecords.
func (c StorageConfig) RecordsPerKey() int { return max(1, min(c.ValueRecords, c.BatchRecords)) }

// StorageResult is the outcome of a storage run: what was written after
// the warm-up, in Elapsed.
type StorageResult struct {
	Records int64
	Bytes   int64
	// Batches is the number of synced commits; a group commit of several
	// overdue batches at a Rate counts once.
	Batches  int64
	Elapsed  time.Duration
	MBPerSec float64
	// Latency is the distribution of commit latencies in microseconds:
	// from each batch's due time at a Rate, from the commit's start
	// otherwise.
	Latency *hdrhistogram.Histogram
}

// RunStorage measures synced batch writes to a fresh Pebble engine in
// cfg.Dir.
func RunStorage(ctx context.Context, cfg StorageConfig) (StorageResult, error) {
	if err := cfg.Validate(); err != nil {
		return StorageResult{}, err
	}
	eng, err := storage.OpenPebble(storage.PebbleOptions{Dir: cfg.Dir})
	if err != nil {
		return StorageResult{}, err
	}
	defer eng.Close()
	var claimed atomic.Int64 // records claimed by writers, for cfg.Records
	if cfg.Payload == "" {
		cfg.Payload = PayloadRandom
	}
	// Each record is a different slice of the payload, as in a produce run,
	// so that a compressor finds no more repetition than a broker would.
	valueRecords := cfg.RecordsPerKey()
	payload := newPayload(Config{Payload: cfg.Payload, RecordSize: FixedSize(cfg.RecordSize * valueRecords)})
	var (
		records, batches atomic.Int64
		wg               sync.WaitGroup
		firstErr         error
		errOnce          sync.Once
		latency          = make([]*hdrhistogram.Histogram, cfg.Writers)
	)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// maxGroup bounds how many overdue batches one commit takes, to about
	// 8 MiB.
	maxGroup := max(1, (8<<20)/(cfg.BatchRecords*cfg.RecordSize))
	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	if cfg.Duration > 0 && cfg.Rate == 0 {
		// At a Rate the schedule ends the run, so that every batch due
		// in the window is written.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, measureFrom.Add(cfg.Duration))
		defer cancel()
	}
	for w := range cfg.Writers {
		latency[w] = newHistogram()
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := make([]byte, 16)
			rng := rand.New(rand.NewPCG(uint64(w), 0x5707a6e))
			seq := uint64(0)
			// commit writes the records of len(dues) batches in one
			// synced commit and records each batch's latency from its due
			// time; it reports false when the run is over for this writer.
			commit := func(dues []time.Time) bool {
				n := len(dues) * cfg.BatchRecords
				if cfg.Records > 0 && claimed.Add(int64(n)) > cfg.Records+int64(n)-1 {
					return false
				}
				b := eng.NewBatch()
				defer b.Close()
				for i := 0; i < n; i += valueRecords {
					key = fmt.Appendf(key[:0], "w%03d/%016x", w, seq)
					seq++
					size := min(valueRecords, n-i) * cfg.RecordSize
					off := rng.IntN(len(payload) - size + 1)
					if err := b.Set(key, payload[off:off+size]); err != nil {
						errOnce.Do(func() { firstErr = err })
						return false
					}
				}
				if err := b.Commit(true); err != nil {
					errOnce.Do(func() { firstErr = err })
					return false
				}
				counted := 0
				for _, due := range dues {
					if !due.Before(measureFrom) {
						_ = latency[w].RecordValue(clampMicros(time.Since(due)))
						counted++
					}
				}
				if counted > 0 {
					records.Add(int64(counted * cfg.BatchRecords))
					batches.Add(1)
				}
				return true
			}
			if cfg.Rate == 0 {
				due := make([]time.Time, 1)
				for ctx.Err() == nil {
					due[0] = time.Now()
					if !commit(due) {
						return
					}
				}
				return
			}
			// Writers share the rate and start staggered, so that their
			// commits are spread over each interval rather than bunched.
			batchRate := cfg.Rate / float64(cfg.BatchRecords) / float64(cfg.Writers)
			sched := NewSchedule(start.Add(time.Duration(float64(w)/float64(cfg.Writers)*1e9/batchRate)), batchRate)
			end := measureFrom.Add(cfg.Duration)
			if cfg.Duration == 0 {
				end = time.Unix(math.MaxInt32, 0) // until Records are written
			}
			PaceGroups(ctx, realClock{}, sched, end, maxGroup, func(dues []time.Time) bool {
				if !commit(dues) {
					stop()
					return false
				}
				return true
			})
		}()
	}
	wg.Wait()
	elapsed := time.Since(measureFrom)
	r := StorageResult{Records: records.Load(), Batches: batches.Load(), Elapsed: elapsed, Latency: newHistogram()}
	for _, h := range latency {
		r.Latency.Merge(h)
	}
	r.Bytes = r.Records * int64(cfg.RecordSize)
	r.MBPerSec = float64(r.Bytes) / 1e6 / elapsed.Seconds()
	return r, firstErr
}
