package storage

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/google/btree"
)

// memDegree is the B-tree degree: nodes of up to 63 items keep the tree
// shallow for a million keys and make copy-on-write copies cheap.
const memDegree = 32

// memWindow is how many entries a Memory iterator fetches per tree descent,
// so that scans cost one O(log n) descent per memWindow steps.
const memWindow = 32

// memEntry is one key and its value. Invariant: the slices of an entry in a
// tree are owned by the tree and never modified.
type memEntry struct {
	key, value []byte
}

func memLess(a, b memEntry) bool { return bytes.Compare(a.key, b.key) < 0 }

// Memory is an in-memory Engine for tests and benchmarks of the layers
// above storage. Nothing survives Close; Commit's sync flag is ignored.
//
// Readers share immutable copy-on-write clones of the tree: an iterator
// holds a clone taken when it was created, and writes made afterwards copy
// the nodes they touch instead of changing the clone.
type Memory struct {
	mu struct {
		sync.RWMutex
		// tree holds the current contents. Writes need mu exclusively;
		// Get and Clone need it shared and exclusively respectively.
		tree *btree.BTreeG[memEntry]
		// snap is a clone of tree, or nil if tree changed since the last
		// clone. Invariant: snap is never modified, so iterators may read
		// it without holding mu.
		snap *btree.BTreeG[memEntry]
	}
	// closed is set, under mu held exclusively, by Close. Iterators read
	// it without mu.
	closed atomic.Bool
}

var _ Engine = (*Memory)(nil)

// NewMemory returns an empty in-memory engine.
func NewMemory() *Memory {
	m := &Memory{}
	m.mu.tree = btree.NewG(memDegree, memLess)
	return m
}

// Get implements Engine.
func (m *Memory) Get(key []byte) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed.Load() {
		return nil, ErrClosed
	}
	e, ok := m.mu.tree.Get(memEntry{key: key})
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(e.value), nil
}

// NewBatch implements Engine.
func (m *Memory) NewBatch() Batch {
	return &memBatch{m: m}
}

// NewBatchWithSize implements Engine; a memory batch has nothing to size.
func (m *Memory) NewBatchWithSize(int) Batch { return m.NewBatch() }

// NewIter implements Engine.
func (m *Memory) NewIter(lower, upper []byte) (Iterator, error) {
	m.mu.RLock()
	snap := m.mu.snap
	closed := m.closed.Load()
	m.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if snap == nil {
		// Clone changes tree's copy-on-write state, so it needs mu
		// exclusively.
		m.mu.Lock()
		if m.closed.Load() {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		if m.mu.snap == nil {
			m.mu.snap = m.mu.tree.Clone()
		}
		snap = m.mu.snap
		m.mu.Unlock()
	}
	return &memIter{
		m:     m,
		tree:  snap,
		lower: cloneBytes(lower),
		upper: cloneBytes(upper),
	}, nil
}

// Len returns the number of keys stored.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.mu.tree.Len()
}

// Close implements Engine. Iterators still open fail with ErrClosed on
// their next call. Closing twice returns ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed.Load() {
		return ErrClosed
	}
	m.closed.Store(true)
	m.mu.tree = btree.NewG(memDegree, memLess)
	m.mu.snap = nil
	return nil
}

// applyLocked applies ops in order. The caller holds mu exclusively.
func (m *Memory) applyLocked(ops []memOp) {
	var doomed []memEntry
	for _, op := range ops {
		switch op.kind {
		case memOpSet:
			m.mu.tree.ReplaceOrInsert(memEntry{key: op.key, value: op.value})
		case memOpDelete:
			m.mu.tree.Delete(memEntry{key: op.key})
		case memOpDeleteRange:
			doomed = doomed[:0]
			m.mu.tree.AscendRange(memEntry{key: op.key}, memEntry{key: op.end}, func(e memEntry) bool {
				doomed = append(doomed, e)
				return true
			})
			for _, e := range doomed {
				m.mu.tree.Delete(e)
			}
		}
	}
	m.mu.snap = nil
}

type memOpKind uint8

const (
	memOpSet memOpKind = iota
	memOpDelete
	memOpDeleteRange
)

// memOp is one batched write; its slices are owned by the batch and, once
// committed, by the tree.
type memOp struct {
	kind memOpKind
	key  []byte
	// value is the value of a Set.
	value []byte
	// end is the exclusive end of a DeleteRange.
	end []byte
}

// memOpOverhead approximates the per-operation bytes of a Pebble batch, so
// that Len means roughly the same for both engines.
const memOpOverhead = 4

// memBatch is a Batch for Memory.
type memBatch struct {
	m   *Memory
	ops []memOp
	// size is the approximate encoded size, for Len.
	size int
	// done is set by Commit and Close.
	done bool
}

var _ Batch = (*memBatch)(nil)

func (b *memBatch) add(op memOp) error {
	if b.done {
		return errBatchDone
	}
	b.ops = append(b.ops, op)
	b.size += memOpOverhead + len(op.key) + len(op.value) + len(op.end)
	return nil
}

func (b *memBatch) Set(key, value []byte) error {
	return b.add(memOp{kind: memOpSet, key: bytes.Clone(key), value: cloneNonNil(value)})
}

func (b *memBatch) SetWith(key []byte, valueLen int, fill func([]byte)) error {
	if valueLen < 0 {
		return fmt.Errorf("storage: negative value length %d", valueLen)
	}
	v := make([]byte, valueLen)
	fill(v)
	return b.add(memOp{kind: memOpSet, key: bytes.Clone(key), value: v})
}

func (b *memBatch) Delete(key []byte) error {
	return b.add(memOp{kind: memOpDelete, key: bytes.Clone(key)})
}

func (b *memBatch) DeleteRange(start, end []byte) error {
	if empty, err := checkRange(start, end); empty || err != nil {
		return err
	}
	return b.add(memOp{kind: memOpDeleteRange, key: bytes.Clone(start), end: bytes.Clone(end)})
}

func (b *memBatch) Len() int { return b.size }

func (b *memBatch) Empty() bool { return len(b.ops) == 0 }

func (b *memBatch) Commit(bool) error {
	if b.done {
		return errBatchDone
	}
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	if b.m.closed.Load() {
		return ErrClosed
	}
	b.m.applyLocked(b.ops)
	b.done = true
	b.ops = nil
	return nil
}

func (b *memBatch) Close() error {
	b.done = true
	b.ops = nil
	return nil
}

// checkRange rejects DeleteRange bounds that are out of order and reports
// whether the range is empty, in which case the batch skips it.
func checkRange(start, end []byte) (empty bool, err error) {
	switch c := bytes.Compare(start, end); {
	case c > 0:
		return true, fmt.Errorf("storage: delete range: start %q is after end %q", start, end)
	case c == 0:
		return true, nil
	}
	return false, nil
}

// cloneNonNil copies b, turning nil into an empty slice so that a stored
// value is never nil (Get of an empty value returns a non-nil slice).
func cloneNonNil(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

// memIterState is where a memIter is.
type memIterState uint8

const (
	// memUnpositioned: no positioning call yet; Next acts as First and Prev
	// as Last.
	memUnpositioned memIterState = iota
	// memValid: at win[pos].
	memValid
	// memBeforeStart: moved before the first key; Next acts as First.
	memBeforeStart
	// memPastEnd: moved past the last key; Prev acts as Last.
	memPastEnd
	// memClosed: Close was called.
	memClosed
)

// memIter is an Iterator over an immutable clone of a Memory's tree.
//
// Invariant: when state is memValid, win holds consecutive in-bounds
// entries of tree in ascending order and pos indexes the current one.
type memIter struct {
	m            *Memory
	tree         *btree.BTreeG[memEntry]
	lower, upper []byte
	state        memIterState
	win          []memEntry
	pos          int
	err          error
}

var _ Iterator = (*memIter)(nil)

// live reports whether the iterator may move, recording ErrClosed if the
// engine was closed under it.
func (i *memIter) live() bool {
	if i.state == memClosed {
		return false
	}
	if i.m.closed.Load() {
		i.err = ErrClosed
		i.win = nil
		i.state = memClosed
		return false
	}
	return true
}

// fillForward loads the window with entries from key (inclusive or not)
// upwards; a nil key starts at the lower bound.
func (i *memIter) fillForward(key []byte, inclusive bool) bool {
	i.win = i.win[:0]
	visit := func(e memEntry) bool {
		if !inclusive && bytes.Equal(e.key, key) {
			return true
		}
		if i.upper != nil && bytes.Compare(e.key, i.upper) >= 0 {
			return false
		}
		i.win = append(i.win, e)
		return len(i.win) < memWindow
	}
	if key == nil {
		i.tree.Ascend(visit)
	} else {
		i.tree.AscendGreaterOrEqual(memEntry{key: key}, visit)
	}
	if len(i.win) == 0 {
		i.state = memPastEnd
		return false
	}
	i.state, i.pos = memValid, 0
	return true
}

// fillBackward loads the window with entries from key (inclusive or not)
// downwards; a nil key starts at the top.
func (i *memIter) fillBackward(key []byte, inclusive bool) bool {
	i.win = i.win[:0]
	visit := func(e memEntry) bool {
		if !inclusive && bytes.Equal(e.key, key) {
			return true
		}
		if i.lower != nil && bytes.Compare(e.key, i.lower) < 0 {
			return false
		}
		i.win = append(i.win, e)
		return len(i.win) < memWindow
	}
	if key == nil {
		i.tree.Descend(visit)
	} else {
		i.tree.DescendLessOrEqual(memEntry{key: key}, visit)
	}
	if len(i.win) == 0 {
		i.state = memBeforeStart
		return false
	}
	for l, r := 0, len(i.win)-1; l < r; l, r = l+1, r-1 {
		i.win[l], i.win[r] = i.win[r], i.win[l]
	}
	i.state, i.pos = memValid, len(i.win)-1
	return true
}

func (i *memIter) First() bool {
	if !i.live() {
		return false
	}
	return i.fillForward(i.lower, true)
}

func (i *memIter) Last() bool {
	if !i.live() {
		return false
	}
	if i.upper == nil {
		return i.fillBackward(nil, true)
	}
	return i.fillBackward(i.upper, false)
}

func (i *memIter) SeekGE(key []byte) bool {
	if !i.live() {
		return false
	}
	if i.lower != nil && bytes.Compare(key, i.lower) < 0 {
		key = i.lower
	}
	// A nil key means "from the start" to fillForward; an empty key is the
	// smallest key anyway.
	return i.fillForward(key, true)
}

func (i *memIter) SeekLT(key []byte) bool {
	if !i.live() {
		return false
	}
	if i.upper != nil && bytes.Compare(key, i.upper) > 0 {
		key = i.upper
	}
	if key == nil {
		key = []byte{}
	}
	return i.fillBackward(key, false)
}

func (i *memIter) Next() bool {
	if !i.live() {
		return false
	}
	switch i.state {
	case memUnpositioned, memBeforeStart:
		return i.First()
	case memPastEnd:
		return false
	}
	if i.pos+1 < len(i.win) {
		i.pos++
		return true
	}
	return i.fillForward(i.win[i.pos].key, false)
}

func (i *memIter) Prev() bool {
	if !i.live() {
		return false
	}
	switch i.state {
	case memUnpositioned, memPastEnd:
		return i.Last()
	case memBeforeStart:
		return false
	}
	if i.pos > 0 {
		i.pos--
		return true
	}
	return i.fillBackward(i.win[i.pos].key, false)
}

func (i *memIter) Valid() bool { return i.state == memValid }

// Key implements Iterator. The slice is the engine's own; callers must not
// modify it (its capacity is clipped so appending copies).
func (i *memIter) Key() []byte {
	if i.state != memValid {
		return nil
	}
	k := i.win[i.pos].key
	return k[:len(k):len(k)]
}

// Value implements Iterator; see Key for ownership.
func (i *memIter) Value() []byte {
	if i.state != memValid {
		return nil
	}
	v := i.win[i.pos].value
	return v[:len(v):len(v)]
}

func (i *memIter) Error() error { return i.err }

// Close implements Iterator. Closing twice is a no-op; if the engine was
// closed under the iterator, Close returns ErrClosed.
func (i *memIter) Close() error {
	if i.state != memClosed {
		i.live()
		i.state = memClosed
		i.win, i.tree = nil, nil
	}
	return i.err
}
