package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/raftka/raftka/storage"
)

func testIterBounds(t *testing.T, e storage.Engine) {
	keys := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	fill(t, e, keys...)
	b := func(s string) []byte { return []byte(s) }
	wantScan(t, e, nil, nil, kvs(keys...)...)
	wantScan(t, e, b("3"), b("7"), kvs("3", "4", "5", "6")...)
	wantScan(t, e, b("3"), nil, kvs(keys[3:]...)...)
	wantScan(t, e, nil, b("3"), kvs("0", "1", "2")...)
	wantScan(t, e, b("25"), b("45"), kvs("3", "4")...)
	wantScan(t, e, b("5"), b("5"), kvs()...)
	wantScan(t, e, b("a"), nil, kvs()...)
	wantScan(t, e, []byte{}, nil, kvs(keys...)...)
	wantScan(t, e, nil, []byte{}, kvs()...)
}

func testIterPositioning(t *testing.T, e storage.Engine) {
	fill(t, e, "b", "d", "f", "h", "j")
	it, err := e.NewIter([]byte("c"), []byte("i"))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if it.Valid() || it.Key() != nil {
		t.Fatal("fresh iterator is valid")
	}
	wantAt(t, it, "fresh Next", it.Next(), "d")
	wantAt(t, it, "First", it.First(), "d")
	wantAt(t, it, "Prev from first", it.Prev(), "")
	wantAt(t, it, "Next after running off the start", it.Next(), "d")
	wantAt(t, it, "Last", it.Last(), "h")
	wantAt(t, it, "Next from last", it.Next(), "")
	wantAt(t, it, "Prev after running off the end", it.Prev(), "h")
	wantAt(t, it, "SeekGE(e)", it.SeekGE([]byte("e")), "f")
	wantAt(t, it, "SeekGE(f)", it.SeekGE([]byte("f")), "f")
	wantAt(t, it, "SeekGE below lower", it.SeekGE([]byte("a")), "d")
	wantAt(t, it, "SeekGE(i)", it.SeekGE([]byte("i")), "")
	wantAt(t, it, "SeekLT(f)", it.SeekLT([]byte("f")), "d")
	wantAt(t, it, "SeekLT(g)", it.SeekLT([]byte("g")), "f")
	wantAt(t, it, "SeekLT above upper", it.SeekLT([]byte("z")), "h")
	wantAt(t, it, "SeekLT(d)", it.SeekLT([]byte("d")), "")
	wantAt(t, it, "SeekGE(e) again", it.SeekGE([]byte("e")), "f")
	wantAt(t, it, "Prev after seek", it.Prev(), "d")
	wantAt(t, it, "Next after Prev", it.Next(), "f")
	wantAt(t, it, "Next", it.Next(), "h")
	wantAt(t, it, "Prev after Next", it.Prev(), "f")
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}

	fresh, err := e.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	wantAt(t, fresh, "fresh Prev", fresh.Prev(), "j")
	// The empty key is the smallest key.
	wantAt(t, fresh, "SeekGE(nil)", fresh.SeekGE(nil), "b")
	wantAt(t, fresh, "SeekLT(empty)", fresh.SeekLT([]byte{}), "")
	wantAt(t, fresh, "Next after SeekLT(empty)", fresh.Next(), "b")
	wantAt(t, fresh, "SeekGE(empty)", fresh.SeekGE([]byte{}), "b")
	wantAt(t, fresh, "SeekLT(nil)", fresh.SeekLT(nil), "")
}

func testIterEmpty(t *testing.T, e storage.Engine) {
	it, err := e.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]bool{
		"First": it.First(), "Last": it.Last(), "SeekGE": it.SeekGE([]byte("a")),
		"SeekLT": it.SeekLT([]byte("a")), "Next": it.Next(), "Prev": it.Prev(),
	} {
		if ok || it.Valid() {
			t.Fatalf("%s on empty engine is valid", name)
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := it.Close(); err != nil {
		t.Fatalf("second iterator close: %v", err)
	}
}

func testIterSnapshot(t *testing.T, e storage.Engine) {
	fill(t, e, "a", "b", "c", "d")
	it, err := e.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	Apply(t, e, false, func(b storage.Batch) error {
		return errors.Join(
			b.Set([]byte("a"), []byte("changed")), b.Set([]byte("bb"), []byte("new")),
			b.Delete([]byte("c")), b.DeleteRange([]byte("d"), []byte("e")),
		)
	})
	if got := drain(t, it, false); !slices.Equal(got, kvs("a", "b", "c", "d")) {
		t.Fatalf("old iterator saw %v", got)
	}
	if got := drain(t, it, true); !slices.Equal(got, kvs("d", "c", "b", "a")) {
		t.Fatalf("old iterator reversed saw %v", got)
	}
	wantScan(t, e, nil, nil, KV{"a", "changed"}, KV{"b", "vb"}, KV{"bb", "new"})
}

func testIterLongScan(t *testing.T, e storage.Engine) {
	const n = 5000
	var want []KV
	Apply(t, e, false, func(b storage.Batch) error {
		for i := range n {
			k := fmt.Sprintf("k%06d", i)
			want = append(want, KV{k, "v" + k})
			if err := b.Set([]byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		return nil
	})
	wantScan(t, e, nil, nil, want...)
	wantScan(t, e, []byte("k001000"), []byte("k004000"), want[1000:4000]...)

	// Zig-zag: two steps forward, one back, across many windows.
	it, err := e.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	i := 0
	for ok := it.First(); ok; i++ {
		if got := string(it.Key()); got != want[i].Key {
			t.Fatalf("zig-zag at %d: key %q; want %q", i, got, want[i].Key)
		}
		if i%2 == 1 {
			wantAt(t, it, "zig-zag Prev", it.Prev(), want[i-1].Key)
			wantAt(t, it, "zig-zag Next", it.Next(), want[i].Key)
		}
		ok = it.Next()
	}
	if i != n {
		t.Fatalf("zig-zag visited %d keys; want %d", i, n)
	}
}

func testValueOwnership(t *testing.T, e storage.Engine) {
	key, value := []byte("key"), []byte("value")
	b := e.NewBatch()
	defer b.Close()
	if err := b.Set(key, value); err != nil {
		t.Fatal(err)
	}
	copy(key, "XXX")
	copy(value, "XXXXX")
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	got, err := e.Get([]byte("key"))
	if err != nil || string(got) != "value" {
		t.Fatalf("get after mutating inputs = %q, %v", got, err)
	}
	copy(got, "YYYYY")
	if got := MustGet(t, e, "key"); got != "value" {
		t.Fatalf("get after mutating a returned value = %q", got)
	}

	lower, upper := []byte("k"), []byte("l")
	it, err := e.NewIter(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	copy(lower, "z")
	copy(upper, "a")
	if got := drain(t, it, false); !slices.Equal(got, []KV{{"key", "value"}}) {
		t.Fatalf("iterator after mutating its bounds saw %v", got)
	}
}
