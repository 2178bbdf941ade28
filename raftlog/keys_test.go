package raftlog

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/raftka/raftka/storage"
	pb "go.etcd.io/raft/v3/raftpb"
)

// unhex decodes hex with spaces allowed between groups.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestKeyEncodingGolden pins the on-disk key layout (version 1). A change
// here makes existing engines unreadable: bump LayoutVersion and migrate
// instead of editing these bytes.
func TestKeyEncodingGolden(t *testing.T) {
	t.Parallel()
	if LayoutVersion != 1 {
		t.Fatalf("LayoutVersion %d: update the golden keys of the new layout", LayoutVersion)
	}
	for _, tc := range []struct {
		name string
		key  []byte
		want string
	}{
		{"layout", LayoutVersionKey, "00 6c61796f7574"},
		{"hard state", hardStateKey(1), "67 0000000000000001 68"},
		{"conf state", confStateKey(0x0102030405060708), "67 0102030405060708 63"},
		{"truncated", truncatedKey(2), "67 0000000000000002 74"},
		{"applied", appliedKey(3), "67 0000000000000003 61"},
		{"log", logKey(4, 0x1122), "67 0000000000000004 6c 0000000000001122"},
		{"log max", logKey(math.MaxUint64, math.MaxUint64), "67 ffffffffffffffff 6c ffffffffffffffff"},
		{"offset", offsetKey(5, 300), "67 0000000000000005 6f 000000000000012c"},
		{"offset -1", offsetKey(5, -1), "67 0000000000000005 6f ffffffffffffffff"},
		{"producer", producerKey(6, 1<<40), "67 0000000000000006 70 0000010000000000"},
		{"private", PrivateKey(1, "topics/a"), "67 0000000000000001 73 746f706963732f61"},
		{"private empty", PrivateKey(1, ""), "67 0000000000000001 73"},
	} {
		if want := unhex(t, tc.want); !bytes.Equal(tc.key, want) {
			t.Errorf("%s key: %x, want %x", tc.name, tc.key, want)
		}
	}
}

// Keys are built by appending to a prefix with spare capacity; building
// one must never change another.
func TestKeysDoNotAlias(t *testing.T) {
	t.Parallel()
	a := logKey(1, 1)
	b := logKey(1, 2)
	c := groupKey(1, suffixHardState)
	if bytes.Equal(a, b) || a[len(a)-1] != 1 || b[len(b)-1] != 2 || c[len(c)-1] != suffixHardState {
		t.Fatalf("keys alias: %x %x %x", a, b, c)
	}
	p := PrivateKey(1, "x")
	q := PrivateKey(1, "y")
	if p[len(p)-1] != 'x' || q[len(q)-1] != 'y' {
		t.Fatalf("private keys alias: %q %q", p, q)
	}
}

func TestKeysSortNumerically(t *testing.T) {
	t.Parallel()
	vals := []uint64{0, 1, 255, 256, 1 << 32, math.MaxUint64 - 1, math.MaxUint64}
	for i := 1; i < len(vals); i++ {
		if bytes.Compare(logKey(1, vals[i-1]), logKey(1, vals[i])) >= 0 {
			t.Errorf("logKey(%d) !< logKey(%d)", vals[i-1], vals[i])
		}
		if vals[i] <= math.MaxInt64 && bytes.Compare(offsetKey(1, int64(vals[i-1])), offsetKey(1, int64(vals[i]))) >= 0 {
			t.Errorf("offsetKey(%d) !< offsetKey(%d)", vals[i-1], vals[i])
		}
		if bytes.Compare(groupPrefix(vals[i-1]), groupPrefix(vals[i])) >= 0 {
			t.Errorf("groupPrefix(%d) !< groupPrefix(%d)", vals[i-1], vals[i])
		}
	}
}

func TestDecodeU64Suffix(t *testing.T) {
	t.Parallel()
	for _, k := range []uint64{0, 7, math.MaxUint64} {
		for _, key := range [][]byte{logKey(9, k), offsetKey(9, int64(k)), producerKey(9, int64(k))} {
			got, err := decodeU64Suffix(key)
			if err != nil || got != k {
				t.Errorf("decodeU64Suffix(%x) = %d, %v; want %d", key, got, err, k)
			}
		}
	}
	for _, bad := range [][]byte{nil, hardStateKey(1), logKey(1, 1)[:17], append(logKey(1, 1), 0)} {
		if _, err := decodeU64Suffix(bad); err == nil {
			t.Errorf("decodeU64Suffix(%x): no error", bad)
		}
	}
}

// appendEntryValue appends the stored form of an entry to dst.
func appendEntryValue(dst []byte, typ byte, term uint64, data []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, entryHeaderLen+len(data))...)
	putEntryValue(dst[n:], typ, term, data)
	return dst
}

// TestEntryValueGolden pins the stored Raft entry format (version 1).
func TestEntryValueGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ  byte
		term uint64
		data []byte
		want string
	}{
		{byte(pb.EntryNormal), 5, []byte("hi"), "01 00 0000000000000005 6869"},
		{byte(pb.EntryNormal), 1, nil, "01 00 0000000000000001"},
		{byte(pb.EntryConfChange), 0x0102030405060708, []byte{0}, "01 01 0102030405060708 00"},
		{byte(pb.EntryConfChangeV2), math.MaxUint64, []byte{1, 2}, "01 02 ffffffffffffffff 0102"},
	} {
		prefix := []byte("garbage")
		got := appendEntryValue(prefix, tc.typ, tc.term, tc.data)
		if want := unhex(t, tc.want); !bytes.Equal(got[len(prefix):], want) || !bytes.Equal(got[:len(prefix)], []byte("garbage")) {
			t.Errorf("appendEntryValue(%d, %d, %x) = %x, want garbage+%x", tc.typ, tc.term, tc.data, got, want)
		}
		typ, term, data, err := decodeEntryValue(got[len(prefix):])
		if err != nil || typ != tc.typ || term != tc.term || !bytes.Equal(data, tc.data) {
			t.Errorf("decode: %d %d %x %v; want %d %d %x", typ, term, data, err, tc.typ, tc.term, tc.data)
		}
	}
}

func TestDecodeEntryValueAliases(t *testing.T) {
	t.Parallel()
	v := appendEntryValue(nil, 0, 1, []byte("abc"))
	_, _, data, err := decodeEntryValue(v)
	if err != nil {
		t.Fatal(err)
	}
	v[len(v)-1] = 'z'
	if string(data) != "abz" {
		t.Fatalf("data %q does not alias the value (documented)", data)
	}
}

func TestDecodeEntryValueRejectsCorrupt(t *testing.T) {
	t.Parallel()
	good := appendEntryValue(nil, 0, 1, []byte("x"))
	for name, v := range map[string][]byte{
		"empty":     nil,
		"short":     good[:entryHeaderLen-1],
		"version 0": append([]byte{0}, good[1:]...),
		"version 2": append([]byte{2}, good[1:]...),
	} {
		if _, _, _, err := decodeEntryValue(v); !errors.Is(err, errCorruptEntry) {
			t.Errorf("%s: err %v, want errCorruptEntry", name, err)
		}
	}
	if _, _, data, err := decodeEntryValue(good[:entryHeaderLen]); err != nil || len(data) != 0 {
		t.Errorf("header only: %x %v, want empty data", data, err)
	}
}

// TestOffsetIndexGolden pins the partition offset index value (version 1).
func TestOffsetIndexGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e    offsetIndexEntry
		want string
	}{
		{offsetIndexEntry{raftIndex: 7, lastOffsetDelta: 2, maxTimestamp: 1700000000000, size: 100},
			"01 0000000000000007 00000002 0000018bcfe56800 00000064"},
		{offsetIndexEntry{raftIndex: math.MaxUint64, lastOffsetDelta: math.MaxInt32, maxTimestamp: -1, size: math.MaxInt32},
			"01 ffffffffffffffff 7fffffff ffffffffffffffff 7fffffff"},
		{offsetIndexEntry{}, "01 0000000000000000 00000000 0000000000000000 00000000"},
	} {
		got := tc.e.encode()
		if want := unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("encode(%+v) = %x, want %x", tc.e, got, want)
		}
		if len(got) != offsetIndexValueLen {
			t.Errorf("encoding is %d bytes, offsetIndexValueLen %d", len(got), offsetIndexValueLen)
		}
		back, err := decodeOffsetIndex(got)
		if err != nil || back != tc.e {
			t.Errorf("decode(encode(%+v)) = %+v, %v", tc.e, back, err)
		}
	}
	good := offsetIndexEntry{raftIndex: 1}.encode()
	for name, v := range map[string][]byte{
		"empty":     nil,
		"short":     good[:offsetIndexValueLen-1],
		"long":      append(append([]byte(nil), good...), 0),
		"version 2": append([]byte{2}, good[1:]...),
	} {
		if _, err := decodeOffsetIndex(v); err == nil {
			t.Errorf("%s: decoded %x without error", name, v)
		}
	}
}

// TestAppliedStateGolden pins the applied state value written by the
// scheduler: [1][applied index u64].
func TestAppliedStateGolden(t *testing.T) {
	t.Parallel()
	eng := storage.NewMemory()
	defer eng.Close()
	if got, err := loadApplied(eng, 3); err != nil || got != 0 {
		t.Fatalf("missing applied state: %d, %v; want 0", got, err)
	}
	b := eng.NewBatch()
	mustSet(t, b, appliedKey(3), unhex(t, "01 0000000000000102"))
	mustSet(t, b, appliedKey(4), unhex(t, "02 0000000000000102"))
	mustSet(t, b, appliedKey(5), unhex(t, "01 00000000000001"))
	mustCommit(t, b)
	if got, err := loadApplied(eng, 3); err != nil || got != 0x102 {
		t.Fatalf("applied %d, %v; want 258", got, err)
	}
	for _, id := range []uint64{4, 5} {
		if _, err := loadApplied(eng, id); err == nil {
			t.Errorf("group %d: malformed applied state accepted", id)
		}
	}
}

// TestBootstrapGolden pins the bootstrap state: a conf state and a
// 16-byte zero truncated state.
func TestBootstrapGolden(t *testing.T) {
	t.Parallel()
	eng := storage.NewMemory()
	defer eng.Close()
	b := eng.NewBatch()
	if err := bootstrapGroup(b, 9, []uint64{1, 2, 3}, []uint64{4}); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, b)
	tv, err := eng.Get(truncatedKey(9))
	if err != nil || !bytes.Equal(tv, make([]byte, 16)) {
		t.Fatalf("truncated state %x, %v; want 16 zero bytes", tv, err)
	}
	csb, err := eng.Get(confStateKey(9))
	if err != nil {
		t.Fatal(err)
	}
	// Protobuf: field 1 (voters) and 2 (learners) as unpacked varints, as
	// gogoproto wrote them in earlier raft versions.
	if want := unhex(t, "0801 0802 0803 1004"); !bytes.Equal(csb, want) {
		t.Errorf("conf state %x, want %x", csb, want)
	}
	if keys := spanKeys(t, eng, 9); len(keys) != 2 {
		t.Errorf("bootstrap wrote %d keys, want 2", len(keys))
	}
}

// TestGroupSpan checks that a group's span holds every key of the group and
// nothing of its neighbours, on a real engine.
func TestGroupSpan(t *testing.T) {
	t.Parallel()
	checkGroupSpans(t, []uint64{0, 1, 2, 255, 256, 1<<56 - 1, 1 << 56, math.MaxUint64 - 2, math.MaxUint64 - 1})
}

// TestGroupSpanLastGroup is TestGroupSpan for the largest group id, whose
// span has no next group prefix to end at.
func TestGroupSpanLastGroup(t *testing.T) {
	t.Parallel()
	_, end := groupSpan(math.MaxUint64)
	if bytes.Compare(end, []byte("h")) > 0 {
	}
	checkGroupSpans(t, []uint64{math.MaxUint64 - 1, math.MaxUint64})
}

// checkGroupSpans writes every kind of key for ids and some keys outside
// every group, then checks each span and a range delete of one of them.
func checkGroupSpans(t *testing.T, ids []uint64) {
	t.Helper()
	eng := storage.NewMemory()
	defer eng.Close()
	b := eng.NewBatch()
	// Keys outside every group: the layout key, and keys just before
	// and after the group namespace.
	outside := [][]byte{LayoutVersionKey, []byte("f\xff"), []byte("g"), []byte("h"), []byte("h\x00")}
	for _, k := range outside {
		mustSet(t, b, k, []byte("not a group key"))
	}
	want := map[uint64]int{}
	for _, id := range ids {
		keys := allGroupKeys(id)
		for _, k := range keys {
			mustSet(t, b, k, []byte("v"))
		}
		want[id] = len(keys)
	}
	mustCommit(t, b)
	for _, id := range ids {
		start, end := groupSpan(id)
		if bytes.Compare(start, end) >= 0 {
			t.Fatalf("group %d: empty span [%x, %x)", id, start, end)
		}
		got := spanKeys(t, eng, id)
		if len(got) != want[id] {
			t.Errorf("group %d: span [%x, %x) holds %d keys, want %d", id, start, end, len(got), want[id])
		}
		for _, k := range got {
			if !bytes.HasPrefix(k, groupPrefix(id)) {
				t.Errorf("group %d: span holds %x of another group", id, k)
			}
		}
	}
	// Deleting one group's span leaves its neighbours alone.
	victim := ids[len(ids)-1]
	b = eng.NewBatch()
	start, end := groupSpan(victim)
	if err := b.DeleteRange(start, end); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, b)
	for _, id := range ids {
		n := len(spanKeys(t, eng, id))
		if id == victim && n != 0 || id != victim && n != want[id] {
			t.Errorf("after deleting group %d: group %d has %d keys", victim, id, n)
		}
	}
	for _, k := range outside {
		if _, err := eng.Get(k); err != nil {
			t.Errorf("key %q outside every group: %v", k, err)
		}
	}
}

// allGroupKeys returns one key of every kind for group id, including the
// extremes of each numbered kind.
func allGroupKeys(id uint64) [][]byte {
	return [][]byte{
		hardStateKey(id), confStateKey(id), truncatedKey(id), appliedKey(id),
		logKey(id, 0), logKey(id, 1), logKey(id, math.MaxUint64),
		offsetKey(id, 0), offsetKey(id, math.MaxInt64), offsetKey(id, -1),
		producerKey(id, 0), producerKey(id, math.MaxInt64),
		PrivateKey(id, ""), PrivateKey(id, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
	}
}

func mustSet(t testing.TB, b storage.Batch, k, v []byte) {
	t.Helper()
	if err := b.Set(k, v); err != nil {
		t.Fatalf("set %x: %v", k, err)
	}
}

func mustCommit(t testing.TB, b storage.Batch) {
	t.Helper()
	if err := b.Commit(true); err != nil {
		t.Fatalf("commit: %v", err)
	}
}
