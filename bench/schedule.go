package bench

import (
	"context"
	"time"
)

// Clock is the time source of the load generator. Tests substitute a fake
// clock to check the schedule without depending on the machine's timing.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends, whichever is first, and
	// returns ctx's error if it ended.
	Sleep(ctx context.Context, d time.Duration) error
}

// realClock is the wall clock.
type realClock struct{}

var _ Clock = realClock{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Schedule is an open-loop send schedule: send i is due at
// Start + i/Rate, whatever became of the sends before it. A sender that
// falls behind (the client blocked, the broker stalled) sends the overdue
// records at once, each stamped with its own due time, so that a stall
// shows up in the latency of every record it delayed, not of one record
// only. Measuring from the due time rather than from the moment of sending
// is what avoids coordinated omission.
type Schedule struct {
	start    time.Time
	interval float64 // nanoseconds between sends
	next     int64   // index of the next send
}

// NewSchedule returns a schedule of rate sends per second from start.
// rate must be > 0.
func NewSchedule(start time.Time, rate float64) *Schedule {
	return &Schedule{start: start, interval: 1e9 / rate}
}

// Next returns the due time of the next send.
func (s *Schedule) Next() time.Time {
	return s.start.Add(time.Duration(float64(s.next) * s.interval))
}

// Advance moves past the next send and returns its due time.
func (s *Schedule) Advance() time.Time {
	t := s.Next()
	s.next++
	return t
}

// Sent is the number of sends taken from the schedule.
func (s *Schedule) Sent() int64 { return s.next }

// Pace drives send on sched until end (exclusive) or until ctx ends: it
// sleeps until each send is due, and when it is behind, it calls send
// back to back with the overdue due times. It returns the number of sends.
// send receives the due (intended) time, from which latency is measured.
func Pace(ctx context.Context, clock Clock, sched *Schedule, end time.Time, send func(intended time.Time)) int64 {
	return PaceGroups(ctx, clock, sched, end, paceBurst, func(dues []time.Time) bool {
		for _, t := range dues {
			send(t)
		}
		return true
	})
}

// paceBurst bounds the overdue sends Pace makes back to back before it
// reads the clock again. A sleep ends tens of microseconds late, by when
// a fast schedule has several sends due; reading the clock once for all of
// them rather than once per send matters in a load generator that shares
// the machine with the brokers it measures (at 165k sends/s, reading the
// clock was 2% of a core).
const paceBurst = 64

// PaceGroups drives commit on sched until end (exclusive), until ctx ends
// or until commit returns false, as a group commit: it sleeps until the
// next send is due, then hands commit every send due by now (at least one,
// at most limit) with their due times. A committer that falls behind thus
// catches up in fewer, larger commits, as a broker's scheduler writes
// everything proposed during its previous write in one batch, while each
// send's latency still counts from its own due time. It returns the number
// of sends.
func PaceGroups(ctx context.Context, clock Clock, sched *Schedule, end time.Time, limit int, commit func(dues []time.Time) bool) int64 {
	limit = max(limit, 1)
	dues := make([]time.Time, 0, limit)
	for ctx.Err() == nil {
		next := sched.Next()
		if !next.Before(end) {
			break
		}
		now := clock.Now()
		if wait := next.Sub(now); wait > 0 {
			if clock.Sleep(ctx, wait) != nil {
				break
			}
			continue
		}
		dues = dues[:0]
		// The next send is due, so at least one is taken.
		for len(dues) < limit {
			if next := sched.Next(); next.After(now) || !next.Before(end) {
				break
			}
			dues = append(dues, sched.Advance())
		}
		if !commit(dues) {
			break
		}
	}
	return sched.Sent()
}
