package raftlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/raftka/raftka/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testLogger logs warnings and errors to stderr; everything with
// RAFTKA_TEST_DEBUG=1.
func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("RAFTKA_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	var w io.Writer = os.Stderr
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// quietLogger drops everything; for tests that provoke errors on purpose.
var quietLogger = slog.New(slog.DiscardHandler)

// waitFor polls cond until it holds, failing t when d passes first.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// testConfig is the scheduler configuration of these tests: fast ticks so
// that elections take tens of milliseconds.
func testConfig(nodeID uint64) Config {
	cfg := DefaultConfig(nodeID)
	cfg.TickInterval = 10 * time.Millisecond
	cfg.Logger = testLogger()
	return cfg
}

// runningScheduler is a Scheduler whose Run goroutine belongs to a test.
type runningScheduler struct {
	*Scheduler
	cancel context.CancelFunc
	runErr chan error
}

// startScheduler creates a scheduler on eng and runs it until stop or the
// end of the test.
func startScheduler(t testing.TB, cfg Config, eng storage.Engine, tr Transport) *runningScheduler {
	t.Helper()
	s, err := NewScheduler(cfg, eng, tr)
	if err != nil {
		t.Fatalf("new scheduler: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningScheduler{Scheduler: s, cancel: cancel, runErr: make(chan error, 1)}
	go func() { rs.runErr <- s.Run(ctx) }()
	t.Cleanup(func() { rs.stop(t) })
	return rs
}

// stop cancels Run and waits for it to return, returning Run's error. It
// may be called more than once.
func (rs *runningScheduler) stop(t testing.TB) error {
	t.Helper()
	rs.cancel()
	select {
	case <-rs.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("scheduler did not stop")
	}
	select {
	case err := <-rs.runErr:
		// Put it back for a later stop.
		rs.runErr <- err
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("scheduler Run did not return")
		return nil
	}
}

// openLeaderPartition bootstraps group id as a single-voter group of node 1
// on s, opens its partition and waits until the replica leads it.
func openLeaderPartition(t testing.TB, s *Scheduler, id uint64) *Partition {
	t.Helper()
	if err := s.Bootstrap(id, []uint64{1}, nil); err != nil {
		t.Fatalf("bootstrap group %d: %v", id, err)
	}
	p, err := OpenPartition(s, id, testLogger())
	if err != nil {
		t.Fatalf("open partition %d: %v", id, err)
	}
	waitPartition(t, p, "leader 1", func(o Offsets) bool { return o.Leader == 1 })
	return p
}

// waitPartition waits, on the partition's change channel, until cond holds
// for its offsets.
func waitPartition(t testing.TB, p *Partition, what string, cond func(Offsets) bool) Offsets {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		o := p.Offsets()
		if cond(o) {
			return o
		}
		select {
		case <-o.Changed:
		case <-deadline.C:
			t.Fatalf("partition %d: timed out waiting for %s; offsets %+v", p.groupID, what, p.Offsets())
		}
	}
}

// batchSpec describes a record batch to build with kmsg.
type batchSpec struct {
	producerID    int64 // -1: not idempotent
	producerEpoch int16
	baseSequence  int32
	records       int
	// firstTimestamp is the first record's timestamp; record i has
	// firstTimestamp+i unless timestamps is set.
	firstTimestamp int64
	timestamps     []int64
	// value prefixes each record's value, to tell batches apart.
	value string
}

// plainBatch is a non-idempotent batch of n records.
func plainBatch(value string, n int) batchSpec {
	return batchSpec{producerID: -1, producerEpoch: -1, baseSequence: -1, records: n, firstTimestamp: 1000, value: value}
}

// idempotentBatch is an idempotent producer's batch of n records.
func idempotentBatch(pid int64, epoch int16, seq int32, n int, value string) batchSpec {
	return batchSpec{producerID: pid, producerEpoch: epoch, baseSequence: seq, records: n, firstTimestamp: 1000, value: value}
}

// build returns the batch's wire bytes, as a producer sends them: base
// offset 0, leader epoch -1, CRC computed.
func (s batchSpec) build() []byte {
	var recs []byte
	maxTS := int64(-1)
	for i := range s.records {
		ts := s.firstTimestamp + int64(i)
		if s.timestamps != nil {
			ts = s.timestamps[i]
		}
		maxTS = max(maxTS, ts)
		r := kmsg.Record{
			TimestampDelta64: ts - s.firstTimestamp,
			OffsetDelta:      int32(i),
			Key:              []byte(fmt.Sprintf("k%d", i)),
			Value:            []byte(fmt.Sprintf("%s-%d", s.value, i)),
		}
		// Length counts what follows it; AppendTo writes it first as a
		// varint, which is one byte for 0.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          0,
		Length:               int32(BatchHeaderLen - batchLengthOverhead + len(recs)),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(s.records - 1),
		FirstTimestamp:       s.firstTimestamp,
		MaxTimestamp:         maxTS,
		ProducerID:           s.producerID,
		ProducerEpoch:        s.producerEpoch,
		FirstSequence:        s.baseSequence,
		NumRecords:           int32(s.records),
		Records:              recs,
	}
	b := rb.AppendTo(nil)
	setCRC(b)
	return b
}

// setCRC recomputes the CRC of the batch b.
func setCRC(b []byte) {
	binary.BigEndian.PutUint32(b[batchCRC:], crc32.Checksum(b[batchAttributes:], castagnoli))
}

// decodeRecords decodes the uncompressed records of batch b with kmsg.
func decodeRecords(t testing.TB, b []byte) []kmsg.Record {
	t.Helper()
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatalf("kmsg: read batch: %v", err)
	}
	var out []kmsg.Record
	in := rb.Records
	for range rb.NumRecords {
		n, k := binary.Varint(in)
		if k <= 0 || int(n)+k > len(in) {
			t.Fatalf("kmsg: bad record length")
		}
		var r kmsg.Record
		if err := r.ReadFrom(in[:k+int(n)]); err != nil {
			t.Fatalf("kmsg: read record: %v", err)
		}
		out = append(out, r)
		in = in[k+int(n):]
	}
	if len(in) != 0 {
		t.Fatalf("kmsg: %d trailing bytes after %d records", len(in), rb.NumRecords)
	}
	return out
}

// engineKind opens engines of one implementation; reopen returns an engine
// over the same data after the previous one was closed.
type engineKind struct {
	name string
	// open returns a fresh engine and a function that closes it and
	// opens a new engine on the same data.
	open func(t *testing.T) (eng storage.Engine, reopen func() storage.Engine)
}

// engineKinds are the engines the storage-facing tests run against. The
// memory engine cannot be reopened after Close, so its reopen hands back the
// same engine, which is what a restarted scheduler on a live engine sees.
var engineKinds = []engineKind{
	{name: "memory", open: func(t *testing.T) (storage.Engine, func() storage.Engine) {
		m := storage.NewMemory()
		t.Cleanup(func() { _ = m.Close() })
		return m, func() storage.Engine { return m }
	}},
	{name: "pebble", open: func(t *testing.T) (storage.Engine, func() storage.Engine) {
		fs := vfs.NewMem()
		open := func() *storage.Pebble {
			p, err := storage.OpenPebble(storage.PebbleOptions{Dir: "db", FS: fs, Logger: quietLogger, MemTableSize: 1 << 20})
			if err != nil {
				t.Fatalf("open pebble: %v", err)
			}
			return p
		}
		cur := open()
		t.Cleanup(func() {
			if err := cur.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
				t.Errorf("close pebble: %v", err)
			}
		})
		return cur, func() storage.Engine {
			if err := cur.Close(); err != nil {
				t.Fatalf("close pebble: %v", err)
			}
			cur = open()
			return cur
		}
	}},
}

// openPebbleOn opens the Pebble engine of these tests in directory "db" of
// fs (small memtables, so that tests flush).
func openPebbleOn(t testing.TB, fs vfs.FS) *storage.Pebble {
	t.Helper()
	e, err := storage.OpenPebble(storage.PebbleOptions{Dir: "db", FS: fs, Logger: quietLogger, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatalf("open pebble: %v", err)
	}
	return e
}

// spanKeys returns every key in group id's span.
func spanKeys(t testing.TB, eng storage.Engine, id uint64) [][]byte {
	t.Helper()
	start, end := groupSpan(id)
	it, err := eng.NewIter(start, end)
	if err != nil {
		t.Fatalf("new iter: %v", err)
	}
	defer it.Close()
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if err := it.Error(); err != nil {
		t.Fatalf("iter: %v", err)
	}
	return keys
}
