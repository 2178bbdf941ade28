package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Idempotent producer errors, decided when a batch is applied so that every
// replica decides the same.
var (
	// ErrOutOfOrderSequence: the batch's first sequence does not follow the
	// producer's last one.
	ErrOutOfOrderSequence = errors.New("raftlog: out of order sequence number")
	// ErrInvalidProducerEpoch: the batch's producer epoch is older than one
	// already seen.
	ErrInvalidProducerEpoch = errors.New("raftlog: invalid producer epoch")
)

// dedupWindow is how many recent batches per producer are remembered to
// answer retries, as in Kafka (max.in.flight.requests.per.connection ≤ 5).
const dedupWindow = 5

// producerBatch is one accepted batch of an idempotent producer.
type producerBatch struct {
	firstSeq, lastSeq int32
	baseOffset        int64
	lastOffsetDelta   int32
}

// producerState is what a partition remembers of one producer id.
// Invariant: batches holds at most dedupWindow entries, oldest first, all of
// epoch epoch, with consecutive sequences.
type producerState struct {
	epoch   int16
	batches []producerBatch
}

func (p *producerState) lastSeq() int32 { return p.batches[len(p.batches)-1].lastSeq }

// nextSeq returns the sequence after s; sequences wrap from MaxInt32 to 0.
func nextSeq(s int32) int32 {
	if s == math.MaxInt32 {
		return 0
	}
	return s + 1
}

// batchLastSeq is the last sequence of a batch starting at first with n
// records.
func batchLastSeq(first int32, lastOffsetDelta int32) int32 {
	last := int64(first) + int64(lastOffsetDelta)
	if last > math.MaxInt32 {
		last -= math.MaxInt32 + 1
	}
	return int32(last)
}

// checkProducer decides what happens to a batch of producer st (nil if the
// producer is new). It returns the duplicate it repeats, if any, or an
// error if the batch must be rejected.
func checkProducer(st *producerState, epoch int16, firstSeq, lastSeq int32) (*producerBatch, error) {
	if st == nil || len(st.batches) == 0 {
		if firstSeq != 0 {
			return nil, fmt.Errorf("%w: new producer must start at sequence 0, got %d", ErrOutOfOrderSequence, firstSeq)
		}
		return nil, nil
	}
	switch {
	case epoch < st.epoch:
		return nil, fmt.Errorf("%w: epoch %d is older than %d", ErrInvalidProducerEpoch, epoch, st.epoch)
	case epoch > st.epoch:
		if firstSeq != 0 {
			return nil, fmt.Errorf("%w: new epoch %d must start at sequence 0, got %d", ErrOutOfOrderSequence, epoch, firstSeq)
		}
		return nil, nil
	}
	for i := range st.batches {
		if b := &st.batches[i]; b.firstSeq == firstSeq && b.lastSeq == lastSeq {
			return b, nil
		}
	}
	if want := nextSeq(st.lastSeq()); firstSeq != want {
		return nil, fmt.Errorf("%w: expected %d, got %d", ErrOutOfOrderSequence, want, firstSeq)
	}
	return nil, nil
}

// record notes an accepted batch.
func (p *producerState) record(epoch int16, b producerBatch) {
	if epoch != p.epoch {
		p.epoch = epoch
		p.batches = p.batches[:0]
	}
	if len(p.batches) == dedupWindow {
		copy(p.batches, p.batches[1:])
		p.batches = p.batches[:dedupWindow-1]
	}
	p.batches = append(p.batches, b)
}

// Producer state encoding, version 1:
//
//	[0] 1, [1:3] epoch, [3] n, then n × (firstSeq i32, lastSeq i32,
//	baseOffset i64, lastOffsetDelta i32)
const producerBatchLen = 20

func (p *producerState) encode() []byte {
	v := make([]byte, 4, 4+len(p.batches)*producerBatchLen)
	v[0] = 1
	binary.BigEndian.PutUint16(v[1:], uint16(p.epoch))
	v[3] = byte(len(p.batches))
	for _, b := range p.batches {
		v = binary.BigEndian.AppendUint32(v, uint32(b.firstSeq))
		v = binary.BigEndian.AppendUint32(v, uint32(b.lastSeq))
		v = binary.BigEndian.AppendUint64(v, uint64(b.baseOffset))
		v = binary.BigEndian.AppendUint32(v, uint32(b.lastOffsetDelta))
	}
	return v
}

func decodeProducerState(v []byte) (*producerState, error) {
	if len(v) < 4 || v[0] != 1 || int(v[3]) > dedupWindow || len(v) != 4+int(v[3])*producerBatchLen {
		return nil, errors.New("raftlog: malformed producer state")
	}
	p := &producerState{epoch: int16(binary.BigEndian.Uint16(v[1:]))}
	for i, n := 0, int(v[3]); i < n; i++ {
		r := v[4+i*producerBatchLen:]
		p.batches = append(p.batches, producerBatch{
			firstSeq:        int32(binary.BigEndian.Uint32(r)),
			lastSeq:         int32(binary.BigEndian.Uint32(r[4:])),
			baseOffset:      int64(binary.BigEndian.Uint64(r[8:])),
			lastOffsetDelta: int32(binary.BigEndian.Uint32(r[16:])),
		})
	}
	return p, nil
}
