package storage

import (
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// CommitStats is where the time of one Pebble commit went, as Pebble
// measured it (pebble.BatchCommitStats). PebbleOptions.OnCommit receives
// one per commit, so that a broker can export where its log writes wait:
// on the fsync, on a WAL rotation or on a write stall.
type CommitStats struct {
	// Synced is set when the commit waited for the WAL to be synced.
	Synced bool
	// Total is the commit's whole duration, queues included.
	Total time.Duration
	// SyncWait is the wait for the WAL write and, when Synced, its fsync.
	SyncWait time.Duration
	// WALRotation is the time this commit spent closing the previous WAL
	// (which syncs it) and creating the next one, which Pebble does while
	// holding its commit pipeline. Only the commit that triggers a rotation
	// counts it; commits queued behind it see it in their Total.
	WALRotation time.Duration
	// WriteStall is the wait in a write stall: too many memtables queued
	// for flush, or too many files in L0.
	WriteStall time.Duration
}

func commitStatsOf(st *pebble.BatchCommitStats, synced bool) CommitStats {
	return CommitStats{
		Synced:      synced,
		Total:       st.TotalDuration,
		SyncWait:    st.CommitWaitDuration,
		WALRotation: st.WALRotationDuration,
		WriteStall:  st.MemTableWriteStallDuration + st.L0ReadAmpWriteStallDuration,
	}
}
