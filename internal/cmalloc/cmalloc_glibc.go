//go:build linux && cgo

package cmalloc

/*
#include <malloc.h>

// glibc's parameter numbers, spelled out for C libraries whose malloc.h
// lacks them (musl declares mallopt as a stub that returns 0).
#ifndef M_TRIM_THRESHOLD
#define M_TRIM_THRESHOLD -1
#endif
#ifndef M_MMAP_THRESHOLD
#define M_MMAP_THRESHOLD -3
#endif
#ifndef M_ARENA_MAX
#define M_ARENA_MAX -8
#endif

static int retain(int mmapThreshold, int trimThreshold, int arenaMax) {
	if (!mallopt(M_ARENA_MAX, arenaMax)) return 0;
	if (!mallopt(M_MMAP_THRESHOLD, mmapThreshold)) return 0;
	return mallopt(M_TRIM_THRESHOLD, trimThreshold);
}
*/
import "C"

import "fmt"

// Supported reports whether this build can tune the C allocator.
const Supported = true

func retain() error {
	if C.retain(C.int(MmapThreshold), C.int(TrimThreshold), C.int(ArenaMax)) == 0 {
		return fmt.Errorf("cmalloc: mallopt refused the thresholds (not glibc?)")
	}
	return nil
}
