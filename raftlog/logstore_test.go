package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/raftka/raftka/storage"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func ent(index, term uint64, data string) *pb.Entry {
	return &pb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Type: pb.EntryNormal.Enum(), Data: []byte(data)}
}

// ents returns entries [first, first+n) of term, with data naming them.
func ents(first, n, term uint64) []*pb.Entry {
	var out []*pb.Entry
	for i := first; i < first+n; i++ {
		out = append(out, ent(i, term, fmt.Sprintf("e%d/t%d", i, term)))
	}
	return out
}

// storeAppend appends es to s in one committed batch.
func storeAppend(t testing.TB, eng storage.Engine, s *logStore, es []*pb.Entry, hs *pb.HardState) {
	t.Helper()
	b := eng.NewBatch()
	defer b.Close()
	if err := s.append(b, es); err != nil {
		t.Fatalf("append: %v", err)
	}
	if hs != nil {
		if err := s.setHardState(b, hs); err != nil {
			t.Fatalf("set hard state: %v", err)
		}
	}
	if err := b.Commit(true); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func bootstrapStore(t testing.TB, eng storage.Engine, id uint64, voters, learners []uint64) *logStore {
	t.Helper()
	b := eng.NewBatch()
	if err := bootstrapGroup(b, id, voters, learners); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, b)
	s, err := openLogStore(eng, id)
	if err != nil {
		t.Fatalf("open log store: %v", err)
	}
	return s
}

func reopenStore(t testing.TB, eng storage.Engine, id uint64) *logStore {
	t.Helper()
	s, err := openLogStore(eng, id)
	if err != nil {
		t.Fatalf("reopen log store: %v", err)
	}
	if len(s.runs) != 0 {
		t.Fatalf("reopened store has term runs %v", s.runs)
	}
	return s
}

// checkTerms checks s.Term against want, where want[i] is the term of index
// first+i.
func checkTerms(t testing.TB, s *logStore, first uint64, want []uint64) {
	t.Helper()
	for i, w := range want {
		idx := first + uint64(i)
		got, err := s.Term(idx)
		if err != nil || got != w {
			t.Fatalf("Term(%d) = %d, %v; want %d (runs %v)", idx, got, err, w, s.runs)
		}
	}
}

func forEachEngine(t *testing.T, f func(t *testing.T, eng storage.Engine, reopen func() storage.Engine)) {
	for _, k := range engineKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			eng, reopen := k.open(t)
			f(t, eng, reopen)
		})
	}
}

func TestLogStoreOpenUnbootstrapped(t *testing.T) {
	t.Parallel()
	eng := storage.NewMemory()
	defer eng.Close()
	if _, err := openLogStore(eng, 1); err == nil {
		t.Fatal("opened a group that was never bootstrapped")
	}
}

func TestLogStoreBootstrapAppendReopen(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, eng storage.Engine, reopen func() storage.Engine) {
		const id = 7
		s := bootstrapStore(t, eng, id, []uint64{1, 2, 3}, []uint64{4})
		hs, cs, err := s.InitialState()
		if err != nil || !raft.IsEmptyHardState(hs) {
			t.Fatalf("initial hard state %v, %v", hs, err)
		}
		if !slices.Equal(cs.GetVoters(), []uint64{1, 2, 3}) || !slices.Equal(cs.GetLearners(), []uint64{4}) {
			t.Fatalf("conf state %v", cs)
		}
		if fi, _ := s.FirstIndex(); fi != 1 {
			t.Fatalf("first index %d", fi)
		}
		if li, _ := s.LastIndex(); li != 0 {
			t.Fatalf("last index %d", li)
		}
		if term, err := s.Term(0); term != 0 || err != nil {
			t.Fatalf("Term(0) = %d, %v", term, err)
		}
		if _, err := s.Term(1); !errors.Is(err, raft.ErrUnavailable) {
			t.Fatalf("Term(1) of an empty log: %v", err)
		}
		if _, err := s.Snapshot(); !errors.Is(err, raft.ErrSnapshotTemporarilyUnavailable) {
			t.Fatalf("Snapshot: %v", err)
		}

		// Two terms, one conf change entry, and a hard state.
		storeAppend(t, eng, s, ents(1, 5, 1), nil)
		cc := &pb.Entry{Index: proto.Uint64(6), Term: proto.Uint64(2), Type: pb.EntryConfChange.Enum(), Data: []byte{1, 2, 3}}
		storeAppend(t, eng, s, append([]*pb.Entry{cc}, ents(7, 2, 2)...), &pb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(1), Commit: proto.Uint64(6)})
		b := eng.NewBatch()
		if err := s.setConfState(b, &pb.ConfState{Voters: []uint64{1, 2}}); err != nil {
			t.Fatal(err)
		}
		mustCommit(t, b)

		check := func(s *logStore) {
			t.Helper()
			if li, _ := s.LastIndex(); li != 8 {
				t.Fatalf("last index %d, want 8", li)
			}
			if s.lastTerm != 2 {
				t.Fatalf("last term %d, want 2", s.lastTerm)
			}
			checkTerms(t, s, 0, []uint64{0, 1, 1, 1, 1, 1, 2, 2, 2})
			if _, err := s.Term(9); !errors.Is(err, raft.ErrUnavailable) {
				t.Fatalf("Term(9): %v", err)
			}
			got, err := s.Entries(1, 9, 1<<30)
			if err != nil || len(got) != 8 {
				t.Fatalf("Entries(1, 9) = %d entries, %v", len(got), err)
			}
			for i, e := range got {
				if e.GetIndex() != uint64(i+1) {
					t.Fatalf("entry %d has index %d", i, e.GetIndex())
				}
			}
			if !proto.Equal(got[5], cc) {
				t.Fatalf("conf change entry came back as %v", got[5])
			}
			if string(got[7].GetData()) != "e8/t2" || got[0].GetType() != pb.EntryNormal {
				t.Fatalf("entry 8 %v", got[7])
			}
			hs, cs, _ := s.InitialState()
			if hs.GetTerm() != 2 || hs.GetVote() != 1 || hs.GetCommit() != 6 {
				t.Fatalf("hard state %v", hs)
			}
			if !slices.Equal(cs.GetVoters(), []uint64{1, 2}) || len(cs.GetLearners()) != 0 {
				t.Fatalf("conf state %v", cs)
			}
			// InitialState returns copies.
			hs.Term = proto.Uint64(99)
			cs.Voters[0] = 99
			if hs2, cs2, _ := s.InitialState(); hs2.GetTerm() != 2 || cs2.GetVoters()[0] != 1 {
				t.Fatalf("InitialState returned the store's own state")
			}
		}
		check(s)
		// Entries read back from the engine (not the cache) are copies:
		// changing them does not change the log.
		fresh := reopenStore(t, eng, id)
		got, _ := fresh.Entries(8, 9, 0)
		got[0].Data[0] = 'X'
		check(fresh)

		eng = reopen()
		check(reopenStore(t, eng, id))
	})
}

func TestLogStoreEntriesMaxSize(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, eng storage.Engine, _ func() storage.Engine) {
		s := bootstrapStore(t, eng, 1, []uint64{1}, nil)
		var es []*pb.Entry
		for i := uint64(1); i <= 10; i++ {
			es = append(es, ent(i, 1, string(bytes.Repeat([]byte{'a'}, 84)))) // 84+16 = 100 bytes each
		}
		storeAppend(t, eng, s, es, nil)
		for _, tc := range []struct {
			lo, hi, maxSize uint64
			want            int
		}{
			{1, 11, 0, 1}, // at least one, however small the limit
			{1, 11, 1, 1},
			{1, 11, 99, 1},
			{1, 11, 100, 1},
			{1, 11, 199, 1},
			{1, 11, 200, 2},
			{1, 11, 1000, 10},
			{1, 11, 1 << 62, 10},
			{4, 6, 1 << 62, 2},
			{10, 11, 0, 1},
			{3, 11, 250, 2},
		} {
			got, err := s.Entries(tc.lo, tc.hi, tc.maxSize)
			if err != nil || len(got) != tc.want {
				t.Errorf("Entries(%d, %d, %d) = %d entries, %v; want %d", tc.lo, tc.hi, tc.maxSize, len(got), err, tc.want)
				continue
			}
			for i, e := range got {
				if e.GetIndex() != tc.lo+uint64(i) {
					t.Errorf("Entries(%d, %d, %d)[%d] has index %d", tc.lo, tc.hi, tc.maxSize, i, e.GetIndex())
				}
			}
			// The caller may append to the result (raft.Storage contract).
			_ = append(got, ent(99, 1, ""))
		}
	})
}

func TestLogStoreConflictingAppend(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, eng storage.Engine, reopen func() storage.Engine) {
		const id = 3
		s := bootstrapStore(t, eng, id, []uint64{1}, nil)
		storeAppend(t, eng, s, ents(1, 5, 1), nil)
		storeAppend(t, eng, s, ents(6, 5, 2), nil)
		checkTerms(t, s, 1, []uint64{1, 1, 1, 1, 1, 2, 2, 2, 2, 2})

		// A new leader of term 3 overwrites from index 8: 9 and 10 go away.
		storeAppend(t, eng, s, ents(8, 1, 3), nil)
		checkTerms(t, s, 1, []uint64{1, 1, 1, 1, 1, 2, 2, 3})
		if li, _ := s.LastIndex(); li != 8 || s.lastTerm != 3 {
			t.Fatalf("last %d/%d, want 8/3", li, s.lastTerm)
		}
		for _, i := range []uint64{9, 10} {
			if _, err := s.Term(i); !errors.Is(err, raft.ErrUnavailable) {
				t.Fatalf("Term(%d) after truncation: %v", i, err)
			}
			if _, err := eng.Get(logKey(id, i)); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("entry %d still stored after truncation: %v", i, err)
			}
		}
		got, err := s.Entries(6, 9, 1<<30)
		if err != nil || len(got) != 3 || string(got[2].GetData()) != "e8/t3" || string(got[1].GetData()) != "e7/t2" {
			t.Fatalf("Entries(6, 9) = %v, %v", got, err)
		}
		if _, err := s.Entries(6, 10, 1<<30); err == nil {
			t.Fatalf("Entries past the truncated end succeeded")
		}

		// Overwrite from inside the first run: runs of term 2 and 3 go.
		storeAppend(t, eng, s, ents(4, 2, 4), nil)
		checkTerms(t, s, 1, []uint64{1, 1, 1, 4, 4})
		// A term equal to the surviving run's (a lower-term leader's log
		// winning): the run simply extends.
		storeAppend(t, eng, s, ents(6, 2, 4), nil)
		checkTerms(t, s, 1, []uint64{1, 1, 1, 4, 4, 4, 4})

		eng = reopen()
		s = reopenStore(t, eng, id)
		checkTerms(t, s, 0, []uint64{0, 1, 1, 1, 4, 4, 4, 4})
		if li, _ := s.LastIndex(); li != 7 || s.lastTerm != 4 {
			t.Fatalf("after reopen: last %d/%d, want 7/4", li, s.lastTerm)
		}
		// Conflict on a reopened store (no runs): terms below come from the
		// engine.
		storeAppend(t, eng, s, ents(3, 1, 5), nil)
		checkTerms(t, s, 0, []uint64{0, 1, 1, 5})
		for i := uint64(4); i <= 7; i++ {
			if _, err := eng.Get(logKey(id, i)); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("entry %d survived the conflicting append at 3", i)
			}
		}
		// Replacing the whole log.
		storeAppend(t, eng, s, ents(1, 2, 6), nil)
		checkTerms(t, s, 0, []uint64{0, 6, 6})
		if n := len(spanKeys(t, eng, id)); n != 2+2 { // conf + truncated state + 2 entries
			t.Fatalf("%d keys in the group's span, want 4", n)
		}
	})
}

func TestLogStoreBounds(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, eng storage.Engine, reopen func() storage.Engine) {
		const id = 11
		bootstrapStore(t, eng, id, []uint64{1}, nil)
		// A log compacted through index 10 (term 3), as after a snapshot.
		b := eng.NewBatch()
		tv := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, 10), 3)
		mustSet(t, b, truncatedKey(id), tv)
		mustCommit(t, b)
		s := reopenStore(t, eng, id)
		if fi, _ := s.FirstIndex(); fi != 11 {
			t.Fatalf("first index %d, want 11", fi)
		}
		if li, _ := s.LastIndex(); li != 10 {
			t.Fatalf("last index %d, want 10", li)
		}
		if term, err := s.Term(10); term != 3 || err != nil {
			t.Fatalf("Term(10) = %d, %v; want the truncated term 3", term, err)
		}
		storeAppend(t, eng, s, ents(11, 5, 3), nil)

		for _, tc := range []struct {
			name string
			err  error
			call func() error
		}{
			{"Term below truncated", raft.ErrCompacted, func() error { _, err := s.Term(9); return err }},
			{"Term 0", raft.ErrCompacted, func() error { _, err := s.Term(0); return err }},
			{"Term past last", raft.ErrUnavailable, func() error { _, err := s.Term(16); return err }},
			{"Entries at truncated", raft.ErrCompacted, func() error { _, err := s.Entries(10, 12, 1<<20); return err }},
			{"Entries below truncated", raft.ErrCompacted, func() error { _, err := s.Entries(2, 12, 1<<20); return err }},
			{"Entries empty range past last", raft.ErrUnavailable, func() error { _, err := s.Entries(16, 16, 1<<20); return err }},
		} {
			if err := tc.call(); !errors.Is(err, tc.err) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			}
		}
		if _, err := s.Entries(11, 17, 1<<20); err == nil {
			t.Errorf("Entries(11, 17) past last index 15 succeeded")
		}
		if got, err := s.Entries(11, 16, 1<<20); err != nil || len(got) != 5 {
			t.Errorf("Entries(11, 16) = %d, %v", len(got), err)
		}

		// Appends below the truncated index or leaving a gap are refused
		// and change nothing.
		for _, bad := range [][]*pb.Entry{ents(10, 2, 4), ents(5, 1, 4), ents(17, 1, 4)} {
			b := eng.NewBatch()
			if err := s.append(b, bad); err == nil {
				t.Errorf("append at %d accepted", bad[0].GetIndex())
			}
			b.Close()
		}
		if li, _ := s.LastIndex(); li != 15 || s.lastTerm != 3 {
			t.Fatalf("refused appends moved the log end to %d/%d", li, s.lastTerm)
		}

		// An entry missing from the engine is unavailable, not silently
		// skipped.
		b = eng.NewBatch()
		if err := b.Delete(logKey(id, 13)); err != nil {
			t.Fatal(err)
		}
		mustCommit(t, b)
		s = reopenStore(t, eng, id) // an empty cache: read the engine
		if _, err := s.Entries(11, 16, 1<<20); !errors.Is(err, raft.ErrUnavailable) {
			t.Errorf("Entries over a hole: %v, want ErrUnavailable", err)
		}
		if _, err := s.Entries(13, 16, 1<<20); !errors.Is(err, raft.ErrUnavailable) {
			t.Errorf("Entries starting at a hole: %v, want ErrUnavailable", err)
		}
		s = reopenStore(t, eng, id)
		if _, err := s.Term(13); !errors.Is(err, raft.ErrUnavailable) {
			t.Errorf("Term of a missing entry: %v, want ErrUnavailable", err)
		}

		// A corrupt stored entry is an error, never a zero term.
		b = eng.NewBatch()
		mustSet(t, b, logKey(id, 12), []byte{9, 9})
		mustCommit(t, b)
		if _, err := s.Term(12); !errors.Is(err, errCorruptEntry) {
			t.Errorf("Term of a corrupt entry: %v", err)
		}
		if _, err := s.Entries(12, 13, 1<<20); !errors.Is(err, errCorruptEntry) {
			t.Errorf("Entries of a corrupt entry: %v", err)
		}
	})
}

func TestLogStoreOpenRejectsCorruptState(t *testing.T) {
	t.Parallel()
	for name, corrupt := range map[string]func(b storage.Batch) error{
		"truncated state length":  func(b storage.Batch) error { return b.Set(truncatedKey(1), []byte{1}) },
		"truncated state missing": func(b storage.Batch) error { return b.Delete(truncatedKey(1)) },
		"hard state":              func(b storage.Batch) error { return b.Set(hardStateKey(1), []byte{0xff, 0xff}) },
		"conf state":              func(b storage.Batch) error { return b.Set(confStateKey(1), []byte{0xff, 0xff}) },
		"last entry":              func(b storage.Batch) error { return b.Set(logKey(1, 5), []byte{7}) },
	} {
		eng := storage.NewMemory()
		bootstrapStore(t, eng, 1, []uint64{1}, nil)
		b := eng.NewBatch()
		if err := corrupt(b); err != nil {
			t.Fatal(err)
		}
		mustCommit(t, b)
		if _, err := openLogStore(eng, 1); err == nil {
			t.Errorf("%s: opened a corrupt store", name)
		}
		eng.Close()
	}
}

// TestLogStoreRandomAgainstModel appends random runs of entries, with
// conflicts as raft produces them, and reopens now and then, checking Term,
// Entries and the bounds against a model log after every step.
func TestLogStoreRandomAgainstModel(t *testing.T) {
	t.Parallel()
	for _, k := range engineKinds {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", k.name, seed), func(t *testing.T) {
				t.Parallel()
				eng, reopen := k.open(t)
				runLogStoreModel(t, eng, reopen, seed)
			})
		}
	}
}

func runLogStoreModel(t *testing.T, eng storage.Engine, reopen func() storage.Engine, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	const id = 5
	s := bootstrapStore(t, eng, id, []uint64{1}, nil)
	// model[i] is the term of index i; model[0] is the truncated entry.
	model := []uint64{0}
	maxTerm := uint64(1)
	for step := 0; step < 300; step++ {
		last := uint64(len(model) - 1)
		first := last + 1
		if last > 0 && rng.IntN(3) == 0 {
			first = 1 + rng.Uint64N(last) // conflict
		}
		// Terms never decrease along a log; a conflicting entry has a
		// different term than the one it replaces.
		term := model[first-1]
		if rng.IntN(2) == 0 || (first <= last && model[first] == term) {
			maxTerm++
			term = maxTerm
		}
		var es []*pb.Entry
		n := 1 + rng.Uint64N(8)
		for i := first; i < first+n; i++ {
			if rng.IntN(6) == 0 {
				maxTerm++
				term = maxTerm
			}
			es = append(es, ent(i, term, fmt.Sprintf("s%d/i%d/t%d", step, i, term)))
		}
		storeAppend(t, eng, s, es, nil)
		model = model[:first]
		for _, e := range es {
			model = append(model, e.GetTerm())
		}
		if rng.IntN(10) == 0 {
			eng = reopen()
			s = reopenStore(t, eng, id)
		}
		checkTerms(t, s, 0, model)
		if li, _ := s.LastIndex(); li != uint64(len(model)-1) || s.lastTerm != model[len(model)-1] {
			t.Fatalf("step %d: last %d/%d, want %d/%d", step, li, s.lastTerm, len(model)-1, model[len(model)-1])
		}
		lo := 1 + rng.Uint64N(uint64(len(model)-1))
		got, err := s.Entries(lo, uint64(len(model)), 1<<30)
		if err != nil || len(got) != len(model)-int(lo) {
			t.Fatalf("step %d: Entries(%d, %d) = %d, %v", step, lo, len(model), len(got), err)
		}
		for _, e := range got {
			if e.GetTerm() != model[e.GetIndex()] {
				t.Fatalf("step %d: entry %d has term %d, model %d", step, e.GetIndex(), e.GetTerm(), model[e.GetIndex()])
			}
		}
	}
	if n := len(spanKeys(t, eng, id)); n != len(model)-1+2 {
		t.Fatalf("%d keys in span, want %d entries + conf and truncated state", n, len(model)-1)
	}
}

// TestReadyWriteSizeCoversPersist pins the estimate the scheduler sizes its
// log batch by: it must cover what persisting the Ready writes, or every
// pass under load would grow (copy) the batch again.
func TestReadyWriteSizeCoversPersist(t *testing.T) {
	fs := vfs.NewMem()
	eng, err := storage.OpenPebble(storage.PebbleOptions{Dir: "db", FS: fs, Logger: quietLogger, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	s := bootstrapStore(t, eng, 1<<40, []uint64{1, 2, 3}, nil)
	next := uint64(1)
	for _, sizes := range [][]int{{0}, {1}, {100, 200, 300}, {1 << 20}, {5, 64 << 10, 0, 7}} {
		var es []*pb.Entry
		for _, n := range sizes {
			es = append(es, &pb.Entry{Index: proto.Uint64(next), Term: proto.Uint64(1 << 62), Type: pb.EntryNormal.Enum(), Data: bytes.Repeat([]byte{0xAB}, n)})
			next++
		}
		hs := &pb.HardState{Term: proto.Uint64(1 << 62), Vote: proto.Uint64(1 << 62), Commit: proto.Uint64(1 << 62)}
		rd := raft.Ready{Entries: es, HardState: hs}
		b := eng.NewBatch()
		if err := s.append(b, es); err != nil {
			t.Fatal(err)
		}
		if err := s.setHardState(b, hs); err != nil {
			t.Fatal(err)
		}
		if got, est := b.Len(), readyWriteSize(&rd); got > est {
			t.Errorf("entries of %v bytes: persisting wrote %d bytes, estimate %d", sizes, got, est)
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
	}
}
