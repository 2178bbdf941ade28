package storage

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/raftka/raftka/internal/syncbuf"
	"golang.org/x/sys/unix"
)

// threadNice is the nice value of thread tid of this process.
func threadNice(t *testing.T, tid int) int {
	t.Helper()
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		t.Fatalf("getpriority of thread %d: %v", tid, err)
	}
	return 20 - prio
}

// threadExists reports whether thread tid of this process is alive.
func threadExists(tid int) bool {
	_, err := os.Stat(filepath.Join("/proc/self/task", strconv.Itoa(tid)))
	return err == nil
}

func TestSetThreadNiceEndsWithItsGoroutine(t *testing.T) {
	// The lowered thread must serve only the goroutine that lowered it: it
	// stays locked to it, and Go ends the thread when the goroutine exits.
	// Were it unlocked, the thread would go back to the runtime's pool and
	// run other goroutines at the lower priority.
	runtime.LockOSThread() // the test's own thread is not the one lowered
	defer runtime.UnlockOSThread()
	ownTid := unix.Gettid()
	ownNice := threadNice(t, ownTid)
	want := max(ownNice+1, 11)
	if want > 19 {
		t.Skipf("the test runs at nice %d, too close to the lowest priority", ownNice)
	}
	type result struct {
		tid, nice int
		err       error
	}
	done := make(chan result)
	go func() {
		err := setThreadNice(want)
		tid := unix.Gettid()
		prio, perr := unix.Getpriority(unix.PRIO_PROCESS, tid)
		done <- result{tid: tid, nice: 20 - prio, err: errors.Join(err, perr)}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.nice != want {
		t.Fatalf("lowered thread at nice %d, want %d", r.nice, want)
	}
	if got := threadNice(t, ownTid); got != ownNice {
		t.Fatalf("the test's thread went from nice %d to %d", ownNice, got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for threadExists(r.tid) {
		if time.Now().After(deadline) {
			t.Fatalf("thread %d (nice %d) outlived its goroutine by 10 s", r.tid, threadNice(t, r.tid))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSetThreadNiceNeverRaisesPriority(t *testing.T) {
	// A process the operator started at a lower priority stays there.
	done := make(chan [2]int)
	go func() {
		_ = setThreadNice(15)
		before := 20 - must(unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid()))
		err := setThreadNice(5)
		after := 20 - must(unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid()))
		if err != nil {
			after = -100
		}
		done <- [2]int{before, after}
	}()
	r := <-done
	if r[0] < 15 || r[1] != r[0] {
		t.Fatalf("nice %d after asking for 15, then %d after asking for 5; want it kept", r[0], r[1])
	}
}

func must(v int, err error) int {
	if err != nil {
		panic(err)
	}
	return v
}

func TestFlushesAndCompactionsRunAtBackgroundNice(t *testing.T) {
	var mu sync.Mutex
	var calls, wrong int
	lowerThreadPriority = func(nice int) error {
		err := setThreadNice(nice)
		prio, perr := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
		mu.Lock()
		calls++
		if err != nil || perr != nil || 20-prio < nice {
			wrong++
		}
		mu.Unlock()
		return err
	}
	t.Cleanup(func() { lowerThreadPriority = setThreadNice })

	runtime.LockOSThread() // commits run on the test's thread
	defer runtime.UnlockOSThread()
	ownNice := threadNice(t, unix.Gettid())
	if ownNice >= 13 {
		t.Skipf("the test runs at nice %d", ownNice)
	}
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	e, err := OpenPebble(PebbleOptions{Dir: filepath.Join(t.TempDir(), "db"), MemTableSize: 1 << 20, BackgroundNice: 13, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	val := bytes.Repeat([]byte("v"), 4<<10)
	for i := range 1000 {
		b := e.NewBatch()
		if err := b.Set([]byte{byte(i >> 8), byte(i)}, val); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(true); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls == 0 || wrong != 0 {
		t.Fatalf("%d flushes and compactions asked for a lower priority, %d did not get it; logs:\n%s", calls, wrong, logs.String())
	}
	if got := threadNice(t, unix.Gettid()); got != ownNice {
		t.Fatalf("the committing thread went from nice %d to %d", ownNice, got)
	}
}

func TestBackgroundNiceOff(t *testing.T) {
	if f := backgroundPriority(-1, slog.Default()); f != nil {
		t.Fatal("a negative BackgroundNice still lowers the priority")
	}
	o := PebbleOptions{Dir: "x", BackgroundNice: 20}
	o.EnsureDefaults()
	if err := o.Validate(); err == nil {
		t.Fatal("BackgroundNice 20 accepted")
	}
	o = PebbleOptions{Dir: "x"}
	o.EnsureDefaults()
	if o.BackgroundNice != DefaultBackgroundNice {
		t.Fatalf("default BackgroundNice %d, want %d", o.BackgroundNice, DefaultBackgroundNice)
	}
}

func TestBackgroundPriorityWarnsOnceWhenRefused(t *testing.T) {
	lowerThreadPriority = func(int) error { return unix.EPERM }
	t.Cleanup(func() { lowerThreadPriority = setThreadNice })
	var logs syncbuf.Buffer
	f := backgroundPriority(10, slog.New(slog.NewTextHandler(&logs, nil)))
	f()
	f()
	if n := bytes.Count([]byte(logs.String()), []byte("level=WARN")); n != 1 {
		t.Fatalf("%d warnings after two refusals, want 1:\n%s", n, logs.String())
	}
}
