package coordinator

import (
	"bytes"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// GroupState is the state of a classic consumer group, as Kafka names it.
type GroupState int8

// The classic group states. A group is created Empty; a join moves it to
// PreparingRebalance, where the coordinator waits for the members to
// (re)join; then CompletingRebalance, where it waits for the leader's
// assignment; then Stable. A deleted or expired group is Dead.
const (
	Empty GroupState = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s GroupState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// ParseGroupState returns the state named s (case-insensitive, as
// ListGroups' states filter takes it).
func ParseGroupState(s string) (GroupState, bool) {
	for i, n := range stateNames {
		if strings.EqualFold(n, s) {
			return GroupState(i), true
		}
	}
	return 0, false
}

// protocol is one assignment protocol a member supports, with its metadata
// (for consumers, the subscription).
type protocol struct {
	name     string
	metadata []byte
}

// member is a member of a classic group.
type member struct {
	id         string
	instanceID *string // static membership (KIP-345)
	clientID   string
	clientHost string
	// seq orders members by when they were added, so iteration (and thus
	// the leader choice and every printed list) is deterministic.
	seq              uint64
	protocolType     string
	protocols        []protocol
	rebalanceTimeout time.Duration
	sessionTimeout   time.Duration
	assignment       []byte

	// join is the member's JoinGroup waiting for the rebalance to
	// complete; sync its SyncGroup waiting for the leader's assignment.
	join *pendingJoin
	sync *pendingSync

	// isNew is set from the member's first join until that join
	// completes; a new member that never completes its join is removed
	// after Config.NewMemberJoinTimeout.
	isNew bool
	// expiresAt is when the member is removed unless it heartbeats (or
	// is waiting in a rebalance); zero means no timer runs.
	expiresAt time.Time
}

type pendingJoin struct {
	req     *kmsg.JoinGroupRequest
	respond func(*kmsg.JoinGroupResponse)
}

type pendingSync struct {
	req     *kmsg.SyncGroupRequest
	respond func(*kmsg.SyncGroupResponse)
}

func (m *member) isStatic() bool { return m.instanceID != nil }

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

func (m *member) supports(name string) bool {
	return slices.ContainsFunc(m.protocols, func(p protocol) bool { return p.name == name })
}

// matches reports whether protocols are the member's current ones, names
// and metadata, in order.
func (m *member) matches(protocols []protocol) bool {
	return slices.EqualFunc(m.protocols, protocols, func(a, b protocol) bool {
		return a.name == b.name && bytes.Equal(a.metadata, b.metadata)
	})
}

// group is one classic group and its committed offsets.
type group struct {
	id    string
	state GroupState
	// stateSince is when the group entered its state; offsets of a group
	// Empty for the retention period expire.
	stateSince   time.Time
	protocolType string // "" for a group that only stores offsets
	protocolName string // the selected protocol; "" when none
	generation   int32
	leader       string
	members      map[string]*member
	nextSeq      uint64
	// static maps group instance ids to the member ids holding them.
	static map[string]string
	// pending are member ids handed out with MEMBER_ID_REQUIRED, awaiting
	// the member's second join, and when they lapse.
	pending map[string]time.Time
	// pendingSync are members that got their JoinGroup answer in this
	// generation but have not sent SyncGroup yet.
	pendingSync map[string]bool
	// newMemberAdded extends the initial rebalance delay while members
	// keep arriving (group.initial.rebalance.delay.ms).
	newMemberAdded bool

	// joinDeadline ends PreparingRebalance; zero unless in that state.
	joinDeadline time.Time
	// initialDelay is set while the first rebalance of an Empty group is
	// held back to let more members arrive; remaining is how much more
	// of the rebalance timeout later arrivals may use.
	initialDelay     bool
	initialRemaining time.Duration
	// syncDeadline is when members that have not sent SyncGroup are
	// removed; zero when none are awaited.
	syncDeadline time.Time

	offsets map[TopicPartition]committedOffset
	// pendingCommits counts offset commits being written, per partition.
	pendingCommits map[TopicPartition]int
}

func newGroup(id string, now time.Time) *group {
	return &group{
		id:             id,
		state:          Empty,
		stateSince:     now,
		members:        map[string]*member{},
		static:         map[string]string{},
		pending:        map[string]time.Time{},
		pendingSync:    map[string]bool{},
		offsets:        map[TopicPartition]committedOffset{},
		pendingCommits: map[TopicPartition]int{},
	}
}

func (g *group) transition(s GroupState, now time.Time) {
	g.state = s
	g.stateSince = now
}

// memberList returns the members in the order they were added.
func (g *group) memberList() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *member) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return out
}

func (g *group) add(m *member) {
	g.nextSeq++
	m.seq = g.nextSeq
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
	delete(g.pending, m.id)
}

// remove drops member id; a leader's role passes to the earliest member.
func (g *group) remove(id string) {
	m := g.members[id]
	if m == nil {
		return
	}
	delete(g.members, id)
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	delete(g.pendingSync, id)
	if g.leader == id {
		g.leader = ""
		if ms := g.memberList(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// staticFenced reports whether instance is held by a member other than id:
// a request from an older incarnation of a static member.
func (g *group) staticFenced(instance *string, id string) bool {
	if instance == nil {
		return false
	}
	cur, ok := g.static[*instance]
	return ok && cur != id
}

func (g *group) awaitingJoin() int {
	n := 0
	for _, m := range g.members {
		if m.join != nil {
			n++
		}
	}
	return n
}

// allJoined reports whether every member (and every pending member) has
// sent its JoinGroup for the rebalance.
func (g *group) allJoined() bool {
	return len(g.pending) == 0 && g.awaitingJoin() == len(g.members)
}

// supportsProtocols reports whether member id (new if not a member) may
// join with protocolType and protocols: any non-empty set starts a group
// without members; otherwise the type must match and one of the protocols
// must be supported by every other member. (Kafka also counts the joining
// member's old protocols, so a lone member could never change them.)
func (g *group) supportsProtocols(id, protocolType string, protocols []protocol) bool {
	if protocolType == "" || len(protocols) == 0 {
		return false
	}
	others := len(g.members)
	if g.members[id] != nil {
		others--
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supportedByAll(p.name, id) {
			return true
		}
	}
	return false
}

// supportedByAll reports whether every member other than except supports
// protocol name.
func (g *group) supportedByAll(name, except string) bool {
	for id, m := range g.members {
		if id != except && !m.supports(name) {
			return false
		}
	}
	return true
}

// selectProtocol picks the protocol every member supports that most
// members prefer (each votes for the first of its protocols that all
// support); ties go to the earliest member's preference.
func (g *group) selectProtocol() string {
	members := g.memberList()
	if len(members) == 0 {
		return ""
	}
	votes := map[string]int{}
	for _, m := range members {
		for _, p := range m.protocols {
			if g.supportedByAll(p.name, "") {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	for _, p := range members[0].protocols {
		if v, ok := votes[p.name]; ok && v > bestVotes {
			best, bestVotes = p.name, v
		}
	}
	return best
}

// subscribedTopics returns the topics the members of a consumer group
// subscribe to, from their metadata for the selected protocol, and
// whether that is known (false for other protocol types or metadata that
// does not parse).
func (g *group) subscribedTopics() (map[string]bool, bool) {
	if g.protocolType != "consumer" {
		return nil, false
	}
	topics := map[string]bool{}
	if len(g.members) == 0 {
		return topics, true
	}
	if g.protocolName == "" {
		return nil, false
	}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadataFor(g.protocolName)); err != nil {
			return nil, false
		}
		for _, t := range meta.Topics {
			topics[t] = true
		}
	}
	return topics, true
}

// maxRebalanceTimeout is the longest rebalance timeout of the members:
// how long a rebalance waits for them to rejoin.
func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

func (g *group) hasPendingCommits() bool {
	for _, n := range g.pendingCommits {
		if n > 0 {
			return true
		}
	}
	return false
}

// synced notes that member id sent its SyncGroup; the sync timeout stops
// once nobody is awaited.
func (g *group) synced(id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		g.syncDeadline = time.Time{}
	}
}
