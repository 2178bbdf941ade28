package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Fault kinds, the values of --faults.
const (
	// FaultKill SIGKILLs a broker and restarts it when the fault heals.
	FaultKill = "kill"
	// FaultPause SIGSTOPs a broker and SIGCONTs it when the fault heals.
	FaultPause = "pause"
	// FaultPartition cuts Raft traffic: one broker isolated, a
	// majority/minority split (5 brokers), or one way only; sometimes
	// clients are cut off from the isolated brokers too.
	FaultPartition = "partition"
	// FaultSlow adds latency to one broker's traffic, or to everyone's.
	FaultSlow = "slow"
	// FaultLeader kills, pauses or isolates the leader of a partition or
	// the controller (the metadata group's leader), found when the fault
	// starts.
	FaultLeader = "leader"
	// FaultRestartAll restarts every broker: in turn (SIGTERM, start,
	// wait until healthy), or all at once after SIGKILLing them all (a
	// power failure: only what was fsynced survives).
	FaultRestartAll = "restart-all"
)

// FaultKinds lists every kind.
var FaultKinds = []string{FaultKill, FaultPause, FaultPartition, FaultSlow, FaultLeader, FaultRestartAll}

// Partition variants.
const (
	PartitionIsolate = "isolate"  // Nodes cut off from the rest, both ways
	PartitionSplit   = "split"    // Nodes (a minority) cut off from the majority
	PartitionInbound = "inbound"  // Nodes receive nothing from the rest, but send
	PartitionOutbnd  = "outbound" // Nodes send nothing to the rest, but receive
)

// Restart-all variants.
const (
	RestartRolling = "rolling" // SIGTERM and restart one broker at a time
	RestartCrash   = "crash"   // SIGKILL every broker at once, then start all
)

// Leader actions.
const (
	LeaderKill    = "kill"
	LeaderPause   = "pause"
	LeaderIsolate = "isolate"
)

// Fault is one scheduled fault.
type Fault struct {
	// ID numbers the faults of a run from 1.
	ID int
	// At is when the fault starts, from the start of the fault window.
	At time.Duration
	// Hold is how long it lasts before it heals.
	Hold time.Duration
	Kind string
	// Nodes are the brokers it targets (1-based ids). For FaultLeader
	// they are the fallback when the leader cannot be found; for
	// FaultRestartAll, the order of the restarts; empty for FaultSlow on
	// all brokers.
	Nodes []int32
	// Variant is the partition variant or the leader action.
	Variant string
	// Clients, for partitions and isolating leaders, also cuts clients
	// off from the isolated brokers.
	Clients bool
	// Partition is the partition whose leader FaultLeader targets; -1
	// targets the controller.
	Partition int32
	// Latency is the delay FaultSlow adds, each way.
	Latency time.Duration
}

// String describes the fault as it is scheduled.
func (f Fault) String() string {
	var b strings.Builder
	b.WriteString(f.Kind)
	switch f.Kind {
	case FaultKill, FaultPause:
		fmt.Fprintf(&b, " node %d", f.Nodes[0])
	case FaultPartition:
		fmt.Fprintf(&b, " %s nodes %s", f.Variant, joinIDs(f.Nodes))
		if f.Clients {
			b.WriteString(" and clients")
		}
	case FaultSlow:
		if len(f.Nodes) == 0 {
			fmt.Fprintf(&b, " all by %v", f.Latency)
		} else {
			fmt.Fprintf(&b, " node %d by %v", f.Nodes[0], f.Latency)
		}
	case FaultLeader:
		fmt.Fprintf(&b, " %s", f.Variant)
		if f.Partition < 0 {
			b.WriteString(" controller")
		} else {
			fmt.Fprintf(&b, " leader of partition %d", f.Partition)
		}
	case FaultRestartAll:
		if f.Variant == RestartCrash {
			b.WriteString(" crash")
		} else {
			fmt.Fprintf(&b, " rolling order %s", joinIDs(f.Nodes))
		}
	}
	return b.String()
}

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}

// ScheduleConfig says what faults a schedule may hold.
type ScheduleConfig struct {
	Seed       int64
	Kinds      []string
	Nodes      int
	Partitions int32
	// Window is how long faults are injected for.
	Window time.Duration
	// Settle is the quiet time before the first fault; 0 means 3 s.
	Settle time.Duration
	// Overlap starts a fault every 1–4 s whether or not the previous ones
	// have healed, so faults combine (a kill during a partition; at times
	// no majority at all).
	Overlap bool
}

// NewSchedule derives the faults of a run from its seed: the same config
// gives the same schedule. Faults come one at a time: each holds for 2–6 s,
// then the cluster has 2–5 s to recover before the next (with Overlap, the
// next starts 1–4 s after the previous one started). A fault that would not
// heal within the window is not scheduled.
func NewSchedule(cfg ScheduleConfig) ([]Fault, error) {
	for _, k := range cfg.Kinds {
		if !slices.Contains(FaultKinds, k) {
			return nil, fmt.Errorf("unknown fault %q (known: %s)", k, strings.Join(FaultKinds, ", "))
		}
	}
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("schedule: %d nodes", cfg.Nodes)
	}
	if len(cfg.Kinds) == 0 {
		return nil, nil
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 3 * time.Second
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed_c4a05))
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	node := func() int32 { return int32(rng.IntN(cfg.Nodes)) + 1 }
	var out []Fault
	at := cfg.Settle
	for {
		f := Fault{ID: len(out) + 1, At: at, Kind: cfg.Kinds[rng.IntN(len(cfg.Kinds))], Hold: between(2*time.Second, 6*time.Second)}
		switch f.Kind {
		case FaultKill, FaultPause:
			f.Nodes = []int32{node()}
		case FaultPartition:
			f.Nodes, f.Variant = partitionSides(rng, cfg.Nodes)
			f.Clients = rng.IntN(3) == 0
		case FaultSlow:
			f.Latency = between(20*time.Millisecond, 250*time.Millisecond).Round(time.Millisecond)
			if rng.IntN(3) > 0 {
				f.Nodes = []int32{node()}
			}
		case FaultLeader:
			f.Variant = []string{LeaderKill, LeaderKill, LeaderPause, LeaderIsolate}[rng.IntN(4)]
			f.Partition = -1
			if cfg.Partitions > 0 && rng.IntN(4) > 0 {
				f.Partition = rng.Int32N(cfg.Partitions)
			}
			f.Nodes = []int32{node()}
			f.Clients = f.Variant == LeaderIsolate && rng.IntN(2) == 0
		case FaultRestartAll:
			f.Nodes = make([]int32, cfg.Nodes)
			for i := range f.Nodes {
				f.Nodes[i] = int32(i) + 1
			}
			rng.Shuffle(len(f.Nodes), func(i, j int) { f.Nodes[i], f.Nodes[j] = f.Nodes[j], f.Nodes[i] })
			f.Variant = []string{RestartRolling, RestartCrash}[rng.IntN(2)]
			// A restart takes as long as it takes; reserve a few
			// seconds per broker in the schedule.
			f.Hold = time.Duration(cfg.Nodes) * 3 * time.Second
		}
		if f.At+f.Hold > cfg.Window {
			break
		}
		out = append(out, f)
		if cfg.Overlap {
			at = f.At + between(time.Second, 4*time.Second)
		} else {
			at = f.At + f.Hold + between(2*time.Second, 5*time.Second)
		}
	}
	return out, nil
}

// partitionSides picks the brokers cut off by a partition and how.
func partitionSides(rng *rand.Rand, n int) ([]int32, string) {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i) + 1
	}
	rng.Shuffle(n, func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	if n == 1 {
		return ids, PartitionIsolate
	}
	variants := []string{PartitionIsolate, PartitionIsolate, PartitionInbound, PartitionOutbnd}
	if n >= 5 {
		variants = append(variants, PartitionSplit, PartitionSplit)
	}
	v := variants[rng.IntN(len(variants))]
	size := 1
	if v == PartitionSplit {
		size = (n - 1) / 2
	}
	side := slices.Clone(ids[:size])
	slices.Sort(side)
	return side, v
}
