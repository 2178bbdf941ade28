package chaos

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Anomaly kinds the checker reports. The names are stable: tests and
// scripts match on them.
const (
	// AnomalyLost is an acknowledged write that no reader saw although
	// the final read of its partition reached the end of the log.
	AnomalyLost = "lost-write"
	// AnomalyUnseen is an acknowledged write that no reader saw, where
	// the final read of its partition did not complete: lost, or only not
	// read in time.
	AnomalyUnseen = "unseen-write"
	// AnomalyDuplicate is a value read at two different offsets.
	AnomalyDuplicate = "duplicate"
	// AnomalyInconsistentOffset is one partition offset read with
	// different values.
	AnomalyInconsistentOffset = "inconsistent-offset"
	// AnomalyAckOffsetMismatch is an acknowledged write whose offset holds
	// another value, or whose value is read at another offset, than the
	// acknowledgement said.
	AnomalyAckOffsetMismatch = "ack-offset-mismatch"
	// AnomalyAbortedRead is a value read whose send definitely failed.
	AnomalyAbortedRead = "aborted-read"
	// AnomalyPhantomRead is a value read that nobody sent.
	AnomalyPhantomRead = "phantom-read"
	// AnomalyNonMonotonicPoll is a reader's poll at or before an offset it
	// had already read, without a seek in between.
	AnomalyNonMonotonicPoll = "non-monotonic-poll"
	// AnomalySkippedPoll is a reader's poll that skipped offsets, without
	// a seek in between.
	AnomalySkippedPoll = "skipped-poll"
	// AnomalyCommitBackwards is a consumer group's committed offset going
	// backwards: a later successful commit, or a later read-back, below an
	// earlier one.
	AnomalyCommitBackwards = "commit-backwards"
	// AnomalyCrash is a broker exiting without being told to (only known
	// when chaos runs the brokers): faults may slow a broker or cut it
	// off, never make it stop.
	AnomalyCrash = "crash"
)

// AnomalyKinds lists every kind in report order.
var AnomalyKinds = []string{
	AnomalyLost, AnomalyUnseen, AnomalyDuplicate, AnomalyInconsistentOffset,
	AnomalyAckOffsetMismatch, AnomalyAbortedRead, AnomalyPhantomRead,
	AnomalyNonMonotonicPoll, AnomalySkippedPoll, AnomalyCommitBackwards,
	AnomalyCrash,
}

// anomalyMeaning says what each kind means, for reports.
var anomalyMeaning = map[string]string{
	AnomalyLost:               "acknowledged, never read, though readers reached the end offset",
	AnomalyUnseen:             "acknowledged, never read, and the final read did not reach the end offset",
	AnomalyDuplicate:          "one value stored at two offsets",
	AnomalyInconsistentOffset: "one offset read with different values",
	AnomalyAckOffsetMismatch:  "the acknowledged offset holds another value, or the value sits elsewhere",
	AnomalyAbortedRead:        "a value read whose send definitely failed",
	AnomalyPhantomRead:        "a value read that was never sent",
	AnomalyNonMonotonicPoll:   "a reader went back to an offset it had passed, without seeking",
	AnomalySkippedPoll:        "a reader skipped offsets, without seeking",
	AnomalyCommitBackwards:    "a group's committed offset went backwards",
	AnomalyCrash:              "a broker exited without being told to",
}

// Anomaly is one problem found, with the ops that show it.
type Anomaly struct {
	Kind      string `json:"kind"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Value     string `json:"value,omitempty"`
	// Detail explains this instance in one line.
	Detail string `json:"detail"`
	// Ops are the history lines involved, in history order.
	Ops []Op `json:"ops,omitempty"`
}

// Stats summarise a history.
type Stats struct {
	SendsOK      int `json:"sends_ok"`
	SendsFailed  int `json:"sends_failed"`
	SendsUnknown int `json:"sends_unknown"`
	// UnknownSeen counts unknown sends whose value was read: they
	// happened.
	UnknownSeen int `json:"unknown_seen"`
	Polls       int `json:"polls"`
	// DistinctRead counts the distinct values read.
	DistinctRead int `json:"distinct_read"`
	Commits      int `json:"commits"`
	FetchErrors  int `json:"fetch_errors"`
	Faults       int `json:"faults"`
	// FinalIncomplete counts partitions whose final read did not reach
	// the end offset.
	FinalIncomplete int `json:"final_incomplete"`
	// Readers are the reader processes seen.
	Readers []string `json:"readers"`
	// Start and End bound the history's times.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Result is what Check found.
type Result struct {
	// Counts maps each anomaly kind to how many were found (every kind
	// is present, zero when clean).
	Counts map[string]int `json:"counts"`
	// Examples holds up to the requested number of anomalies per kind.
	Examples map[string][]Anomaly `json:"examples"`
	Stats    Stats                `json:"stats"`
	// Notes are the history's notes (OpNote).
	Notes []string `json:"notes,omitempty"`
}

// Valid reports whether no anomaly was found.
func (r *Result) Valid() bool {
	for _, n := range r.Counts {
		if n > 0 {
			return false
		}
	}
	return true
}

// Found returns the kinds with at least one anomaly, in report order.
func (r *Result) Found() []string {
	var out []string
	for _, k := range AnomalyKinds {
		if r.Counts[k] > 0 {
			out = append(out, k)
		}
	}
	return out
}

// CheckOptions tune Check.
type CheckOptions struct {
	// Examples is how many anomalies of each kind to keep; 0 means 10.
	Examples int
}

type position struct {
	partition int32
	offset    int64
}

type readerPartition struct {
	process   string
	partition int32
}

// Check looks for anomalies in a history. It is pure: it reads only ops,
// which must be in history (file) order.
func Check(ops []Op, opt CheckOptions) *Result {
	if opt.Examples <= 0 {
		opt.Examples = 10
	}
	c := &checker{
		res: &Result{Counts: map[string]int{}, Examples: map[string][]Anomaly{}},
		max: opt.Examples,
	}
	for _, k := range AnomalyKinds {
		c.res.Counts[k] = 0
	}
	c.index(ops)
	c.checkSends()
	c.checkReads()
	c.checkPolls(ops)
	c.checkCommits(ops)
	return c.res
}

type checker struct {
	res *Result
	max int

	sends map[string]Op // value → its send
	// reads maps a value to the positions it was read at, each with the
	// first poll that read it there.
	reads map[string]map[position]Op
	// at maps a position to the values read there, each with its first
	// poll.
	at map[position]map[string]Op
	// final maps a partition to whether some reader completed its final
	// read, with the final ops.
	final map[int32]bool
}

func (c *checker) add(a Anomaly) {
	c.res.Counts[a.Kind]++
	if len(c.res.Examples[a.Kind]) < c.max {
		c.res.Examples[a.Kind] = append(c.res.Examples[a.Kind], a)
	}
}

// index builds the maps the checks share, and the stats.
func (c *checker) index(ops []Op) {
	c.sends = map[string]Op{}
	c.reads = map[string]map[position]Op{}
	c.at = map[position]map[string]Op{}
	c.final = map[int32]bool{}
	finalSeen := map[int32]bool{}
	readers := map[string]bool{}
	st := &c.res.Stats
	for _, op := range ops {
		if st.Start.IsZero() || (!op.Time.IsZero() && op.Time.Before(st.Start)) {
			st.Start = op.Time
		}
		if op.Time.After(st.End) {
			st.End = op.Time
		}
		switch op.Type {
		case OpSend:
			// A value is sent once; should a history repeat one, the
			// most definite outcome wins (ok over unknown over fail).
			if prev, ok := c.sends[op.Value]; ok && outcomeRank(prev.Outcome) >= outcomeRank(op.Outcome) {
				continue
			}
			c.sends[op.Value] = op
		case OpPoll:
			st.Polls++
			readers[op.Process] = true
			p := position{op.Partition, op.Offset}
			if c.reads[op.Value] == nil {
				c.reads[op.Value] = map[position]Op{}
			}
			if _, ok := c.reads[op.Value][p]; !ok {
				c.reads[op.Value][p] = op
			}
			if c.at[p] == nil {
				c.at[p] = map[string]Op{}
			}
			if _, ok := c.at[p][op.Value]; !ok {
				c.at[p][op.Value] = op
			}
		case OpFinal:
			finalSeen[op.Partition] = true
			if op.Complete {
				c.final[op.Partition] = true
			}
		case OpCommit:
			st.Commits++
		case OpFetchError:
			st.FetchErrors++
		case OpFault:
			st.Faults++
		case OpNote:
			c.res.Notes = append(c.res.Notes, op.Error)
		case OpCrash:
			c.add(Anomaly{Kind: AnomalyCrash, Partition: -1, Offset: -1, Detail: op.Error, Ops: []Op{op}})
		}
	}
	for _, s := range c.sends {
		switch s.Outcome {
		case OutcomeOK:
			st.SendsOK++
		case OutcomeFail:
			st.SendsFailed++
		default:
			st.SendsUnknown++
			if len(c.reads[s.Value]) > 0 {
				st.UnknownSeen++
			}
		}
	}
	st.DistinctRead = len(c.reads)
	for p := range finalSeen {
		if !c.final[p] {
			st.FinalIncomplete++
		}
	}
	for r := range readers {
		st.Readers = append(st.Readers, r)
	}
	slices.Sort(st.Readers)
}

func outcomeRank(o string) int {
	switch o {
	case OutcomeOK:
		return 2
	case OutcomeUnknown, "":
		return 1
	}
	return 0
}

// sortedValues returns m's keys in order, so reports are deterministic.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedPositions[V any](m map[position]V) []position {
	out := make([]position, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b position) int {
		return cmp.Or(cmp.Compare(a.partition, b.partition), cmp.Compare(a.offset, b.offset))
	})
	return out
}

func opsOf(m map[position]Op) []Op {
	out := make([]Op, 0, len(m))
	for _, p := range sortedPositions(m) {
		out = append(out, m[p])
	}
	return out
}

// checkSends finds lost and unseen writes, reads of failed sends, and
// acknowledgements that disagree with what was read.
func (c *checker) checkSends() {
	for _, v := range sortedKeys(c.sends) {
		s := c.sends[v]
		read := c.reads[v]
		switch s.Outcome {
		case OutcomeOK:
			if len(read) == 0 {
				kind, why := AnomalyLost, "readers reached the end offset of the partition"
				if !c.final[s.Partition] {
					kind, why = AnomalyUnseen, "the final read of the partition did not complete"
				}
				c.add(Anomaly{Kind: kind, Partition: s.Partition, Offset: s.Offset, Value: v,
					Detail: fmt.Sprintf("%s acknowledged %q at partition %d offset %d; no reader saw it (%s)",
						s.Process, v, s.Partition, s.Offset, why),
					Ops: []Op{s}})
				continue
			}
			acked := position{s.Partition, s.Offset}
			if _, ok := read[acked]; !ok {
				where := sortedPositions(read)[0]
				c.add(Anomaly{Kind: AnomalyAckOffsetMismatch, Partition: s.Partition, Offset: s.Offset, Value: v,
					Detail: fmt.Sprintf("%q acknowledged at partition %d offset %d but read at partition %d offset %d",
						v, s.Partition, s.Offset, where.partition, where.offset),
					Ops: append([]Op{s}, opsOf(read)...)})
				continue
			}
			for _, other := range sortedKeys(c.at[acked]) {
				if other != v {
					c.add(Anomaly{Kind: AnomalyAckOffsetMismatch, Partition: s.Partition, Offset: s.Offset, Value: v,
						Detail: fmt.Sprintf("%q acknowledged at partition %d offset %d, which was also read holding %q",
							v, s.Partition, s.Offset, other),
						Ops: []Op{s, c.at[acked][other]}})
					break
				}
			}
		case OutcomeFail:
			if len(read) > 0 {
				where := sortedPositions(read)[0]
				c.add(Anomaly{Kind: AnomalyAbortedRead, Partition: where.partition, Offset: where.offset, Value: v,
					Detail: fmt.Sprintf("%q failed definitely (%s) but was read at partition %d offset %d",
						v, s.Error, where.partition, where.offset),
					Ops: append([]Op{s}, opsOf(read)...)})
			}
		}
	}
}

// checkReads finds duplicates, inconsistent offsets and phantom reads.
func (c *checker) checkReads() {
	for _, v := range sortedKeys(c.reads) {
		read := c.reads[v]
		first := sortedPositions(read)[0]
		if _, sent := c.sends[v]; !sent && len(c.sends) > 0 {
			c.add(Anomaly{Kind: AnomalyPhantomRead, Partition: first.partition, Offset: first.offset, Value: v,
				Detail: fmt.Sprintf("%q read at partition %d offset %d was never sent", v, first.partition, first.offset),
				Ops:    opsOf(read)})
		}
		if len(read) > 1 {
			ps := sortedPositions(read)
			desc := ""
			for i, p := range ps {
				if i > 0 {
					desc += ", "
				}
				desc += fmt.Sprintf("%d/%d", p.partition, p.offset)
			}
			c.add(Anomaly{Kind: AnomalyDuplicate, Partition: first.partition, Offset: first.offset, Value: v,
				Detail: fmt.Sprintf("%q stored at %d positions (partition/offset %s)", v, len(ps), desc),
				Ops:    opsOf(read)})
		}
	}
	for _, p := range sortedPositions(c.at) {
		vals := c.at[p]
		if len(vals) < 2 {
			continue
		}
		keys := sortedKeys(vals)
		ops := make([]Op, 0, len(keys))
		for _, k := range keys {
			ops = append(ops, vals[k])
		}
		c.add(Anomaly{Kind: AnomalyInconsistentOffset, Partition: p.partition, Offset: p.offset, Value: keys[0],
			Detail: fmt.Sprintf("partition %d offset %d read as %q by %s and %q by %s",
				p.partition, p.offset, keys[0], ops[0].Process, keys[1], ops[1].Process),
			Ops: ops})
	}
}

// checkPolls follows each reader's polls of each partition: every poll
// must be at the offset after the previous one, or where the last seek
// pointed. An anomaly shows the reader's fetch errors on the partition in
// between too: a client that resets its position says so there (franz-go's
// data-loss notice, say).
func (c *checker) checkPolls(ops []Op) {
	const maxShownFetchErrors = 5 // the latest, per anomaly
	type cursor struct {
		next  int64 // expected offset; -1 after a seek to an unknown offset
		known bool  // whether next is known (false before the first seek/poll)
		last  Op    // the op that set next
		errs  []Op  // fetch errors since last
	}
	cur := map[readerPartition]*cursor{}
	for _, op := range ops {
		if op.Type != OpSeek && op.Type != OpPoll && op.Type != OpFetchError {
			continue
		}
		k := readerPartition{op.Process, op.Partition}
		cu := cur[k]
		if cu == nil {
			cu = &cursor{}
			cur[k] = cu
		}
		switch op.Type {
		case OpFetchError:
			if len(cu.errs) == maxShownFetchErrors {
				cu.errs = append(cu.errs[:0], cu.errs[1:]...)
			}
			cu.errs = append(cu.errs, op)
			continue
		case OpSeek:
			cu.known = op.Offset >= 0
			cu.next = op.Offset
			cu.last = op
			cu.errs = cu.errs[:0]
			continue
		}
		if cu.known && op.Offset != cu.next {
			kind := AnomalySkippedPoll
			detail := fmt.Sprintf("%s read partition %d offset %d after offset %d, skipping %d offsets",
				op.Process, op.Partition, op.Offset, cu.next-1, op.Offset-cu.next)
			if op.Offset < cu.next {
				kind = AnomalyNonMonotonicPoll
				detail = fmt.Sprintf("%s read partition %d offset %d after offset %d",
					op.Process, op.Partition, op.Offset, cu.next-1)
			}
			if cu.last.Type == OpSeek {
				detail = fmt.Sprintf("%s read partition %d offset %d after seeking to offset %d",
					op.Process, op.Partition, op.Offset, cu.next)
			}
			shown := append(append([]Op{cu.last}, cu.errs...), op)
			c.add(Anomaly{Kind: kind, Partition: op.Partition, Offset: op.Offset, Value: op.Value,
				Detail: detail, Ops: shown})
		}
		cu.known = true
		cu.next = op.Offset + 1
		cu.last = op
		cu.errs = cu.errs[:0]
	}
}

// checkCommits checks that each group's committed offsets only move
// forward: successful commits (of all members) in the order they
// completed, and each member's read-backs in the order it made them.
func (c *checker) checkCommits(ops []Op) {
	type key struct {
		group     string
		partition int32
		kind      string
		process   string // of read-backs only
	}
	high := map[key]Op{}
	for _, op := range ops {
		var k key
		switch {
		case op.Type == OpCommit && op.Outcome == OutcomeOK:
			k = key{op.Group, op.Partition, OpCommit, ""}
		case op.Type == OpCommitted && op.Offset >= 0:
			// Read-backs by different members may be answered in
			// another order than they are written down; each
			// member's own are in order.
			k = key{op.Group, op.Partition, OpCommitted, op.Process}
		default:
			continue
		}
		prev, ok := high[k]
		if ok && op.Offset < prev.Offset {
			what := "committed"
			if op.Type == OpCommitted {
				what = "read back a committed offset of"
			}
			c.add(Anomaly{Kind: AnomalyCommitBackwards, Partition: op.Partition, Offset: op.Offset,
				Detail: fmt.Sprintf("group %s %s %d for partition %d after %d", op.Group, what, op.Offset, op.Partition, prev.Offset),
				Ops:    []Op{prev, op}})
			continue
		}
		high[k] = op
	}
}
