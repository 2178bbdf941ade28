package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestParseBatchesGood(t *testing.T) {
	t.Parallel()
	spec := idempotentBatch(42, 3, 17, 4, "good")
	spec.timestamps = []int64{1000, 1003, 999, 1002}
	b := spec.build()
	batches, headers, err := ParseBatches(b)
	if err != nil {
		t.Fatalf("ParseBatches: %v", err)
	}
	if len(batches) != 1 || len(headers) != 1 {
		t.Fatalf("got %d batches, %d headers, want 1", len(batches), len(headers))
	}
	if !bytes.Equal(batches[0], b) {
		t.Fatalf("batch is not the input")
	}
	if &batches[0][0] != &b[0] {
		t.Errorf("batch does not alias the input")
	}
	want := BatchHeader{
		Attributes:      0,
		LastOffsetDelta: 3,
		FirstTimestamp:  1000,
		MaxTimestamp:    1003,
		ProducerID:      42,
		ProducerEpoch:   3,
		BaseSequence:    17,
		RecordCount:     4,
	}
	if headers[0] != want {
		t.Fatalf("header %+v, want %+v", headers[0], want)
	}
	h := headers[0]
	if !h.Idempotent() || h.Transactional() || h.Control() || h.Compression() != 0 {
		t.Errorf("flags of %+v: idempotent=%v transactional=%v control=%v compression=%d",
			h, h.Idempotent(), h.Transactional(), h.Control(), h.Compression())
	}
	// The batch is what kmsg built: decoding it gives the records back.
	recs := decodeRecords(t, batches[0])
	if len(recs) != 4 || string(recs[2].Value) != "good-2" || recs[3].OffsetDelta != 3 {
		t.Fatalf("records %+v", recs)
	}
}

func TestParseBatchesPlainIsNotIdempotent(t *testing.T) {
	t.Parallel()
	_, headers, err := ParseBatches(plainBatch("plain", 1).build())
	if err != nil {
		t.Fatalf("ParseBatches: %v", err)
	}
	if headers[0].Idempotent() {
		t.Fatalf("producer id -1 reported idempotent: %+v", headers[0])
	}
}

func TestBatchHeaderAttributes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		attrs                  int16
		compression            int
		transactional, control bool
	}{
		{0x00, 0, false, false},
		{0x04, 4, false, false},
		{0x13, 3, true, false},
		{0x30, 0, true, true},
		{0x08 | 0x01, 1, false, false},
	} {
		b := plainBatch("a", 1).build()
		binary.BigEndian.PutUint16(b[batchAttributes:], uint16(tc.attrs))
		setCRC(b)
		_, headers, err := ParseBatches(b)
		if err != nil {
			t.Fatalf("attrs %#x: %v", tc.attrs, err)
		}
		h := headers[0]
		if h.Compression() != tc.compression || h.Transactional() != tc.transactional || h.Control() != tc.control {
			t.Errorf("attrs %#x: compression %d transactional %v control %v, want %d %v %v",
				tc.attrs, h.Compression(), h.Transactional(), h.Control(), tc.compression, tc.transactional, tc.control)
		}
	}
}

func TestParseBatchesMultiple(t *testing.T) {
	t.Parallel()
	specs := []batchSpec{plainBatch("a", 1), plainBatch("b", 3), idempotentBatch(7, 0, 0, 2, "c")}
	var all []byte
	var parts [][]byte
	for _, s := range specs {
		b := s.build()
		parts = append(parts, b)
		all = append(all, b...)
	}
	batches, headers, err := ParseBatches(all)
	if err != nil {
		t.Fatalf("ParseBatches: %v", err)
	}
	if len(batches) != len(specs) || len(headers) != len(specs) {
		t.Fatalf("got %d batches, want %d", len(batches), len(specs))
	}
	for i := range specs {
		if !bytes.Equal(batches[i], parts[i]) {
			t.Errorf("batch %d differs from input", i)
		}
		if headers[i].RecordCount != int32(specs[i].records) {
			t.Errorf("batch %d: %d records, want %d", i, headers[i].RecordCount, specs[i].records)
		}
	}
}

func TestParseBatchesEmpty(t *testing.T) {
	t.Parallel()
	batches, headers, err := ParseBatches(nil)
	if err != nil || len(batches) != 0 || len(headers) != 0 {
		t.Fatalf("ParseBatches(nil) = %d, %d, %v", len(batches), len(headers), err)
	}
}

func TestParseBatchesRejects(t *testing.T) {
	t.Parallel()
	good := plainBatch("x", 3).build()
	two := append(append([]byte(nil), good...), good...)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name    string
		records []byte
		want    error
	}{
		{"truncated header", good[:BatchHeaderLen-1], ErrCorruptBatch},
		{"truncated records", good[:len(good)-1], ErrCorruptBatch},
		{"second batch truncated", two[:len(two)-5], ErrCorruptBatch},
		{"trailing bytes", append(append([]byte(nil), good...), 1, 2, 3), ErrCorruptBatch},
		{"length too large", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batchLength:], uint32(len(b)))
			return b
		}), ErrCorruptBatch},
		{"length below header", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batchLength:], BatchHeaderLen-batchLengthOverhead-1)
			return b
		}), ErrCorruptBatch},
		{"negative length", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batchLength:], 0xffffffff)
			return b
		}), ErrCorruptBatch},
		{"length hides a record", mut(func(b []byte) []byte {
			// A shorter length that still covers the header: the CRC,
			// computed over the whole batch, no longer matches.
			binary.BigEndian.PutUint32(b[batchLength:], binary.BigEndian.Uint32(b[batchLength:])-1)
			return b
		}), ErrCorruptBatch},
		{"bad crc: flipped attributes", mut(func(b []byte) []byte { b[batchAttributes+1] ^= 0x10; return b }), ErrCorruptBatch},
		{"bad crc: flipped last byte", mut(func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b }), ErrCorruptBatch},
		{"bad crc: flipped crc", mut(func(b []byte) []byte { b[batchCRC] ^= 0x80; return b }), ErrCorruptBatch},
		{"magic 1", mut(func(b []byte) []byte { b[batchMagic] = 1; return b }), ErrUnsupportedMagic},
		{"magic 0", mut(func(b []byte) []byte { b[batchMagic] = 0; return b }), ErrUnsupportedMagic},
		{"magic 3", mut(func(b []byte) []byte { b[batchMagic] = 3; return b }), ErrUnsupportedMagic},
		{"zero records", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batchRecordCount:], 0)
			setCRC(b)
			return b
		}), ErrCorruptBatch},
		{"negative record count", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batchRecordCount:], 0xffffffff)
			setCRC(b)
			return b
		}), ErrCorruptBatch},
		{"last offset delta below count", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batchLastOffsetDelta:], 1) // 3 records
			setCRC(b)
			return b
		}), ErrCorruptBatch},
		{"negative last offset delta", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batchLastOffsetDelta:], 0xffffffff)
			setCRC(b)
			return b
		}), ErrCorruptBatch},
	} {
		batches, headers, err := ParseBatches(tc.records)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
		if batches != nil || headers != nil {
			t.Errorf("%s: returned %d batches along with an error", tc.name, len(batches))
		}
	}
}

// A zero-record batch built by kmsg itself (not patched) is rejected too.
func TestParseBatchesZeroRecordsFromKmsg(t *testing.T) {
	t.Parallel()
	rb := kmsg.RecordBatch{
		Length: BatchHeaderLen - batchLengthOverhead, PartitionLeaderEpoch: -1, Magic: 2,
		LastOffsetDelta: -1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
	}
	b := rb.AppendTo(nil)
	setCRC(b)
	if _, _, err := ParseBatches(b); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("zero-record batch: err %v, want ErrCorruptBatch", err)
	}
}

// An old-format (magic 0 or 1) message set is answered with
// ErrUnsupportedMagic whatever its size, so that the broker can tell the
// client its format is unsupported instead of calling it corrupt.
func TestParseBatchesLegacyMessageSet(t *testing.T) {
	t.Parallel()
	for _, magic := range []int8{0, 1} {
		for _, value := range [][]byte{[]byte("v"), bytes.Repeat([]byte("v"), 100)} {
			m := kmsg.MessageV1{Magic: magic, Timestamp: 1000, Value: value}
			if magic == 0 {
				m.Timestamp = 0
			}
			body := m.AppendTo(nil)
			if magic == 0 {
				// MessageV0 has no timestamp: drop the 8 bytes.
				body = append(body[:18], body[26:]...)
			}
			binary.BigEndian.PutUint32(body[8:], uint32(len(body)-12))
			binary.BigEndian.PutUint32(body[12:], crc32.ChecksumIEEE(body[16:]))
			if body[batchMagic] != byte(magic) {
				t.Fatalf("magic is not at offset %d in a v%d message", batchMagic, magic)
			}
			_, _, err := ParseBatches(body)
			if !errors.Is(err, ErrUnsupportedMagic) {
				if len(body) < BatchHeaderLen {
				}
				t.Errorf("magic %d message of %d bytes: err %v, want ErrUnsupportedMagic", magic, len(body), err)
			}
		}
	}
}

func TestPatchBatchKeepsCRCValid(t *testing.T) {
	t.Parallel()
	b := idempotentBatch(1, 0, 0, 3, "p").build()
	orig := append([]byte(nil), b...)
	patchBatch(b, 1<<40+5, 77)
	if got := int64(binary.BigEndian.Uint64(b[batchBaseOffset:])); got != 1<<40+5 {
		t.Errorf("base offset %d", got)
	}
	if got := int32(binary.BigEndian.Uint32(b[batchLeaderEpoch:])); got != 77 {
		t.Errorf("leader epoch %d", got)
	}
	if !bytes.Equal(b[batchMagic:], orig[batchMagic:]) || !bytes.Equal(b[batchLength:batchLeaderEpoch], orig[batchLength:batchLeaderEpoch]) {
		t.Errorf("patchBatch changed bytes other than base offset and leader epoch")
	}
	if _, _, err := ParseBatches(b); err != nil {
		t.Fatalf("patched batch does not parse: %v", err)
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatalf("kmsg: %v", err)
	}
	if rb.FirstOffset != 1<<40+5 || rb.PartitionLeaderEpoch != 77 {
		t.Fatalf("kmsg sees base offset %d epoch %d", rb.FirstOffset, rb.PartitionLeaderEpoch)
	}
}
