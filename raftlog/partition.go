package raftlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/raftka/raftka/internal/bufpool"
	"github.com/raftka/raftka/storage"
)

// ErrOffsetOutOfRange is returned when reading from an offset outside
// [log start offset, high watermark].
var ErrOffsetOutOfRange = errors.New("raftlog: offset out of range")

// ErrOffsetNotAvailable is returned for offset lookups on a new leader that
// has not yet applied an entry of its own term: its high watermark may still
// lag what an earlier leader acknowledged (and a client already read), so an
// answer now could send a client backwards. It is retriable.
var ErrOffsetNotAvailable = errors.New("raftlog: offset not available until the new leader catches up")

// Partition commands, the first byte of a partition entry's payload. Values
// are only ever appended.
const (
	cmdRecordBatch byte = 1
)

// AppendResult is the outcome of appending one record batch.
type AppendResult struct {
	// BaseOffset is the offset of the batch's first record. For a retried
	// batch it is the offset the original got.
	BaseOffset int64
	// Duplicate is set when the batch repeated one already in the log.
	Duplicate bool
	// LogStartOffset is the partition's log start offset at append time.
	LogStartOffset int64
	// Err is set when the batch was rejected (and took no offsets).
	Err error
}

// Offset index value, version 1:
//
//	[0] 1, [1:9] raft index, [9:13] last offset delta, [13:21] max timestamp,
//	[21:25] batch length in bytes
const offsetIndexValueLen = 25

type offsetIndexEntry struct {
	raftIndex       uint64
	lastOffsetDelta int32
	maxTimestamp    int64
	size            int32
}

func (e offsetIndexEntry) encode() []byte {
	v := make([]byte, 1, offsetIndexValueLen)
	v[0] = 1
	v = binary.BigEndian.AppendUint64(v, e.raftIndex)
	v = binary.BigEndian.AppendUint32(v, uint32(e.lastOffsetDelta))
	v = binary.BigEndian.AppendUint64(v, uint64(e.maxTimestamp))
	return binary.BigEndian.AppendUint32(v, uint32(e.size))
}

func decodeOffsetIndex(v []byte) (offsetIndexEntry, error) {
	if len(v) != offsetIndexValueLen || v[0] != 1 {
		return offsetIndexEntry{}, errors.New("raftlog: malformed offset index entry")
	}
	return offsetIndexEntry{
		raftIndex:       binary.BigEndian.Uint64(v[1:]),
		lastOffsetDelta: int32(binary.BigEndian.Uint32(v[9:])),
		maxTimestamp:    int64(binary.BigEndian.Uint64(v[13:])),
		size:            int32(binary.BigEndian.Uint32(v[21:])),
	}, nil
}

// Partition is one replica of a Kafka partition: a Kafka log kept as the
// Raft log of its group. Committed entries carrying a record batch get their
// offsets when applied; the offset index maps each batch's base offset to
// its Raft index, so entries without records (empty leader entries,
// configuration changes, rejected batches) take no offsets.
type Partition struct {
	groupID uint64
	eng     storage.Engine
	log     *slog.Logger
	group   *Group

	// applied is owned by the scheduler goroutine (Apply, Publish).
	applied struct {
		// nextOffset is the offset the next accepted batch gets.
		nextOffset int64
		producers  map[int64]*producerState
		// lastEpoch is the epoch (term) of the last accepted batch.
		lastEpoch uint64
	}

	mu struct {
		sync.Mutex
		// highWatermark is the offset after the last committed and applied
		// record. Invariant: every offset below it is in the offset index
		// and durable on a quorum.
		highWatermark  int64
		logStartOffset int64
		leader         uint64
		term           uint64
		// hwChanged is closed and replaced whenever highWatermark moves.
		hwChanged chan struct{}
		// caughtUp is set once this replica applied an entry of its
		// current term: as leader, its high watermark then covers
		// everything any earlier leader acknowledged.
		caughtUp bool
		// epochs are the leader epochs that wrote batches, with their
		// first offsets, ascending. Copy-on-write: readers may keep it.
		epochs []EpochStart
	}
}

// OpenPartition loads the partition state of group id from the engine and
// starts its group on s. The group must be bootstrapped.
func OpenPartition(s *Scheduler, id uint64, log *slog.Logger) (*Partition, error) {
	if log == nil {
		log = slog.Default()
	}
	p := &Partition{groupID: id, eng: s.Engine(), log: log}
	p.applied.producers = make(map[int64]*producerState)
	p.mu.hwChanged = make(chan struct{})
	if err := p.load(); err != nil {
		return nil, fmt.Errorf("partition group %d: %w", id, err)
	}
	p.mu.highWatermark = p.applied.nextOffset
	g, err := s.AddGroup(id, p)
	if err != nil {
		return nil, err
	}
	p.group = g
	return p, nil
}

// EpochStart is the first offset written in a leader epoch.
type EpochStart struct {
	Epoch       int32
	StartOffset int64
}

// load reads the next offset, leader epochs and producer states.
func (p *Partition) load() error {
	eit, err := p.eng.NewIter(epochKey(p.groupID, 0), epochKey(p.groupID, ^uint64(0)))
	if err != nil {
		return err
	}
	for ok := eit.First(); ok; ok = eit.Next() {
		e, err := decodeU64Suffix(eit.Key())
		if err != nil || len(eit.Value()) != 8 {
			eit.Close()
			return fmt.Errorf("malformed epoch entry: %v", err)
		}
		p.mu.epochs = append(p.mu.epochs, EpochStart{Epoch: int32(e), StartOffset: int64(binary.BigEndian.Uint64(eit.Value()))})
		p.applied.lastEpoch = e
	}
	if err := eit.Close(); err != nil {
		return err
	}
	it, err := p.eng.NewIter(offsetKey(p.groupID, 0), offsetKey(p.groupID, -1))
	if err != nil {
		return err
	}
	if it.Last() {
		base, err := decodeU64Suffix(it.Key())
		if err != nil {
			it.Close()
			return err
		}
		e, err := decodeOffsetIndex(it.Value())
		if err != nil {
			it.Close()
			return err
		}
		p.applied.nextOffset = int64(base) + int64(e.lastOffsetDelta) + 1
	}
	if err := it.Close(); err != nil {
		return err
	}
	it, err = p.eng.NewIter(producerKey(p.groupID, 0), producerKey(p.groupID, -1))
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		pid, err := decodeU64Suffix(it.Key())
		if err != nil {
			return err
		}
		st, err := decodeProducerState(it.Value())
		if err != nil {
			return err
		}
		p.applied.producers[int64(pid)] = st
	}
	return it.Error()
}

// Group returns the partition's Raft group.
func (p *Partition) Group() *Group { return p.group }

// AppendAsync proposes one validated record batch (see ParseBatches) and
// returns a function that waits for its AppendResult. Batches proposed in
// order from one goroutine are appended in that order.
func (p *Partition) AppendAsync(batch []byte) (func(context.Context) (AppendResult, error), error) {
	// The batch behind room for the envelope and command, in a recycled
	// buffer: Raft keeps its own copy of an entry it accepts (appendEntry
	// clones proposals; TestRaftCopiesProposals pins it), and a partition
	// group never forwards proposals, which would send data itself later
	// (raft is configured to drop them on a follower, even one whose Group
	// still believes it leads; TestFollowerNeverForwardsPartitionProposals
	// pins it).
	data := bufpool.Get(envelopeHeader + 1 + len(batch))
	data[envelopeHeader] = cmdRecordBatch
	copy(data[envelopeHeader+1:], batch)
	prop, err := p.group.proposeEnvelope(data)
	if !p.group.opts.ForwardProposals {
		bufpool.Put(data)
	}
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (AppendResult, error) {
		res, err := prop.wait(ctx)
		if err != nil {
			return AppendResult{}, err
		}
		r, ok := res.(AppendResult)
		if !ok {
			return AppendResult{}, fmt.Errorf("raftlog: unexpected apply result %T", res)
		}
		return r, nil
	}, nil
}

// Apply implements StateMachine.
func (p *Partition) Apply(b storage.Batch, index, term uint64, payload []byte) any {
	if len(payload) == 0 || payload[0] != cmdRecordBatch {
		p.log.Error("skipping unknown partition command", "index", index)
		return AppendResult{Err: fmt.Errorf("raftlog: unknown partition command")}
	}
	batch := payload[1:]
	if len(batch) < BatchHeaderLen {
		return AppendResult{Err: ErrCorruptBatch}
	}
	h := decodeBatchHeader(batch)
	var st *producerState
	if h.Idempotent() {
		st = p.applied.producers[h.ProducerID]
		lastSeq := batchLastSeq(h.BaseSequence, h.LastOffsetDelta)
		dup, err := checkProducer(st, h.ProducerEpoch, h.BaseSequence, lastSeq)
		if err != nil {
			return AppendResult{Err: err}
		}
		if dup != nil {
			return AppendResult{BaseOffset: dup.baseOffset, Duplicate: true}
		}
	}
	base := p.applied.nextOffset
	ie := offsetIndexEntry{raftIndex: index, lastOffsetDelta: h.LastOffsetDelta, maxTimestamp: h.MaxTimestamp, size: int32(len(batch))}
	if err := b.Set(offsetKey(p.groupID, base), ie.encode()); err != nil {
		return AppendResult{Err: err}
	}
	p.applied.nextOffset = base + int64(h.LastOffsetDelta) + 1
	if term > p.applied.lastEpoch {
		p.applied.lastEpoch = term
		if err := b.Set(epochKey(p.groupID, term), binary.BigEndian.AppendUint64(nil, uint64(base))); err != nil {
			return AppendResult{Err: err}
		}
		p.mu.Lock()
		p.mu.epochs = append(slices.Clip(p.mu.epochs), EpochStart{Epoch: int32(term), StartOffset: base})
		p.mu.Unlock()
	}
	if h.Idempotent() {
		if st == nil {
			st = &producerState{epoch: h.ProducerEpoch}
			p.applied.producers[h.ProducerID] = st
		}
		st.record(h.ProducerEpoch, producerBatch{
			firstSeq: h.BaseSequence, lastSeq: batchLastSeq(h.BaseSequence, h.LastOffsetDelta),
			baseOffset: base, lastOffsetDelta: h.LastOffsetDelta,
		})
		if err := b.Set(producerKey(p.groupID, h.ProducerID), st.encode()); err != nil {
			return AppendResult{Err: err}
		}
	}
	return AppendResult{BaseOffset: base}
}

// Publish implements StateMachine.
func (p *Partition) Publish() {
	p.mu.Lock()
	if p.applied.nextOffset != p.mu.highWatermark {
		p.mu.highWatermark = p.applied.nextOffset
		close(p.mu.hwChanged)
		p.mu.hwChanged = make(chan struct{})
	}
	p.mu.Unlock()
}

// AppliedTerm notes the term of the last applied entry.
func (p *Partition) AppliedTerm(term uint64) {
	p.mu.Lock()
	if term == p.mu.term && !p.mu.caughtUp {
		p.mu.caughtUp = true
		close(p.mu.hwChanged)
		p.mu.hwChanged = make(chan struct{})
	}
	p.mu.Unlock()
}

// LeadershipChanged implements StateMachine.
func (p *Partition) LeadershipChanged(leader, term uint64) {
	p.mu.Lock()
	if term != p.mu.term {
		p.mu.caughtUp = false
	}
	p.mu.leader, p.mu.term = leader, term
	// Wake long polls so they re-check leadership.
	close(p.mu.hwChanged)
	p.mu.hwChanged = make(chan struct{})
	p.mu.Unlock()
}

// Offsets is a consistent view of a partition's bounds.
type Offsets struct {
	LogStartOffset int64
	HighWatermark  int64
	// LeaderEpoch is the Raft term of the current leader, as Kafka's
	// partition leader epoch.
	LeaderEpoch int32
	Leader      uint64
	// CaughtUp is set once the replica applied an entry of the current
	// term; before that a new leader's high watermark may lag what the
	// previous leader acknowledged.
	CaughtUp bool
	// Changed is closed when any of the above moves.
	Changed <-chan struct{}
}

// Offsets returns the partition's current bounds.
func (p *Partition) Offsets() Offsets {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Offsets{
		LogStartOffset: p.mu.logStartOffset,
		HighWatermark:  p.mu.highWatermark,
		LeaderEpoch:    int32(p.mu.term),
		Leader:         p.mu.leader,
		CaughtUp:       p.mu.caughtUp,
		Changed:        p.mu.hwChanged,
	}
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch as Kafka does: for the
// current epoch, the high watermark; for an earlier one, the largest epoch
// at or below it that wrote batches and the first offset of the next epoch
// that did; -1, -1 for an epoch older than every batch. Until the replica
// has applied an entry of its current term it answers ErrOffsetNotAvailable:
// its high watermark and epochs may lag what the client has already read,
// and a client told the log ends before its position takes that as
// truncation and goes back.
func (p *Partition) EndOffsetForEpoch(epoch int32) (int32, int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.mu.caughtUp {
		return -1, -1, ErrOffsetNotAvailable
	}
	if epoch == int32(p.mu.term) {
		return epoch, p.mu.highWatermark, nil
	}
	floor := -1
	for i, e := range p.mu.epochs {
		if e.Epoch <= epoch {
			floor = i
		}
	}
	if floor < 0 {
		if len(p.mu.epochs) == 0 && epoch < int32(p.mu.term) {
			return epoch, p.mu.logStartOffset, nil
		}
		return -1, -1, nil
	}
	if floor+1 < len(p.mu.epochs) {
		return p.mu.epochs[floor].Epoch, p.mu.epochs[floor+1].StartOffset, nil
	}
	return p.mu.epochs[floor].Epoch, p.mu.highWatermark, nil
}

// Read appends to dst the committed batches holding offsets from offset on,
// up to maxBytes (but always at least one whole batch if any), and returns
// it. Batches come back as stored, with base offset and leader epoch filled
// in and nothing decompressed.
func (p *Partition) Read(dst []byte, offset int64, maxBytes int) ([]byte, error) {
	o := p.Offsets()
	if offset < o.LogStartOffset || offset > o.HighWatermark {
		return dst, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, o.LogStartOffset, o.HighWatermark)
	}
	if offset == o.HighWatermark {
		return dst, nil
	}
	it, err := p.eng.NewIter(offsetKey(p.groupID, 0), offsetKey(p.groupID, o.HighWatermark))
	if err != nil {
		return dst, err
	}
	defer it.Close()
	ok := it.SeekLT(offsetKey(p.groupID, offset+1))
	if !ok {
		ok = it.First()
	}
	start := len(dst)
	var logIt storage.Iterator
	for ; ok; ok = it.Next() {
		base, err := decodeU64Suffix(it.Key())
		if err != nil {
			return dst, err
		}
		e, err := decodeOffsetIndex(it.Value())
		if err != nil {
			return dst, err
		}
		if int64(base)+int64(e.lastOffsetDelta) < offset {
			continue
		}
		if len(dst) > start && len(dst)-start+int(e.size) > maxBytes {
			break
		}
		// One iterator over the log for the whole read: entries are read
		// in index order and copied once, straight into dst.
		if logIt == nil {
			logIt, err = p.eng.NewIter(logKey(p.groupID, e.raftIndex), logKey(p.groupID, ^uint64(0)))
			if err != nil {
				return dst, err
			}
			defer logIt.Close()
		}
		key := logKey(p.groupID, e.raftIndex)
		if !logIt.SeekGE(key) || string(logIt.Key()) != string(key) {
			return dst, fmt.Errorf("partition group %d: offset %d at raft index %d: %w", p.groupID, base, e.raftIndex, storage.ErrNotFound)
		}
		_, term, data, err := decodeEntryValue(logIt.Value())
		if err != nil || len(data) < envelopeHeader+1+BatchHeaderLen {
			return dst, fmt.Errorf("partition group %d: raft index %d: %w", p.groupID, e.raftIndex, errCorruptEntry)
		}
		batch := data[envelopeHeader+1:]
		n := len(dst)
		dst = append(dst, batch...)
		patchBatch(dst[n:], int64(base), int32(term))
		if len(dst)-start >= maxBytes {
			break
		}
	}
	return dst, it.Error()
}

// OffsetForTimestamp returns the offset of the first batch whose max
// timestamp is at least ts, or -1, -1 if there is none (as Kafka answers).
// Within a batch it answers the batch's base offset, which is never later
// than the first record at or after ts.
func (p *Partition) OffsetForTimestamp(ts int64) (offset int64, timestamp int64, err error) {
	o := p.Offsets()
	it, err := p.eng.NewIter(offsetKey(p.groupID, o.LogStartOffset), offsetKey(p.groupID, o.HighWatermark))
	if err != nil {
		return 0, 0, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		e, err := decodeOffsetIndex(it.Value())
		if err != nil {
			return 0, 0, err
		}
		if e.maxTimestamp >= ts {
			base, err := decodeU64Suffix(it.Key())
			return int64(base), e.maxTimestamp, err
		}
	}
	return -1, -1, it.Error()
}

// MaxTimestamp returns the largest record timestamp in the log and the
// offset of the last record of the batch holding it (-1, -1 if empty).
func (p *Partition) MaxTimestamp() (offset int64, timestamp int64, err error) {
	o := p.Offsets()
	it, err := p.eng.NewIter(offsetKey(p.groupID, o.LogStartOffset), offsetKey(p.groupID, o.HighWatermark))
	if err != nil {
		return 0, 0, err
	}
	defer it.Close()
	offset, timestamp = -1, -1
	for ok := it.First(); ok; ok = it.Next() {
		e, err := decodeOffsetIndex(it.Value())
		if err != nil {
			return 0, 0, err
		}
		if e.maxTimestamp > timestamp {
			base, err := decodeU64Suffix(it.Key())
			if err != nil {
				return 0, 0, err
			}
			offset, timestamp = int64(base)+int64(e.lastOffsetDelta), e.maxTimestamp
		}
	}
	return offset, timestamp, it.Error()
}
