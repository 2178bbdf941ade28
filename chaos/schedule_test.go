package chaos

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestScheduleIsDeterministic(t *testing.T) {
	cfg := ScheduleConfig{Seed: 42, Kinds: FaultKinds, Nodes: 5, Partitions: 6, Window: 2 * time.Minute}
	a, err := NewSchedule(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSchedule(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different schedules")
	}
	cfg.Seed = 43
	c, _ := NewSchedule(cfg)
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds, same schedule")
	}
}

// TestScheduleShape checks the schedule's invariants over many seeds: one
// fault at a time, inside the window, on existing brokers, with every
// requested kind appearing somewhere.
func TestScheduleShape(t *testing.T) {
	seen := map[string]bool{}
	variants := map[string]bool{}
	for seed := range int64(200) {
		for _, nodes := range []int{3, 5} {
			window := 60 * time.Second
			s, err := NewSchedule(ScheduleConfig{Seed: seed, Kinds: FaultKinds, Nodes: nodes, Partitions: 6, Window: window})
			if err != nil {
				t.Fatal(err)
			}
			if len(s) == 0 {
				t.Fatalf("seed %d: empty schedule", seed)
			}
			var end time.Duration
			for i, f := range s {
				seen[f.Kind] = true
				variants[f.Variant] = true
				if f.ID != i+1 || f.At < end || f.At+f.Hold > window || f.Hold <= 0 {
					t.Fatalf("seed %d: fault %+v after end %v", seed, f, end)
				}
				end = f.At + f.Hold
				for _, n := range f.Nodes {
					if n < 1 || int(n) > nodes {
						t.Fatalf("seed %d: fault %+v targets node %d of %d", seed, f, n, nodes)
					}
				}
				if f.Kind == FaultPartition && 2*len(f.Nodes) >= nodes {
					t.Fatalf("seed %d: partition %v cuts off a majority", seed, f)
				}
				if f.String() == "" || !strings.HasPrefix(f.String(), f.Kind) {
					t.Fatalf("seed %d: description %q", seed, f.String())
				}
			}
		}
	}
	for _, k := range FaultKinds {
		if !seen[k] {
			t.Errorf("kind %s never scheduled", k)
		}
	}
	for _, v := range []string{PartitionIsolate, PartitionSplit, PartitionInbound, PartitionOutbnd, LeaderKill, LeaderPause, LeaderIsolate, RestartRolling, RestartCrash} {
		if !variants[v] {
			t.Errorf("variant %s never scheduled", v)
		}
	}
}

func TestScheduleOnlyRequestedKinds(t *testing.T) {
	s, err := NewSchedule(ScheduleConfig{Seed: 1, Kinds: []string{FaultKill}, Nodes: 3, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s {
		if f.Kind != FaultKill {
			t.Fatalf("unrequested fault %v", f)
		}
	}
	if _, err := NewSchedule(ScheduleConfig{Seed: 1, Kinds: []string{"meteor"}, Nodes: 3, Window: time.Minute}); err == nil {
		t.Fatal("unknown kind accepted")
	}
	none, _ := NewSchedule(ScheduleConfig{Seed: 1, Nodes: 3, Window: time.Minute})
	if len(none) != 0 {
		t.Fatalf("no kinds, got %v", none)
	}
	if !slices.Contains(FaultKinds, FaultRestartAll) {
		t.Fatal("restart-all missing")
	}
}

func TestScheduleOverlap(t *testing.T) {
	s, err := NewSchedule(ScheduleConfig{Seed: 7, Kinds: []string{FaultKill, FaultPartition}, Nodes: 3, Window: time.Minute, Overlap: true})
	if err != nil {
		t.Fatal(err)
	}
	overlaps := 0
	for i := 1; i < len(s); i++ {
		if gap := s[i].At - s[i-1].At; gap < time.Second || gap > 4*time.Second {
			t.Fatalf("fault %d starts %v after the previous", s[i].ID, gap)
		}
		if s[i].At < s[i-1].At+s[i-1].Hold {
			overlaps++
		}
	}
	if overlaps == 0 {
		t.Fatal("no overlapping faults")
	}
}
