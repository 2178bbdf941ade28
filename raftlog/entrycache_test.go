package raftlog

import (
	"math/rand/v2"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func cacheEntry(index, term uint64, size int) *pb.Entry {
	return &pb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Data: make([]byte, size)}
}

// TestEntryCacheModel drives the cache with random appends, conflicting
// appends, evictions and reads, and checks every read against a model log:
// whatever the cache answers must be exactly the log's entries, and slices
// handed out earlier (as raft keeps them in queued messages) must never
// change afterwards.
func TestEntryCacheModel(t *testing.T) {
	t.Parallel()
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		budget := &cacheBudget{max: 1 << 20}
		c := entryCache{budget: budget}
		var log []*pb.Entry // log[i] has index i+1
		type handed struct {
			ents []*pb.Entry
			want []uint64 // indexes
			term []uint64
		}
		var out []handed
		applied := uint64(0)
		term := uint64(1)
		for step := range 2000 {
			switch op := rng.IntN(10); {
			case op < 4: // append at the end
				n := 1 + rng.IntN(4)
				var ents []*pb.Entry
				for range n {
					ents = append(ents, cacheEntry(uint64(len(log)+len(ents)+1), term, rng.IntN(64<<10)))
				}
				log = append(log, ents...)
				c.append(ents)
			case op < 5 && len(log) > int(applied): // conflicting append above applied
				term++
				from := applied + 1 + uint64(rng.IntN(len(log)-int(applied)))
				log = log[:from-1]
				c.truncateFrom(from)
				e := cacheEntry(from, term, rng.IntN(1024))
				log = append(log, e)
				c.append([]*pb.Entry{e})
			case op < 7: // apply some and evict
				if int(applied) < len(log) {
					applied += uint64(1 + rng.IntN(len(log)-int(applied)))
				}
				c.evictApplied(applied, rng.IntN(4) != 0)
			default: // read
				if len(log) == 0 {
					continue
				}
				lo := 1 + uint64(rng.IntN(len(log)))
				hi := lo + 1 + uint64(rng.IntN(len(log)-int(lo)+1))
				ents, ok := c.get(lo, hi, uint64(rng.IntN(256<<10)))
				if !ok {
					continue
				}
				if len(ents) == 0 || len(ents) > int(hi-lo) {
					t.Fatalf("seed %d step %d: get(%d,%d) returned %d entries", seed, step, lo, hi, len(ents))
				}
				h := handed{ents: ents}
				for i, e := range ents {
					if e != log[lo-1+uint64(i)] {
						t.Fatalf("seed %d step %d: get(%d,%d)[%d] is index %d term %d, want the log's index %d term %d",
							seed, step, lo, hi, i, e.GetIndex(), e.GetTerm(), log[lo-1+uint64(i)].GetIndex(), log[lo-1+uint64(i)].GetTerm())
					}
					h.want = append(h.want, e.GetIndex())
					h.term = append(h.term, e.GetTerm())
				}
				out = append(out, h)
			}
			if len(c.ents) > 0 && c.first+uint64(len(c.ents))-1 != uint64(len(log)) {
				t.Fatalf("seed %d step %d: cache ends at %d, log at %d", seed, step, c.first+uint64(len(c.ents))-1, len(log))
			}
			var sum int64
			for _, e := range c.ents {
				sum += entrySize(e)
			}
			if sum != c.bytes || c.bytes != budget.used.Load() {
				t.Fatalf("seed %d step %d: cache bytes %d, counted %d, budget %d", seed, step, c.bytes, sum, budget.used.Load())
			}
			if idx, ok := c.term(uint64(len(log))); len(c.ents) > 0 && (!ok || idx != log[len(log)-1].GetTerm()) {
				t.Fatalf("seed %d step %d: term of the last entry %d %v", seed, step, idx, ok)
			}
		}
		for _, h := range out {
			for i, e := range h.ents {
				if e == nil || e.GetIndex() != h.want[i] || e.GetTerm() != h.term[i] {
					t.Fatalf("seed %d: a slice handed out earlier changed: entry %d is %v, want index %d term %d", seed, i, e, h.want[i], h.term[i])
				}
			}
		}
		c.clear()
		if budget.used.Load() != 0 || c.bytes != 0 {
			t.Fatalf("seed %d: after clear, budget %d bytes %d", seed, budget.used.Load(), c.bytes)
		}
	}
}

// TestEntryCacheBounds checks the per-group cap and the budget: applied
// entries go when the scheduler's budget is spent, unapplied ones stay.
func TestEntryCacheBounds(t *testing.T) {
	t.Parallel()
	budget := &cacheBudget{max: 1 << 20}
	c := entryCache{budget: budget}
	for i := uint64(1); i <= 80; i++ {
		c.append([]*pb.Entry{cacheEntry(i, 1, 1<<20)})
	}
	if c.bytes > cacheGroupMax || c.first+uint64(len(c.ents))-1 != 80 {
		t.Fatalf("cache holds %d bytes [%d, %d], want at most %d ending at 80", c.bytes, c.first, c.first+uint64(len(c.ents))-1, cacheGroupMax)
	}
	first := c.first
	c.evictApplied(first+9, true) // over budget: every applied entry goes
	if c.first != first+10 {
		t.Fatalf("after evicting with the budget spent, cache starts at %d, want %d", c.first, first+10)
	}
	if _, ok := c.get(first, first+1, 1<<30); ok {
		t.Fatalf("an evicted entry is still served")
	}
	if ents, ok := c.get(first+10, first+12, 1); !ok || len(ents) != 1 {
		t.Fatalf("get with a tiny maxSize: %d entries %v, want exactly one", len(ents), ok)
	}
	small := entryCache{}
	for i := uint64(1); i <= 20; i++ {
		small.append([]*pb.Entry{cacheEntry(i, 1, 1<<20)})
	}
	small.evictApplied(20, true) // no budget: keep cacheRetainApplied bytes
	if small.bytes > cacheRetainApplied || small.bytes < cacheRetainApplied-(1<<20)-16 {
		t.Fatalf("retained %d bytes of applied entries, want about %d", small.bytes, cacheRetainApplied)
	}
	small.evictApplied(20, false)
	if len(small.ents) != 0 || small.bytes != 0 {
		t.Fatalf("evicting without retention left %d entries", len(small.ents))
	}
}
