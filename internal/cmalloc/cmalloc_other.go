//go:build !linux || !cgo

package cmalloc

// Supported reports whether this build can tune the C allocator. Without
// cgo Pebble allocates from the Go heap, and there is nothing to tune.
const Supported = false

func retain() error { return nil }
