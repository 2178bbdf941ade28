package raftlog

import (
	"bytes"
	"errors"
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

// TestFollowerNeverForwardsPartitionProposals pins the other half of what
// AppendAsync's recycling relies on: a replica that is no longer leader in
// raft (though its Group still thinks so, until the next Ready) drops a
// partition proposal instead of forwarding it. A forwarded MsgProp carries
// the proposer's slice until the message is sent, by which time the slice
// is back in the pool and holds other bytes: an entry no replica can apply.
// Groups with ForwardProposals (the metadata group, which proposes from
// slices it never reuses) still forward.
func TestFollowerNeverForwardsPartitionProposals(t *testing.T) {
	s := &Scheduler{cfg: testConfig(1), log: slog.New(slog.DiscardHandler)}
	for _, forward := range []bool{false, true} {
		st := raft.NewMemoryStorage()
		if err := st.ApplySnapshot(&pb.Snapshot{Metadata: &pb.SnapshotMetadata{
			Index: new(uint64(1)), Term: new(uint64(1)), ConfState: &pb.ConfState{Voters: []uint64{1, 2}},
		}}); err != nil {
			t.Fatal(err)
		}
		rn, err := raft.NewRawNode(s.raftConfig(7, st, 1, GroupOptions{ForwardProposals: forward}))
		if err != nil {
			t.Fatal(err)
		}
		// Node 2 leads term 2: node 1 follows it.
		if err := rn.Step(&pb.Message{Type: pb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1)), Term: new(uint64(2)), Commit: new(uint64(1))}); err != nil {
			t.Fatal(err)
		}
		if got := rn.Status().Lead; got != 2 {
			t.Fatalf("forward=%v: lead %d after node 2's heartbeat, want 2", forward, got)
		}
		for rn.HasReady() {
			rn.Advance(rn.Ready())
		}

		err = rn.Propose([]byte("record batch"))
		var forwarded bool
		for rn.HasReady() {
			rd := rn.Ready()
			for _, m := range rd.Messages {
				forwarded = forwarded || m.GetType() == pb.MsgProp
			}
			rn.Advance(rd)
		}
		switch {
		case !forward && (!errors.Is(err, raft.ErrProposalDropped) || forwarded):
			t.Errorf("partition group follower: Propose returned %v, forwarded %v; want ErrProposalDropped and no MsgProp", err, forwarded)
		case forward && (err != nil || !forwarded):
			t.Errorf("forwarding group follower: Propose returned %v, forwarded %v; want nil and a MsgProp to the leader", err, forwarded)
		}
	}
}
