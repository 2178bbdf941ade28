package storage

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// Pebble is the durable Engine, backed by a Pebble LSM.
//
// Lock order: mu, then pebbleIter.mu; itersMu and failMu are leaves.
type Pebble struct {
	opts PebbleOptions

	// mu is held shared by every operation that uses db, and exclusively by
	// Close, so that db is never used while or after it closes.
	mu sync.RWMutex
	db *pebble.DB
	// closed is set by Close. Invariant: once closed is set, db is not used
	// by calls that start later.
	closed atomic.Bool

	// failMu guards failed, the error of a fatal commit failure. It is
	// separate from mu because commits record it while holding mu shared.
	// Invariant: once failed is set, Pebble's commit pipeline is wedged and
	// db is used no more.
	failMu sync.Mutex
	failed error

	// itersMu guards iters, the iterators not yet closed, which Close closes
	// so that a leaked iterator does not outlive the database.
	itersMu sync.Mutex
	iters   map[*pebbleIter]struct{}
}

var _ Engine = (*Pebble)(nil)

// OpenPebble opens (creating if needed) the database in opts.Dir.
func OpenPebble(opts PebbleOptions) (*Pebble, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	db, err := pebble.Open(opts.Dir, opts.pebbleOptions())
	if err != nil {
		return nil, fmt.Errorf("storage: open pebble %s: %w", opts.Dir, err)
	}
	return &Pebble{opts: opts, db: db, iters: make(map[*pebbleIter]struct{})}, nil
}

// errLocked returns the error an operation must return instead of using db.
// The caller holds mu (shared or exclusive).
func (p *Pebble) errLocked() error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := p.failure(); err != nil {
		return fmt.Errorf("storage: pebble failed earlier: %w", err)
	}
	return nil
}

// failure returns the fatal commit failure, if any.
func (p *Pebble) failure() error {
	p.failMu.Lock()
	defer p.failMu.Unlock()
	return p.failed
}

// Get implements Engine.
func (p *Pebble) Get(key []byte) ([]byte, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if err := p.errLocked(); err != nil {
		return nil, err
	}
	v, closer, err := p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: pebble get: %w", err)
	}
	out := make([]byte, len(v))
	copy(out, v)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("storage: pebble get: %w", err)
	}
	return out, nil
}

// NewBatch implements Engine. The batch may be filled after the engine
// closes, but its Commit then fails with ErrClosed.
func (p *Pebble) NewBatch() Batch { return p.NewBatchWithSize(0) }

// NewBatchWithSize implements Engine; a size of 0 takes whatever buffer
// Pebble's batch pool has.
func (p *Pebble) NewBatchWithSize(size int) Batch {
	// Making a batch only allocates; it is safe even on a closed database,
	// and Commit checks for closure before using it.
	return &pebbleBatch{p: p, b: p.db.NewBatchWithSize(size, pebble.WithMaxRetainedSizeBytes(maxRetainedBatchBytes))}
}

// maxRetainedBatchBytes is the largest batch buffer Pebble's batch pool
// keeps for reuse (its default is 1 MiB). A scheduler pass under load
// writes several megabytes of entries in one batch; above the default each
// pass allocated its buffer afresh and regrew it by doubling, copying what
// it held at every step. The pool is a sync.Pool, so the garbage collector
// still frees buffers nobody reuses.
const maxRetainedBatchBytes = 64 << 20

// MaxBatchBytes implements BatchSizer. Pebble applies a batch of half a
// memtable or more as a memtable of its own: it rotates the memtable and the
// WAL, queues the batch for a flush of its own and writes it out as more,
// smaller files. Under a produce backlog the scheduler's log batches grew to
// that size, and every commit took that path: the flush queue filled with
// small flushes, writes stalled, and the backlog that made the batches large
// grew further. A quarter of a memtable keeps a commit well clear of it.
func (p *Pebble) MaxBatchBytes() int { return int(p.opts.MemTableSize / 4) }

var _ BatchSizer = (*Pebble)(nil)

// NewIter implements Engine.
func (p *Pebble) NewIter(lower, upper []byte) (Iterator, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if err := p.errLocked(); err != nil {
		return nil, err
	}
	// Pebble's race-build invariant checks index key[0] of seek keys, so an
	// empty (non-nil) bound is rewritten: an empty lower bound is no bound,
	// and an empty upper bound is an empty range, here [0x00, 0x00).
	lower, upper = cloneBytes(lower), cloneBytes(upper)
	if lower != nil && len(lower) == 0 {
		lower = nil
	}
	if upper != nil && len(upper) == 0 {
		lower, upper = []byte{0}, []byte{0}
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("storage: pebble new iterator: %w", err)
	}
	pi := &pebbleIter{p: p}
	pi.mu.it = it
	p.itersMu.Lock()
	defer p.itersMu.Unlock()
	if p.iters == nil { // Close has begun; mu should have prevented this.
		_ = it.Close()
		return nil, ErrClosed
	}
	p.iters[pi] = struct{}{}
	return pi, nil
}

// Flush writes the memtable to an sstable. Tests use it to exercise reads
// from sstables; the broker need not call it.
func (p *Pebble) Flush() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if err := p.errLocked(); err != nil {
		return err
	}
	if err := p.db.Flush(); err != nil {
		return fmt.Errorf("storage: pebble flush: %w", err)
	}
	return nil
}

// Metrics returns Pebble's metrics (LSM shape, compaction debt, WAL and
// cache statistics) for export by the broker.
func (p *Pebble) Metrics() (*pebble.Metrics, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if err := p.errLocked(); err != nil {
		return nil, err
	}
	return p.db.Metrics(), nil
}

// Close implements Engine. It waits for running operations, closes any
// iterators still open (their later calls fail with ErrClosed), and closes
// the database. Closing twice returns ErrClosed.
//
// After a fatal commit failure Close returns that failure at once without
// closing the database: commits that were in flight may be stuck in Pebble's
// wedged commit pipeline, and the process is expected to exit.
func (p *Pebble) Close() error {
	if failed := p.failure(); failed != nil {
		if p.closed.Swap(true) {
			return ErrClosed
		}
		return fmt.Errorf("storage: pebble failed earlier: %w", failed)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return ErrClosed
	}

	p.itersMu.Lock()
	open := make([]*pebbleIter, 0, len(p.iters))
	for it := range p.iters {
		open = append(open, it)
	}
	p.iters = nil
	p.itersMu.Unlock()
	var errs []error
	for _, it := range open {
		if err := it.closeFromEngine(); err != nil {
			errs = append(errs, err)
		}
	}
	if failed := p.failure(); failed != nil {
		// The commit pipeline is wedged and pebble.DB.Close could block on
		// it; leave the database to the process exit that must follow.
		errs = append(errs, fmt.Errorf("storage: pebble failed earlier: %w", failed))
	} else if err := p.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("storage: close pebble %s: %w", p.opts.Dir, err))
	}
	return errors.Join(errs...)
}

// forgetIter drops it from the set Close must close.
func (p *Pebble) forgetIter(it *pebbleIter) {
	p.itersMu.Lock()
	delete(p.iters, it)
	p.itersMu.Unlock()
}

// errBatchDone is returned by a Batch used after Commit or Close.
var errBatchDone = errors.New("storage: batch already committed or closed")

// pebbleBatch is a Batch over a pebble.Batch.
type pebbleBatch struct {
	p *Pebble
	// b is nil once the batch is committed or closed.
	b *pebble.Batch
}

var _ Batch = (*pebbleBatch)(nil)

func (b *pebbleBatch) Set(key, value []byte) error {
	if b.b == nil {
		return errBatchDone
	}
	return b.b.Set(key, value, nil)
}

func (b *pebbleBatch) SetWith(key []byte, valueLen int, fill func([]byte)) error {
	if b.b == nil {
		return errBatchDone
	}
	if valueLen < 0 {
		return fmt.Errorf("storage: negative value length %d", valueLen)
	}
	op := b.b.SetDeferred(len(key), valueLen)
	copy(op.Key, key)
	fill(op.Value)
	return op.Finish()
}

func (b *pebbleBatch) Delete(key []byte) error {
	if b.b == nil {
		return errBatchDone
	}
	return b.b.Delete(key, nil)
}

func (b *pebbleBatch) DeleteRange(start, end []byte) error {
	if b.b == nil {
		return errBatchDone
	}
	if empty, err := checkRange(start, end); empty || err != nil {
		return err
	}
	return b.b.DeleteRange(start, end, nil)
}

func (b *pebbleBatch) Len() int {
	if b.b == nil {
		return 0
	}
	return b.b.Len()
}

func (b *pebbleBatch) Empty() bool {
	return b.b == nil || b.b.Empty()
}

// Commit implements Batch. A failure of Pebble's commit pipeline (a WAL
// write or sync error) is returned as an error and leaves the engine failed:
// every later operation returns that error, since Pebble cannot recover
// from it in process. The caller must treat it as fatal and stop: other
// commits in flight at the time may never return.
func (b *pebbleBatch) Commit(sync bool) (err error) {
	if b.b == nil {
		return errBatchDone
	}
	p := b.p
	p.mu.RLock()
	defer p.mu.RUnlock()
	if err := p.errLocked(); err != nil {
		return err
	}
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		f, ok := r.(pebbleFatal)
		if !ok {
			panic(r)
		}
		err = fmt.Errorf("storage: pebble commit: %w", f.err)
		p.fail(f.err)
	}()
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	if b.b.Empty() {
		// Pebble skips empty batches entirely; a synced empty batch must
		// still make earlier unsynced batches durable, so sync the WAL with
		// an empty LogData record.
		if sync {
			if err := p.db.LogData(nil, wo); err != nil {
				return fmt.Errorf("storage: pebble sync: %w", err)
			}
		}
	} else {
		if err := b.b.Commit(wo); err != nil {
			return fmt.Errorf("storage: pebble commit: %w", err)
		}
		if p.opts.OnCommit != nil {
			st := b.b.CommitStats()
			p.opts.OnCommit(commitStatsOf(&st, sync))
		}
	}
	pb := b.b
	b.b = nil
	if err := pb.Close(); err != nil {
		return fmt.Errorf("storage: pebble release batch: %w", err)
	}
	return nil
}

// fail records a fatal commit failure; the first one wins.
func (p *Pebble) fail(err error) {
	p.failMu.Lock()
	defer p.failMu.Unlock()
	if p.failed == nil {
		p.failed = err
	}
}

func (b *pebbleBatch) Close() error {
	if b.b == nil {
		return nil
	}
	pb := b.b
	b.b = nil
	return pb.Close()
}

// pebbleIter is an Iterator over a pebble.Iterator.
type pebbleIter struct {
	p *Pebble
	// mu serializes the owner's calls with Pebble.Close closing the
	// iterator. It is uncontended in normal use.
	mu struct {
		sync.Mutex
		// it is nil once the iterator is closed.
		it *pebble.Iterator
		// positioned reports whether a positioning call other than
		// Next/Prev has run, so that Next and Prev on a fresh iterator
		// behave like First and Last.
		positioned bool
		// err is ErrClosed if the engine closed the iterator.
		err error
	}
}

var _ Iterator = (*pebbleIter)(nil)

func (i *pebbleIter) position(f func(it *pebble.Iterator) bool) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.mu.it == nil {
		return false
	}
	i.mu.positioned = true
	return f(i.mu.it)
}

func (i *pebbleIter) First() bool { return i.position((*pebble.Iterator).First) }
func (i *pebbleIter) Last() bool  { return i.position((*pebble.Iterator).Last) }

// SeekGE implements Iterator. The empty key is the smallest, so seeking to
// it is First (which also avoids Pebble's race-build check of key[0]).
func (i *pebbleIter) SeekGE(key []byte) bool {
	if len(key) == 0 {
		return i.First()
	}
	return i.position(func(it *pebble.Iterator) bool { return it.SeekGE(key) })
}

// SeekLT implements Iterator. No key is below the empty key, so seeking
// below it runs off the start: First then Prev, leaving the iterator where
// Next moves to the first key.
func (i *pebbleIter) SeekLT(key []byte) bool {
	if len(key) == 0 {
		return i.position(func(it *pebble.Iterator) bool {
			if it.First() {
				it.Prev()
			}
			return false
		})
	}
	return i.position(func(it *pebble.Iterator) bool { return it.SeekLT(key) })
}

func (i *pebbleIter) Next() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.mu.it == nil {
		return false
	}
	if !i.mu.positioned {
		i.mu.positioned = true
		return i.mu.it.First()
	}
	return i.mu.it.Next()
}

func (i *pebbleIter) Prev() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.mu.it == nil {
		return false
	}
	if !i.mu.positioned {
		i.mu.positioned = true
		return i.mu.it.Last()
	}
	return i.mu.it.Prev()
}

func (i *pebbleIter) Valid() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.mu.it != nil && i.mu.positioned && i.mu.it.Valid()
}

func (i *pebbleIter) Key() []byte {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.mu.it == nil || !i.mu.positioned || !i.mu.it.Valid() {
		return nil
	}
	return i.mu.it.Key()
}

func (i *pebbleIter) Value() []byte {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.mu.it == nil || !i.mu.positioned || !i.mu.it.Valid() {
		return nil
	}
	return i.mu.it.Value()
}

func (i *pebbleIter) Error() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.mu.err != nil {
		return i.mu.err
	}
	if i.mu.it == nil {
		return nil
	}
	if err := i.mu.it.Error(); err != nil {
		return fmt.Errorf("storage: pebble iterator: %w", err)
	}
	return nil
}

// Close implements Iterator. Closing twice is a no-op; after the engine
// closed the iterator it returns ErrClosed.
func (i *pebbleIter) Close() error {
	i.mu.Lock()
	it := i.mu.it
	if it == nil {
		err := i.mu.err
		i.mu.Unlock()
		return err
	}
	i.mu.it = nil
	// Close the Pebble iterator before releasing mu, so that Pebble.Close,
	// which takes mu of every iterator it knows, never closes the database
	// under a half-closed iterator.
	err := it.Close()
	i.mu.Unlock()
	i.p.forgetIter(i)
	if err != nil {
		return fmt.Errorf("storage: pebble iterator: %w", err)
	}
	return nil
}

// closeFromEngine closes the iterator on behalf of Pebble.Close.
func (i *pebbleIter) closeFromEngine() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.mu.it == nil {
		return nil
	}
	it := i.mu.it
	i.mu.it = nil
	i.mu.err = ErrClosed
	if err := it.Close(); err != nil {
		return fmt.Errorf("storage: pebble iterator closed by engine: %w", err)
	}
	return nil
}

// cloneBytes returns a copy of b, preserving nil.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
