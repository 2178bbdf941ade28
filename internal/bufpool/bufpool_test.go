package bufpool

import "testing"

func TestGetLengthAndClass(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, 1 << 20, 1<<20 + 1, 16 << 20} {
		b := Get(n)
		if len(b) != n {
			t.Fatalf("Get(%d): len %d", n, len(b))
		}
		c, ok := class(n)
		if !ok || cap(b) != 1<<(minClass+c) || cap(b) < n || (n > 1<<minClass && cap(b) >= 2*n) {
			t.Fatalf("Get(%d): cap %d, class %d ok %v", n, cap(b), c, ok)
		}
		Put(b)
	}
}

func TestOversizedIsNotPooled(t *testing.T) {
	n := 16<<20 + 1
	if _, ok := class(n); ok {
		t.Fatalf("class(%d) pooled", n)
	}
	b := Get(n)
	if len(b) != n || cap(b) != n {
		t.Fatalf("Get(%d): len %d cap %d", n, len(b), cap(b))
	}
	Put(b) // dropped, must not panic
}

func TestPutRejectsForeignCapacities(t *testing.T) {
	// A buffer whose capacity is not a class size would be handed out
	// with a capacity Get's callers do not expect; Put drops it.
	b := make([]byte, 5000, 5000)
	Put(b)
	for range 100 {
		if g := Get(5000); cap(g) != 8192 {
			t.Fatalf("Get(5000) returned a foreign buffer of cap %d", cap(g))
		}
	}
}

func TestReuse(t *testing.T) {
	// sync.Pool may drop anything at any time (and does, randomly, under
	// the race detector), so only ask that reuse happens at all.
	reused := false
	for range 1000 {
		b := Get(100 << 10)
		b[0] = 42
		Put(b)
		if Get(100 << 10)[0] == 42 {
			reused = true
			break
		}
	}
	if !reused {
		t.Fatal("a returned buffer was never handed out again")
	}
}
