package coordinator

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// PartitionExists tells the coordinator whether a topic partition exists
// in the cluster; commits and deletes of unknown partitions are refused
// with UNKNOWN_TOPIC_OR_PARTITION, as Kafka does.
type PartitionExists func(topic string, partition int32) bool

// CommitOffsets handles an OffsetCommit request. respond is called once:
// at once if nothing is to be written, else when the commit's records are
// in the log. Members commit with their generation; a generation of -1
// commits for an Empty group (a consumer that assigns partitions itself,
// or an admin resetting offsets).
func (s *Shard) CommitOffsets(now time.Time, req *kmsg.OffsetCommitRequest, exists PartitionExists, respond func(*kmsg.OffsetCommitResponse)) {
	s.now = now
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	var slots []*kmsg.OffsetCommitResponseTopicPartition
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			slots = append(slots, &resp.Topics[i].Partitions[j])
		}
	}
	failAll := func(code int16) {
		for _, sp := range slots {
			sp.ErrorCode = code
		}
		respond(resp)
	}
	if s.unloaded {
		failAll(kerr.NotCoordinator.Code)
		return
	}
	if req.Group == "" {
		failAll(kerr.InvalidGroupID.Code)
		return
	}
	g := s.groups[req.Group]
	if g == nil {
		if req.Generation >= 0 {
			// A member of a group this coordinator does not know.
			failAll(kerr.IllegalGeneration.Code)
			return
		}
		g = newGroup(req.Group, now)
		s.groups[req.Group] = g
	}
	if g.staticFenced(req.InstanceID, req.MemberID) {
		failAll(kerr.FencedInstanceID.Code)
		return
	}
	if !(req.Generation < 0 && g.state == Empty) {
		m := g.members[req.MemberID]
		switch {
		case g.state == CompletingRebalance:
			// The member has its new generation but not its assignment.
			failAll(kerr.RebalanceInProgress.Code)
			return
		case m == nil:
			failAll(kerr.UnknownMemberID.Code)
			return
		case req.Generation != g.generation:
			failAll(kerr.IllegalGeneration.Code)
			return
		}
		// During PreparingRebalance commits are allowed: members commit
		// before they rejoin.
		m.expiresAt = now.Add(m.sessionTimeout)
	}

	var (
		records []Record
		tps     []TopicPartition
		values  []committedOffset
		written []*kmsg.OffsetCommitResponseTopicPartition
	)
	k := 0
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			sp := slots[k]
			k++
			tp := TopicPartition{rt.Topic, rp.Partition}
			meta := ""
			if rp.Metadata != nil {
				meta = *rp.Metadata
			}
			switch {
			case exists != nil && !exists(tp.Topic, tp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			case len(meta) > s.cfg.MaxMetadataBytes:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			o := committedOffset{offset: rp.Offset, leaderEpoch: rp.LeaderEpoch, metadata: meta, commitTime: now}
			if req.Version < 6 {
				o.leaderEpoch = -1
			}
			var value []byte
			if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis >= 0 {
				// An explicit retention (v2–v4) is kept per offset, in the
				// value version that has an expire timestamp.
				o.expireTime = now.Add(time.Duration(req.RetentionTimeMillis) * time.Millisecond)
				value = expiringOffsetValue(o)
			} else {
				value = offsetValue(o)
			}
			records = append(records, Record{Key: offsetKey(g.id, tp), Value: value})
			tps = append(tps, tp)
			values = append(values, o)
			written = append(written, sp)
		}
	}
	if len(records) == 0 {
		respond(resp)
		return
	}
	for _, tp := range tps {
		g.pendingCommits[tp]++
	}
	s.write(records, func(code int16) {
		for i, tp := range tps {
			if g.pendingCommits[tp]--; g.pendingCommits[tp] <= 0 {
				delete(g.pendingCommits, tp)
			}
			if code == 0 && g.state != Dead {
				g.offsets[tp] = values[i]
			}
		}
		if code == kerr.MessageTooLarge.Code {
			code = kerr.InvalidCommitOffsetSize.Code
		}
		for _, sp := range written {
			sp.ErrorCode = code
		}
		respond(resp)
	})
}

func expiringOffsetValue(o committedOffset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = 1
	v.Offset = o.offset
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitTime.UnixMilli()
	v.ExpireTimestamp = o.expireTime.UnixMilli()
	return v.AppendTo(nil)
}

// FetchOffsets answers one group of an OffsetFetch. topics nil asks for
// every partition the group committed. A partition without a commit (or a
// group that does not exist) answers offset -1 without an error, as Kafka
// does. With requireStable, a partition whose commit is still being
// written answers UNSTABLE_OFFSET_COMMIT, which clients retry.
func (s *Shard) FetchOffsets(group string, topics []kmsg.OffsetFetchRequestGroupTopic, requireStable bool) kmsg.OffsetFetchResponseGroup {
	rg := kmsg.NewOffsetFetchResponseGroup()
	rg.Group = group
	if s.unloaded {
		rg.ErrorCode = kerr.NotCoordinator.Code
		return rg
	}
	g := s.groups[group]
	answer := func(tp TopicPartition) kmsg.OffsetFetchResponseGroupTopicPartition {
		p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		p.Partition = tp.Partition
		p.Offset, p.LeaderEpoch, p.Metadata = -1, -1, kmsg.StringPtr("")
		if g == nil {
			return p
		}
		if requireStable && g.pendingCommits[tp] > 0 {
			p.ErrorCode = kerr.UnstableOffsetCommit.Code
			return p
		}
		if o, ok := g.offsets[tp]; ok {
			p.Offset, p.LeaderEpoch, p.Metadata = o.offset, o.leaderEpoch, kmsg.StringPtr(o.metadata)
		}
		return p
	}
	if topics == nil {
		if g == nil {
			return rg
		}
		tps := slices.SortedFunc(maps.Keys(g.offsets), compareTP)
		for i, tp := range tps {
			if i == 0 || tps[i-1].Topic != tp.Topic {
				t := kmsg.NewOffsetFetchResponseGroupTopic()
				t.Topic = tp.Topic
				rg.Topics = append(rg.Topics, t)
			}
			t := &rg.Topics[len(rg.Topics)-1]
			t.Partitions = append(t.Partitions, answer(tp))
		}
		return rg
	}
	for _, rt := range topics {
		t := kmsg.NewOffsetFetchResponseGroupTopic()
		t.Topic = rt.Topic
		for _, p := range rt.Partitions {
			t.Partitions = append(t.Partitions, answer(TopicPartition{rt.Topic, p}))
		}
		rg.Topics = append(rg.Topics, t)
	}
	return rg
}

func compareTP(a, b TopicPartition) int {
	if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// DeleteOffsets handles an OffsetDelete request: the offsets of partitions
// whose topics the group's members do not consume are deleted (tombstones
// are written before respond is called); those still consumed answer
// GROUP_SUBSCRIBED_TO_TOPIC.
func (s *Shard) DeleteOffsets(now time.Time, req *kmsg.OffsetDeleteRequest, exists PartitionExists, respond func(*kmsg.OffsetDeleteResponse)) {
	s.now = now
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if s.unloaded {
		resp.ErrorCode = kerr.NotCoordinator.Code
		respond(resp)
		return
	}
	g := s.groups[req.Group]
	switch {
	case g == nil:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		respond(resp)
		return
	case g.protocolType != "consumer" && g.state != Empty:
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		respond(resp)
		return
	}
	subscribed, known := g.subscribedTopics()
	var (
		records []Record
		tps     []TopicPartition
		deleted []*kmsg.OffsetDeleteResponseTopicPartition
	)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	for i, rt := range req.Topics {
		for j, rp := range rt.Partitions {
			sp := &resp.Topics[i].Partitions[j]
			tp := TopicPartition{rt.Topic, rp.Partition}
			switch {
			case exists != nil && !exists(tp.Topic, tp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case g.state != Empty && known && subscribed[tp.Topic]:
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				if _, ok := g.offsets[tp]; ok {
					records = append(records, Record{Key: offsetKey(g.id, tp)})
					tps = append(tps, tp)
					deleted = append(deleted, sp)
				}
			}
		}
	}
	if len(records) == 0 {
		respond(resp)
		return
	}
	s.write(records, func(code int16) {
		for _, tp := range tps {
			if code == 0 {
				delete(g.offsets, tp)
			}
		}
		for _, sp := range deleted {
			sp.ErrorCode = code
		}
		respond(resp)
	})
}

// ExpireOffsets deletes offsets whose retention passed, and offsets of
// topics that no longer exist, and then drops Empty groups left with no
// offsets (Kafka's offsets.retention.minutes cleanup). The offsets of a
// group with members are kept while it consumes their topics; once the
// group is empty they are kept for the retention period from when it
// became empty. The tombstones are written; nobody waits for them.
func (s *Shard) ExpireOffsets(now time.Time, topicExists func(topic string) bool) (offsets, groups int) {
	s.now = now
	if s.unloaded || !s.loaded {
		return 0, 0
	}
	var records []Record
	retained := func(base time.Time, o committedOffset) bool {
		if !o.expireTime.IsZero() {
			return now.Before(o.expireTime)
		}
		return now.Sub(base) < s.cfg.OffsetsRetention
	}
	for _, id := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[id]
		subscribed, known := g.subscribedTopics()
		for _, tp := range slices.SortedFunc(maps.Keys(g.offsets), compareTP) {
			o := g.offsets[tp]
			if g.pendingCommits[tp] > 0 {
				continue
			}
			expire := false
			switch {
			case topicExists != nil && !topicExists(tp.Topic):
				expire = true
			case g.protocolType == "":
				// Offsets only: each expires a retention after its commit.
				expire = !retained(o.commitTime, o)
			case g.state == Empty:
				expire = !retained(g.stateSince, o)
			case g.state == Stable && known && !subscribed[tp.Topic]:
				expire = !retained(o.commitTime, o)
			}
			if expire {
				delete(g.offsets, tp)
				records = append(records, Record{Key: offsetKey(g.id, tp)})
				offsets++
			}
		}
		if g.state == Empty && len(g.offsets) == 0 && len(g.pending) == 0 && !g.hasPendingCommits() {
			g.transition(Dead, now)
			delete(s.groups, id)
			records = append(records, Record{Key: groupKey(id)})
			groups++
			s.log.Info("group expired", "group", id)
		}
	}
	if len(records) > 0 {
		s.write(records, func(int16) {})
	}
	return offsets, groups
}
