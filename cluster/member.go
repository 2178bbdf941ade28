package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/hashicorp/memberlist"
)

// MaxMetaBytes is the largest encoded Member that memberlist will carry as
// node metadata (memberlist.MetaMaxSize).
const MaxMetaBytes = memberlist.MetaMaxSize

// ErrMetaTooLarge is returned when a Member's encoding exceeds MaxMetaBytes.
var ErrMetaTooLarge = errors.New("cluster: member metadata too large")

// Member is what a broker tells the cluster about itself, plus what the
// cluster observed about it (GossipAddr, Alive).
type Member struct {
	// ID is the broker id, unique in the cluster (Kafka's node.id).
	ID int32
	// KafkaAddr is the host:port Kafka clients and peers connect to.
	KafkaAddr string
	// RaftAddr is the host:port of the broker's Raft transport; empty if none.
	RaftAddr string
	// AdminAddr is the host:port of /healthz and /metrics; empty if none.
	AdminAddr string
	// Rack is the broker's rack, for rack-aware placement; may be empty.
	Rack string
	// Version is the broker's software version, for rolling upgrades.
	Version string

	// GossipAddr is the host:port the member gossips on. Set by the cluster;
	// ignored when a broker describes itself.
	GossipAddr string
	// Alive is true while gossip considers the member alive (or suspect but
	// not yet declared dead). Set by the cluster; ignored when a broker
	// describes itself.
	Alive bool
}

// nodeName is the memberlist node name of broker id. It is derived from the
// id so that a restarted broker takes over its own gossip identity.
func nodeName(id int32) string {
	return "broker-" + strconv.FormatInt(int64(id), 10)
}

// Meta encoding.
//
// Version 1, the layout of the broker-provided fields:
//
//	byte      version (1)
//	4 bytes   ID, big-endian two's complement int32
//	5 × (uvarint length, bytes)  KafkaAddr, RaftAddr, AdminAddr, Rack, Version
//
// Invariant: later versions only append fields after the version-1 fields and
// bump the version byte. A decoder reads the fields it knows and ignores what
// follows when the version is newer than its own, so brokers of mixed versions
// still see each other during a rolling upgrade. Version 0 is never written.
const (
	metaVersion1      = 1
	metaVersionLatest = metaVersion1
)

// encodeMeta returns the node metadata of m: the broker-provided fields only.
func encodeMeta(m Member) ([]byte, error) {
	strs := [...]string{m.KafkaAddr, m.RaftAddr, m.AdminAddr, m.Rack, m.Version}
	n := 1 + 4
	for _, s := range strs {
		n += uvarintLen(uint64(len(s))) + len(s)
	}
	if n > MaxMetaBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMetaTooLarge, n, MaxMetaBytes)
	}
	b := make([]byte, 0, n)
	b = append(b, metaVersionLatest)
	b = binary.BigEndian.AppendUint32(b, uint32(m.ID))
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b, nil
}

// decodeMeta parses node metadata written by encodeMeta of this or a later
// version. The result has GossipAddr and Alive unset.
func decodeMeta(b []byte) (Member, error) {
	var m Member
	if len(b) == 0 {
		return m, errors.New("cluster: empty member metadata")
	}
	version := b[0]
	if version == 0 {
		return m, errors.New("cluster: member metadata version 0")
	}
	b = b[1:]
	if len(b) < 4 {
		return m, errors.New("cluster: member metadata truncated in id")
	}
	m.ID = int32(binary.BigEndian.Uint32(b))
	b = b[4:]
	for _, dst := range [...]*string{&m.KafkaAddr, &m.RaftAddr, &m.AdminAddr, &m.Rack, &m.Version} {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return Member{}, errors.New("cluster: member metadata truncated in string")
		}
		*dst = string(b[n : n+int(l)])
		b = b[n+int(l):]
	}
	if version == metaVersion1 && len(b) != 0 {
		return Member{}, fmt.Errorf("cluster: member metadata version 1 has %d trailing bytes", len(b))
	}
	return m, nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
