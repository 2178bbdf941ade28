package storage

import (
	"bytes"
	"log/slog"
	"math"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/raftka/raftka/internal/syncbuf"
)

// fakeClock is a manual clock for the pacer: sleeping advances it.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept += d
}

func newTestPacer(factor float64) (*writePacer, *fakeClock) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := newWritePacer(factor)
	p.now, p.sleep = c.now, c.sleep
	p.mu.last = c.t
	return p, c
}

func TestPacerFloorRateWithoutWAL(t *testing.T) {
	p, c := newTestPacer(2)
	// The saved burst goes at once; the rest at the floor rate.
	const total = 32 << 20
	for range total / (256 << 10) {
		p.wait(256 << 10)
	}
	want := time.Duration(float64(total-pacerBurst) / pacerMinRate * float64(time.Second))
	if c.slept < want*95/100 || c.slept > want*105/100 {
		t.Fatalf("32 MiB with no WAL writes took %v of pacing, want about %v (the floor rate)", c.slept, want)
	}
}

func TestPacerKeepsUpWithTheWAL(t *testing.T) {
	p, c := newTestPacer(2)
	// 64 MiB of WAL interleaved with 128 MiB of flush: the flush may
	// write two bytes per WAL byte, so it never waits beyond the floor's
	// rounding.
	for range 256 {
		p.walWritten(256 << 10)
		p.wait(256 << 10)
		p.wait(256 << 10)
	}
	if c.slept > 10*time.Millisecond {
		t.Fatalf("a flush at twice the WAL's bytes waited %v; want next to nothing", c.slept)
	}
	// Beyond the factor, it waits for more WAL or the floor.
	before := c.slept
	for range 64 {
		p.walWritten(256 << 10)
		p.wait(1 << 20)
	}
	if c.slept-before < 100*time.Millisecond {
		t.Fatalf("a flush at four times the WAL's bytes waited only %v", c.slept-before)
	}
}

func TestPacerStepsAsideDuringAWriteStall(t *testing.T) {
	p, c := newTestPacer(2)
	p.stalled.Store(true)
	for range 100 {
		p.wait(1 << 20)
	}
	if c.slept != 0 {
		t.Fatalf("writes waited %v during a write stall; want none", c.slept)
	}
	p.stalled.Store(false)
	p.wait(1 << 20)
	p.wait(1 << 20)
	if c.slept == 0 {
		t.Fatal("pacing did not resume after the stall")
	}
}

func TestPacedFSWrapsOnlyWALsTablesAndBlobs(t *testing.T) {
	p, _ := newTestPacer(2)
	fs := pacedFS{FS: vfs.NewMem(), p: p}
	for name, want := range map[string]string{
		"000001.log":   "wal",
		"000002.sst":   "paced",
		"000003.blob":  "paced",
		"MANIFEST-001": "plain",
		"OPTIONS-001":  "plain",
	} {
		f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		got := "plain"
		switch f.(type) {
		case walFile:
			got = "wal"
		case pacedFile:
			got = "paced"
		}
		if got != want {
			t.Errorf("%s: wrapped as %s, want %s", name, got, want)
		}
		f.Close()
	}
	// A recycled WAL is still counted.
	f, err := fs.ReuseForWrite("000001.log", "000004.log", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.(walFile); !ok {
		t.Errorf("recycled WAL wrapped as %T, want walFile", f)
	}
	f.Close()
}

func TestPacedPebbleKeepsItsData(t *testing.T) {
	// Small memtables make the writes below flush and compact through the
	// pacer several times; everything must read back.
	opts := PebbleOptions{Dir: filepath.Join(t.TempDir(), "db"), MemTableSize: 1 << 20, BackgroundWritePacing: 2}
	e, err := OpenPebble(opts)
	if err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat([]byte("v"), 4<<10)
	const n = 2000
	for i := range n {
		b := e.NewBatch()
		if err := b.Set([]byte{byte(i >> 8), byte(i)}, val); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(i%100 == 0); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err = OpenPebble(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i := range n {
		v, err := e.Get([]byte{byte(i >> 8), byte(i)})
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		if !bytes.Equal(v, val) {
			t.Fatalf("key %d: %d bytes, want %d", i, len(v), len(val))
		}
	}
}

func TestPebbleOptionsRejectNonNumericPacing(t *testing.T) {
	o := PebbleOptions{Dir: "x", BackgroundWritePacing: math.NaN()}
	o.EnsureDefaults()
	if err := o.Validate(); err == nil {
		t.Fatal("NaN pacing accepted")
	}
}

func TestPebbleLogsFlushesAtDebugLevel(t *testing.T) {
	// Flush durations against the ingest rate are what explain write
	// stalls, so a debug log shows every flush with its size and time.
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := OpenPebble(PebbleOptions{Dir: filepath.Join(t.TempDir(), "db"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	b := e.NewBatch()
	if err := b.Set([]byte("k"), bytes.Repeat([]byte("v"), 4<<10)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	flushed := regexp.MustCompile(`msg=flush .*memtables=1 bytes=[1-9][0-9]* duration=`)
	deadline := time.Now().Add(10 * time.Second)
	for !flushed.MatchString(logs.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no flush logged at debug level; logs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPacerKeepsFlushingThroughADipInTheWAL(t *testing.T) {
	p, c := newTestPacer(2)
	// One second of WAL at about 300 MB/s, in 10 ms steps.
	for range 100 {
		p.walWritten(3 << 20)
		c.sleep(10 * time.Millisecond)
		p.mu.Lock()
		p.refillLocked(c.now())
		p.mu.Unlock()
	}
	// Then the commits stop. The memtables the WAL filled must still be
	// flushed at about the rate they came in, not at the 64 MiB/s floor.
	before := c.slept
	const flush = 32 << 20
	for range flush / (256 << 10) {
		p.wait(256 << 10)
	}
	took := c.slept - before
	atFloor := time.Duration(float64(flush) / pacerMinRate * float64(time.Second))
	if took > atFloor/2 {
		t.Fatalf("32 MiB of flush after the WAL stopped took %v of pacing; want well under the floor rate's %v", took, atFloor)
	}
	// Without WAL the rate decays back to the floor.
	c.sleep(10 * time.Second)
	p.mu.Lock()
	p.refillLocked(c.now())
	rate := p.mu.walRate
	p.mu.Unlock()
	if rate > 1<<20 {
		t.Fatalf("WAL rate %.0f B/s 10 s after the WAL stopped; want it decayed", rate)
	}
}
