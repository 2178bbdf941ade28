package storagetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/raftka/raftka/storage"
)

// testRandomAgainstModel applies random batches and checks gets and scans
// against a map.
func testRandomAgainstModel(t *testing.T, e storage.Engine) {
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]string{}
	key := func() string { return fmt.Sprintf("%03d", rng.IntN(400)) }
	for round := range 200 {
		b := e.NewBatch()
		var order []func() // applied to the model on commit, in order
		for range 1 + rng.IntN(20) {
			k := key()
			switch r := rng.IntN(10); {
			case r < 6:
				v := fmt.Sprintf("r%d-%d", round, rng.IntN(1000))
				if err := b.Set([]byte(k), []byte(v)); err != nil {
					t.Fatal(err)
				}
				order = append(order, func() { model[k] = v })
			case r < 9:
				if err := b.Delete([]byte(k)); err != nil {
					t.Fatal(err)
				}
				order = append(order, func() { delete(model, k) })
			default:
				end := fmt.Sprintf("%03d", min(400, mustAtoi(k)+rng.IntN(30)))
				if err := b.DeleteRange([]byte(k), []byte(end)); err != nil {
					t.Fatal(err)
				}
				order = append(order, func() {
					for mk := range model {
						if mk >= k && mk < end {
							delete(model, mk)
						}
					}
				})
			}
		}
		if err := b.Commit(rng.IntN(4) == 0); err != nil {
			t.Fatal(err)
		}
		b.Close()
		for _, f := range order {
			f()
		}
		for range 10 {
			k := key()
			got, err := e.Get([]byte(k))
			if want, ok := model[k]; ok != (err == nil) || string(got) != want {
				t.Fatalf("round %d: get %q = %q, %v; model has %q, %v", round, k, got, err, want, ok)
			}
		}
		if round%10 == 0 {
			lo, hi := key(), key()
			if lo > hi {
				lo, hi = hi, lo
			}
			var want []KV
			for k, v := range model {
				if k >= lo && k < hi {
					want = append(want, KV{k, v})
				}
			}
			slices.SortFunc(want, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
			if got := Scan(t, e, []byte(lo), []byte(hi), false); !slices.Equal(got, want) {
				t.Fatalf("round %d: scan [%s, %s) = %v; want %v", round, lo, hi, got, want)
			}
			slices.Reverse(want)
			if got := Scan(t, e, []byte(lo), []byte(hi), true); !slices.Equal(got, want) {
				t.Fatalf("round %d: reverse scan [%s, %s) = %v; want %v", round, lo, hi, got, want)
			}
		}
	}
}

func mustAtoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// testConcurrent runs writers whose batches each set a pair of keys to the
// same value, and readers that check, under -race, that they never see half
// a batch.
func testConcurrent(t *testing.T, e storage.Engine) {
	const writers, readers, batches = 4, 4, 200
	var wg sync.WaitGroup
	done := make(chan struct{})
	errc := make(chan error, writers+readers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				b := e.NewBatch()
				v := []byte(fmt.Sprintf("%d", i))
				err := errors.Join(
					b.Set([]byte(fmt.Sprintf("w%d/a", w)), v),
					b.Set([]byte(fmt.Sprintf("w%d/b", w)), v),
					b.Commit(i%16 == 0),
					b.Close(),
				)
				if err != nil {
					errc <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		}()
	}
	var rg sync.WaitGroup
	for r := range readers {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				it, err := e.NewIter(nil, nil)
				if err != nil {
					errc <- err
					return
				}
				seen := map[string]string{}
				for ok := it.First(); ok; ok = it.Next() {
					seen[string(it.Key())] = string(it.Value())
				}
				if err := errors.Join(it.Error(), it.Close()); err != nil {
					errc <- err
					return
				}
				for w := range writers {
					a, b := seen[fmt.Sprintf("w%d/a", w)], seen[fmt.Sprintf("w%d/b", w)]
					if a != b {
						errc <- fmt.Errorf("reader %d saw half a batch of writer %d: a=%q b=%q", r, w, a, b)
						return
					}
				}
				if _, err := e.Get([]byte("w0/a")); err != nil && !errors.Is(err, storage.ErrNotFound) {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	for w := range writers {
		if got := MustGet(t, e, fmt.Sprintf("w%d/b", w)); got != fmt.Sprint(batches-1) {
			t.Errorf("writer %d: final value %q", w, got)
		}
	}
}

// testCloseWhileBusy closes the engine under running writers, readers and
// scans, which must see ErrClosed rather than panic or race.
func testCloseWhileBusy(t *testing.T, e storage.Engine) {
	fill(t, e, "a", "b", "c")
	const workers = 3
	var wg sync.WaitGroup
	started := make(chan struct{}, workers)
	errc := make(chan error, workers)
	// closedOr returns nil for ErrClosed, meaning the worker should stop.
	closedOr := func(err error) (stop bool, _ error) {
		if errors.Is(err, storage.ErrClosed) {
			return true, nil
		}
		return err != nil, err
	}
	run := func(op func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				stop, err := closedOr(op(i))
				if i == 0 {
					started <- struct{}{}
				}
				if err != nil {
					errc <- err
				}
				if stop {
					return
				}
			}
		}()
	}
	run(func(i int) error {
		b := e.NewBatch()
		defer b.Close()
		if err := b.Set([]byte(fmt.Sprint("w", i%100)), []byte("v")); err != nil {
			return err
		}
		return b.Commit(i%8 == 0)
	})
	run(func(int) error {
		_, err := e.Get([]byte("a"))
		return err
	})
	run(func(int) error {
		it, err := e.NewIter(nil, nil)
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			_ = it.Key()
		}
		return errors.Join(it.Error(), it.Close())
	})
	for range workers {
		<-started
	}
	if err := e.Close(); err != nil {
		t.Errorf("close under load: %v", err)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}
