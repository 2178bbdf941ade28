package coordinator

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/raftka/raftka/raftlog"
)

// TestRecordEncodingsAreKafkas pins the bytes of __consumer_offsets keys
// and values to Kafka's schemas, written out by hand here: the topic must
// stay readable by Kafka tooling and by older Raftka versions.
func TestRecordEncodingsAreKafkas(t *testing.T) {
	ts := time.UnixMilli(0x0102030405)
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		// version 1, group "g", topic "t", partition 7
		{"offset key", offsetKey("g", TopicPartition{"t", 7}), "0001" + "000167" + "000174" + "00000007"},
		// version 3, offset 42, leader epoch 5, metadata "m", commit timestamp
		{"offset value", offsetValue(committedOffset{offset: 42, leaderEpoch: 5, metadata: "m", commitTime: ts}),
			"0003" + "000000000000002a" + "00000005" + "00016d" + "0000000102030405"},
		// version 2, group "g"
		{"group key", groupKey("g"), "0002" + "000167"},
	} {
		if got := hex.EncodeToString(tc.got); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}

	g := newGroup("g", ts)
	g.protocolType, g.protocolName, g.generation = "consumer", "range", 3
	inst := "i1"
	g.add(&member{id: "m", instanceID: &inst, protocolType: "consumer", clientID: "c", clientHost: "/h", rebalanceTimeout: time.Second,
		sessionTimeout: 2 * time.Second, protocols: []protocol{{name: "range", metadata: []byte{9}}}})
	want := "0003" + // version
		"0008" + hex.EncodeToString([]byte("consumer")) + // protocol type
		"00000003" + // generation
		"0005" + hex.EncodeToString([]byte("range")) + // protocol
		"0001" + "6d" + // leader "m"
		"0000000102030405" + // current state timestamp
		"00000001" + // one member
		"0001" + "6d" + // member id
		"0002" + hex.EncodeToString([]byte("i1")) + // group instance id
		"0001" + "63" + // client id
		"0002" + hex.EncodeToString([]byte("/h")) + // client host
		"000003e8" + "000007d0" + // rebalance and session timeouts
		"00000001" + "09" + // subscription
		"00000001" + "0a" // assignment
	if got := hex.EncodeToString(groupValue(g, map[string][]byte{"m": {10}})); got != want {
		t.Errorf("group value:\n%s\nwant\n%s", got, want)
	}
}

// TestBatchRoundTrip checks that AppendBatch builds batches the partition
// log accepts (magic 2, CRC, record count) and ReadBatches reads them
// back, tombstones included.
func TestBatchRoundTrip(t *testing.T) {
	recs := []Record{
		{Key: offsetKey("g", TopicPartition{"t", 0}), Value: offsetValue(committedOffset{offset: 1, commitTime: time.UnixMilli(5)})},
		{Key: groupKey("g")},
		{Key: []byte("k"), Value: []byte{}},
	}
	raw := AppendBatch(nil, recs, time.UnixMilli(1234))
	raw = AppendBatch(raw, recs[:1], time.UnixMilli(1235))
	batches, headers, err := raftlog.ParseBatches(raw)
	if err != nil {
		t.Fatalf("the log rejects the batch: %v", err)
	}
	if len(batches) != 2 || headers[0].RecordCount != 3 || headers[0].MaxTimestamp != 1234 || headers[0].Idempotent() || headers[0].Compression() != 0 {
		t.Fatalf("batches %d, header %+v", len(batches), headers[0])
	}
	var got []Record
	if err := ReadBatches(raw, func(r Record) { got = append(got, r) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("read %d records, want 4", len(got))
	}
	for i, r := range got[:3] {
		if string(r.Key) != string(recs[i].Key) || string(r.Value) != string(recs[i].Value) || (r.Value == nil) != (recs[i].Value == nil) {
			t.Errorf("record %d: %x=%x (nil %v), want %x=%x", i, r.Key, r.Value, r.Value == nil, recs[i].Key, recs[i].Value)
		}
	}
	if err := ReadBatches(raw[:len(raw)-1], func(Record) {}); err == nil {
		t.Error("a truncated batch read without error")
	}
}

func TestPartitionForIsKafkas(t *testing.T) {
	for _, tc := range []struct {
		group string
		hash  int32
		n     int
		want  int32
	}{
		{"", 0, 50, 0},
		{"hello", 99162322, 50, 22},
		{"Aa", 2112, 50, 12},
		{"BB", 2112, 50, 12},
		// Java's famous String whose hashCode is Integer.MIN_VALUE, which
		// Kafka's Utils.abs maps to 0.
		{"polygenelubricants", -1 << 31, 50, 0},
		{"é", 233, 50, 33},
		// A supplementary character hashes as its UTF-16 surrogate pair.
		{"😀", 55357*31 + 56832, 7, (55357*31 + 56832) % 7},
	} {
		if h := javaStringHash(tc.group); h != tc.hash {
			t.Errorf("hash(%q) = %d, want %d", tc.group, h, tc.hash)
		}
		if p := PartitionFor(tc.group, tc.n); p != tc.want {
			t.Errorf("PartitionFor(%q, %d) = %d, want %d", tc.group, tc.n, p, tc.want)
		}
	}
	// A negative hash: Utils.abs, not Go's %, decides.
	neg := "negative-hash-group"
	for h := javaStringHash(neg); h >= 0; h = javaStringHash(neg) {
		neg += "x"
	}
	if p := PartitionFor(neg, 50); p < 0 || p != -javaStringHash(neg)%50 {
		t.Errorf("PartitionFor(%q) = %d", neg, p)
	}
}
