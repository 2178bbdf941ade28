package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/raftka/raftka/storage"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// logStore is one group's raft.Storage, kept in the broker's shared Engine.
// It caches the log bounds, hard state and conf state in memory, and the
// newest entries in an entryCache; older entries are read from the engine.
// Entries returned to raft may be shared with the cache and are never
// modified by either.
//
// Concurrency: every method is called with the owning Group's mu held, either
// by raft (from RawNode methods) or by the scheduler (append, setHardState).
type logStore struct {
	id  uint64
	eng storage.Engine

	hs *pb.HardState
	cs *pb.ConfState

	// truncIndex/truncTerm identify the entry just before the first stored
	// entry. Invariant: truncIndex <= lastIndex; the stored log is exactly
	// (truncIndex, lastIndex].
	truncIndex, truncTerm uint64
	lastIndex, lastTerm   uint64

	// runs records where the term changes for entries appended since the
	// store was opened, so that Term rarely reads the engine. Invariant: runs
	// is sorted by index, every run starts at or before lastIndex, and run
	// i covers [runs[i].index, runs[i+1].index).
	runs []termRun

	// cache holds the newest entries, so that raft rereads them from
	// memory (see entryCache).
	cache entryCache
}

type termRun struct{ index, term uint64 }

var _ raft.Storage = (*logStore)(nil)

// bootstrapGroup writes the initial state of a new group whose members are
// voters. All replicas of a group are bootstrapped with the same voters and
// an empty log, so they agree on the configuration without a log entry.
func bootstrapGroup(b storage.Batch, id uint64, voters, learners []uint64) error {
	cs := &pb.ConfState{Voters: voters, Learners: learners}
	csb, err := proto.Marshal(cs)
	if err != nil {
		return err
	}
	if err := b.Set(confStateKey(id), csb); err != nil {
		return err
	}
	return b.Set(truncatedKey(id), make([]byte, truncatedValueLen))
}

// openLogStore loads group id's Raft state from the engine.
func openLogStore(eng storage.Engine, id uint64) (*logStore, error) {
	s := &logStore{id: id, eng: eng, hs: &pb.HardState{}, cs: &pb.ConfState{}}
	csb, err := eng.Get(confStateKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("raftlog: group %d is not bootstrapped", id)
	} else if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(csb, s.cs); err != nil {
		return nil, fmt.Errorf("raftlog: group %d: conf state: %w", id, err)
	}
	if hsb, err := eng.Get(hardStateKey(id)); err == nil {
		if err := proto.Unmarshal(hsb, s.hs); err != nil {
			return nil, fmt.Errorf("raftlog: group %d: hard state: %w", id, err)
		}
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	tv, err := eng.Get(truncatedKey(id))
	if err != nil {
		return nil, fmt.Errorf("raftlog: group %d: truncated state: %w", id, err)
	}
	if len(tv) != truncatedValueLen {
		return nil, fmt.Errorf("raftlog: group %d: truncated state: bad length %d", id, len(tv))
	}
	s.truncIndex = binary.BigEndian.Uint64(tv[:8])
	s.truncTerm = binary.BigEndian.Uint64(tv[8:])
	s.lastIndex, s.lastTerm = s.truncIndex, s.truncTerm

	it, err := eng.NewIter(logKey(id, 0), logKey(id, ^uint64(0)))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	if it.Last() {
		idx, err := decodeU64Suffix(it.Key())
		if err != nil {
			return nil, err
		}
		_, term, _, err := decodeEntryValue(it.Value())
		if err != nil {
			return nil, fmt.Errorf("group %d index %d: %w", id, idx, err)
		}
		s.lastIndex, s.lastTerm = idx, term
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	return s, nil
}

// InitialState implements raft.Storage.
func (s *logStore) InitialState() (*pb.HardState, *pb.ConfState, error) {
	return proto.CloneOf(s.hs), proto.CloneOf(s.cs), nil
}

// Entries implements raft.Storage.
func (s *logStore) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	if lo <= s.truncIndex {
		return nil, raft.ErrCompacted
	}
	if hi > s.lastIndex+1 {
		return nil, fmt.Errorf("raftlog: group %d: entries [%d,%d) past last index %d", s.id, lo, hi, s.lastIndex)
	}
	if ents, ok := s.cache.get(lo, hi, maxSize); ok {
		return ents, nil
	}
	it, err := s.eng.NewIter(logKey(s.id, lo), logKey(s.id, hi))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	ents := make([]*pb.Entry, 0, min(hi-lo, 64))
	var size uint64
	want := lo
	for ok := it.First(); ok; ok = it.Next() {
		idx, err := decodeU64Suffix(it.Key())
		if err != nil {
			return nil, err
		}
		if idx != want {
			return nil, raft.ErrUnavailable
		}
		typ, term, data, err := decodeEntryValue(it.Value())
		if err != nil {
			return nil, fmt.Errorf("group %d index %d: %w", s.id, idx, err)
		}
		size += uint64(len(data)) + 16
		if len(ents) > 0 && size > maxSize {
			break
		}
		e := &pb.Entry{
			Index: proto.Uint64(idx),
			Term:  proto.Uint64(term),
			Type:  pb.EntryType(typ).Enum(),
			Data:  append([]byte(nil), data...),
		}
		ents = append(ents, e)
		want++
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if len(ents) == 0 {
		return nil, raft.ErrUnavailable
	}
	return ents, nil
}

// Term implements raft.Storage.
func (s *logStore) Term(i uint64) (uint64, error) {
	switch {
	case i == s.truncIndex:
		return s.truncTerm, nil
	case i < s.truncIndex:
		return 0, raft.ErrCompacted
	case i > s.lastIndex:
		return 0, raft.ErrUnavailable
	case i == s.lastIndex:
		return s.lastTerm, nil
	}
	if t, ok := s.cache.term(i); ok {
		return t, nil
	}
	if len(s.runs) > 0 && i >= s.runs[0].index {
		t := s.runs[0].term
		for _, r := range s.runs[1:] {
			if r.index > i {
				break
			}
			t = r.term
		}
		return t, nil
	}
	v, err := s.eng.Get(logKey(s.id, i))
	if errors.Is(err, storage.ErrNotFound) {
		return 0, raft.ErrUnavailable
	} else if err != nil {
		return 0, err
	}
	_, term, _, err := decodeEntryValue(v)
	return term, err
}

// LastIndex implements raft.Storage.
func (s *logStore) LastIndex() (uint64, error) { return s.lastIndex, nil }

// FirstIndex implements raft.Storage.
func (s *logStore) FirstIndex() (uint64, error) { return s.truncIndex + 1, nil }

// Snapshot implements raft.Storage. Partition logs are not compacted below
// what every replica has, so raft only asks when a replica was lost; this is
// where a streamed snapshot will plug in.
func (s *logStore) Snapshot() (*pb.Snapshot, error) {
	return nil, raft.ErrSnapshotTemporarilyUnavailable
}

// append adds ents (consecutive, as raft hands them over in Ready.Entries) to
// b, replacing any conflicting suffix of the stored log. The in-memory bounds
// move now; a failure to commit b is fatal to the broker.
func (s *logStore) append(b storage.Batch, ents []*pb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].GetIndex()
	if first <= s.truncIndex {
		return fmt.Errorf("raftlog: group %d: append at %d below truncated index %d", s.id, first, s.truncIndex)
	}
	if first > s.lastIndex+1 {
		return fmt.Errorf("raftlog: group %d: append at %d leaves a gap after %d", s.id, first, s.lastIndex)
	}
	if first <= s.lastIndex {
		if err := b.DeleteRange(logKey(s.id, first), logKey(s.id, s.lastIndex+1)); err != nil {
			return err
		}
		for len(s.runs) > 0 && s.runs[len(s.runs)-1].index >= first {
			s.runs = s.runs[:len(s.runs)-1]
		}
		s.cache.truncateFrom(first)
	}
	for _, e := range ents {
		// The entry is written straight into the batch: batches of records
		// are large, and this is the scheduler's serial path.
		typ, term, data := byte(e.GetType()), e.GetTerm(), e.GetData()
		if err := b.SetWith(logKey(s.id, e.GetIndex()), entryHeaderLen+len(data), func(v []byte) {
			putEntryValue(v, typ, term, data)
		}); err != nil {
			return err
		}
		if n := len(s.runs); n == 0 || s.runs[n-1].term != e.GetTerm() {
			s.runs = append(s.runs, termRun{index: e.GetIndex(), term: e.GetTerm()})
		}
	}
	last := ents[len(ents)-1]
	s.lastIndex, s.lastTerm = last.GetIndex(), last.GetTerm()
	s.cache.append(ents)
	return nil
}

// setHardState adds hs to b.
func (s *logStore) setHardState(b storage.Batch, hs *pb.HardState) error {
	v, err := proto.Marshal(hs)
	if err != nil {
		return err
	}
	s.hs = proto.CloneOf(hs)
	return b.Set(hardStateKey(s.id), v)
}

// writeCommitFloor adds to b the hard state hs (already in memory, its
// write pending in the next log batch) with its commit index lowered to
// commit, so that entries applied before that log write are covered by a
// durable commit index. hs's term and vote must equal the durable ones.
func (s *logStore) writeCommitFloor(b storage.Batch, hs *pb.HardState, commit uint64) error {
	if hs == nil || raft.IsEmptyHardState(hs) {
		return nil // the commit index did not move: the durable one covers it
	}
	floor := &pb.HardState{Term: proto.Uint64(hs.GetTerm()), Vote: proto.Uint64(hs.GetVote()), Commit: proto.Uint64(min(commit, hs.GetCommit()))}
	v, err := proto.Marshal(floor)
	if err != nil {
		return err
	}
	return b.Set(hardStateKey(s.id), v)
}

// setConfState adds cs to b.
func (s *logStore) setConfState(b storage.Batch, cs *pb.ConfState) error {
	v, err := proto.Marshal(cs)
	if err != nil {
		return err
	}
	s.cs = proto.CloneOf(cs)
	return b.Set(confStateKey(s.id), v)
}

// readEntryData returns the data of the stored entry at index, reusing buf.
func (s *logStore) readEntryData(index uint64) (term uint64, data []byte, err error) {
	v, err := s.eng.Get(logKey(s.id, index))
	if err != nil {
		return 0, nil, fmt.Errorf("group %d index %d: %w", s.id, index, err)
	}
	_, term, data, err = decodeEntryValue(v)
	return term, data, err
}
