package raftlog

import (
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestCanSendBeforePersist checks when a Ready's messages may leave before
// the Ready is durable: only a leader's, and only when its term and vote
// are already on disk.
func TestCanSendBeforePersist(t *testing.T) {
	t.Parallel()
	hs := func(term, vote, commit uint64) *pb.HardState {
		return &pb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
	}
	for _, tc := range []struct {
		name  string
		state raft.StateType // the state before this Ready
		soft  *raft.SoftState
		hard  *pb.HardState
		want  bool
	}{
		{"leader, nothing new", raft.StateLeader, nil, nil, true},
		{"leader, commit moved", raft.StateLeader, nil, hs(5, 1, 9), true},
		{"follower", raft.StateFollower, nil, nil, false},
		{"candidate", raft.StateCandidate, nil, hs(6, 1, 0), false},
		{"just stepped down", raft.StateLeader, &raft.SoftState{Lead: 2, RaftState: raft.StateFollower}, nil, false},
		{"just elected, term durable", raft.StateCandidate, &raft.SoftState{Lead: 1, RaftState: raft.StateLeader}, nil, true},
		// A lone voter elects itself within one Ready: its new term is not
		// durable yet, so appends to learners must wait.
		{"elected in this Ready", raft.StateFollower, &raft.SoftState{Lead: 1, RaftState: raft.StateLeader}, hs(6, 1, 0), false},
		{"leader, vote changed", raft.StateLeader, nil, hs(5, 2, 9), false},
	} {
		g := &Group{}
		g.mu.state = tc.state
		g.mu.store = &logStore{hs: hs(5, 1, 3)}
		rd := raft.Ready{SoftState: tc.soft, HardState: tc.hard}
		if got := g.canSendBeforePersistLocked(&rd); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

type recordingTransport struct{ sent []pb.MessageType }

func (r *recordingTransport) Send(_ uint64, msgs []*pb.Message) {
	for _, m := range msgs {
		r.sent = append(r.sent, m.GetType())
	}
}

func (r *recordingTransport) SendQuiesce(uint64, *pb.Message) {}

// TestSendEarlySplitsMessages checks that only appends and heartbeats go
// out before the write; anything else waits for it.
func TestSendEarlySplitsMessages(t *testing.T) {
	t.Parallel()
	tr := &recordingTransport{}
	s := &Scheduler{transport: tr}
	msgs := []*pb.Message{
		{Type: pb.MsgApp.Enum()}, {Type: pb.MsgVoteResp.Enum()}, {Type: pb.MsgHeartbeat.Enum()},
		{Type: pb.MsgAppResp.Enum()}, {Type: pb.MsgTimeoutNow.Enum()},
	}
	later := s.sendEarly(7, msgs)
	if len(tr.sent) != 2 || tr.sent[0] != pb.MsgApp || tr.sent[1] != pb.MsgHeartbeat {
		t.Errorf("sent early %v, want MsgApp MsgHeartbeat", tr.sent)
	}
	if len(later) != 3 || later[0].GetType() != pb.MsgVoteResp || later[1].GetType() != pb.MsgAppResp || later[2].GetType() != pb.MsgTimeoutNow {
		t.Errorf("kept for later %v", later)
	}
}

// TestCanApplyBeforePersist checks when a Ready's committed entries may be
// applied before the Ready is written: only entries durable before it, and
// only when leadership, term, vote and configuration stay as they were.
func TestCanApplyBeforePersist(t *testing.T) {
	t.Parallel()
	hs := func(term, vote, commit uint64) *pb.HardState {
		return &pb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
	}
	ent := func(index uint64, typ pb.EntryType) *pb.Entry {
		return &pb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(5), Type: typ.Enum()}
	}
	normal := func(from, to uint64) []*pb.Entry {
		var out []*pb.Entry
		for i := from; i <= to; i++ {
			out = append(out, ent(i, pb.EntryNormal))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		rd   raft.Ready
		want bool
	}{
		{"durable entries, commit moved", raft.Ready{HardState: hs(5, 1, 9), CommittedEntries: normal(4, 9)}, true},
		{"durable entries, hard state unchanged", raft.Ready{CommittedEntries: normal(4, 9)}, true},
		{"nothing committed", raft.Ready{HardState: hs(5, 1, 9)}, false},
		{"an entry of this Ready", raft.Ready{HardState: hs(5, 1, 11), CommittedEntries: normal(4, 11)}, false},
		{"new term", raft.Ready{HardState: hs(6, 0, 9), CommittedEntries: normal(4, 9)}, false},
		{"new vote", raft.Ready{HardState: hs(5, 2, 9), CommittedEntries: normal(4, 9)}, false},
		{"leadership changed", raft.Ready{SoftState: &raft.SoftState{Lead: 2, RaftState: raft.StateFollower}, CommittedEntries: normal(4, 9)}, false},
		{"configuration change", raft.Ready{HardState: hs(5, 1, 9), CommittedEntries: append(normal(4, 8), ent(9, pb.EntryConfChangeV2))}, false},
	} {
		g := &Group{}
		g.mu.store = &logStore{hs: hs(5, 1, 3), lastIndex: 10}
		if got := g.canApplyBeforePersistLocked(&tc.rd); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
