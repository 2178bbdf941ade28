package chaos

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// historyBuilder writes planted histories: a clean run of two partitions
// that a test then breaks in one place.
type historyBuilder struct {
	t   time.Time
	ops []Op
}

func newHistoryBuilder() *historyBuilder {
	return &historyBuilder{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (b *historyBuilder) add(op Op) {
	b.t = b.t.Add(time.Millisecond)
	if op.Time.IsZero() {
		op.Time = b.t
	}
	b.ops = append(b.ops, op)
}

func (b *historyBuilder) send(process, value string, p int32, offset int64, outcome string) {
	op := Op{Type: OpSend, Process: process, Start: b.t, Partition: p, Offset: offset, Value: value, Outcome: outcome}
	if outcome != OutcomeOK {
		op.Offset = -1
		op.Error = "planted"
	}
	b.add(op)
}

func (b *historyBuilder) poll(process, value string, p int32, offset int64) {
	b.add(Op{Type: OpPoll, Process: process, Partition: p, Offset: offset, Value: value})
}

func (b *historyBuilder) seek(process string, p int32, offset int64) {
	b.add(Op{Type: OpSeek, Process: process, Partition: p, Offset: offset})
}

func (b *historyBuilder) final(process string, p int32, end int64, complete bool) {
	b.add(Op{Type: OpFinal, Process: process, Partition: p, Offset: end, Complete: complete})
}

// clean returns a valid history: values v0..v5 in partitions 0 and 1, read
// by two readers; a failed send and an unknown send that was never read;
// a fault window; group commits moving forward.
func clean() *historyBuilder {
	b := newHistoryBuilder()
	for _, r := range []string{"r1", "r2"} {
		b.seek(r, 0, 0)
		b.seek(r, 1, 0)
	}
	b.add(Op{Type: OpFault, Process: "nemesis", FaultID: 1, Fault: "kill node 2", Nodes: []int32{2}})
	for i := range 6 {
		b.send("p1", fmt.Sprintf("v%d", i), int32(i%2), int64(i/2), OutcomeOK)
	}
	b.add(Op{Type: OpHeal, Process: "nemesis", FaultID: 1, Fault: "kill node 2", Nodes: []int32{2}})
	b.send("p1", "failed", 0, 0, OutcomeFail)
	b.send("p1", "maybe", 1, 0, OutcomeUnknown)
	for _, r := range []string{"r1", "r2"} {
		for i := range 6 {
			b.poll(r, fmt.Sprintf("v%d", i), int32(i%2), int64(i/2))
		}
	}
	b.add(Op{Type: OpCommit, Process: "g1", Group: "g", Partition: 0, Offset: 2, Outcome: OutcomeOK})
	b.add(Op{Type: OpCommit, Process: "g1", Group: "g", Partition: 0, Offset: 1, Outcome: OutcomeFail})
	b.add(Op{Type: OpCommit, Process: "g1", Group: "g", Partition: 0, Offset: 3, Outcome: OutcomeOK})
	b.add(Op{Type: OpCommitted, Process: "g1", Group: "g", Partition: 0, Offset: 3})
	for _, r := range []string{"r1", "r2"} {
		b.final(r, 0, 3, true)
		b.final(r, 1, 3, true)
	}
	return b
}

func TestCheckCleanHistoryPasses(t *testing.T) {
	res := Check(clean().ops, CheckOptions{})
	if !res.Valid() {
		var buf bytes.Buffer
		res.WriteText(&buf)
		t.Fatalf("clean history found invalid:\n%s", buf.String())
	}
	st := res.Stats
	if st.SendsOK != 6 || st.SendsFailed != 1 || st.SendsUnknown != 1 || st.Polls != 12 || st.DistinctRead != 6 || st.Faults != 1 {
		t.Fatalf("stats %+v", st)
	}
	if !slices.Equal(st.Readers, []string{"r1", "r2"}) {
		t.Fatalf("readers %v", st.Readers)
	}
	for _, k := range AnomalyKinds {
		if n, ok := res.Counts[k]; !ok || n != 0 {
			t.Errorf("count of %s = %d, %v; want 0 present", k, n, ok)
		}
	}
}

// TestCheckFindsPlantedAnomalies breaks the clean history in one way per
// case and expects exactly the planted kinds, with the example naming the
// value or offset.
func TestCheckFindsPlantedAnomalies(t *testing.T) {
	cases := []struct {
		name  string
		plant func(b *historyBuilder)
		want  []string
		// mention is a string the first example's detail must contain.
		mention string
	}{
		{
			name: "lost write",
			plant: func(b *historyBuilder) {
				// Acknowledged at partition 1 offset 3; both readers
				// completed their final read of partition 1 (to end
				// offset 3) and nobody saw it.
				b.ops = slices.Insert(b.ops, 5, Op{Type: OpSend, Process: "p2", Time: b.ops[4].Time, Partition: 1, Offset: 3, Value: "gone", Outcome: OutcomeOK})
			},
			want:    []string{AnomalyLost},
			mention: `"gone"`,
		},
		{
			name: "unseen write",
			plant: func(b *historyBuilder) {
				b.ops = slices.Insert(b.ops, 5, Op{Type: OpSend, Process: "p2", Time: b.ops[4].Time, Partition: 1, Offset: 3, Value: "late", Outcome: OutcomeOK})
				for i := range b.ops {
					if b.ops[i].Type == OpFinal && b.ops[i].Partition == 1 {
						b.ops[i].Complete = false
					}
				}
			},
			want:    []string{AnomalyUnseen},
			mention: "did not complete",
		},
		{
			name: "duplicate",
			plant: func(b *historyBuilder) {
				// v0 again at partition 0 offset 3, read by both readers
				// in order.
				b.send("p1", "v6", 0, 4, OutcomeOK)
				b.poll("r1", "v0", 0, 3)
				b.poll("r1", "v6", 0, 4)
				b.poll("r2", "v0", 0, 3)
				b.poll("r2", "v6", 0, 4)
			},
			want:    []string{AnomalyDuplicate},
			mention: `"v0" stored at 2 positions`,
		},
		{
			name: "inconsistent offset",
			plant: func(b *historyBuilder) {
				// r2 later re-reads partition 1 after a seek and finds
				// another value at offset 2; v5 is then nowhere else.
				b.seek("r2", 1, 2)
				b.poll("r2", "other", 1, 2)
				b.send("p3", "other", 1, -1, OutcomeUnknown)
			},
			want:    []string{AnomalyInconsistentOffset, AnomalyAckOffsetMismatch},
			mention: "partition 1 offset 2",
		},
		{
			name: "ack offset mismatch",
			plant: func(b *historyBuilder) {
				for i := range b.ops {
					if b.ops[i].Type == OpSend && b.ops[i].Value == "v3" {
						b.ops[i].Offset = 7
					}
				}
			},
			want:    []string{AnomalyAckOffsetMismatch},
			mention: `"v3" acknowledged at partition 1 offset 7 but read at partition 1 offset 1`,
		},
		{
			name: "aborted read",
			plant: func(b *historyBuilder) {
				b.poll("r1", "failed", 0, 3)
				b.poll("r2", "failed", 0, 3)
			},
			want:    []string{AnomalyAbortedRead},
			mention: `"failed" failed definitely`,
		},
		{
			name: "phantom read",
			plant: func(b *historyBuilder) {
				b.poll("r1", "ghost", 1, 3)
			},
			want:    []string{AnomalyPhantomRead},
			mention: `"ghost"`,
		},
		{
			name: "non-monotonic poll",
			plant: func(b *historyBuilder) {
				b.poll("r1", "v0", 0, 0)
			},
			want:    []string{AnomalyNonMonotonicPoll},
			mention: "r1 read partition 0 offset 0 after offset 2",
		},
		{
			name: "skipped poll",
			plant: func(b *historyBuilder) {
				// r2 misses partition 1 offset 1 (v3).
				for i := range b.ops {
					if b.ops[i].Type == OpPoll && b.ops[i].Process == "r2" && b.ops[i].Value == "v3" {
						b.ops = slices.Delete(b.ops, i, i+1)
						break
					}
				}
			},
			want:    []string{AnomalySkippedPoll},
			mention: "r2 read partition 1 offset 2 after offset 0, skipping 1 offsets",
		},
		{
			name: "commit backwards",
			plant: func(b *historyBuilder) {
				b.add(Op{Type: OpCommit, Process: "g1", Group: "g", Partition: 0, Offset: 2, Outcome: OutcomeOK})
			},
			want:    []string{AnomalyCommitBackwards},
			mention: "group g committed 2 for partition 0 after 3",
		},
		{
			name: "broker crash",
			plant: func(b *historyBuilder) {
				b.add(Op{Type: OpCrash, Process: "nemesis", Nodes: []int32{2}, Error: "broker 2 exited on its own (exit status 1); see node-2/raftka.log"})
			},
			want:    []string{AnomalyCrash},
			mention: "broker 2 exited on its own",
		},
		{
			name: "committed offset read back lower by another member is not ordered",
			plant: func(b *historyBuilder) {
				b.add(Op{Type: OpCommitted, Process: "g2", Group: "g", Partition: 0, Offset: 1})
			},
		},
		{
			name: "committed offset read back lower",
			plant: func(b *historyBuilder) {
				b.add(Op{Type: OpCommitted, Process: "g1", Group: "g", Partition: 0, Offset: 1})
			},
			want:    []string{AnomalyCommitBackwards},
			mention: "read back a committed offset of 1",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := clean()
			tc.plant(b)
			res := Check(b.ops, CheckOptions{})
			var report bytes.Buffer
			if err := res.WriteText(&report); err != nil {
				t.Fatal(err)
			}
			if got := res.Found(); !slices.Equal(got, tc.want) {
				t.Fatalf("found %v, want %v\n%s", got, tc.want, report.String())
			}
			if len(tc.want) == 0 {
				return
			}
			ex := res.Examples[tc.want[0]]
			if len(ex) == 0 || !strings.Contains(ex[0].Detail, tc.mention) {
				t.Fatalf("first %s example does not mention %q:\n%s", tc.want[0], tc.mention, report.String())
			}
			for _, k := range tc.want {
				if !strings.Contains(report.String(), k+":") {
					t.Errorf("report does not name %s:\n%s", k, report.String())
				}
			}
			if !strings.Contains(report.String(), "result: INVALID") {
				t.Errorf("report does not say INVALID:\n%s", report.String())
			}
		})
	}
}

// TestCheckSeekAllowsRewind: a reader that seeks back may read again from
// there, and a group reader's seek to an unknown offset allows any next
// offset.
func TestCheckSeekAllowsRewind(t *testing.T) {
	b := clean()
	b.seek("r1", 0, 1)
	b.poll("r1", "v2", 0, 1)
	b.add(Op{Type: OpSeek, Process: "g1", Group: "g", Partition: 1, Offset: -1})
	b.poll("g1", "v5", 1, 2)
	if res := Check(b.ops, CheckOptions{}); !res.Valid() {
		t.Fatalf("found %v", res.Found())
	}
}

func TestCheckExamplesAreBounded(t *testing.T) {
	b := clean()
	for i := range 30 {
		b.send("p9", fmt.Sprintf("lost%02d", i), 0, int64(3+i), OutcomeOK)
	}
	res := Check(b.ops, CheckOptions{Examples: 4})
	if res.Counts[AnomalyLost] != 30 || len(res.Examples[AnomalyLost]) != 4 {
		t.Fatalf("lost: count %d, %d examples", res.Counts[AnomalyLost], len(res.Examples[AnomalyLost]))
	}
	// Examples come in value order, so reports are stable.
	if v := res.Examples[AnomalyLost][0].Value; v != "lost00" {
		t.Fatalf("first example %q", v)
	}
}

// TestHistoryRoundTrip writes ops, reads them back (skipping a torn last
// line, as a killed run leaves) and checks the same result.
func TestHistoryRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	h := NewHistory(&buf)
	ops := clean().ops
	for _, op := range ops {
		h.Append(op)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if h.Len() != len(ops) {
		t.Fatalf("Len %d, want %d", h.Len(), len(ops))
	}
	buf.WriteString(`{"type":"poll","proc`)
	got, err := ReadHistory(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ops) {
		t.Fatalf("read %d ops, wrote %d", len(got), len(ops))
	}
	for i := range ops {
		if !got[i].Time.Equal(ops[i].Time) || got[i].Value != ops[i].Value || got[i].Type != ops[i].Type || got[i].Offset != ops[i].Offset {
			t.Fatalf("op %d: got %+v, want %+v", i, got[i], ops[i])
		}
	}
	if !Check(got, CheckOptions{}).Valid() {
		t.Fatal("round-tripped clean history is invalid")
	}
}

func TestReadHistoryRejectsCorruptMiddleLine(t *testing.T) {
	in := `{"type":"note","time":"2026-01-02T03:04:05Z","partition":0,"offset":0}
not json
{"type":"note","time":"2026-01-02T03:04:05Z","partition":0,"offset":0}
`
	if _, err := ReadHistory(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want one naming line 2", err)
	}
}

func TestTimelineRenders(t *testing.T) {
	b := clean()
	b.send("p1", "lost", 0, 9, OutcomeOK)
	res := Check(b.ops, CheckOptions{})
	var buf bytes.Buffer
	if err := WriteTimeline(&buf, b.ops, res, "test <run>"); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"<svg", "kill node 2", "node 2", "INVALID: lost-write", "test &lt;run&gt;", "throughput", "latency"} {
		if !strings.Contains(page, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
}

// TestCheckPollAnomalyShowsFetchErrors checks that a reader going back shows
// the reader's fetch errors on the partition since its previous poll (the
// latest few): a client resetting its position says why there.
func TestCheckPollAnomalyShowsFetchErrors(t *testing.T) {
	b := clean()
	b.add(Op{Type: OpFetchError, Process: "r2", Partition: 0, Error: "another reader's error"})
	b.add(Op{Type: OpFetchError, Process: "r1", Partition: 1, Error: "another partition's error"})
	for i := range 7 {
		b.add(Op{Type: OpFetchError, Process: "r1", Partition: 0, Error: fmt.Sprintf("lost data %d", i)})
	}
	b.poll("r1", "v0", 0, 0)
	res := Check(b.ops, CheckOptions{})
	ex := res.Examples[AnomalyNonMonotonicPoll]
	if len(ex) != 1 {
		t.Fatalf("%d non-monotonic-poll examples, want 1: %+v", len(ex), res.Examples)
	}
	var errs []string
	for _, op := range ex[0].Ops {
		if op.Type == OpFetchError {
			errs = append(errs, op.Error)
		}
	}
	want := []string{"lost data 2", "lost data 3", "lost data 4", "lost data 5", "lost data 6"}
	if !slices.Equal(errs, want) {
		t.Fatalf("fetch errors shown %q, want %q", errs, want)
	}
	if ops := ex[0].Ops; ops[0].Type != OpPoll || ops[len(ops)-1].Type != OpPoll {
		t.Fatalf("shown ops do not start and end with the two polls: %+v", ops)
	}
}
