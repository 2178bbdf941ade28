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
