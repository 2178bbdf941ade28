package coordinator

import (
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroup answers one group of a DescribeGroups request. A group
// this shard does not hold is described as Dead with no members and no
// error, as Kafka does up to v5. Member metadata and assignments are shown
// only while the group is Stable.
func (s *Shard) DescribeGroup(group string) kmsg.DescribeGroupsResponseGroup {
	rg := kmsg.NewDescribeGroupsResponseGroup()
	rg.Group = group
	if s.unloaded {
		rg.ErrorCode = kerr.NotCoordinator.Code
		return rg
	}
	g := s.groups[group]
	if g == nil {
		rg.State = Dead.String()
		return rg
	}
	rg.State = g.state.String()
	rg.ProtocolType = g.protocolType
	if g.state == Stable {
		rg.Protocol = g.protocolName
	}
	for _, m := range g.memberList() {
		rm := kmsg.NewDescribeGroupsResponseGroupMember()
		rm.MemberID = m.id
		rm.InstanceID = m.instanceID
		rm.ClientID = m.clientID
		rm.ClientHost = m.clientHost
		rm.ProtocolMetadata, rm.MemberAssignment = []byte{}, []byte{}
		if g.state == Stable {
			if md := m.metadataFor(g.protocolName); md != nil {
				rm.ProtocolMetadata = md
			}
			if m.assignment != nil {
				rm.MemberAssignment = m.assignment
			}
		}
		rg.Members = append(rg.Members, rm)
	}
	return rg
}

// ListGroups lists the shard's groups, sorted by id, keeping only those in
// states if it is not empty (names as ParseGroupState takes them).
func (s *Shard) ListGroups(states []string) []kmsg.ListGroupsResponseGroup {
	if s.unloaded {
		return nil
	}
	want := map[GroupState]bool{}
	for _, name := range states {
		if st, ok := ParseGroupState(name); ok {
			want[st] = true
		} else {
			want[-1] = true // an unknown state matches nothing
		}
	}
	var out []kmsg.ListGroupsResponseGroup
	for _, id := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[id]
		if len(want) > 0 && !want[g.state] {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = id
		lg.ProtocolType = g.protocolType
		lg.GroupState = g.state.String()
		out = append(out, lg)
	}
	return out
}

// DeleteGroup deletes an Empty group and its committed offsets (DeleteGroups).
// done is called once the tombstones are written, or at once with
// GROUP_ID_NOT_FOUND or NON_EMPTY_GROUP.
func (s *Shard) DeleteGroup(now time.Time, group string, done func(code int16)) {
	s.now = now
	if s.unloaded {
		done(kerr.NotCoordinator.Code)
		return
	}
	g := s.groups[group]
	switch {
	case group == "":
		done(kerr.InvalidGroupID.Code)
		return
	case g == nil:
		done(kerr.GroupIDNotFound.Code)
		return
	case g.state != Empty:
		done(kerr.NonEmptyGroup.Code)
		return
	}
	g.transition(Dead, now)
	delete(s.groups, group)
	var records []Record
	for _, tp := range slices.SortedFunc(maps.Keys(g.offsets), compareTP) {
		records = append(records, Record{Key: offsetKey(group, tp)})
	}
	records = append(records, Record{Key: groupKey(group)})
	s.log.Info("group deleted", "group", group)
	s.write(records, done)
}
