package storage

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Background write pacing. A Pebble flush writes a whole memtable (16 MiB
// of record batches) as fast as one core can, and on a small machine that
// burst fills the disk's queue: every synced log write (every produce with
// acks=all) that arrives during it waits behind megabytes of flush data. On
// the 2-core benchmark machine a flush took 35–40 ms out of every 145 ms
// at 110k records/s and nearly every commit slower than 4 ms fell inside
// one. A synthetic test on the same disk shows the mechanism: 64 KiB
// fdatasyncs had p99 9.9 ms next to unpaced 16 MiB writes and 3.2 ms next
// to the same writes paced at 150 MB/s.
//
// The pacer spreads flush and compaction writes out instead: they spend
// tokens, which accrue at factor times the bytes written to the WAL, or at a
// floor rate (the WAL's recent average, at least 64 MiB/s) when that is
// more. The WAL is the ingest rate, so a flush keeps up with it with
// room to spare (a memtable's worth of WAL buys factor memtables of flush)
// while writing in small steps between the commits it used to block. A
// write stall lifts the pacing until it ends: pacing must never be why
// writes stop.
type writePacer struct {
	// factor is the background bytes allowed per WAL byte.
	factor float64
	// minRate is the background bytes per second allowed with no WAL
	// writes at all, so that compactions finish on an idle broker.
	minRate float64
	// burst caps the tokens saved up, and so the bytes written at once.
	burst float64
	// stalled is set while Pebble stalls writes.
	stalled atomic.Bool
	// walBytes counts WAL bytes not yet turned into tokens: the WAL's
	// writer only adds to it, so the commit path takes no lock here.
	walBytes atomic.Int64
	now      func() time.Time
	sleep    func(time.Duration)

	mu struct {
		sync.Mutex
		// tokens is how many bytes background writes may write now;
		// negative after a write larger than what was saved (a debt the
		// next writes wait off). Invariant: tokens <= burst.
		tokens float64
		// last is when the tokens were last refilled.
		last time.Time
		// walRate is the WAL's recent rate in bytes per second, averaged
		// over about pacerRateWindow.
		walRate float64
	}
}

// Defaults of the pacer (see PebbleOptions.BackgroundWritePacing).
const (
	// DefaultBackgroundWritePacing is the background write bytes allowed per
	// WAL byte. Measured with `raftka bench produce` (RF=1, 1 KiB, 110k
	// records/s, 2 cores; see BENCHMARKS.md) across factors 1.25, 1.5 and
	// 2, all cut produce p99 about alike; 2 leaves a flush the most room.
	DefaultBackgroundWritePacing = 2.0
	// pacerMinRate is the floor: 64 MiB/s of background writes at any
	// ingest rate.
	pacerMinRate = 64 << 20
	// pacerBurst bounds one unpaced burst to about a millisecond of this
	// disk's bandwidth.
	pacerBurst = 1 << 20
	// pacerRateWindow is the time over which the WAL's rate is averaged
	// for the pacer's floor: long enough to bridge a dip in commits, short
	// enough to follow the load.
	pacerRateWindow = time.Second
	// pacerMaxSleep bounds one wait, so that WAL writes arriving meanwhile
	// are noticed soon.
	pacerMaxSleep = 2 * time.Millisecond
)

func newWritePacer(factor float64) *writePacer {
	p := &writePacer{factor: factor, minRate: pacerMinRate, burst: pacerBurst, now: time.Now, sleep: time.Sleep}
	p.mu.tokens = p.burst
	p.mu.last = p.now()
	return p
}

// refillLocked adds the tokens of the WAL bytes written since the last
// refill, or of the time passed at the floor rate if that is more. The
// floor is the larger of minRate and the WAL's recent rate: a flush writes
// out what the WAL already took, so when commits slow down (the CPU is busy
// with the flush itself, or with a compaction) it must not slow down with
// them. Before it had that floor, a dip in commits slowed the flush that was
// draining the memtables, the memtables queued up, Pebble stopped writes,
// and the dip became a stall of seconds while the disk sat idle.
func (p *writePacer) refillLocked(now time.Time) {
	wal := float64(p.walBytes.Swap(0))
	d := now.Sub(p.mu.last).Seconds()
	if d < 0 {
		d = 0
	}
	p.mu.last = now
	// An exponentially weighted moving average of the WAL's rate, over
	// irregular steps: each byte adds 1/τ to the rate, which decays by d/τ.
	if d >= pacerRateWindow.Seconds() {
		p.mu.walRate = wal / d
	} else {
		w := pacerRateWindow.Seconds()
		p.mu.walRate += wal/w - p.mu.walRate*d/w
	}
	add := max(p.factor*wal, max(p.minRate, p.mu.walRate)*d)
	p.mu.tokens = min(p.burst, p.mu.tokens+add)
}

// walWritten credits n bytes written to the WAL.
func (p *writePacer) walWritten(n int) { p.walBytes.Add(int64(n)) }

// wait blocks until a background write of n bytes may proceed, and spends
// its tokens.
func (p *writePacer) wait(n int) {
	need := min(float64(n), p.burst)
	for !p.stalled.Load() {
		p.mu.Lock()
		p.refillLocked(p.now())
		if p.mu.tokens >= need {
			p.mu.tokens -= float64(n)
			p.mu.Unlock()
			return
		}
		short := need - p.mu.tokens
		p.mu.Unlock()
		p.sleep(min(time.Duration(short/p.minRate*float64(time.Second))+time.Microsecond, pacerMaxSleep))
	}
}

// pacedFS paces writes to sstables and blob files (flushes and compactions)
// by the WAL's (see writePacer).
type pacedFS struct {
	vfs.FS
	p *writePacer
}

// isWAL reports whether name is a Pebble write-ahead log.
func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

// isTableOrBlob reports whether name is a file flushes and compactions
// write: an sstable or a blob file.
func isTableOrBlob(name string) bool {
	return strings.HasSuffix(name, ".sst") || isBlobFile(name)
}

func (fs pacedFS) wrap(name string, f vfs.File) vfs.File {
	switch {
	case isWAL(name):
		return walFile{File: f, p: fs.p}
	case isTableOrBlob(name):
		return pacedFile{File: f, p: fs.p}
	}
	return f
}

// Create wraps WALs and background outputs.
func (fs pacedFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil {
		return f, err
	}
	return fs.wrap(name, f), nil
}

// ReuseForWrite wraps recycled WALs.
func (fs pacedFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	if err != nil {
		return f, err
	}
	return fs.wrap(newname, f), nil
}

// walFile credits the pacer with what is written to the WAL.
type walFile struct {
	vfs.File
	p *writePacer
}

func (f walFile) Write(b []byte) (int, error) {
	n, err := f.File.Write(b)
	f.p.walWritten(n)
	return n, err
}

func (f walFile) WriteAt(b []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(b, off)
	f.p.walWritten(n)
	return n, err
}

// pacedFile waits for the pacer before each write.
type pacedFile struct {
	vfs.File
	p *writePacer
}

func (f pacedFile) Write(b []byte) (int, error) {
	f.p.wait(len(b))
	return f.File.Write(b)
}

func (f pacedFile) WriteAt(b []byte, off int64) (int, error) {
	f.p.wait(len(b))
	return f.File.WriteAt(b, off)
}
