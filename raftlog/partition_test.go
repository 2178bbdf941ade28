package raftlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/raftka/raftka/storage"
)

// appendBatch appends b to p and waits for the result, failing t on a
// proposal error (not on a rejected batch: that is in the result).
func appendBatch(t testing.TB, p *Partition, b []byte) AppendResult {
	t.Helper()
	wait, err := p.AppendAsync(b)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := wait(ctx)
	if err != nil {
		t.Fatalf("append: wait: %v", err)
	}
	return res
}

// readAll reads every batch of p from offset, one Read at a time, and
// checks each one: a valid CRC, and a header that ParseBatches accepts.
func readAll(t testing.TB, p *Partition, offset int64) (batches [][]byte, headers []BatchHeader) {
	t.Helper()
	hw := p.Offsets().HighWatermark
	for offset < hw {
		out, err := p.Read(nil, offset, 1<<20)
		if err != nil {
			t.Fatalf("read at %d: %v", offset, err)
		}
		bs, hs, err := ParseBatches(out)
		if err != nil {
			t.Fatalf("read at %d returned batches that do not parse: %v", offset, err)
		}
		if len(bs) == 0 {
			t.Fatalf("read at %d below high watermark %d returned nothing", offset, hw)
		}
		batches = append(batches, bs...)
		headers = append(headers, hs...)
		last := bs[len(bs)-1]
		offset = batchBase(last) + int64(hs[len(hs)-1].LastOffsetDelta) + 1
	}
	return batches, headers
}

func batchBase(b []byte) int64 { return int64(binary.BigEndian.Uint64(b[batchBaseOffset:])) }

func batchEpoch(b []byte) int32 { return int32(binary.BigEndian.Uint32(b[batchLeaderEpoch:])) }

// sameBatch reports whether got is sent with only the broker-owned fields
// (base offset, leader epoch) changed.
func sameBatch(got, sent []byte) bool {
	return len(got) == len(sent) &&
		bytes.Equal(got[batchLength:batchLeaderEpoch], sent[batchLength:batchLeaderEpoch]) &&
		bytes.Equal(got[batchMagic:], sent[batchMagic:])
}

func TestPartitionAppendRead(t *testing.T) {
	t.Parallel()
	rs := startScheduler(t, testConfig(1), storage.NewMemory(), nil)
	p := openLeaderPartition(t, rs.Scheduler, 10)
	epoch := p.Offsets().LeaderEpoch
	if epoch <= 0 {
		t.Fatalf("leader epoch %d", epoch)
	}

	// Empty partition.
	if o := p.Offsets(); o.HighWatermark != 0 || o.LogStartOffset != 0 {
		t.Fatalf("new partition offsets %+v", o)
	}
	if out, err := p.Read(nil, 0, 1<<20); err != nil || len(out) != 0 {
		t.Fatalf("read empty partition: %d bytes, %v", len(out), err)
	}

	sizes := []int{1, 3, 5, 2, 1}
	var sent [][]byte
	var waits []func(context.Context) (AppendResult, error)
	for i, n := range sizes {
		b := plainBatch(fmt.Sprintf("b%d", i), n).build()
		sent = append(sent, b)
		wait, err := p.AppendAsync(b)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		waits = append(waits, wait)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var bases []int64
	next := int64(0)
	for i, wait := range waits {
		res, err := wait(ctx)
		if err != nil || res.Err != nil || res.Duplicate {
			t.Fatalf("append %d: %+v, %v", i, res, err)
		}
		// Offsets are contiguous: each batch starts after the last
		// record of the one before.
		if res.BaseOffset != next {
			t.Fatalf("batch %d got base offset %d, want %d (bases so far %v)", i, res.BaseOffset, next, bases)
		}
		bases = append(bases, res.BaseOffset)
		next = res.BaseOffset + int64(sizes[i]-1) + 1
	}
	o := waitPartition(t, p, "high watermark 12", func(o Offsets) bool { return o.HighWatermark == next })
	if o.HighWatermark != 12 {
		t.Fatalf("high watermark %d, want 12", o.HighWatermark)
	}

	// Read everything in one go: every batch, patched, CRC valid.
	out, err := p.Read(nil, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got, headers, err := ParseBatches(out)
	if err != nil {
		t.Fatalf("read batches do not parse (CRC?): %v", err)
	}
	if len(got) != len(sent) {
		t.Fatalf("read %d batches, want %d", len(got), len(sent))
	}
	for i := range got {
		if batchBase(got[i]) != bases[i] || batchEpoch(got[i]) != epoch {
			t.Errorf("batch %d: base %d epoch %d, want %d %d", i, batchBase(got[i]), batchEpoch(got[i]), bases[i], epoch)
		}
		if !sameBatch(got[i], sent[i]) {
			t.Errorf("batch %d changed beyond base offset and leader epoch", i)
		}
		if headers[i].RecordCount != int32(sizes[i]) {
			t.Errorf("batch %d: %d records", i, headers[i].RecordCount)
		}
		recs := decodeRecords(t, got[i])
		if want := fmt.Sprintf("b%d-%d", i, sizes[i]-1); string(recs[len(recs)-1].Value) != want {
			t.Errorf("batch %d: last record %q, want %q", i, recs[len(recs)-1].Value, want)
		}
	}

	// Reads starting anywhere inside a batch return that batch first.
	for off := int64(0); off < o.HighWatermark; off++ {
		out, err := p.Read(nil, off, 1)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		bs, _, err := ParseBatches(out)
		if err != nil || len(bs) != 1 {
			t.Fatalf("read at %d with maxBytes 1: %d batches, %v; want exactly one", off, len(bs), err)
		}
		i := 0
		for i+1 < len(bases) && bases[i+1] <= off {
			i++
		}
		if batchBase(bs[0]) != bases[i] {
			t.Errorf("read at %d returned the batch at %d, want %d", off, batchBase(bs[0]), bases[i])
		}
	}

	// maxBytes: whole batches only, at least one.
	for _, tc := range []struct {
		maxBytes int
		want     int
	}{
		{0, 1},
		{len(sent[0]) - 1, 1},
		{len(sent[0]), 1},
		{len(sent[0]) + len(sent[1]) - 1, 1},
		{len(sent[0]) + len(sent[1]), 2},
		{len(sent[0]) + len(sent[1]) + len(sent[2]), 3},
		{1 << 30, 5},
	} {
		out, err := p.Read(nil, 0, tc.maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		bs, _, err := ParseBatches(out)
		if err != nil || len(bs) != tc.want {
			t.Errorf("read maxBytes %d: %d batches, %v; want %d", tc.maxBytes, len(bs), err, tc.want)
		}
		if tc.want > 1 && len(out) > tc.maxBytes {
			t.Errorf("read maxBytes %d returned %d bytes", tc.maxBytes, len(out))
		}
	}

	// Read appends to dst.
	prefix := []byte("prefix")
	out, err = p.Read(prefix, 9, 1<<20)
	if err != nil || !bytes.HasPrefix(out, []byte("prefix")) {
		t.Fatalf("read into dst: %q..., %v", out[:min(len(out), 6)], err)
	}
	if bs, _, err := ParseBatches(out[len(prefix):]); err != nil || len(bs) != 2 || batchBase(bs[0]) != 9 {
		t.Fatalf("read at 9 into dst: %d batches, %v", len(bs), err)
	}

	// Bounds.
	if out, err := p.Read(nil, o.HighWatermark, 1<<20); err != nil || len(out) != 0 {
		t.Errorf("read at the high watermark: %d bytes, %v; want nothing", len(out), err)
	}
	for _, off := range []int64{o.HighWatermark + 1, -1, 1 << 62} {
		if _, err := p.Read(nil, off, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Errorf("read at %d: %v, want ErrOffsetOutOfRange", off, err)
		}
	}
}

func TestPartitionIdempotentProducer(t *testing.T) {
	t.Parallel()
	rs := startScheduler(t, testConfig(1), storage.NewMemory(), nil)
	p := openLeaderPartition(t, rs.Scheduler, 20)

	const pid = 4242
	b0 := idempotentBatch(pid, 0, 0, 3, "p0").build()
	b1 := idempotentBatch(pid, 0, 3, 2, "p1").build()
	if r := appendBatch(t, p, b0); r.BaseOffset != 0 || r.Duplicate || r.Err != nil {
		t.Fatalf("first batch: %+v", r)
	}
	if r := appendBatch(t, p, plainBatch("plain", 1).build()); r.BaseOffset != 3 {
		t.Fatalf("plain batch: %+v", r)
	}
	if r := appendBatch(t, p, b1); r.BaseOffset != 4 || r.Duplicate || r.Err != nil {
		t.Fatalf("second batch: %+v", r)
	}
	// Retries of both are answered with the original offsets and take no
	// offsets.
	for _, retry := range []struct {
		b    []byte
		base int64
	}{{b1, 4}, {b0, 0}, {b1, 4}} {
		r := appendBatch(t, p, retry.b)
		if !r.Duplicate || r.BaseOffset != retry.base || r.Err != nil {
			t.Fatalf("retry: %+v, want duplicate of %d", r, retry.base)
		}
	}
	// A gap is out of order and takes no offsets.
	r := appendBatch(t, p, idempotentBatch(pid, 0, 6, 1, "gap").build())
	if !errors.Is(r.Err, ErrOutOfOrderSequence) || r.Duplicate {
		t.Fatalf("gap: %+v, want ErrOutOfOrderSequence", r)
	}
	// A new producer must start at 0.
	r = appendBatch(t, p, idempotentBatch(pid+1, 0, 1, 1, "late").build())
	if !errors.Is(r.Err, ErrOutOfOrderSequence) {
		t.Fatalf("new producer at seq 1: %+v, want ErrOutOfOrderSequence", r)
	}
	// The next in-order batch gets the next offset: nothing was taken.
	if r := appendBatch(t, p, idempotentBatch(pid, 0, 5, 2, "p2").build()); r.BaseOffset != 6 || r.Err != nil {
		t.Fatalf("in-order batch after rejections: %+v, want base 6", r)
	}
	// Epoch bump fences the old epoch.
	if r := appendBatch(t, p, idempotentBatch(pid, 1, 0, 1, "e1").build()); r.BaseOffset != 8 || r.Err != nil {
		t.Fatalf("new epoch: %+v", r)
	}
	if r := appendBatch(t, p, idempotentBatch(pid, 0, 7, 1, "stale").build()); !errors.Is(r.Err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %+v, want ErrInvalidProducerEpoch", r)
	}

	o := waitPartition(t, p, "high watermark 9", func(o Offsets) bool { return o.HighWatermark == 9 })
	bs, _ := readAll(t, p, 0)
	var values []string
	for _, b := range bs {
		values = append(values, string(decodeRecords(t, b)[0].Value))
	}
	if want := "[p0-0 plain-0 p1-0 p2-0 e1-0]"; fmt.Sprint(values) != want {
		t.Fatalf("log holds %v, want %s (hw %d)", values, want, o.HighWatermark)
	}
}

// TestPartitionRestart stops the scheduler, starts a new one on the same
// data and checks that the log, its offsets and the producers' dedup state
// survived.
func TestPartitionRestart(t *testing.T) {
	t.Parallel()
	for _, k := range engineKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			eng, reopen := k.open(t)
			const id, pid = 30, 77
			rs := startScheduler(t, testConfig(1), eng, nil)
			p := openLeaderPartition(t, rs.Scheduler, id)
			appendBatch(t, p, plainBatch("a", 2).build())
			appendBatch(t, p, idempotentBatch(pid, 2, 0, 3, "i0").build())
			last := idempotentBatch(pid, 2, 3, 1, "i1").build()
			if r := appendBatch(t, p, last); r.BaseOffset != 5 {
				t.Fatalf("last batch at %d, want 5", r.BaseOffset)
			}
			before := p.Offsets()
			readBefore, err := p.Read(nil, 0, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if err := rs.stop(t); err != nil {
				t.Fatalf("scheduler stopped with %v", err)
			}
			// The old scheduler's group is closed.
			if _, err := p.AppendAsync(plainBatch("x", 1).build()); !errors.Is(err, ErrGroupClosed) {
				t.Fatalf("append after stop: %v, want ErrGroupClosed", err)
			}

			eng = reopen()
			rs2 := startScheduler(t, testConfig(1), eng, nil)
			p2, err := OpenPartition(rs2.Scheduler, id, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			if hw := p2.Offsets().HighWatermark; hw != before.HighWatermark {
				t.Fatalf("reopened high watermark %d, want %d", hw, before.HighWatermark)
			}
			after := waitPartition(t, p2, "leader 1", func(o Offsets) bool { return o.Leader == 1 })
			if after.LeaderEpoch <= before.LeaderEpoch {
				t.Errorf("leader epoch %d after restart, was %d", after.LeaderEpoch, before.LeaderEpoch)
			}
			readAfter, err := p2.Read(nil, 0, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readAfter, readBefore) {
				t.Fatalf("log reads differently after restart")
			}
			// The dedup state survived: a retry of the last batch is a
			// duplicate; an older one too; the next sequence goes on.
			if r := appendBatch(t, p2, last); !r.Duplicate || r.BaseOffset != 5 {
				t.Fatalf("retry after restart: %+v, want duplicate of 5", r)
			}
			if r := appendBatch(t, p2, idempotentBatch(pid, 2, 0, 3, "i0").build()); !r.Duplicate || r.BaseOffset != 2 {
				t.Fatalf("older retry after restart: %+v, want duplicate of 2", r)
			}
			if r := appendBatch(t, p2, idempotentBatch(pid, 1, 4, 1, "old").build()); !errors.Is(r.Err, ErrInvalidProducerEpoch) {
				t.Fatalf("old epoch after restart: %+v", r)
			}
			r := appendBatch(t, p2, idempotentBatch(pid, 2, 4, 1, "i2").build())
			if r.BaseOffset != 6 || r.Err != nil || r.Duplicate {
				t.Fatalf("next batch after restart: %+v, want base 6", r)
			}
			waitPartition(t, p2, "high watermark 7", func(o Offsets) bool { return o.HighWatermark == 7 })
			out, err := p2.Read(nil, 6, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if bs, _, err := ParseBatches(out); err != nil || len(bs) != 1 || batchEpoch(bs[0]) != after.LeaderEpoch {
				t.Fatalf("new batch: %d batches, %v; want one with the new leader epoch %d", len(bs), err, after.LeaderEpoch)
			}
		})
	}
}

// TestPartitionCrashKeepsAcknowledged crashes a Pebble-backed broker
// (dropping all unsynced writes) after appends were acknowledged, and
// checks that every acknowledged batch is readable at its offset after
// restart, with the producer state rebuilt.
func TestPartitionCrashKeepsAcknowledged(t *testing.T) {
	t.Parallel()
	for _, unsynced := range []int{0, 50} {
		t.Run(fmt.Sprintf("unsynced=%d", unsynced), func(t *testing.T) {
			t.Parallel()
			fs := vfs.NewCrashableMem()
			eng := openPebbleOn(t, fs)
			t.Cleanup(func() { _ = eng.Close() })
			const id, pid = 40, 9
			rs := startScheduler(t, testConfig(1), eng, nil)
			p := openLeaderPartition(t, rs.Scheduler, id)
			type acked struct {
				base  int64
				value string
			}
			var acks []acked
			for i := range 20 {
				v := fmt.Sprintf("c%d", i)
				r := appendBatch(t, p, idempotentBatch(pid, 0, int32(i), 1, v).build())
				if r.Err != nil || r.Duplicate {
					t.Fatalf("append %d: %+v", i, r)
				}
				acks = append(acks, acked{r.BaseOffset, v + "-0"})
			}
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(unsynced), 1))})
			if err := rs.stop(t); err != nil {
				t.Fatal(err)
			}
			if err := eng.Close(); err != nil {
				t.Fatal(err)
			}

			eng2 := openPebbleOn(t, crashed)
			t.Cleanup(func() { _ = eng2.Close() }) // after rs2 stops: cleanups run last-in first-out
			rs2 := startScheduler(t, testConfig(1), eng2, nil)
			p2, err := OpenPartition(rs2.Scheduler, id, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			want := acks[len(acks)-1].base + 1
			t.Logf("high watermark before replay %d, want %d", p2.Offsets().HighWatermark, want)
			waitPartition(t, p2, fmt.Sprintf("high watermark %d", want), func(o Offsets) bool { return o.HighWatermark >= want })
			for _, a := range acks {
				out, err := p2.Read(nil, a.base, 1)
				if err != nil {
					t.Fatalf("read acknowledged offset %d: %v", a.base, err)
				}
				bs, _, err := ParseBatches(out)
				if err != nil || len(bs) != 1 || batchBase(bs[0]) != a.base {
					t.Fatalf("read acknowledged offset %d: %d batches, %v", a.base, len(bs), err)
				}
				if v := string(decodeRecords(t, bs[0])[0].Value); v != a.value {
					t.Fatalf("offset %d holds %q, want %q", a.base, v, a.value)
				}
			}
			// Replayed entries rebuilt the producer state.
			r := appendBatch(t, p2, idempotentBatch(pid, 0, 19, 1, "c19").build())
			if !r.Duplicate || r.BaseOffset != acks[19].base {
				t.Fatalf("retry of the last acknowledged batch after crash: %+v", r)
			}
			if hw := p2.Offsets().HighWatermark; hw != want {
				t.Fatalf("high watermark %d after crash, want %d", hw, want)
			}
		})
	}
}

func TestPartitionTimestamps(t *testing.T) {
	t.Parallel()
	rs := startScheduler(t, testConfig(1), storage.NewMemory(), nil)
	p := openLeaderPartition(t, rs.Scheduler, 50)

	if off, ts, err := p.MaxTimestamp(); off != -1 || ts != -1 || err != nil {
		t.Fatalf("MaxTimestamp of empty log: %d, %d, %v", off, ts, err)
	}
	if off, ts, err := p.OffsetForTimestamp(0); off != -1 || ts != -1 || err != nil {
		t.Fatalf("OffsetForTimestamp of empty log: %d, %d, %v", off, ts, err)
	}

	// Offsets 0-1, 2-4, 5, 6-7.
	for _, ts := range [][]int64{{100, 101}, {50, 300, 200}, {150}, {300, 120}} {
		s := plainBatch("t", len(ts))
		s.firstTimestamp = ts[0]
		s.timestamps = ts
		appendBatch(t, p, s.build())
	}
	waitPartition(t, p, "high watermark 8", func(o Offsets) bool { return o.HighWatermark == 8 })

	for _, tc := range []struct {
		ts         int64
		off, found int64
	}{
		{-1, 0, 101},
		{0, 0, 101},
		{101, 0, 101},
		{102, 2, 300},
		{150, 2, 300},
		{300, 2, 300},
		{301, -1, -1}, // none: -1, as Kafka answers
	} {
		off, found, err := p.OffsetForTimestamp(tc.ts)
		if err != nil || off != tc.off || found != tc.found {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d", tc.ts, off, found, err, tc.off, tc.found)
		}
	}
	// The first batch holding the largest timestamp wins; the offset is
	// its last record's.
	if off, ts, err := p.MaxTimestamp(); off != 4 || ts != 300 || err != nil {
		t.Fatalf("MaxTimestamp = %d, %d, %v; want 4, 300", off, ts, err)
	}
}

// TestPartitionConcurrentReadAppend reads while batches are appended and
// checks that readers only ever see whole, committed, contiguous batches.
func TestPartitionConcurrentReadAppend(t *testing.T) {
	t.Parallel()
	rs := startScheduler(t, testConfig(1), storage.NewMemory(), nil)
	p := openLeaderPartition(t, rs.Scheduler, 60)
	const batches = 200
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				hw := p.Offsets().HighWatermark
				off := int64(0)
				if hw > 0 {
					off = int64(r) * hw / 3
				}
				out, err := p.Read(nil, off, 4096)
				if err != nil {
					errs <- fmt.Errorf("read at %d (hw %d): %w", off, hw, err)
					return
				}
				bs, hs, err := ParseBatches(out)
				if err != nil {
					errs <- fmt.Errorf("read at %d: %w", off, err)
					return
				}
				next := int64(-1)
				for i, b := range bs {
					base := batchBase(b)
					if next >= 0 && base != next {
						errs <- fmt.Errorf("read at %d: batch at %d follows one ending at %d", off, base, next-1)
						return
					}
					next = base + int64(hs[i].LastOffsetDelta) + 1
				}
			}
		}()
	}
	var waits []func(context.Context) (AppendResult, error)
	for i := range batches {
		w, err := p.AppendAsync(plainBatch(fmt.Sprint(i), 1+i%4).build())
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, w := range waits {
		if _, err := w(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	bs, _ := readAll(t, p, 0)
	if len(bs) != batches {
		t.Fatalf("log holds %d batches, want %d", len(bs), batches)
	}
}

// TestPartitionAppendAfterCrashGetsOwnOffset crashes a single-replica
// partition after an entry was written but before it committed, restarts
// it, and appends a new batch while the old entry is still to commit. The
// new batch's acknowledged offset must be where the new batch is.
func TestPartitionAppendAfterCrashGetsOwnOffset(t *testing.T) {
	t.Parallel()
	const id = 70
	mem := storage.NewMemory()
	cfg := testConfig(1)
	cfg.Logger = quietLogger

	// First life: the entry holding "old" is written; the next write,
	// which would commit it, fails and stops the scheduler.
	fe := newFaultEngine(mem)
	rs := startScheduler(t, cfg, fe, nil)
	p := openLeaderPartition(t, rs.Scheduler, id)
	var sawOld bool
	fe.setBeforeCommit(func(b *faultBatch) error {
		if b.setsValueContaining("old-0") {
			sawOld = true
			return nil
		}
		if sawOld {
			return errInjected
		}
		return nil
	})
	wait, err := p.AppendAsync(plainBatch("old", 1).build())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The failed write is the one that would apply it (and answer): the
	// proposer hears that the outcome is unknown, never an offset.
	if res, err := wait(ctx); !errors.Is(err, ErrGroupClosed) && !errors.Is(err, ErrStorage) {
		t.Fatalf("append whose commit failed: %+v, %v; want ErrGroupClosed or ErrStorage", res, err)
	}
	if err := rs.stop(t); !errors.Is(err, errInjected) {
		t.Fatalf("Run returned %v, want the injected error", err)
	}

	// Second life: hold the write that commits the old entry (the first
	// hard-state-only write once the replica leads) and append meanwhile.
	fe2 := newFaultEngine(mem)
	rs2 := startScheduler(t, cfg, fe2, nil)
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fe2.setBeforeCommit(func(b *faultBatch) error {
		g := rs2.Group(id)
		if g != nil && g.IsLeader() && b.setsKey(hardStateKey(id)) && !b.setsUnder(logKey(id, 0)[:groupKeyFixedLen]) {
			once.Do(func() { close(held); <-release })
		}
		return nil
	})
	p2, err := OpenPartition(rs2.Scheduler, id, quietLogger)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the old entry's commit was never written")
	}
	wait2, err := p2.AppendAsync(plainBatch("new", 1).build())
	if err != nil {
		t.Fatalf("append on the new leader: %v", err)
	}
	close(release)
	res, err := wait2(ctx)
	if err != nil || res.Err != nil {
		t.Fatalf("append after restart: %+v, %v", res, err)
	}
	waitPartition(t, p2, "high watermark 2", func(o Offsets) bool { return o.HighWatermark == 2 })
	values := map[int64]string{}
	bs, _ := readAll(t, p2, 0)
	for _, b := range bs {
		values[batchBase(b)] = string(decodeRecords(t, b)[0].Value)
	}
	if values[0] != "old-0" || values[1] != "new-0" {
		t.Fatalf("log holds %v, want old-0 at 0 and new-0 at 1", values)
	}
	if got := values[res.BaseOffset]; got != "new-0" {
		t.Fatalf("new batch acknowledged at offset %d, which holds %q", res.BaseOffset, got)
	}
}

// TestPartitionEndOffsetForEpoch checks OffsetForLeaderEpoch's answers, and
// that a replica in a new term answers none until it has applied an entry
// of that term: before then its high watermark may lag what a client read
// from the previous leader, and an end offset below a client's position
// makes the client reset backwards (franz-go reports it as data loss).
func TestPartitionEndOffsetForEpoch(t *testing.T) {
	t.Parallel()
	rs := startScheduler(t, testConfig(1), storage.NewMemory(), nil)
	p := openLeaderPartition(t, rs.Scheduler, 10)
	o := waitPartition(t, p, "caught up", func(o Offsets) bool { return o.CaughtUp })
	e1 := o.LeaderEpoch

	check := func(what string, epoch, wantEpoch int32, wantEnd int64) {
		t.Helper()
		gotEpoch, gotEnd, err := p.EndOffsetForEpoch(epoch)
		if err != nil || gotEpoch != wantEpoch || gotEnd != wantEnd {
			t.Errorf("%s: EndOffsetForEpoch(%d) = %d, %d, %v; want %d, %d, nil",
				what, epoch, gotEpoch, gotEnd, err, wantEpoch, wantEnd)
		}
	}
	check("empty partition, current epoch", e1, e1, 0)
	for i, n := range []int{2, 3} {
		if res := appendBatch(t, p, plainBatch(fmt.Sprintf("b%d", i), n).build()); res.Err != nil {
			t.Fatalf("append %d: %v", i, res.Err)
		}
	}
	check("current epoch", e1, e1, 5)
	check("epoch before every batch", e1-1, -1, -1)

	// The notification a replica gets when a new term starts, before it
	// has applied any entry of that term.
	p.LeadershipChanged(1, uint64(e1)+1)
	for _, epoch := range []int32{e1, e1 + 1} {
		if _, _, err := p.EndOffsetForEpoch(epoch); !errors.Is(err, ErrOffsetNotAvailable) {
			t.Errorf("new term, not caught up: EndOffsetForEpoch(%d) error %v, want ErrOffsetNotAvailable", epoch, err)
		}
	}
	p.AppliedTerm(uint64(e1) + 1)
	check("caught up, previous epoch", e1, e1, 5)
	check("caught up, current epoch", e1+1, e1+1, 5)
}
