package coordinator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The records of __consumer_offsets use Kafka's own schemas (kmsg's
// OffsetCommitKey/Value and GroupMetadataKey/Value), so Kafka tooling can
// read the topic. A key's version tells the kinds apart: 0 and 1 are
// committed offsets, 2 is group metadata. A record with a null value is a
// tombstone: the offset or group is deleted.
const (
	offsetKeyVersion   int16 = 1
	groupKeyVersion    int16 = 2
	offsetValueVersion int16 = 3
	groupValueVersion  int16 = 3
)

// Record is one __consumer_offsets record. A nil Value is a tombstone.
type Record struct {
	Key   []byte
	Value []byte
}

// TopicPartition names a partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// committedOffset is a group's committed position in one partition.
type committedOffset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  time.Time
	// expireTime is set only by commits that asked for a per-partition
	// retention (OffsetCommit v1); the zero time means the group's
	// retention rules apply.
	expireTime time.Time
}

func offsetKey(group string, tp TopicPartition) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: tp.Topic, Partition: tp.Partition}
	return k.AppendTo(nil)
}

func offsetValue(o committedOffset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitTime.UnixMilli()
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

// groupValue encodes g's current generation: the selected protocol, the
// leader, and every member with its subscription (its metadata for the
// selected protocol) and its assignment.
func groupValue(g *group, assignments map[string][]byte) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocolName != "" {
		v.Protocol = kmsg.StringPtr(g.protocolName)
	}
	if g.leader != "" {
		v.Leader = kmsg.StringPtr(g.leader)
	}
	v.CurrentStateTimestamp = g.stateSince.UnixMilli()
	for _, m := range g.memberList() {
		mv := kmsg.NewGroupMetadataValueMember()
		mv.MemberID = m.id
		mv.InstanceID = m.instanceID
		mv.ClientID = m.clientID
		mv.ClientHost = m.clientHost
		mv.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		mv.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		mv.Subscription = m.metadataFor(g.protocolName)
		if mv.Subscription == nil {
			mv.Subscription = []byte{}
		}
		mv.Assignment = assignments[m.id]
		if mv.Assignment == nil {
			mv.Assignment = []byte{}
		}
		v.Members = append(v.Members, mv)
	}
	return v.AppendTo(nil)
}

// decodedRecord is a __consumer_offsets record, decoded.
type decodedRecord struct {
	group string
	// offset records
	isOffset bool
	tp       TopicPartition
	offset   *kmsg.OffsetCommitValue // nil: tombstone
	// group records
	metadata *kmsg.GroupMetadataValue // nil: tombstone
}

// errUnknownRecord marks a record whose key version this coordinator does
// not know (a newer Kafka's record kinds); loading skips it.
var errUnknownRecord = errors.New("coordinator: unknown record key version")

func decodeRecord(r Record) (decodedRecord, error) {
	if len(r.Key) < 2 {
		return decodedRecord{}, fmt.Errorf("coordinator: record key of %d bytes", len(r.Key))
	}
	switch version := int16(binary.BigEndian.Uint16(r.Key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.Key); err != nil {
			return decodedRecord{}, fmt.Errorf("coordinator: offset key: %w", err)
		}
		d := decodedRecord{group: k.Group, isOffset: true, tp: TopicPartition{k.Topic, k.Partition}}
		if r.Value != nil {
			var v kmsg.OffsetCommitValue
			if err := v.ReadFrom(r.Value); err != nil {
				return decodedRecord{}, fmt.Errorf("coordinator: offset value of group %q %s: %w", k.Group, d.tp, err)
			}
			d.offset = &v
		}
		return d, nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(r.Key); err != nil {
			return decodedRecord{}, fmt.Errorf("coordinator: group key: %w", err)
		}
		d := decodedRecord{group: k.Group}
		if r.Value != nil {
			var v kmsg.GroupMetadataValue
			if err := v.ReadFrom(r.Value); err != nil {
				return decodedRecord{}, fmt.Errorf("coordinator: group value of %q: %w", k.Group, err)
			}
			d.metadata = &v
		}
		return d, nil
	default:
		return decodedRecord{}, fmt.Errorf("%w %d", errUnknownRecord, version)
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendBatch appends to dst one uncompressed Kafka record batch (magic 2,
// no producer id) holding records, with every record stamped at ts. The
// batch's base offset and leader epoch are left zero; the log fills them.
func AppendBatch(dst []byte, records []Record, ts time.Time) []byte {
	var body []byte
	for i, r := range records {
		rec := kmsg.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
		enc := rec.AppendTo(nil)
		// enc starts with a one-byte varint 0 for the length; the length
		// counts what follows it.
		rec.Length = int32(len(enc) - 1)
		body = rec.AppendTo(body)
	}
	ms := ts.UnixMilli()
	b := kmsg.RecordBatch{
		Magic:           2,
		LastOffsetDelta: int32(len(records) - 1),
		FirstTimestamp:  ms,
		MaxTimestamp:    ms,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(records)),
		Records:         body,
	}
	start := len(dst)
	dst = b.AppendTo(dst)
	batch := dst[start:]
	// Length counts everything after the length field (offset 8, 4 bytes);
	// the CRC (at 17) covers everything from the attributes (at 21) on.
	binary.BigEndian.PutUint32(batch[8:], uint32(len(batch)-12))
	binary.BigEndian.PutUint32(batch[17:], crc32.Checksum(batch[21:], castagnoli))
	return dst
}

// ErrCompressedBatch is returned by ReadBatches for a compressed batch:
// the coordinator writes only uncompressed batches, so one in
// __consumer_offsets was produced by a client and is skipped.
var ErrCompressedBatch = errors.New("coordinator: compressed batch in __consumer_offsets")

// ReadBatches calls fn for each record of the record batches in raw (as a
// partition's Read returns them). Control batches are skipped. It stops at
// the first malformed batch; a compressed batch is skipped and reported
// with ErrCompressedBatch after the others are read.
func ReadBatches(raw []byte, fn func(Record)) error {
	var skipped error
	for len(raw) > 0 {
		if len(raw) < 12 {
			return fmt.Errorf("coordinator: %d trailing bytes in a record batch stream", len(raw))
		}
		n := int(int32(binary.BigEndian.Uint32(raw[8:]))) + 12
		if n < 61 || n > len(raw) {
			return fmt.Errorf("coordinator: record batch of %d bytes, %d present", n, len(raw))
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw[:n]); err != nil {
			return fmt.Errorf("coordinator: record batch: %w", err)
		}
		raw = raw[n:]
		if b.Magic != 2 {
			return fmt.Errorf("coordinator: record batch magic %d", b.Magic)
		}
		if b.Attributes&0x20 != 0 { // control batch
			continue
		}
		if b.Attributes&0x07 != 0 {
			skipped = ErrCompressedBatch
			continue
		}
		recs := b.Records
		for i := int32(0); i < b.NumRecords; i++ {
			l, vn := binary.Varint(recs)
			if vn <= 0 || l < 0 || int64(len(recs)-vn) < l {
				return fmt.Errorf("coordinator: record %d of a batch is truncated", i)
			}
			var r kmsg.Record
			if err := r.ReadFrom(recs[:vn+int(l)]); err != nil {
				return fmt.Errorf("coordinator: record %d: %w", i, err)
			}
			recs = recs[vn+int(l):]
			fn(Record{Key: r.Key, Value: r.Value})
		}
	}
	return skipped
}
