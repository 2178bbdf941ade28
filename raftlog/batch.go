package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Kafka record batch (magic 2) header layout. The log stores batches exactly
// as producers sent them; only the fields outside the CRC (base offset,
// partition leader epoch) are filled in when a batch is read.
const (
	batchBaseOffset      = 0
	batchLength          = 8
	batchLeaderEpoch     = 12
	batchMagic           = 16
	batchCRC             = 17
	batchAttributes      = 21
	batchLastOffsetDelta = 23
	batchFirstTimestamp  = 27
	batchMaxTimestamp    = 35
	batchProducerID      = 43
	batchProducerEpoch   = 51
	batchBaseSequence    = 53
	batchRecordCount     = 57
	// BatchHeaderLen is the size of a record batch header.
	BatchHeaderLen = 61
	// batchLengthOverhead is the bytes before the batch length's count starts.
	batchLengthOverhead = 12
)

// Batch attribute bits.
const (
	attrCompressionMask = 0x07
	attrTimestampType   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors from ParseBatch; the broker maps them to Kafka error codes.
var (
	// ErrCorruptBatch: the batch is truncated, has a bad length or a bad CRC.
	ErrCorruptBatch = errors.New("raftlog: corrupt record batch")
	// ErrUnsupportedMagic: the batch is not magic 2.
	ErrUnsupportedMagic = errors.New("raftlog: unsupported record batch magic")
)

// BatchHeader is the decoded header of a record batch.
type BatchHeader struct {
	Attributes      int16
	LastOffsetDelta int32
	FirstTimestamp  int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordCount     int32
}

// Compression returns the codec id in the attributes (0 none, 1 gzip,
// 2 snappy, 3 lz4, 4 zstd).
func (h BatchHeader) Compression() int { return int(h.Attributes & attrCompressionMask) }

// Transactional reports whether the batch belongs to a transaction.
func (h BatchHeader) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch is a control batch.
func (h BatchHeader) Control() bool { return h.Attributes&attrControl != 0 }

// Idempotent reports whether the batch carries a producer id.
func (h BatchHeader) Idempotent() bool { return h.ProducerID >= 0 }

// decodeBatchHeader reads the header of b, which must be at least
// BatchHeaderLen long.
func decodeBatchHeader(b []byte) BatchHeader {
	return BatchHeader{
		Attributes:      int16(binary.BigEndian.Uint16(b[batchAttributes:])),
		LastOffsetDelta: int32(binary.BigEndian.Uint32(b[batchLastOffsetDelta:])),
		FirstTimestamp:  int64(binary.BigEndian.Uint64(b[batchFirstTimestamp:])),
		MaxTimestamp:    int64(binary.BigEndian.Uint64(b[batchMaxTimestamp:])),
		ProducerID:      int64(binary.BigEndian.Uint64(b[batchProducerID:])),
		ProducerEpoch:   int16(binary.BigEndian.Uint16(b[batchProducerEpoch:])),
		BaseSequence:    int32(binary.BigEndian.Uint32(b[batchBaseSequence:])),
		RecordCount:     int32(binary.BigEndian.Uint32(b[batchRecordCount:])),
	}
}

// ParseBatches splits records (a produce request's partition payload) into
// record batches, checking each one's magic, length and CRC. The returned
// slices alias records.
func ParseBatches(records []byte) ([][]byte, []BatchHeader, error) {
	var (
		batches [][]byte
		headers []BatchHeader
	)
	for len(records) > 0 {
		if len(records) > batchMagic && records[batchMagic] != 2 {
			return nil, nil, fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, records[batchMagic])
		}
		if len(records) < BatchHeaderLen {
			return nil, nil, fmt.Errorf("%w: %d trailing bytes", ErrCorruptBatch, len(records))
		}
		n := int64(int32(binary.BigEndian.Uint32(records[batchLength:]))) + batchLengthOverhead
		if n < BatchHeaderLen || n > int64(len(records)) {
			return nil, nil, fmt.Errorf("%w: batch length %d, %d bytes present", ErrCorruptBatch, n, len(records))
		}
		b := records[:n]
		if want, got := binary.BigEndian.Uint32(b[batchCRC:]), crc32.Checksum(b[batchAttributes:], castagnoli); want != got {
			return nil, nil, fmt.Errorf("%w: crc %08x, computed %08x", ErrCorruptBatch, want, got)
		}
		h := decodeBatchHeader(b)
		// Offsets come from the last offset delta, so it must match the
		// record count: a batch may not claim offsets it has no records for.
		if h.RecordCount <= 0 || h.LastOffsetDelta != h.RecordCount-1 {
			return nil, nil, fmt.Errorf("%w: %d records, last offset delta %d", ErrCorruptBatch, h.RecordCount, h.LastOffsetDelta)
		}
		batches = append(batches, b)
		headers = append(headers, h)
		records = records[n:]
	}
	return batches, headers, nil
}

// patchBatch fills in the fields a broker owns in a stored batch.
func patchBatch(b []byte, baseOffset int64, leaderEpoch int32) {
	binary.BigEndian.PutUint64(b[batchBaseOffset:], uint64(baseOffset))
	binary.BigEndian.PutUint32(b[batchLeaderEpoch:], uint32(leaderEpoch))
}
