package coordinator

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestShard runs the coordinator scripts in testdata/. Each script drives
// one Shard with a fake clock; responses are printed as the Shard
// delivers them, and writes as the Shard asks for them. The commands:
//
//	new [min-session=D] [max-session=D] [initial-delay=D] [retention=D] [new-member-timeout=D] [max-metadata=N]
//	join as=L group=G [member=M] [instance=I] [client=C] [protocols=(P[/META],...)] [topics=(T,...)] [type=T] [session=D] [rebalance=D] [v=N]
//	sync as=L group=G member=M gen=N [instance=I] [assign=(M=A,...)] [protocol=P] [v=N]
//	heartbeat group=G member=M gen=N [instance=I]
//	leave group=G members=(M[:I],...) [v=N]
//	commit as=L group=G [member=M] [gen=N] [instance=I] offsets=(T/P=O,...) [meta=S] [retention=D] [v=N]
//	fetch group=G [partitions=(T/P,...)] [stable]
//	describe group=G | list [states=(S,...)] | state
//	delete as=L group=G | offset-delete as=L group=G partitions=(T/P,...)
//	tick D            advance the clock by D, firing timers as they come due
//	written [n=N] [err=NAME]   complete the oldest N (default all) writes
//	reload            unload the shard and load a new one from the written log
//	expire [deleted=(T,...)]
//
// Topics named unknown* do not exist.
func TestShard(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := newHarness(t, DefaultConfig())
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			h.t = t
			h.out.Reset()
			h.run(d)
			h.flush()
			return h.out.String()
		})
	})
}

type harness struct {
	t     *testing.T
	cfg   Config
	s     *Shard
	start time.Time
	now   time.Time
	ids   int
	out   strings.Builder
	// pending are writes taken from the shard, not yet completed.
	pending []Write
	// log is every record whose write completed, in order.
	log []Record
}

func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.reset(cfg)
	return h
}

func (h *harness) reset(cfg Config) {
	h.cfg = cfg
	h.now = h.start
	h.ids = 0
	h.pending, h.log = nil, nil
	h.s = h.newShard()
	h.s.Loaded(h.now)
}

func (h *harness) newShard() *Shard {
	cfg := h.cfg
	cfg.NewMemberID = func(client string) string {
		h.ids++
		return fmt.Sprintf("%s-%d", client, h.ids)
	}
	return New(cfg)
}

func (h *harness) printf(format string, args ...any) { fmt.Fprintf(&h.out, format, args...) }

// flush takes the shard's new writes and prints them.
func (h *harness) flush() {
	for _, w := range h.s.TakeWrites() {
		h.pending = append(h.pending, w)
		h.printf("write %d:\n", w.ID)
		for _, r := range w.Records {
			h.printf("  %s\n", describeRecord(r))
		}
	}
}

func describeRecord(r Record) string {
	d, err := decodeRecord(r)
	if err != nil {
		return "undecodable: " + err.Error()
	}
	if d.isOffset {
		if d.offset == nil {
			return fmt.Sprintf("offset %s %s: tombstone", d.group, d.tp)
		}
		s := fmt.Sprintf("offset %s %s: %d epoch=%d", d.group, d.tp, d.offset.Offset, d.offset.LeaderEpoch)
		if d.offset.Metadata != "" {
			s += " meta=" + d.offset.Metadata
		}
		if d.offset.Version == 1 {
			s += fmt.Sprintf(" expires=%d", d.offset.ExpireTimestamp)
		}
		return s
	}
	if d.metadata == nil {
		return fmt.Sprintf("group %s: tombstone", d.group)
	}
	v := d.metadata
	var ms []string
	for _, m := range v.Members {
		s := m.MemberID
		if m.InstanceID != nil {
			s += "[" + *m.InstanceID + "]"
		}
		if len(m.Assignment) > 0 {
			s += "=" + string(m.Assignment)
		}
		ms = append(ms, s)
	}
	return fmt.Sprintf("group %s: gen=%d type=%s protocol=%s leader=%s members=(%s)",
		d.group, v.Generation, v.ProtocolType, strOr(v.Protocol, "-"), strOr(v.Leader, "-"), strings.Join(ms, ","))
}

func strOr(s *string, dflt string) string {
	if s == nil {
		return dflt
	}
	return *s
}

func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return strconv.Itoa(int(code))
}

func errCode(t *testing.T, name string) int16 {
	for c := int16(1); c < 200; c++ {
		if e, ok := kerr.ErrorForCode(c).(*kerr.Error); ok && e.Message == name {
			return c
		}
	}
	t.Fatalf("unknown error %q", name)
	return 0
}

// args is a command's arguments by key.
type args struct {
	t *testing.T
	d *datadriven.TestData
}

func (a args) has(key string) bool { return a.d.HasArg(key) }

func (a args) str(key, dflt string) string {
	if arg, ok := a.d.Arg(key); ok {
		if len(arg.Vals) == 0 {
			return ""
		}
		return arg.Vals[0]
	}
	return dflt
}

func (a args) strPtr(key string) *string {
	if arg, ok := a.d.Arg(key); ok && len(arg.Vals) > 0 {
		return kmsg.StringPtr(arg.Vals[0])
	}
	return nil
}

func (a args) list(key string) []string {
	arg, _ := a.d.Arg(key)
	return arg.Vals
}

func (a args) int(key string, dflt int) int {
	s := a.str(key, "")
	if s == "" {
		return dflt
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		a.t.Fatalf("%s: %s=%q: %v", a.d.Pos, key, s, err)
	}
	return n
}

func (a args) dur(key string, dflt time.Duration) time.Duration {
	s := a.str(key, "")
	if s == "" {
		return dflt
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		a.t.Fatalf("%s: %s=%q: %v", a.d.Pos, key, s, err)
	}
	return d
}

func (a args) tp(s string) TopicPartition {
	topic, p, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(p)
	if !ok || err != nil {
		a.t.Fatalf("%s: %q is not topic/partition", a.d.Pos, s)
	}
	return TopicPartition{topic, int32(n)}
}

func exists(topic string, _ int32) bool { return !strings.HasPrefix(topic, "unknown") }

func (h *harness) run(d *datadriven.TestData) {
	a := args{h.t, d}
	label := a.str("as", d.Cmd)
	switch d.Cmd {
	case "new":
		cfg := DefaultConfig()
		cfg.MinSessionTimeout = a.dur("min-session", time.Second)
		cfg.MaxSessionTimeout = a.dur("max-session", cfg.MaxSessionTimeout)
		cfg.InitialRebalanceDelay = a.dur("initial-delay", cfg.InitialRebalanceDelay)
		cfg.OffsetsRetention = a.dur("retention", cfg.OffsetsRetention)
		cfg.NewMemberJoinTimeout = a.dur("new-member-timeout", cfg.NewMemberJoinTimeout)
		cfg.MaxMetadataBytes = a.int("max-metadata", cfg.MaxMetadataBytes)
		h.reset(cfg)
		h.printf("ok\n")

	case "join":
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = int16(a.int("v", 9))
		req.Group = a.str("group", "g")
		req.MemberID = a.str("member", "")
		req.InstanceID = a.strPtr("instance")
		req.ProtocolType = a.str("type", "consumer")
		req.SessionTimeoutMillis = int32(a.dur("session", 10*time.Second) / time.Millisecond)
		req.RebalanceTimeoutMillis = int32(a.dur("rebalance", 30*time.Second) / time.Millisecond)
		var meta []byte
		if a.has("topics") {
			cm := kmsg.NewConsumerMemberMetadata()
			cm.Topics = a.list("topics")
			meta = cm.AppendTo(nil)
		}
		protocols := []string{"range"}
		if a.has("protocols") {
			protocols = a.list("protocols")
		}
		for _, p := range protocols {
			name, md, ok := strings.Cut(p, "/")
			rp := kmsg.NewJoinGroupRequestProtocol()
			rp.Name, rp.Metadata = name, meta
			if ok {
				rp.Metadata = []byte(md)
			}
			req.Protocols = append(req.Protocols, rp)
		}
		client := Client{ID: a.str("client", label), Host: "/127.0.0.1"}
		h.s.JoinGroup(h.now, client, req, func(r *kmsg.JoinGroupResponse) { h.printJoin(label, r) })

	case "sync":
		req := kmsg.NewPtrSyncGroupRequest()
		req.Version = int16(a.int("v", 5))
		req.Group = a.str("group", "g")
		req.MemberID = a.str("member", "")
		req.Generation = int32(a.int("gen", 0))
		req.InstanceID = a.strPtr("instance")
		req.Protocol = a.strPtr("protocol")
		for _, as := range a.list("assign") {
			m, asg, _ := strings.Cut(as, "=")
			ra := kmsg.NewSyncGroupRequestGroupAssignment()
			ra.MemberID, ra.MemberAssignment = m, []byte(asg)
			req.GroupAssignment = append(req.GroupAssignment, ra)
		}
		h.s.SyncGroup(h.now, req, func(r *kmsg.SyncGroupResponse) {
			h.printf("%s: sync %s assignment=%q\n", label, errName(r.ErrorCode), r.MemberAssignment)
		})

	case "heartbeat":
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version = 4
		req.Group = a.str("group", "g")
		req.MemberID = a.str("member", "")
		req.Generation = int32(a.int("gen", 0))
		req.InstanceID = a.strPtr("instance")
		h.printf("%s\n", errName(h.s.Heartbeat(h.now, req).ErrorCode))

	case "leave":
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Version = int16(a.int("v", 5))
		req.Group = a.str("group", "g")
		for _, m := range a.list("members") {
			id, inst, ok := strings.Cut(m, ":")
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID = id
			if ok {
				lm.InstanceID = kmsg.StringPtr(inst)
			}
			req.Members = append(req.Members, lm)
			req.MemberID = id
		}
		r := h.s.LeaveGroup(h.now, req)
		h.printf("leave %s", errName(r.ErrorCode))
		for _, m := range r.Members {
			h.printf(" %s:%s=%s", m.MemberID, strOr(m.InstanceID, ""), errName(m.ErrorCode))
		}
		h.printf("\n")

	case "commit":
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = int16(a.int("v", 8))
		req.Group = a.str("group", "g")
		req.MemberID = a.str("member", "")
		req.Generation = int32(a.int("gen", -1))
		req.InstanceID = a.strPtr("instance")
		if a.has("retention") {
			req.RetentionTimeMillis = int64(a.dur("retention", 0) / time.Millisecond)
		}
		for _, o := range a.list("offsets") {
			tps, off, _ := strings.Cut(o, "=")
			tp := a.tp(tps)
			n, _ := strconv.ParseInt(off, 10, 64)
			if len(req.Topics) == 0 || req.Topics[len(req.Topics)-1].Topic != tp.Topic {
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = tp.Topic
				req.Topics = append(req.Topics, rt)
			}
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = tp.Partition, n, 3
			rp.Metadata = a.strPtr("meta")
			rt := &req.Topics[len(req.Topics)-1]
			rt.Partitions = append(rt.Partitions, rp)
		}
		h.s.CommitOffsets(h.now, req, exists, func(r *kmsg.OffsetCommitResponse) {
			h.printf("%s: commit", label)
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					h.printf(" %s/%d=%s", t.Topic, p.Partition, errName(p.ErrorCode))
				}
			}
			h.printf("\n")
		})

	case "fetch":
		var topics []kmsg.OffsetFetchRequestGroupTopic
		if a.has("partitions") {
			topics = []kmsg.OffsetFetchRequestGroupTopic{}
			for _, s := range a.list("partitions") {
				tp := a.tp(s)
				if len(topics) == 0 || topics[len(topics)-1].Topic != tp.Topic {
					topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: tp.Topic})
				}
				topics[len(topics)-1].Partitions = append(topics[len(topics)-1].Partitions, tp.Partition)
			}
		}
		r := h.s.FetchOffsets(a.str("group", "g"), topics, a.has("stable"))
		h.printf("fetch %s\n", errName(r.ErrorCode))
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				h.printf("  %s/%d: %d epoch=%d meta=%q %s\n", t.Topic, p.Partition, p.Offset, p.LeaderEpoch, strOr(p.Metadata, "<nil>"), errName(p.ErrorCode))
			}
		}

	case "describe":
		g := h.s.DescribeGroup(a.str("group", "g"))
		h.printf("%s %s state=%s type=%q protocol=%q\n", g.Group, errName(g.ErrorCode), g.State, g.ProtocolType, g.Protocol)
		for _, m := range g.Members {
			h.printf("  %s instance=%s client=%s host=%s metadata=%q assignment=%q\n", m.MemberID, strOr(m.InstanceID, "-"), m.ClientID, m.ClientHost, m.ProtocolMetadata, m.MemberAssignment)
		}

	case "list":
		for _, g := range h.s.ListGroups(a.list("states")) {
			h.printf("%s %s %q\n", g.Group, g.GroupState, g.ProtocolType)
		}

	case "delete":
		h.s.DeleteGroup(h.now, a.str("group", "g"), func(code int16) { h.printf("%s: delete %s\n", label, errName(code)) })

	case "offset-delete":
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = a.str("group", "g")
		for _, s := range a.list("partitions") {
			tp := a.tp(s)
			if len(req.Topics) == 0 || req.Topics[len(req.Topics)-1].Topic != tp.Topic {
				req.Topics = append(req.Topics, kmsg.OffsetDeleteRequestTopic{Topic: tp.Topic})
			}
			rt := &req.Topics[len(req.Topics)-1]
			rt.Partitions = append(rt.Partitions, kmsg.OffsetDeleteRequestTopicPartition{Partition: tp.Partition})
		}
		h.s.DeleteOffsets(h.now, req, exists, func(r *kmsg.OffsetDeleteResponse) {
			h.printf("%s: offset-delete %s", label, errName(r.ErrorCode))
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					h.printf(" %s/%d=%s", t.Topic, p.Partition, errName(p.ErrorCode))
				}
			}
			h.printf("\n")
		})

	case "tick":
		if len(d.CmdArgs) != 1 {
			d.Fatalf(h.t, "tick DURATION")
		}
		step, err := time.ParseDuration(d.CmdArgs[0].Key)
		if err != nil {
			d.Fatalf(h.t, "%v", err)
		}
		target := h.now.Add(step)
		for {
			next, ok := h.s.NextDeadline()
			if !ok || next.After(target) {
				break
			}
			if next.After(h.now) {
				h.now = next
			}
			h.printf("@%v\n", h.now.Sub(h.start))
			h.s.Tick(h.now)
		}
		h.now = target
		h.printf("now @%v\n", h.now.Sub(h.start))

	case "written":
		n := a.int("n", len(h.pending))
		code := int16(0)
		if a.has("err") {
			code = errCode(h.t, a.str("err", ""))
		}
		if n > len(h.pending) {
			d.Fatalf(h.t, "only %d writes are pending", len(h.pending))
		}
		done := h.pending[:n]
		h.pending = h.pending[n:]
		for _, w := range done {
			if code == 0 {
				h.log = append(h.log, w.Records...)
			}
			h.printf("written %d %s\n", w.ID, errName(code))
			h.s.Written(h.now, w.ID, code)
		}

	case "reload":
		// A failover: the old coordinator stops, and a new one loads the
		// log, round-tripped through a record batch as the broker does.
		h.s.Unload()
		h.pending = nil
		batch := AppendBatch(nil, h.log, h.now)
		next := h.newShard()
		n := 0
		if err := ReadBatches(batch, func(r Record) {
			n++
			if err := next.Replay(r); err != nil {
				h.t.Fatalf("replay: %v", err)
			}
		}); err != nil {
			h.t.Fatal(err)
		}
		// The broker reads the log in chunks into one buffer: nothing
		// replayed may keep pointing into it.
		for i := range batch {
			batch[i] = 0xAA
		}
		next.Loaded(h.now)
		h.s = next
		h.printf("loaded %d records, %d groups\n", n, next.GroupCount())

	case "expire":
		deleted := a.list("deleted")
		offsets, groups := h.s.ExpireOffsets(h.now, func(topic string) bool { return !slices.Contains(deleted, topic) })
		h.printf("expired %d offsets, %d groups\n", offsets, groups)

	case "state":
		h.printState()

	default:
		d.Fatalf(h.t, "unknown command %q", d.Cmd)
	}
}

func (h *harness) printJoin(label string, r *kmsg.JoinGroupResponse) {
	if r.ErrorCode != 0 {
		h.printf("%s: join %s member=%q\n", label, errName(r.ErrorCode), r.MemberID)
		return
	}
	var ms []string
	for _, m := range r.Members {
		s := m.MemberID
		if m.InstanceID != nil {
			s += "[" + *m.InstanceID + "]"
		}
		ms = append(ms, s)
	}
	h.printf("%s: join NONE member=%s gen=%d protocol=%s leader=%s", label, r.MemberID, r.Generation, strOr(r.Protocol, "-"), r.LeaderID)
	if len(ms) > 0 {
		h.printf(" members=(%s)", strings.Join(ms, ","))
	}
	if r.SkipAssignment {
		h.printf(" skip-assignment")
	}
	h.printf("\n")
}

func (h *harness) printState() {
	rel := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return "@" + t.Sub(h.start).String()
	}
	for _, id := range slices.Sorted(maps.Keys(h.s.groups)) {
		g := h.s.groups[id]
		h.printf("%s: %s gen=%d type=%q protocol=%q leader=%q since=%s", id, g.state, g.generation, g.protocolType, g.protocolName, g.leader, rel(g.stateSince))
		if !g.joinDeadline.IsZero() {
			h.printf(" join-deadline=%s", rel(g.joinDeadline))
		}
		if !g.syncDeadline.IsZero() {
			h.printf(" sync-deadline=%s", rel(g.syncDeadline))
		}
		h.printf("\n")
		for _, m := range g.memberList() {
			h.printf("  member %s", m.id)
			if m.instanceID != nil {
				h.printf(" instance=%s", *m.instanceID)
			}
			h.printf(" expires=%s", rel(m.expiresAt))
			if m.join != nil {
				h.printf(" awaiting-join")
			}
			if m.sync != nil {
				h.printf(" awaiting-sync")
			}
			if g.pendingSync[m.id] {
				h.printf(" sync-pending")
			}
			if len(m.assignment) > 0 {
				h.printf(" assignment=%q", m.assignment)
			}
			h.printf("\n")
		}
		for _, p := range slices.Sorted(maps.Keys(g.pending)) {
			h.printf("  pending %s expires=%s\n", p, rel(g.pending[p]))
		}
		for _, tp := range slices.SortedFunc(maps.Keys(g.offsets), compareTP) {
			o := g.offsets[tp]
			h.printf("  offset %s=%d\n", tp, o.offset)
		}
	}
	if len(h.pending) > 0 {
		h.printf("pending writes: %d\n", len(h.pending))
	}
}
