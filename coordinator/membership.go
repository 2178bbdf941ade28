package coordinator

import (
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The classic rebalance protocol, following Kafka's GroupCoordinator: a
// rebalance starts (PreparingRebalance) when a member joins, leaves, dies
// or changes its protocols; the coordinator waits, up to the longest
// rebalance timeout, for every member to send JoinGroup; then it bumps the
// generation, selects a protocol and answers every JoinGroup, the leader's
// with the member list (CompletingRebalance); the leader computes the
// assignment and sends it in its SyncGroup; once that assignment is
// written to the log, every member's SyncGroup is answered (Stable).

// Client identifies where a request came from.
type Client struct {
	// ID is the request header's client id.
	ID string
	// Host is the client's address, as Kafka shows it ("/127.0.0.1").
	Host string
}

func durationMillis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

func joinError(req *kmsg.JoinGroupRequest, code int16, memberID string) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = code
	resp.Generation = -1
	resp.MemberID = memberID
	return resp
}

func syncError(req *kmsg.SyncGroupRequest, code int16) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = code
	resp.MemberAssignment = []byte{}
	return resp
}

// JoinGroup handles a JoinGroup request from client. respond is called
// once, now or when the rebalance the request waits for completes.
func (s *Shard) JoinGroup(now time.Time, client Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	s.now = now
	fail := func(code int16) { respond(joinError(req, code, req.MemberID)) }
	switch {
	case s.unloaded:
		fail(kerr.NotCoordinator.Code)
		return
	case req.Group == "":
		fail(kerr.InvalidGroupID.Code)
		return
	}
	session := durationMillis(req.SessionTimeoutMillis)
	if session < s.cfg.MinSessionTimeout || session > s.cfg.MaxSessionTimeout {
		fail(kerr.InvalidSessionTimeout.Code)
		return
	}
	rebalance := durationMillis(req.RebalanceTimeoutMillis)
	if req.Version == 0 || rebalance <= 0 {
		rebalance = session // v0 has no rebalance timeout
	}
	protocols := make([]protocol, 0, len(req.Protocols))
	for _, p := range req.Protocols {
		protocols = append(protocols, protocol{name: p.Name, metadata: p.Metadata})
	}
	instance := req.InstanceID
	if instance != nil && *instance == "" {
		instance = nil
	}
	j := joinParams{client: client, req: req, respond: respond, protocols: protocols, instance: instance, session: session, rebalance: rebalance}

	g := s.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			fail(kerr.UnknownMemberID.Code)
			return
		}
		g = newGroup(req.Group, now)
		s.groups[req.Group] = g
	}
	if req.MemberID == "" {
		s.joinNewMember(g, j)
	} else {
		s.joinKnownMember(g, j)
	}
	if g.state == PreparingRebalance {
		s.tryCompleteJoin(g)
	}
}

// joinParams is a JoinGroup request, validated.
type joinParams struct {
	client    Client
	req       *kmsg.JoinGroupRequest
	respond   func(*kmsg.JoinGroupResponse)
	protocols []protocol
	instance  *string
	session   time.Duration
	rebalance time.Duration
}

// joinNewMember handles a join without a member id.
func (s *Shard) joinNewMember(g *group, j joinParams) {
	if !g.supportsProtocols("", j.req.ProtocolType, j.protocols) {
		j.respond(joinError(j.req, kerr.InconsistentGroupProtocol.Code, ""))
		return
	}
	id := s.cfg.NewMemberID(j.client.ID)
	if j.instance != nil {
		if old, ok := g.static[*j.instance]; ok {
			s.replaceStaticMember(g, old, id, j)
			return
		}
		s.addMemberAndRebalance(g, id, j)
		return
	}
	if j.req.Version >= 4 {
		// KIP-394: hand out the id and wait for the client to come back
		// with it, so that a client that never does leaves no member.
		g.pending[id] = s.now.Add(j.session)
		j.respond(joinError(j.req, kerr.MemberIDRequired.Code, id))
		return
	}
	s.addMemberAndRebalance(g, id, j)
}

// joinKnownMember handles a join with a member id.
func (s *Shard) joinKnownMember(g *group, j joinParams) {
	id := j.req.MemberID
	fail := func(code int16) { j.respond(joinError(j.req, code, id)) }
	if !g.supportsProtocols(id, j.req.ProtocolType, j.protocols) {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	if _, ok := g.pending[id]; ok {
		if j.instance != nil {
			// Static members never get MEMBER_ID_REQUIRED.
			fail(kerr.UnknownMemberID.Code)
			return
		}
		s.addMemberAndRebalance(g, id, j)
		return
	}
	if g.staticFenced(j.instance, id) {
		fail(kerr.FencedInstanceID.Code)
		return
	}
	m := g.members[id]
	if m == nil || (j.instance != nil && g.static[*j.instance] == "") {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	switch g.state {
	case PreparingRebalance:
		s.updateMemberAndRebalance(g, m, j, "member rejoined during the rebalance")
	case CompletingRebalance:
		if m.matches(j.protocols) {
			// The member lost our JoinGroup answer: send it again.
			j.respond(s.joinResult(g, m, j.req, g.leader == id, false))
			return
		}
		s.updateMemberAndRebalance(g, m, j, "member changed its protocols while the group awaited its assignment")
	case Stable:
		switch {
		case g.leader == id:
			// The leader rejoins to make the group rebalance, e.g. for a
			// topic's new partitions.
			s.updateMemberAndRebalance(g, m, j, "the leader rejoined")
		case !m.matches(j.protocols):
			s.updateMemberAndRebalance(g, m, j, "member changed its protocols")
		default:
			j.respond(s.joinResult(g, m, j.req, false, false))
		}
	default:
		fail(kerr.UnknownMemberID.Code)
	}
}

// joinResult is the successful JoinGroup answer for m in g's current
// generation; withMembers lists the members, for the leader.
func (s *Shard) joinResult(g *group, m *member, req *kmsg.JoinGroupRequest, withMembers, skipAssignment bool) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocolName)
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	resp.SkipAssignment = skipAssignment
	if withMembers {
		for _, gm := range g.memberList() {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = gm.id
			rm.InstanceID = gm.instanceID
			rm.ProtocolMetadata = gm.metadataFor(g.protocolName)
			if rm.ProtocolMetadata == nil {
				rm.ProtocolMetadata = []byte{}
			}
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

func (s *Shard) addMemberAndRebalance(g *group, id string, j joinParams) {
	m := &member{
		id:               id,
		instanceID:       j.instance,
		clientID:         j.client.ID,
		clientHost:       j.client.Host,
		protocolType:     j.req.ProtocolType,
		protocols:        j.protocols,
		rebalanceTimeout: j.rebalance,
		sessionTimeout:   j.session,
		join:             &pendingJoin{req: j.req, respond: j.respond},
		isNew:            true,
		expiresAt:        s.now.Add(s.cfg.NewMemberJoinTimeout),
	}
	if g.state == PreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	g.add(m)
	s.maybePrepareRebalance(g, "member "+id+" joined")
}

// updateMember gives m the protocols and timeouts of a new JoinGroup and
// makes it wait for the rebalance.
func (s *Shard) updateMember(m *member, j joinParams) {
	if old := m.join; old != nil && old.req != j.req {
		// A second join replaces the first: answer the first so it is
		// not left waiting (the client retried on a new connection).
		old.respond(joinError(old.req, kerr.RebalanceInProgress.Code, m.id))
	}
	m.protocols = j.protocols
	m.rebalanceTimeout = j.rebalance
	m.sessionTimeout = j.session
	m.join = &pendingJoin{req: j.req, respond: j.respond}
}

func (s *Shard) updateMemberAndRebalance(g *group, m *member, j joinParams, reason string) {
	s.updateMember(m, j)
	s.maybePrepareRebalance(g, reason)
}

// replaceStaticMember handles a static member's join without a member id:
// a restart of the instance. The old member id is fenced and the member
// keeps its assignment under the new id.
func (s *Shard) replaceStaticMember(g *group, oldID, newID string, j joinParams) {
	m := g.members[oldID]
	s.failWaiters(m, kerr.FencedInstanceID.Code)
	old := struct {
		protocols          []protocol
		rebalance, session time.Duration
	}{m.protocols, m.rebalanceTimeout, m.sessionTimeout}
	s.renameMember(g, m, newID)
	m.expiresAt = s.now.Add(j.session)
	s.updateMember(m, j)
	switch g.state {
	case Stable:
		if g.selectProtocol() != g.protocolName {
			s.maybePrepareRebalance(g, "static member "+*j.instance+" rejoined with other protocols")
			return
		}
		// Nothing to rebalance: record the new member id and answer
		// with the current generation. A rejoining leader gets the
		// members but is told to skip the assignment (KIP-814).
		assignments := map[string][]byte{}
		for id, gm := range g.members {
			assignments[id] = gm.assignment
		}
		pj, gen := m.join, g.generation
		s.storeGroup(g, assignments, func(code int16) {
			if m.join != pj {
				return // a rebalance answered it already
			}
			m.join = nil
			if code != 0 {
				if g.members[newID] == m && g.generation == gen {
					m.protocols, m.rebalanceTimeout, m.sessionTimeout = old.protocols, old.rebalance, old.session
					s.renameMember(g, m, oldID)
				}
				pj.respond(joinError(pj.req, code, newID))
				return
			}
			leader := g.leader == m.id
			pj.respond(s.joinResult(g, m, pj.req, leader, leader))
		})
	case CompletingRebalance:
		// The leader may be assigning to the old member id: rebalance so
		// that the assignment names the new one.
		s.prepareRebalance(g, "static member "+*j.instance+" rejoined during the assignment")
	}
}

// renameMember moves m to member id to, keeping its place and roles.
func (s *Shard) renameMember(g *group, m *member, to string) {
	from := m.id
	delete(g.members, from)
	m.id = to
	g.members[to] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = to
	}
	if g.leader == from {
		g.leader = to
	}
	if g.pendingSync[from] {
		delete(g.pendingSync, from)
		g.pendingSync[to] = true
	}
}

func (s *Shard) maybePrepareRebalance(g *group, reason string) {
	switch g.state {
	case Stable, CompletingRebalance, Empty:
		s.prepareRebalance(g, reason)
	}
}

// prepareRebalance starts a rebalance: members awaiting an assignment are
// told to rejoin, and the join phase gets its deadline.
func (s *Shard) prepareRebalance(g *group, reason string) {
	if g.state == CompletingRebalance {
		s.resetAssignments(g, kerr.RebalanceInProgress.Code)
	}
	clear(g.pendingSync)
	g.syncDeadline = time.Time{}
	if g.state == Empty && s.cfg.InitialRebalanceDelay > 0 {
		g.initialDelay = true
		g.initialRemaining = max(g.maxRebalanceTimeout()-s.cfg.InitialRebalanceDelay, 0)
		g.joinDeadline = s.now.Add(s.cfg.InitialRebalanceDelay)
	} else {
		g.initialDelay = false
		g.joinDeadline = s.now.Add(g.maxRebalanceTimeout())
	}
	s.log.Info("preparing to rebalance group", "group", g.id, "from", g.state.String(), "generation", g.generation, "reason", reason)
	g.transition(PreparingRebalance, s.now)
	// As Kafka's delayed join: done at once if nobody is awaited (the
	// last member left).
	s.tryCompleteJoin(g)
}

// resetAssignments drops the assignments and answers waiting SyncGroups
// with code.
func (s *Shard) resetAssignments(g *group, code int16) {
	for _, m := range g.memberList() {
		m.assignment = nil
		if sy := m.sync; sy != nil {
			m.sync = nil
			sy.respond(syncError(sy.req, code))
		}
	}
}

// tryCompleteJoin ends the join phase early once every member rejoined
// (never during the initial delay, which waits for more members).
func (s *Shard) tryCompleteJoin(g *group) {
	if g.state == PreparingRebalance && !g.initialDelay && g.allJoined() {
		s.completeJoin(g)
	}
}

// onJoinDeadline ends the join phase, or extends the initial delay while
// new members keep arriving.
func (s *Shard) onJoinDeadline(g *group) {
	if g.initialDelay {
		if g.newMemberAdded && g.initialRemaining > 0 {
			g.newMemberAdded = false
			d := min(s.cfg.InitialRebalanceDelay, g.initialRemaining)
			g.initialRemaining -= d
			g.joinDeadline = s.now.Add(d)
			return
		}
		g.initialDelay = false
	}
	s.completeJoin(g)
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are removed, and the next generation begins.
func (s *Shard) completeJoin(g *group) {
	for _, m := range g.memberList() {
		if m.join == nil && !m.isStatic() {
			s.log.Info("removing member that did not rejoin", "group", g.id, "member", m.id)
			s.failWaiters(m, kerr.UnknownMemberID.Code)
			g.remove(m.id)
		}
	}
	if len(g.members) > 0 && !s.electJoinedLeader(g) {
		// Only static members that have not rejoined remain: wait for
		// them, or for their sessions to end.
		g.joinDeadline = s.now.Add(g.maxRebalanceTimeout())
		return
	}
	g.generation++
	g.joinDeadline = time.Time{}
	g.initialDelay = false
	g.newMemberAdded = false
	clear(g.pendingSync)
	if len(g.members) == 0 {
		g.protocolName = ""
		g.leader = ""
		g.transition(Empty, s.now)
		s.log.Info("group is empty", "group", g.id, "generation", g.generation)
		s.storeGroup(g, nil, func(int16) {})
		return
	}
	g.protocolName = g.selectProtocol()
	g.transition(CompletingRebalance, s.now)
	s.log.Info("group rebalanced", "group", g.id, "generation", g.generation, "protocol", g.protocolName, "leader", g.leader, "members", len(g.members))
	for _, m := range g.memberList() {
		if j := m.join; j != nil {
			m.join = nil
			j.respond(s.joinResult(g, m, j.req, g.leader == m.id, false))
		}
		m.isNew = false
		m.expiresAt = s.now.Add(m.sessionTimeout)
		g.pendingSync[m.id] = true
	}
	g.syncDeadline = s.now.Add(g.maxRebalanceTimeout())
}

// electJoinedLeader makes sure the leader is a member that rejoined. It
// returns false when none did.
func (s *Shard) electJoinedLeader(g *group) bool {
	if l := g.members[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range g.memberList() {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// onSyncDeadline removes the members that never sent SyncGroup for this
// generation, and rebalances without them.
func (s *Shard) onSyncDeadline(g *group) {
	g.syncDeadline = time.Time{}
	if len(g.pendingSync) == 0 || (g.state != CompletingRebalance && g.state != Stable) {
		clear(g.pendingSync)
		return
	}
	for _, id := range slices.Sorted(maps.Keys(g.pendingSync)) {
		if m := g.members[id]; m != nil {
			s.log.Info("removing member that did not sync", "group", g.id, "member", id)
			s.failWaiters(m, kerr.UnknownMemberID.Code)
			g.remove(id)
		}
	}
	s.prepareRebalance(g, "members did not send SyncGroup in time")
}

// removeMember removes m (it left or its session ended) and updates the
// group's rebalance.
func (s *Shard) removeMember(g *group, m *member, reason string) {
	s.log.Info("removing member", "group", g.id, "member", m.id, "reason", reason)
	s.failWaiters(m, kerr.UnknownMemberID.Code)
	g.remove(m.id)
	switch g.state {
	case Stable, CompletingRebalance:
		s.maybePrepareRebalance(g, "member "+m.id+" left: "+reason)
	case PreparingRebalance:
		s.tryCompleteJoin(g)
	}
}

// SyncGroup handles a SyncGroup request. respond is called once: now, or
// when the leader's assignment is written.
func (s *Shard) SyncGroup(now time.Time, req *kmsg.SyncGroupRequest, respond func(*kmsg.SyncGroupResponse)) {
	s.now = now
	fail := func(code int16) { respond(syncError(req, code)) }
	if s.unloaded {
		fail(kerr.NotCoordinator.Code)
		return
	}
	g := s.groups[req.Group]
	if g == nil {
		fail(kerr.UnknownMemberID.Code)
		return
	}
	if g.staticFenced(req.InstanceID, req.MemberID) {
		fail(kerr.FencedInstanceID.Code)
		return
	}
	m := g.members[req.MemberID]
	switch {
	case m == nil:
		fail(kerr.UnknownMemberID.Code)
		return
	case req.Generation != g.generation:
		fail(kerr.IllegalGeneration.Code)
		return
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocolName:
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	switch g.state {
	case Empty:
		fail(kerr.UnknownMemberID.Code)
	case PreparingRebalance:
		fail(kerr.RebalanceInProgress.Code)
	case CompletingRebalance:
		if old := m.sync; old != nil {
			old.respond(syncError(old.req, kerr.RebalanceInProgress.Code))
		}
		m.sync = &pendingSync{req: req, respond: respond}
		g.synced(m.id)
		if m.id != g.leader {
			return
		}
		// Members the leader did not assign get an empty assignment;
		// assignments for non-members are ignored.
		assignments := map[string][]byte{}
		for _, a := range req.GroupAssignment {
			if g.members[a.MemberID] != nil {
				assignments[a.MemberID] = a.MemberAssignment
			}
		}
		for id := range g.members {
			if assignments[id] == nil {
				assignments[id] = []byte{}
			}
		}
		gen := g.generation
		s.storeGroup(g, assignments, func(code int16) {
			if g.state != CompletingRebalance || g.generation != gen || s.groups[g.id] != g {
				return // the group moved on; its members were answered
			}
			if code != 0 {
				s.resetAssignments(g, code)
				s.maybePrepareRebalance(g, "writing the assignment failed")
				return
			}
			for _, gm := range g.memberList() {
				gm.assignment = assignments[gm.id]
				if sy := gm.sync; sy != nil {
					gm.sync = nil
					sy.respond(s.syncResult(g, gm, sy.req))
					gm.expiresAt = s.now.Add(gm.sessionTimeout)
				}
			}
			g.transition(Stable, s.now)
			s.log.Info("group stable", "group", g.id, "generation", g.generation)
		})
	case Stable:
		g.synced(m.id)
		m.expiresAt = now.Add(m.sessionTimeout)
		respond(s.syncResult(g, m, req))
	}
}

func (s *Shard) syncResult(g *group, m *member, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocolName)
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// Heartbeat handles a Heartbeat request.
func (s *Shard) Heartbeat(now time.Time, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	s.now = now
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = s.heartbeat(req)
	return resp
}

func (s *Shard) heartbeat(req *kmsg.HeartbeatRequest) int16 {
	if s.unloaded {
		return kerr.NotCoordinator.Code
	}
	g := s.groups[req.Group]
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	if g.staticFenced(req.InstanceID, req.MemberID) {
		return kerr.FencedInstanceID.Code
	}
	m := g.members[req.MemberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	}
	switch g.state {
	case CompletingRebalance, Stable:
		m.expiresAt = s.now.Add(m.sessionTimeout)
		return 0
	case PreparingRebalance:
		m.expiresAt = s.now.Add(m.sessionTimeout)
		return kerr.RebalanceInProgress.Code
	}
	return kerr.UnknownMemberID.Code
}

// LeaveGroup handles a LeaveGroup request: v0–2 name one member, v3+ a
// batch of members, by member id or by group instance id.
func (s *Shard) LeaveGroup(now time.Time, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	s.now = now
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	if s.unloaded {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	g := s.groups[req.Group]
	for _, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		rm.ErrorCode = s.leave(g, lm)
		resp.Members = append(resp.Members, rm)
	}
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	return resp
}

func (s *Shard) leave(g *group, lm kmsg.LeaveGroupRequestMember) int16 {
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	id := lm.MemberID
	if inst := lm.InstanceID; inst != nil {
		if id != "" && g.staticFenced(inst, id) {
			return kerr.FencedInstanceID.Code
		}
		cur, ok := g.static[*inst]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		s.removeMember(g, g.members[cur], "static member left")
		return 0
	}
	if _, ok := g.pending[id]; ok {
		delete(g.pending, id)
		if g.state == PreparingRebalance {
			s.tryCompleteJoin(g)
		}
		return 0
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	s.removeMember(g, m, "member left")
	return 0
}
