// Package bench generates load against Raftka or any Kafka endpoint and
// measures it, and measures the storage ceiling that broker results are
// compared with.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

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
	// Writers is the number of concurrent committers; Pebble shares one
	// fsync among concurrent commits, as a broker's group commit does.
	Writers int
	// Duration bounds the run; 0 means until Records are written.
	Duration time.Duration
	// Records, if > 0, stops the run after this many records.
	Records int64
	// Payload is PayloadRandom (the default when empty), PayloadText or
	// PayloadZeros: the same record contents a produce run sends, since
	// Pebble compresses what it can.
	Payload string
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
	if c.Writers <= 0 {
		errs = append(errs, fmt.Errorf("writers must be > 0, got %d", c.Writers))
	}
	switch c.Payload {
	case "", PayloadRandom, PayloadText, PayloadZeros:
	default:
		errs = append(errs, fmt.Errorf("payload must be %s, %s or %s, got %q", PayloadRandom, PayloadText, PayloadZeros, c.Payload))
	}
	if c.Duration < 0 || c.Records < 0 || (c.Duration == 0 && c.Records == 0) {
		errs = append(errs, errors.New("need a duration > 0 or a record count > 0"))
	}
	return errors.Join(errs...)
}

// StorageResult is the outcome of a storage run.
type StorageResult struct {
	Records  int64
	Bytes    int64
	Batches  int64
	Elapsed  time.Duration
	MBPerSec float64
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
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var claimed atomic.Int64 // records claimed by writers, for cfg.Records
	if cfg.Payload == "" {
		cfg.Payload = PayloadRandom
	}
	// Each record is a different slice of the payload, as in a produce run,
	// so that a compressor finds no more repetition than a broker would.
	payload := newPayload(Config{Payload: cfg.Payload, RecordSize: FixedSize(cfg.RecordSize)})
	var (
		records, batches atomic.Int64
		wg               sync.WaitGroup
		firstErr         error
		errOnce          sync.Once
	)
	start := time.Now()
	for w := range cfg.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := make([]byte, 16)
			rng := rand.New(rand.NewPCG(uint64(w), 0x5707a6e))
			for seq := uint64(0); ctx.Err() == nil; {
				if cfg.Records > 0 && claimed.Add(int64(cfg.BatchRecords)) > cfg.Records+int64(cfg.BatchRecords)-1 {
					return
				}
				b := eng.NewBatch()
				for range cfg.BatchRecords {
					key = fmt.Appendf(key[:0], "w%03d/%016x", w, seq)
					seq++
					off := rng.IntN(len(payload) - cfg.RecordSize + 1)
					if err := b.Set(key, payload[off:off+cfg.RecordSize]); err != nil {
						errOnce.Do(func() { firstErr = err })
						b.Close()
						return
					}
				}
				if err := b.Commit(true); err != nil {
					errOnce.Do(func() { firstErr = err })
					b.Close()
					return
				}
				b.Close()
				records.Add(int64(cfg.BatchRecords))
				batches.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := StorageResult{Records: records.Load(), Batches: batches.Load(), Elapsed: elapsed}
	r.Bytes = r.Records * int64(cfg.RecordSize)
	r.MBPerSec = float64(r.Bytes) / 1e6 / elapsed.Seconds()
	return r, firstErr
}
