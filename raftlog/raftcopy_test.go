package raftlog

import (
	"bytes"
	"log/slog"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// TestRaftCopiesProposals pins the raft behaviour Partition.AppendAsync
// relies on to recycle its proposal buffers: a leader appends a copy of a
// proposed entry's data, so the caller may overwrite its slice once
// Propose returns. If a raft upgrade stops copying, this fails and the
// recycling must go.
func TestRaftCopiesProposals(t *testing.T) {
	st := raft.NewMemoryStorage()
	if err := st.ApplySnapshot(&pb.Snapshot{Metadata: &pb.SnapshotMetadata{
		Index: new(uint64(1)), Term: new(uint64(1)), ConfState: &pb.ConfState{Voters: []uint64{1}},
	}}); err != nil {
		t.Fatal(err)
	}
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: st, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16, Logger: raftLogger{l: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	// A lone voter wins at once; persist the election's Ready.
	for rn.HasReady() {
		rd := rn.Ready()
		if err := st.Append(rd.Entries); err != nil {
			t.Fatal(err)
		}
		rn.Advance(rd)
	}
	if rn.Status().RaftState != raft.StateLeader {
		t.Fatalf("not leader: %v", rn.Status().RaftState)
	}

	data := bytes.Repeat([]byte("record batch "), 100)
	want := bytes.Clone(data)
	if err := rn.Propose(data); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 0xff // the buffer goes back to the pool and is reused
	}
	rd := rn.Ready()
	var found bool
	for _, e := range rd.Entries {
		if e.GetType() == pb.EntryNormal && len(e.GetData()) > 0 {
			found = true
			if !bytes.Equal(e.GetData(), want) {
				t.Fatalf("raft's entry changed with the proposer's buffer: raft no longer copies proposals")
			}
		}
	}
	if !found {
		t.Fatal("the proposal is not in the Ready's entries")
	}
}
