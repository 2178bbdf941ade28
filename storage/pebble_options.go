package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Defaults for PebbleOptions, tuned for a broker whose writes are mostly
// appends to many Raft logs plus prefix truncations (DeleteRange), committed
// in synced group-commit batches.
const (
	// DefaultPebbleCacheSize is the block cache size. Recent Raft entries are
	// usually served from the memtable; the cache mostly holds index blocks
	// and entries read back by slow followers and consumers.
	DefaultPebbleCacheSize int64 = 128 << 20

	// DefaultPebbleMemTableSize is moderate: a flush costs about a core for
	// as long as it takes to write one memtable's values to a blob file, and
	// on a small machine that burst is what produce latency waits behind.
	// 16 MiB keeps each burst short; with values separated, the extra
	// flushes add only small sstables of keys. Measured with `raftka bench
	// produce` at half the maximum rate on 2 cores, 3 interleaved runs each:
	// RF=1 1 KiB at 175k records/s p99 29.5–50 ms at 64 MiB and 22.6–27.6 ms
	// at 16; RF=3 at 64k records/s 31–1,245 ms and 34–38 ms; the maximum
	// rate did not change (280–296 MB/s both).
	DefaultPebbleMemTableSize uint64 = 16 << 20

	// DefaultPebbleMemTableStopWritesThreshold lets a few memtables queue for
	// flush before writes stall, absorbing bursts.
	DefaultPebbleMemTableStopWritesThreshold = 4

	// DefaultPebbleL0CompactionThreshold compacts L0 early: Raft log keys are
	// written in order, so L0 files rarely overlap and compacting them is
	// cheap, while read amplification hurts every Get of hard state.
	DefaultPebbleL0CompactionThreshold = 2

	// DefaultPebbleL0StopWritesThreshold stalls writes only when L0 is far
	// behind. Pebble's default (12) stalls a bursty log workload needlessly;
	// without admission control we still want a bound, so this is moderate.
	DefaultPebbleL0StopWritesThreshold = 36

	// DefaultPebbleMaxConcurrentCompactions lets compactions keep up with
	// truncation tombstones without starving the commit path of CPU.
	DefaultPebbleMaxConcurrentCompactions = 2

	// DefaultPebbleValueSeparationMinSize is the smallest value Pebble
	// stores in blob files rather than in sstables (value separation).
	// Raft entries carrying record batches are kilobytes to a megabyte and
	// never change once written, so keeping them out of the sstables means
	// compactions move only keys and small values instead of rewriting every
	// batch at every level: in `raftka bench produce` this roughly halved
	// the CPU Pebble spent compacting.
	DefaultPebbleValueSeparationMinSize = 512

	// DefaultPebbleMaxBlobReferenceDepth bounds how many overlapping blob
	// files one sstable may reference before a compaction rewrites its values
	// into new blob files. Pebble's suggested 10 suits data that is
	// overwritten; a partition log is append-only, so every compaction into a
	// partition's newest sstable adds to its depth, and at 10 Pebble rewrote
	// the values every few seconds under load: in `raftka bench produce`
	// (1 KiB, 83k records/s, 40 s) the disk took 10.5–11.1 GB for 3.7 GB of
	// records instead of 7.9 GB, and those rewrite bursts put produce p99 at
	// 260–340 ms instead of 11–15 ms. A deep reference costs an iterator one
	// more (cached) blob file, which a log read in offset order barely
	// notices.
	DefaultPebbleMaxBlobReferenceDepth = 1000

	// DefaultPebbleL0TargetFileSize is the size of the files a flush writes
	// (sstable plus the values it moved to a blob file). Pebble's 2 MiB cut
	// a 64 MiB memtable into about thirty sstables and thirty blob files,
	// each created, written and synced on its own; 32 MiB makes a flush a
	// few files. Deeper levels double it, as in Pebble.
	DefaultPebbleL0TargetFileSize int64 = 32 << 20
)

// PebbleOptions configures OpenPebble. The zero value plus a Dir is valid
// once EnsureDefaults has run (OpenPebble runs it).
type PebbleOptions struct {
	// Dir is the directory holding the database. Required.
	Dir string
	// FS is the filesystem. Nil means the operating system's (vfs.Default);
	// tests pass vfs.NewMem or vfs.NewCrashableMem.
	FS vfs.FS
	// CacheSize is the block cache size in bytes.
	CacheSize int64
	// MemTableSize is the steady-state size of one memtable in bytes.
	MemTableSize uint64
	// MemTableStopWritesThreshold is how many memtables may be queued for
	// flush before writes stall. At least 2.
	MemTableStopWritesThreshold int
	// L0CompactionThreshold is the L0 read amplification that triggers a
	// compaction.
	L0CompactionThreshold int
	// L0StopWritesThreshold is the L0 read amplification at which writes
	// stall. At least L0CompactionThreshold.
	L0StopWritesThreshold int
	// MaxConcurrentCompactions bounds background compactions.
	MaxConcurrentCompactions int
	// ValueSeparationMinSize is the smallest value kept in blob files (see
	// DefaultPebbleValueSeparationMinSize); negative disables separation.
	ValueSeparationMinSize int
	// MaxBlobReferenceDepth is Pebble's ValueSeparationPolicy field of the
	// same name (see DefaultPebbleMaxBlobReferenceDepth).
	MaxBlobReferenceDepth int
	// L0TargetFileSize is the target size of a flush's output files (see
	// DefaultPebbleL0TargetFileSize).
	L0TargetFileSize int64
	// CompressBlocks compresses sstable and blob blocks with Snappy. Off by
	// default: Kafka clients compress their record batches themselves, and
	// the broker stores batches as sent, so compressing them again costs
	// CPU for nothing (Kafka's compression.type=producer).
	CompressBlocks bool
	// CacheBlobPages writes blob files through the OS page cache and keeps
	// their pages there. Off by default: the broker writes them with direct
	// I/O where the filesystem allows and evicts what did enter the cache
	// once synced (see dropPagesFS and directFile), because a page cache
	// growing by every byte written costs more CPU than the rare reads of
	// old log entries save.
	CacheBlobPages bool
	// BackgroundWritePacing paces flushes and compactions: they may write
	// this many bytes per byte written to the WAL (plus a floor of 64 MiB/s),
	// so that their bursts do not queue ahead of synced log writes (see
	// writePacer). Zero means DefaultBackgroundWritePacing; negative turns
	// pacing off.
	BackgroundWritePacing float64
	// BackgroundNice is the nice value of the threads that run Pebble's
	// flushes and compactions (see DefaultBackgroundNice), from 1 to 19;
	// zero means DefaultBackgroundNice, negative leaves them at the
	// process's priority. Only Linux sets it.
	BackgroundNice int
	// Logger receives Pebble's messages: info at Debug level, errors and
	// background events at Warn/Error. Nil means slog.Default().
	Logger *slog.Logger
	// OnCommit, if set, is called after every successful commit of a
	// non-empty batch, on the committing goroutine, with where its time
	// went. It must be quick and safe for concurrent use.
	OnCommit func(CommitStats)
}

// EnsureDefaults fills every zero field with its default.
func (o *PebbleOptions) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultPebbleCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultPebbleMemTableSize
	}
	if o.MemTableStopWritesThreshold == 0 {
		o.MemTableStopWritesThreshold = DefaultPebbleMemTableStopWritesThreshold
	}
	if o.L0CompactionThreshold == 0 {
		o.L0CompactionThreshold = DefaultPebbleL0CompactionThreshold
	}
	if o.L0StopWritesThreshold == 0 {
		o.L0StopWritesThreshold = DefaultPebbleL0StopWritesThreshold
	}
	if o.MaxConcurrentCompactions == 0 {
		o.MaxConcurrentCompactions = DefaultPebbleMaxConcurrentCompactions
	}
	if o.ValueSeparationMinSize == 0 {
		o.ValueSeparationMinSize = DefaultPebbleValueSeparationMinSize
	}
	if o.MaxBlobReferenceDepth == 0 {
		o.MaxBlobReferenceDepth = DefaultPebbleMaxBlobReferenceDepth
	}
	if o.L0TargetFileSize == 0 {
		o.L0TargetFileSize = DefaultPebbleL0TargetFileSize
	}
	if o.BackgroundWritePacing == 0 {
		o.BackgroundWritePacing = DefaultBackgroundWritePacing
	}
	if o.BackgroundNice == 0 {
		o.BackgroundNice = DefaultBackgroundNice
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every problem with o at once. Run EnsureDefaults first.
func (o *PebbleOptions) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("Dir is required"))
	}
	if o.FS == nil {
		errs = append(errs, errors.New("FS is nil"))
	}
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("CacheSize %d is negative", o.CacheSize))
	}
	if o.MemTableSize < 1<<20 || o.MemTableSize >= 4<<30 {
		errs = append(errs, fmt.Errorf("MemTableSize %d is outside [1 MiB, 4 GiB)", o.MemTableSize))
	}
	if o.MemTableStopWritesThreshold < 2 {
		errs = append(errs, fmt.Errorf("MemTableStopWritesThreshold %d is below 2", o.MemTableStopWritesThreshold))
	}
	if o.L0CompactionThreshold < 1 {
		errs = append(errs, fmt.Errorf("L0CompactionThreshold %d is below 1", o.L0CompactionThreshold))
	}
	if o.L0StopWritesThreshold < o.L0CompactionThreshold {
		errs = append(errs, fmt.Errorf("L0StopWritesThreshold %d is below L0CompactionThreshold %d",
			o.L0StopWritesThreshold, o.L0CompactionThreshold))
	}
	if o.MaxConcurrentCompactions < 1 {
		errs = append(errs, fmt.Errorf("MaxConcurrentCompactions %d is below 1", o.MaxConcurrentCompactions))
	}
	if o.MaxBlobReferenceDepth < 1 {
		errs = append(errs, fmt.Errorf("MaxBlobReferenceDepth %d is below 1", o.MaxBlobReferenceDepth))
	}
	if o.L0TargetFileSize < 64<<10 {
		errs = append(errs, fmt.Errorf("L0TargetFileSize %d is below 64 KiB", o.L0TargetFileSize))
	}
	if o.BackgroundNice > 19 {
		errs = append(errs, fmt.Errorf("BackgroundNice %d is above 19, the lowest priority", o.BackgroundNice))
	}
	if math.IsNaN(o.BackgroundWritePacing) || math.IsInf(o.BackgroundWritePacing, 0) {
		errs = append(errs, fmt.Errorf("BackgroundWritePacing %v is not a number of bytes per WAL byte", o.BackgroundWritePacing))
	}
	if o.Logger == nil {
		errs = append(errs, errors.New("Logger is nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storage: invalid pebble options: %w", err)
	}
	return nil
}

// pebbleOptions translates o, which must be valid, into Pebble's options.
func (o *PebbleOptions) pebbleOptions() *pebble.Options {
	log := o.Logger.With("component", "pebble", "dir", o.Dir)
	maxCompactions := o.MaxConcurrentCompactions
	fs := o.FS
	if !o.CacheBlobPages {
		fs = dropPagesFS{FS: fs}
	}
	pacer := newWritePacer(o.BackgroundWritePacing)
	lower := backgroundPriority(o.BackgroundNice, log)
	if lower == nil {
		lower = func() {}
	}
	if o.BackgroundWritePacing > 0 {
		fs = pacedFS{FS: fs, p: pacer}
	}
	po := &pebble.Options{
		FS:                          fs,
		CacheSize:                   o.CacheSize,
		MemTableSize:                o.MemTableSize,
		MemTableStopWritesThreshold: o.MemTableStopWritesThreshold,
		L0CompactionThreshold:       o.L0CompactionThreshold,
		L0StopWritesThreshold:       o.L0StopWritesThreshold,
		CompactionConcurrencyRange:  func() (int, int) { return 1, maxCompactions },
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      pebbleLogger{log: log},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { log.Error("background error", "err", err) },
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				log.Error("data corruption", "path", info.Path, "err", info.Details)
			},
			DiskSlow: func(info pebble.DiskSlowInfo) {
				log.Warn("disk slow", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				log.Warn("write stall begin", "reason", info.Reason)
				pacer.stalled.Store(true)
			},
			WriteStallEnd: func() { log.Info("write stall end"); pacer.stalled.Store(false) },
			// Both run on the goroutine that then does the work.
			FlushBegin:      func(pebble.FlushInfo) { lower() },
			CompactionBegin: func(pebble.CompactionInfo) { lower() },
			// Flushes and compactions at debug level: how long they take
			// against the ingest rate explains write stalls.
			FlushEnd: func(info pebble.FlushInfo) {
				log.Debug("flush", "job", info.JobID, "memtables", info.Input, "bytes", info.InputBytes,
					"duration", info.Duration, "total", info.TotalDuration, "err", info.Err)
			},
			CompactionEnd: func(info pebble.CompactionInfo) {
				log.Debug("compaction", "job", info.JobID, "reason", info.Reason, "duration", info.Duration,
					"total", info.TotalDuration, "err", info.Err)
			},
		},
	}
	po.TargetFileSizes[0] = o.L0TargetFileSize
	// Bloom filters make Gets of absent keys (probing for hard state or an
	// entry past the end of a log) skip sstables. L0 is included: with a
	// large memtable it holds a good share of live data.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		if !o.CompressBlocks {
			po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
		}
	}
	depth := o.MaxBlobReferenceDepth
	if minSize := o.ValueSeparationMinSize; minSize > 0 {
		po.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
			return pebble.ValueSeparationPolicy{
				Enabled:     true,
				MinimumSize: minSize,
				// A blob file is rewritten once a fifth of it is
				// garbage (deleted log prefixes) and it is 5 minutes old.
				MaxBlobReferenceDepth: depth,
				RewriteMinimumAge:     5 * time.Minute,
				TargetGarbageRatio:    0.2,
			}
		}
	}
	return po
}

// pebbleLogger routes Pebble's logging to slog. Pebble's informational
// messages are verbose, so they go to Debug.
type pebbleLogger struct{ log *slog.Logger }

// pebbleFatal is the panic value of pebbleLogger.Fatalf. Pebble calls Fatalf
// when its commit pipeline fails (say, a WAL write error); Pebble's default
// logger then exits the process. Panicking instead lets Commit, which runs on
// the caller's goroutine, turn it into an error; a Fatalf on one of Pebble's
// own goroutines still crashes the process, as it should.
type pebbleFatal struct{ err error }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "fatal", true)
	panic(pebbleFatal{err: errors.New(msg)})
}
