// Package storagetest holds the conformance suite every storage.Engine must
// pass, so that a new engine is checked against the same contract as the
// existing ones.
package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/raftka/raftka/storage"
)

// Opener returns a new, empty engine for one subtest. The suite closes it;
// the opener may register cleanups of its own with t.Cleanup.
type Opener func(t *testing.T) storage.Engine

// RunConformance runs the engine contract suite as parallel subtests of t.
func RunConformance(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e storage.Engine)
	}{
		{"GetSetDelete", testGetSetDelete},
		{"EmptyValue", testEmptyValue},
		{"BatchInvisibleUntilCommit", testBatchInvisibleUntilCommit},
		{"BatchOpOrder", testBatchOpOrder},
		{"SetWith", testSetWith},
		{"BatchCloseDiscards", testBatchCloseDiscards},
		{"BatchNotReusable", testBatchNotReusable},
		{"BatchLenEmpty", testBatchLenEmpty},
		{"BatchWithSize", testBatchWithSize},
		{"EmptyBatchCommit", testEmptyBatchCommit},
		{"DeleteRange", testDeleteRange},
		{"IterBounds", testIterBounds},
		{"IterPositioning", testIterPositioning},
		{"IterEmpty", testIterEmpty},
		{"IterSnapshot", testIterSnapshot},
		{"IterLongScan", testIterLongScan},
		{"ValueOwnership", testValueOwnership},
		{"RandomAgainstModel", testRandomAgainstModel},
		{"ConcurrentReadersWriters", testConcurrent},
		{"Closed", testClosed},
		{"CloseWhileBusy", testCloseWhileBusy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := open(t)
			t.Cleanup(func() {
				if err := e.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
					t.Errorf("close: %v", err)
				}
			})
			tc.fn(t, e)
		})
	}
}

// KV is one key and value.
type KV struct{ Key, Value string }

// Apply commits one batch built by fill, failing t on any error.
func Apply(t testing.TB, e storage.Engine, sync bool, fill func(b storage.Batch) error) {
	t.Helper()
	b := e.NewBatch()
	defer b.Close()
	if err := fill(b); err != nil {
		t.Fatalf("fill batch: %v", err)
	}
	if err := b.Commit(sync); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// Set commits key=value in its own batch.
func Set(t testing.TB, e storage.Engine, key, value string) {
	t.Helper()
	Apply(t, e, false, func(b storage.Batch) error { return b.Set([]byte(key), []byte(value)) })
}

// MustGet returns the value at key, failing t unless it is present.
func MustGet(t testing.TB, e storage.Engine, key string) string {
	t.Helper()
	v, err := e.Get([]byte(key))
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return string(v)
}

// WantAbsent fails t unless key is absent.
func WantAbsent(t testing.TB, e storage.Engine, key string) {
	t.Helper()
	if v, err := e.Get([]byte(key)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get %q = %q, %v; want ErrNotFound", key, v, err)
	}
}

// Scan returns every pair in [lower, upper) walking forward, or backward if
// reverse, failing t on an iterator error.
func Scan(t testing.TB, e storage.Engine, lower, upper []byte, reverse bool) []KV {
	t.Helper()
	it, err := e.NewIter(lower, upper)
	if err != nil {
		t.Fatalf("new iter: %v", err)
	}
	defer it.Close()
	return drain(t, it, reverse)
}

func drain(t testing.TB, it storage.Iterator, reverse bool) []KV {
	t.Helper()
	var out []KV
	ok := it.First()
	if reverse {
		ok = it.Last()
	}
	for ; ok; ok = step(it, reverse) {
		out = append(out, KV{string(it.Key()), string(it.Value())})
	}
	if err := it.Error(); err != nil {
		t.Fatalf("iterate: %v", err)
	}
	return out
}

func step(it storage.Iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}

func wantScan(t *testing.T, e storage.Engine, lower, upper []byte, want ...KV) {
	t.Helper()
	if got := Scan(t, e, lower, upper, false); !slices.Equal(got, want) {
		t.Fatalf("scan [%q, %q) = %v; want %v", lower, upper, got, want)
	}
	rev := slices.Clone(want)
	slices.Reverse(rev)
	if got := Scan(t, e, lower, upper, true); !slices.Equal(got, rev) {
		t.Fatalf("reverse scan [%q, %q) = %v; want %v", lower, upper, got, rev)
	}
}

// wantAt fails t unless the iterator is at key (or invalid if key is "").
func wantAt(t *testing.T, it storage.Iterator, op string, ok bool, key string) {
	t.Helper()
	if key == "" {
		if ok || it.Valid() {
			t.Fatalf("%s: at %q, want invalid", op, it.Key())
		}
		return
	}
	if !ok || !it.Valid() || string(it.Key()) != key {
		t.Fatalf("%s = %v at %q; want %q", op, ok, it.Key(), key)
	}
	if want := "v" + key; string(it.Value()) != want {
		t.Fatalf("%s: value %q; want %q", op, it.Value(), want)
	}
}

// fill sets each key to "v"+key in one batch.
func fill(t *testing.T, e storage.Engine, keys ...string) {
	t.Helper()
	Apply(t, e, false, func(b storage.Batch) error {
		for _, k := range keys {
			if err := b.Set([]byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		return nil
	})
}

func kvs(keys ...string) []KV {
	out := make([]KV, len(keys))
	for i, k := range keys {
		out[i] = KV{k, "v" + k}
	}
	return out
}

func testGetSetDelete(t *testing.T, e storage.Engine) {
	WantAbsent(t, e, "a")
	Set(t, e, "a", "1")
	if got := MustGet(t, e, "a"); got != "1" {
		t.Fatalf("get a = %q; want 1", got)
	}
	Set(t, e, "a", "2")
	if got := MustGet(t, e, "a"); got != "2" {
		t.Fatalf("get a after overwrite = %q; want 2", got)
	}
	WantAbsent(t, e, "b")
	WantAbsent(t, e, "")
	Apply(t, e, true, func(b storage.Batch) error { return b.Delete([]byte("a")) })
	WantAbsent(t, e, "a")
	// Deleting an absent key is not an error.
	Apply(t, e, false, func(b storage.Batch) error { return b.Delete([]byte("nope")) })
}

func testEmptyValue(t *testing.T, e storage.Engine) {
	Set(t, e, "k", "")
	v, err := e.Get([]byte("k"))
	if err != nil || len(v) != 0 {
		t.Fatalf("get empty value = %q, %v", v, err)
	}
	wantScan(t, e, nil, nil, KV{"k", ""})
}

func testBatchInvisibleUntilCommit(t *testing.T, e storage.Engine) {
	fill(t, e, "a", "c")
	b := e.NewBatch()
	defer b.Close()
	for _, op := range []error{
		b.Set([]byte("b"), []byte("vb")),
		b.Delete([]byte("a")),
		b.DeleteRange([]byte("c"), []byte("d")),
	} {
		if op != nil {
			t.Fatal(op)
		}
	}
	WantAbsent(t, e, "b")
	wantScan(t, e, nil, nil, kvs("a", "c")...)
	before, err := e.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	wantScan(t, e, nil, nil, kvs("b")...)
	if got := drain(t, before, false); !slices.Equal(got, kvs("a", "c")) {
		t.Fatalf("iterator opened before commit saw %v", got)
	}
}

func testBatchOpOrder(t *testing.T, e storage.Engine) {
	fill(t, e, "a", "b", "c", "d", "e")
	Apply(t, e, false, func(b storage.Batch) error {
		return errors.Join(
			b.Set([]byte("x"), []byte("1")), b.Set([]byte("x"), []byte("2")), // last Set wins
			b.Set([]byte("y"), []byte("1")), b.Delete([]byte("y")), // Delete after Set wins
			b.Delete([]byte("a")), b.Set([]byte("a"), []byte("va")), // Set after Delete wins
			b.DeleteRange([]byte("b"), []byte("e")), b.Set([]byte("c"), []byte("vc")), // Set after DeleteRange wins
			b.Set([]byte("e2"), []byte("ve2")), b.DeleteRange([]byte("e"), []byte("f")), // DeleteRange after Set wins
		)
	})
	wantScan(t, e, nil, nil, KV{"a", "va"}, KV{"c", "vc"}, KV{"x", "2"})
}

func testBatchCloseDiscards(t *testing.T, e storage.Engine) {
	b := e.NewBatch()
	if err := b.Set([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	WantAbsent(t, e, "a")
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func testBatchNotReusable(t *testing.T, e storage.Engine) {
	b := e.NewBatch()
	defer b.Close()
	if err := b.Set([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(false); err == nil {
		t.Fatal("second commit succeeded")
	}
	if err := b.Set([]byte("b"), []byte("1")); err == nil {
		t.Fatal("set after commit succeeded")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close after commit: %v", err)
	}
	WantAbsent(t, e, "b")
}

func testBatchLenEmpty(t *testing.T, e storage.Engine) {
	b := e.NewBatch()
	defer b.Close()
	if !b.Empty() {
		t.Fatal("new batch not empty")
	}
	n0 := b.Len()
	value := bytes.Repeat([]byte("v"), 1000)
	if err := b.Set([]byte("k"), value); err != nil {
		t.Fatal(err)
	}
	if b.Empty() {
		t.Fatal("batch with a Set is empty")
	}
	if n := b.Len(); n < n0+len(value) {
		t.Fatalf("Len = %d after a 1000-byte value; was %d", n, n0)
	}
}

// testBatchWithSize checks that a sized batch is an ordinary batch: empty
// until written, whatever its size hint, and committing what it holds.
func testBatchWithSize(t *testing.T, e storage.Engine) {
	for i, size := range []int{0, 1, 1 << 20} {
		b := e.NewBatchWithSize(size)
		if !b.Empty() {
			t.Fatalf("new batch of size %d not empty", size)
		}
		key := []byte(fmt.Sprintf("sized-%d", i))
		value := bytes.Repeat([]byte{byte(i)}, 4096) // beyond hints 0 and 1
		if err := b.SetWith(key, len(value), func(v []byte) { copy(v, value) }); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(true); err != nil {
			t.Fatalf("commit batch of size %d: %v", size, err)
		}
		b.Close()
		got, err := e.Get(key)
		if err != nil || !bytes.Equal(got, value) {
			t.Fatalf("size %d: Get = %d bytes, %v; want the %d bytes written", size, len(got), err, len(value))
		}
	}
}

func testEmptyBatchCommit(t *testing.T, e storage.Engine) {
	for _, sync := range []bool{false, true} {
		b := e.NewBatch()
		if err := b.Commit(sync); err != nil {
			t.Fatalf("commit empty batch (sync=%v): %v", sync, err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	wantScan(t, e, nil, nil)
}

func testDeleteRange(t *testing.T, e storage.Engine) {
	fill(t, e, "a", "b", "ba", "c", "d")
	del := func(start, end string) {
		t.Helper()
		Apply(t, e, false, func(b storage.Batch) error { return b.DeleteRange([]byte(start), []byte(end)) })
	}
	del("b", "d") // half-open: d survives
	wantScan(t, e, nil, nil, kvs("a", "d")...)
	del("d", "d") // empty range
	del("x", "z") // nothing there
	wantScan(t, e, nil, nil, kvs("a", "d")...)
	b := e.NewBatch()
	defer b.Close()
	if err := b.DeleteRange([]byte("z"), []byte("a")); err == nil {
		t.Fatal("DeleteRange with start > end succeeded")
	}
	// A key written after the range deletion, in a later batch, is visible.
	Set(t, e, "c", "new")
	if got := MustGet(t, e, "c"); got != "new" {
		t.Fatalf("get c = %q", got)
	}
	del("", "\xff")
	wantScan(t, e, nil, nil)
}

func testClosed(t *testing.T, e storage.Engine) {
	fill(t, e, "a", "b")
	it, err := e.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !it.First() {
		t.Fatal("First on non-empty engine")
	}
	pending := e.NewBatch()
	if err := pending.Set([]byte("c"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := e.Get([]byte("a")); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
	if _, err := e.NewIter(nil, nil); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("new iter after close: %v", err)
	}
	if err := pending.Commit(true); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("commit after close: %v", err)
	}
	if err := pending.Close(); err != nil {
		t.Fatalf("close batch after engine close: %v", err)
	}
	b := e.NewBatch()
	if err := b.Set([]byte("d"), []byte("1")); err != nil {
		t.Fatalf("set on a batch of a closed engine: %v", err)
	}
	if err := b.Commit(false); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("commit of a new batch after close: %v", err)
	}
	b.Close()
	if it.Next() || it.First() || it.Valid() {
		t.Fatal("iterator moved after engine close")
	}
	if err := it.Error(); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("iterator error after engine close: %v", err)
	}
	if err := it.Close(); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("iterator close after engine close: %v", err)
	}
	if err := e.Close(); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

// testSetWith checks that a value filled in place reads back like a Set,
// keeps its place among the batch's operations, and that the key is copied.
func testSetWith(t *testing.T, e storage.Engine) {
	b := e.NewBatch()
	defer b.Close()
	key := []byte("k1")
	if err := b.Set([]byte("k1"), []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := b.SetWith(key, 5, func(v []byte) {
		if len(v) != 5 {
			t.Errorf("fill got %d bytes, want 5", len(v))
		}
		copy(v, "fresh")
	}); err != nil {
		t.Fatal(err)
	}
	key[1] = '9' // the batch must have copied the key
	if err := b.SetWith([]byte("k2"), 0, func([]byte) {}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetWith([]byte("k3"), 3, func(v []byte) { copy(v, "abc") }); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete([]byte("k3")); err != nil {
		t.Fatal(err)
	}
	if err := b.SetWith([]byte("k4"), -1, func([]byte) {}); err == nil {
		t.Errorf("SetWith accepted a negative length")
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	if got := MustGet(t, e, "k1"); got != "fresh" {
		t.Errorf("k1 = %q, want fresh", got)
	}
	if got, err := e.Get([]byte("k2")); err != nil || len(got) != 0 {
		t.Errorf("k2 = %q, %v; want an empty value", got, err)
	}
	for _, k := range []string{"k3", "k9"} {
		if _, err := e.Get([]byte(k)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", k, err)
		}
	}
	if err := b.SetWith([]byte("k5"), 1, func(v []byte) { v[0] = 'x' }); err == nil {
		t.Errorf("SetWith on a committed batch succeeded")
	}
}
