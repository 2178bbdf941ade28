package raftlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/raftka/raftka/storage"
)

// errInjected is the storage failure faultEngine injects.
var errInjected = errors.New("injected storage failure")

// faultEngine wraps an Engine to fail or hold batch commits.
type faultEngine struct {
	storage.Engine

	mu struct {
		sync.Mutex
		// commits counts commits since arm.
		commits int
		// failFrom fails the failFrom-th commit since arm and every
		// later one; 0 fails none.
		failFrom int
		failed   bool
		// beforeCommit, if set, runs before each commit outside mu. It
		// may block; an error fails the commit.
		beforeCommit func(b *faultBatch) error
		// beforeGet, if set, runs before each Get outside mu.
		beforeGet func(key []byte)
	}
}

func newFaultEngine(e storage.Engine) *faultEngine { return &faultEngine{Engine: e} }

// failCommitsFrom makes the k-th commit from now, and every later one,
// fail with errInjected without writing anything.
func (e *faultEngine) failCommitsFrom(k int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mu.commits, e.mu.failFrom, e.mu.failed = 0, k, false
}

func (e *faultEngine) failed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.failed
}

func (e *faultEngine) setBeforeCommit(f func(b *faultBatch) error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mu.beforeCommit = f
}

func (e *faultEngine) setBeforeGet(f func(key []byte)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mu.beforeGet = f
}

func (e *faultEngine) Get(key []byte) ([]byte, error) {
	e.mu.Lock()
	hook := e.mu.beforeGet
	e.mu.Unlock()
	if hook != nil {
		hook(key)
	}
	return e.Engine.Get(key)
}

func (e *faultEngine) NewBatch() storage.Batch {
	return &faultBatch{Batch: e.Engine.NewBatch(), e: e}
}

func (e *faultEngine) NewBatchWithSize(size int) storage.Batch {
	return &faultBatch{Batch: e.Engine.NewBatchWithSize(size), e: e}
}

// faultBatch remembers what it sets, so that hooks can tell whose batch is
// committing.
type faultBatch struct {
	storage.Batch
	e          *faultEngine
	sets, vals [][]byte
}

func (b *faultBatch) Set(k, v []byte) error {
	b.sets = append(b.sets, bytes.Clone(k))
	b.vals = append(b.vals, bytes.Clone(v))
	return b.Batch.Set(k, v)
}

func (b *faultBatch) SetWith(k []byte, n int, fill func([]byte)) error {
	v := make([]byte, n)
	fill(v)
	return b.Set(k, v)
}

// setsKey reports whether the batch sets key.
func (b *faultBatch) setsKey(key []byte) bool {
	for _, k := range b.sets {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

// setsValueContaining reports whether the batch sets a value containing s.
func (b *faultBatch) setsValueContaining(s string) bool {
	for _, v := range b.vals {
		if bytes.Contains(v, []byte(s)) {
			return true
		}
	}
	return false
}

// setsUnder reports whether the batch sets a key starting with prefix.
func (b *faultBatch) setsUnder(prefix []byte) bool {
	for _, k := range b.sets {
		if bytes.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func (b *faultBatch) Commit(sync bool) error {
	b.e.mu.Lock()
	hook := b.e.mu.beforeCommit
	b.e.mu.Unlock()
	if hook != nil {
		if err := hook(b); err != nil {
			return err
		}
	}
	b.e.mu.Lock()
	b.e.mu.commits++
	fail := b.e.mu.failFrom > 0 && b.e.mu.commits >= b.e.mu.failFrom
	if fail {
		b.e.mu.failed = true
	}
	b.e.mu.Unlock()
	if fail {
		return errInjected
	}
	return b.Batch.Commit(sync)
}

// schedulerCounters reads the scheduler's groups gauge and its passes and
// syncs counters through the collectors it exports.
func schedulerCounters(t testing.TB, s *Scheduler) (groups, passes, syncs float64) {
	t.Helper()
	return schedulerMetric(t, s, "raftka_raft_groups"),
		schedulerMetric(t, s, "raftka_raft_scheduler_passes_total"),
		schedulerMetric(t, s, "raftka_raft_log_syncs_total")
}

// schedulerMetric returns the value of the scheduler's gauge or counter
// called name.
func schedulerMetric(t testing.TB, s *Scheduler, name string) float64 {
	t.Helper()
	for _, c := range s.Metrics().Collectors() {
		descs := make(chan *prometheus.Desc, 4)
		c.Describe(descs)
		close(descs)
		for d := range descs {
			if strings.Contains(d.String(), `fqName: "`+name+`"`) {
				return testutil.ToFloat64(c)
			}
		}
	}
	t.Fatalf("scheduler has no metric %s", name)
	return 0
}

func TestSchedulerMetricsRegister(t *testing.T) {
	t.Parallel()
	s, err := NewScheduler(testConfig(1), storage.NewMemory(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	for _, c := range s.Metrics().Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != len(s.Metrics().Collectors()) {
		t.Fatalf("gathered %d metrics, %v; want one per collector", n, err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig(1).Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := Config{ElectionTicks: 1, HeartbeatTicks: 1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("zero config validated")
	}
	// Every problem at once.
	for _, want := range []string{"node id", "tick interval", "heartbeat ticks", "inflight"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := NewScheduler(bad, storage.NewMemory(), nil); err == nil {
		t.Fatal("NewScheduler accepted an invalid config")
	}
}

// TestSchedulerGroupCommit appends to many single-voter partitions at once
// and checks that every append completes and that their log writes were
// synced together: far fewer syncs than appends.
func TestSchedulerGroupCommit(t *testing.T) {
	t.Parallel()
	const groups, perGroup = 200, 5
	eng := newFaultEngine(storage.NewMemory())
	rs := startScheduler(t, testConfig(1), eng, nil)
	parts := make([]*Partition, groups)
	for i := range parts {
		id := uint64(1000 + i)
		if err := rs.Bootstrap(id, []uint64{1}, nil); err != nil {
			t.Fatal(err)
		}
		p, err := OpenPartition(rs.Scheduler, id, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		parts[i] = p
	}
	for _, p := range parts {
		waitPartition(t, p, "leader", func(o Offsets) bool { return o.Leader == 1 })
	}
	if g, _, _ := schedulerCounters(t, rs.Scheduler); g != groups {
		t.Fatalf("groups gauge %v, want %d", g, groups)
	}
	// A commit takes about as long as a disk's: with the memory engine's
	// instant commits, a pass could finish before the next proposal
	// arrived, and whether passes carried several groups depended on how
	// the goroutines happened to be scheduled (it failed 3 runs in 5 on an
	// idle 2-core machine).
	eng.setBeforeCommit(func(*faultBatch) error {
		time.Sleep(200 * time.Microsecond)
		return nil
	})
	_, passes0, syncs0 := schedulerCounters(t, rs.Scheduler)

	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, groups)
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			next := int64(0)
			for j := range perGroup {
				wait, err := p.AppendAsync(plainBatch(fmt.Sprintf("g%d/%d", i, j), 2).build())
				if err != nil {
					errs <- err
					return
				}
				res, err := wait(ctx)
				if err != nil || res.Err != nil || res.BaseOffset != next {
					errs <- fmt.Errorf("group %d append %d: %+v, %v; want base %d", i, j, res, err, next)
					return
				}
				next += 2
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, passes1, syncs1 := schedulerCounters(t, rs.Scheduler)
	appends := float64(groups * perGroup)
	t.Logf("%v appends: %v passes, %v syncs", appends, passes1-passes0, syncs1-syncs0)
	if syncs1-syncs0 >= appends/2 {
		t.Errorf("%v syncs for %v appends: no group commit", syncs1-syncs0, appends)
	}
	if syncs1 <= syncs0 || passes1 <= passes0 {
		t.Errorf("counters did not move: passes %v→%v syncs %v→%v", passes0, passes1, syncs0, syncs1)
	}
	for i, p := range parts {
		if hw := p.Offsets().HighWatermark; hw != 2*perGroup {
			t.Errorf("group %d: high watermark %d, want %d", i, hw, 2*perGroup)
		}
	}
}

func TestSchedulerRemoveGroupDestroy(t *testing.T) {
	t.Parallel()
	eng := storage.NewMemory()
	rs := startScheduler(t, testConfig(1), eng, nil)
	ids := []uint64{4, 5, 6}
	parts := map[uint64]*Partition{}
	for _, id := range ids {
		p := openLeaderPartition(t, rs.Scheduler, id)
		appendBatch(t, p, idempotentBatch(1, 0, 0, 2, "x").build())
		appendBatch(t, p, plainBatch("y", 1).build())
		parts[id] = p
	}
	before := map[uint64]int{}
	for _, id := range ids {
		before[id] = len(spanKeys(t, eng, id))
		if before[id] == 0 {
			t.Fatalf("group %d has no keys", id)
		}
	}
	groups0, _, _ := schedulerCounters(t, rs.Scheduler)

	if err := rs.RemoveGroup(5, true); err != nil {
		t.Fatal(err)
	}
	if keys := spanKeys(t, eng, 5); len(keys) != 0 {
		t.Fatalf("destroyed group 5 still has keys %x", keys)
	}
	for _, id := range []uint64{4, 6} {
		if n := len(spanKeys(t, eng, id)); n != before[id] {
			t.Errorf("group %d: %d keys after destroying group 5, had %d", id, n, before[id])
		}
		if r := appendBatch(t, parts[id], plainBatch("z", 1).build()); r.BaseOffset != 3 {
			t.Errorf("group %d: append after destroying group 5: %+v", id, r)
		}
	}
	if rs.Group(5) != nil {
		t.Errorf("removed group still listed")
	}
	if g, _, _ := schedulerCounters(t, rs.Scheduler); g != groups0-1 {
		t.Errorf("groups gauge %v after remove, want %v", g, groups0-1)
	}
	// Proposals to the removed group fail.
	if _, err := parts[5].AppendAsync(plainBatch("late", 1).build()); !errors.Is(err, ErrGroupClosed) {
		t.Errorf("append to removed group: %v, want ErrGroupClosed", err)
	}
	if _, err := parts[5].Group().Propose(context.Background(), []byte{cmdRecordBatch}); !errors.Is(err, ErrGroupClosed) {
		t.Errorf("propose to removed group: %v, want ErrGroupClosed", err)
	}
	// Removing again, or a group that never ran, is harmless.
	if err := rs.RemoveGroup(5, true); err != nil {
		t.Errorf("second remove: %v", err)
	}
	if err := rs.RemoveGroup(77, false); err != nil {
		t.Errorf("remove unknown group: %v", err)
	}
	// The id can be bootstrapped afresh and starts from an empty log.
	p := openLeaderPartition(t, rs.Scheduler, 5)
	if hw := p.Offsets().HighWatermark; hw != 0 {
		t.Fatalf("re-created group 5 starts at high watermark %d", hw)
	}
	if r := appendBatch(t, p, idempotentBatch(1, 0, 0, 1, "again").build()); r.BaseOffset != 0 || r.Duplicate || r.Err != nil {
		t.Fatalf("first append to re-created group: %+v", r)
	}
}

// TestSchedulerRemoveGroupFailsWaiting removes a group while a proposal is
// waiting (its log write held), and checks that the waiter is told rather
// than left hanging.
func TestSchedulerRemoveGroupFailsWaiting(t *testing.T) {
	t.Parallel()
	fe := newFaultEngine(storage.NewMemory())
	rs := startScheduler(t, testConfig(1), fe, nil)
	const id = 8
	p := openLeaderPartition(t, rs.Scheduler, id)

	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fe.setBeforeCommit(func(b *faultBatch) error {
		if b.setsUnder(logKey(id, 0)[:groupKeyFixedLen]) {
			once.Do(func() { close(held); <-release })
		}
		return nil
	})
	wait, err := p.AppendAsync(plainBatch("held", 1).build())
	if err != nil {
		t.Fatal(err)
	}
	<-held
	removeWhileHeld(t, rs.Scheduler, id, false, release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The waiter is told: ErrGroupClosed, or success if RemoveGroup let
	// the entry apply first.
	if res, err := wait(ctx); err != nil && !errors.Is(err, ErrGroupClosed) {
		t.Fatalf("waiting proposal of a removed group: %+v, %v; want ErrGroupClosed or success", res, err)
	}
}

// removeWhileHeld removes group id while a pass is held, then releases the
// pass. RemoveGroup may wait for the pass to end (a correct way to destroy
// a group safely); if it has not returned after a moment it is taken to be
// waiting, and the pass is released so that it can.
func removeWhileHeld(t *testing.T, s *Scheduler, id uint64, destroy bool, release chan struct{}) {
	t.Helper()
	removed := make(chan error, 1)
	go func() { removed <- s.RemoveGroup(id, destroy) }()
	select {
	case err := <-removed:
		close(release)
		if err != nil {
			t.Fatal(err)
		}
		return
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-removed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RemoveGroup did not return after the pass was released")
	}
}

// TestSchedulerRemoveGroupDuringPass destroys a group while the scheduler
// is writing the group's log entries, and checks that nothing of the group
// is left behind.
func TestSchedulerRemoveGroupDuringPass(t *testing.T) {
	t.Parallel()
	fe := newFaultEngine(storage.NewMemory())
	rs := startScheduler(t, testConfig(1), fe, nil)
	const id, other = 8, 9
	p := openLeaderPartition(t, rs.Scheduler, id)
	q := openLeaderPartition(t, rs.Scheduler, other)
	appendBatch(t, p, plainBatch("before", 1).build())

	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fe.setBeforeCommit(func(b *faultBatch) error {
		if b.setsUnder(logKey(id, 0)[:groupKeyFixedLen]) {
			once.Do(func() { close(held); <-release })
		}
		return nil
	})
	if _, err := p.AppendAsync(plainBatch("during", 1).build()); err != nil {
		t.Fatal(err)
	}
	<-held
	// The scheduler is inside a pass, about to write group 8's entry.
	removeWhileHeld(t, rs.Scheduler, id, true, release)
	// Passes run one at a time: once another group's append completes,
	// the held pass is over.
	appendBatch(t, q, plainBatch("after", 1).build())
	if keys := spanKeys(t, fe, id); len(keys) != 0 {
		t.Fatalf("destroyed group has keys %x", keys)
	}
}

func TestSchedulerClosed(t *testing.T) {
	t.Parallel()
	eng := storage.NewMemory()
	rs := startScheduler(t, testConfig(1), eng, nil)
	p := openLeaderPartition(t, rs.Scheduler, 3)
	appendBatch(t, p, plainBatch("a", 1).build())
	if err := rs.stop(t); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	if _, err := p.AppendAsync(plainBatch("b", 1).build()); !errors.Is(err, ErrGroupClosed) {
		t.Errorf("append after stop: %v, want ErrGroupClosed", err)
	}
	if err := rs.Step(3, nil); !errors.Is(err, ErrGroupClosed) {
		t.Errorf("step after stop: %v, want ErrGroupClosed", err)
	}
	if err := rs.Bootstrap(4, []uint64{1}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.AddGroup(4, &echoStateMachine{}); !errors.Is(err, ErrGroupClosed) {
		t.Errorf("add group after stop: %v, want ErrGroupClosed", err)
	}
	if err := rs.Step(99, nil); err == nil {
		t.Errorf("step to unknown group succeeded")
	}
}

func TestSchedulerAddGroupUnbootstrapped(t *testing.T) {
	t.Parallel()
	rs := startScheduler(t, testConfig(1), storage.NewMemory(), nil)
	if _, err := rs.AddGroup(4, &echoStateMachine{}); err == nil {
		t.Fatal("added a group that was never bootstrapped")
	}
	if _, err := OpenPartition(rs.Scheduler, 4, quietLogger); err == nil {
		t.Fatal("opened a partition that was never bootstrapped")
	}
}

// TestSchedulerAddGroupTwice adds a group that is already running: first
// while it is idle, then while it commits an entry. Both must be refused
// with an error.
func TestSchedulerAddGroupTwice(t *testing.T) {
	t.Parallel()
	fe := newFaultEngine(storage.NewMemory())
	rs := startScheduler(t, testConfig(1), fe, nil)
	const id = 3
	p := openLeaderPartition(t, rs.Scheduler, id)
	// After an acknowledged append a single voter writes nothing more.
	appendBatch(t, p, plainBatch("a", 1).build())
	if _, err := rs.AddGroup(id, &echoStateMachine{}); err == nil {
		t.Fatal("a group was added twice")
	}

	// Now let the running group commit an entry between AddGroup's read
	// of the hard state and its read of the applied index.
	var once sync.Once
	fe.setBeforeGet(func(key []byte) {
		if bytes.Equal(key, appliedKey(id)) {
			once.Do(func() { appendBatch(t, p, plainBatch("meanwhile", 1).build()) })
		}
	})
	var panicked any
	var err error
	func() {
		defer func() { panicked = recover() }()
		_, err = rs.AddGroup(id, &echoStateMachine{})
	}()
	fe.setBeforeGet(nil)
	if panicked != nil {
		t.Fatalf("AddGroup panicked: %v", panicked)
	}
	if err == nil {
		t.Fatal("a group was added twice")
	}
}

// TestSchedulerStorageFailure fails every commit from some point on: Run
// returns the error and waiting proposals fail instead of succeeding.
func TestSchedulerStorageFailure(t *testing.T) {
	t.Parallel()
	fe := newFaultEngine(storage.NewMemory())
	cfg := testConfig(1)
	cfg.Logger = quietLogger
	s, err := NewScheduler(cfg, fe, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()
	p := openLeaderPartition(t, s, 3)
	appendBatch(t, p, plainBatch("ok", 1).build())

	fe.failCommitsFrom(1)
	var waits []func(context.Context) (AppendResult, error)
	for i := range 5 {
		w, err := p.AppendAsync(plainBatch(fmt.Sprint(i), 1).build())
		if err != nil {
			break // the scheduler may already have stopped
		}
		waits = append(waits, w)
	}
	select {
	case err := <-runErr:
		if !errors.Is(err, errInjected) {
			t.Fatalf("Run returned %v, want the storage error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after a storage failure")
	}
	if len(waits) == 0 {
		t.Fatal("no proposal was accepted")
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	for i, w := range waits {
		res, err := w(wctx)
		if err == nil {
			t.Errorf("proposal %d succeeded (%+v) although nothing could be written", i, res)
		} else if !errors.Is(err, ErrGroupClosed) {
			t.Errorf("proposal %d: %v, want ErrGroupClosed", i, err)
		}
	}
	if _, err := p.AppendAsync(plainBatch("late", 1).build()); !errors.Is(err, ErrGroupClosed) {
		t.Errorf("append after failure: %v, want ErrGroupClosed", err)
	}
}

// TestSchedulerFailKthCommit fails the k-th commit after a partition is up,
// for k = 1, 2, ... until a run completes without reaching it. In every run
// each proposal must complete (success or error, never hang), and every
// acknowledged batch must be in the log at its offset after a restart.
func TestSchedulerFailKthCommit(t *testing.T) {
	t.Parallel()
	// Sequential proposals make the commits of a run the same every time
	// (for a single voter: log write, then log write and apply, per
	// proposal); concurrent ones batch differently from run to run.
	for _, sequential := range []bool{true, false} {
		t.Run(fmt.Sprintf("sequential=%v", sequential), func(t *testing.T) {
			t.Parallel()
			var hangs []string
			for k := 1; ; k++ {
				if k == 100 {
					t.Fatal("every run reached the failing commit")
				}
				reached, hung := runFailKthCommit(t, k, sequential)
				if t.Failed() {
					return
				}
				if hung != "" {
					hangs = append(hangs, hung)
				}
				if !reached {
					break
				}
			}
			if len(hangs) > 0 {
				t.Fatalf("proposals hung: %v", hangs)
			}
		})
	}
}

func runFailKthCommit(t *testing.T, k int, sequential bool) (reached bool, hung string) {
	t.Helper()
	mem := storage.NewMemory()
	defer mem.Close()
	fe := newFaultEngine(mem)
	cfg := testConfig(1)
	cfg.Logger = quietLogger
	s, err := NewScheduler(cfg, fe, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx) }()
	const id, n = 3, 8
	p := openLeaderPartition(t, s, id)

	// Wait for proposals, or for the scheduler to die. After Run has
	// returned, every completion that will ever happen has happened.
	dead, deadCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer deadCancel()
	go func() {
		select {
		case <-s.Done():
			deadCancel()
		case <-dead.Done():
		}
	}()
	acked := map[int64]string{}
	await := func(i int, wait func(context.Context) (AppendResult, error)) {
		res, err := wait(dead)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			select {
			case <-s.Done():
			default:
				t.Fatalf("k=%d: proposal %d did not complete in 10s with the scheduler running", k, i)
			}
			// Look again, with time for a completed proposal to win.
			again, c := context.WithTimeout(context.Background(), 100*time.Millisecond)
			res, err = wait(again)
			c()
			if errors.Is(err, context.DeadlineExceeded) {
				hung = fmt.Sprintf("k=%d sequential=%v: proposal %d never completed after Run returned", k, sequential, i)
				return
			}
		}
		switch {
		case err == nil && res.Err == nil && !res.Duplicate:
			if prev, dup := acked[res.BaseOffset]; dup {
				t.Fatalf("k=%d: offset %d acknowledged twice (%s and %d)", k, res.BaseOffset, prev, i)
			}
			acked[res.BaseOffset] = fmt.Sprint(i) + "-0"
		case err == nil:
			t.Fatalf("k=%d: proposal %d: unexpected result %+v", k, i, res)
		case !errors.Is(err, ErrGroupClosed) && !errors.Is(err, ErrStorage):
			t.Fatalf("k=%d: proposal %d: %v, want success, ErrGroupClosed or ErrStorage", k, i, err)
		}
	}

	fe.failCommitsFrom(k)
	var waits []func(context.Context) (AppendResult, error)
	for i := range n {
		w, err := p.AppendAsync(idempotentBatch(5, 0, int32(i), 1, fmt.Sprint(i)).build())
		if err != nil {
			if !errors.Is(err, ErrGroupClosed) {
				t.Fatalf("k=%d: append %d: %v", k, i, err)
			}
			break
		}
		if sequential {
			await(i, w)
		}
		waits = append(waits, w)
	}
	if !sequential {
		for i, w := range waits {
			await(i, w)
		}
	}
	reached = fe.failed()
	t.Logf("k=%d sequential=%v: failure reached %v, %d of %d proposals acknowledged", k, sequential, reached, len(acked), len(waits))
	if reached {
		select {
		case err := <-runErr:
			if !errors.Is(err, errInjected) {
				t.Fatalf("k=%d: Run returned %v, want the injected error", k, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("k=%d: Run did not return after the storage failure", k)
		}
	} else if len(acked) != len(waits) {
		t.Fatalf("k=%d: %d of %d proposals acknowledged without a failure", k, len(acked), len(waits))
	}
	cancel()
	<-s.Done()

	// Restart on what was written and find every acknowledged batch.
	s2, err := NewScheduler(cfg, mem, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer func() { cancel2(); <-s2.Done() }()
	go func() { _ = s2.Run(ctx2) }()
	p2, err := OpenPartition(s2, id, quietLogger)
	if err != nil {
		t.Fatalf("k=%d: reopen: %v", k, err)
	}
	waitPartition(t, p2, "leader", func(o Offsets) bool { return o.Leader == 1 })
	for off, want := range acked {
		waitPartition(t, p2, fmt.Sprintf("acknowledged offset %d", off), func(o Offsets) bool { return o.HighWatermark > off })
		out, err := p2.Read(nil, off, 1)
		if err != nil {
			t.Fatalf("k=%d: read acknowledged offset %d: %v", k, off, err)
		}
		bs, _, err := ParseBatches(out)
		if err != nil || len(bs) != 1 || batchBase(bs[0]) != off {
			t.Fatalf("k=%d: read at %d: %d batches, %v", k, off, len(bs), err)
		}
		if v := string(decodeRecords(t, bs[0])[0].Value); v != want {
			t.Fatalf("k=%d: offset %d holds %q, acknowledged %q", k, off, v, want)
		}
	}
	return reached, hung
}
