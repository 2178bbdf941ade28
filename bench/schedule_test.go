package bench

import (
	"context"
	"testing"
	"time"
)

// fakeClock is a Clock whose time moves only when the test or a Sleep
// moves it.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	return ctx.Err()
}

func (c *fakeClock) advance(d time.Duration) { c.now = c.now.Add(d) }

// TestPaceMeasuresFromIntendedTime stalls one send for 200 ms at 1,000
// records/s. An open-loop schedule keeps every later record's intended time
// where it was, so the ~200 records the stall delayed all carry the delay
// in their latency; a closed loop would have recorded one slow record and
// then quietly sent fewer.
func TestPaceMeasuresFromIntendedTime(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0)
	clock := &fakeClock{now: start}
	sched := NewSchedule(start, 1000)
	var intended []time.Time
	var latencies []time.Duration
	h := newHistogram()
	n := Pace(context.Background(), clock, sched, start.Add(time.Second), func(due time.Time) {
		intended = append(intended, due)
		if len(intended) == 101 { // record 100, due at 100 ms
			clock.advance(200 * time.Millisecond)
		}
		lat := clock.Now().Sub(due)
		latencies = append(latencies, lat)
		if err := h.RecordValue(clampMicros(lat)); err != nil {
			t.Fatal(err)
		}
	})
	if n != 1000 || len(intended) != 1000 {
		t.Fatalf("sent %d (callback %d), want exactly rate × duration = 1000", n, len(intended))
	}
	for i, due := range intended {
		if want := start.Add(time.Duration(i) * time.Millisecond); !due.Equal(want) {
			t.Fatalf("send %d due at %v, want %v: the schedule must not move after a stall", i, due.Sub(start), want.Sub(start))
		}
	}
	var delayed, over100ms int
	for _, l := range latencies {
		if l > 0 {
			delayed++
		}
		if l >= 100*time.Millisecond {
			over100ms++
		}
	}
	// Records 100..299 were due during or before the end of the stall at
	// 300 ms: latencies 200 ms, 199 ms, …, 1 ms.
	if delayed != 200 || over100ms != 101 {
		t.Errorf("delayed %d records (want 200), %d of them by >= 100 ms (want 101)", delayed, over100ms)
	}
	if got := latencies[100]; got != 200*time.Millisecond {
		t.Errorf("the stalled record's latency = %v, want 200ms", got)
	}
	if got := latencies[299]; got != time.Millisecond {
		t.Errorf("the last overdue record's latency = %v, want 1ms", got)
	}
	if got := latencies[300]; got != 0 {
		t.Errorf("a record after the backlog cleared has latency %v, want 0", got)
	}
	s := Summarize(h)
	// 20% of the records were delayed; 10% by 100 ms or more.
	if s.P50Ms > 0.01 || s.P90Ms < 99 || s.P99Ms < 180 || s.MaxMs < 199 {
		t.Errorf("percentiles p50 %.3f p90 %.1f p99 %.1f max %.1f ms do not show the stall", s.P50Ms, s.P90Ms, s.P99Ms, s.MaxMs)
	}
}

func TestPaceStopsWithContext(t *testing.T) {
	t.Parallel()
	start := time.Unix(0, 0)
	clock := &fakeClock{now: start}
	ctx, cancel := context.WithCancel(context.Background())
	n := Pace(ctx, clock, NewSchedule(start, 100), start.Add(time.Hour), func(time.Time) {
		if clock.Now().Sub(start) >= time.Second {
			cancel()
		}
	})
	if n < 100 || n > 102 {
		t.Errorf("sent %d before cancellation after ~1 s at 100/s, want ~101", n)
	}
}

func TestScheduleFractionalRate(t *testing.T) {
	t.Parallel()
	start := time.Unix(0, 0)
	s := NewSchedule(start, 3) // 333.33 ms apart, no drift
	for range 3000 {
		s.Advance()
	}
	if got := s.Next().Sub(start); got != 1000*time.Second {
		t.Errorf("send 3000 at 3/s due at %v, want 1000s", got)
	}
}

// TestPaceGroupsCatchesUpInGroups stalls one commit for 50 ms at 1,000
// sends/s: the sends that fell due meanwhile go into the next commits
// together, at most limit at a time, each keeping its own due time, and
// the schedule then goes back to one send per commit.
func TestPaceGroupsCatchesUpInGroups(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0)
	clock := &fakeClock{now: start}
	sched := NewSchedule(start, 1000)
	var groups []int
	var dues []time.Time
	n := PaceGroups(context.Background(), clock, sched, start.Add(200*time.Millisecond), 20, func(g []time.Time) bool {
		groups = append(groups, len(g))
		dues = append(dues, g...)
		if len(dues) == 10 { // the commit of send 9, due at 9 ms
			clock.advance(50 * time.Millisecond)
		}
		return true
	})
	if n != 200 || len(dues) != 200 {
		t.Fatalf("sent %d (committed %d), want exactly rate × duration = 200", n, len(dues))
	}
	for i, due := range dues {
		if want := start.Add(time.Duration(i) * time.Millisecond); !due.Equal(want) {
			t.Fatalf("send %d due at %v, want %v", i, due.Sub(start), want.Sub(start))
		}
	}
	// Sends 10..59 were due by 59 ms, when the stall ended: 50 sends in
	// commits of 20, 20 and 10; every other commit holds one send.
	want := []int{20, 20, 10}
	if len(groups) != 10+len(want)+140 {
		t.Fatalf("%d commits, want %d: %v", len(groups), 10+len(want)+140, groups)
	}
	for i, g := range groups {
		w := 1
		if i >= 10 && i < 10+len(want) {
			w = want[i-10]
		}
		if g != w {
			t.Fatalf("commit %d took %d sends, want %d: %v", i, g, w, groups)
		}
	}
}

// TestPaceGroupsStopsWhenCommitFails checks that a false from commit ends
// the run at once.
func TestPaceGroupsStopsWhenCommitFails(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0)
	clock := &fakeClock{now: start}
	commits := 0
	n := PaceGroups(context.Background(), clock, NewSchedule(start, 1000), start.Add(time.Second), 0, func(g []time.Time) bool {
		commits++
		if len(g) != 1 {
			t.Errorf("a limit below 1 must still commit one send at a time, got %d", len(g))
		}
		return commits < 3
	})
	if n != 3 || commits != 3 {
		t.Errorf("sent %d in %d commits, want 3 and 3", n, commits)
	}
}
