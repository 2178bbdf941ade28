package raftlog

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestProducersScript runs testdata/producers: the idempotent producer rules
// applied to one producer id, as a partition applies them.
//
// Commands:
//
//	reset                              forget the producer (and offsets)
//	produce epoch=E seq=S records=N    check a batch; if accepted, record it
//	                                   at the next offset
//	load epoch=E                       replace the state with the batches in
//	                                   the input: "firstSeq lastSeq base lod"
//	state                              print the state
//	encode                             print the on-disk encoding (golden)
//	                                   after checking it decodes back
//	decode                             decode the hex input
func TestProducersScript(t *testing.T) {
	t.Parallel()
	var (
		st         *producerState
		nextOffset int64
	)
	datadriven.RunTest(t, "testdata/producers", func(t *testing.T, d *datadriven.TestData) string {
		switch d.Cmd {
		case "reset":
			st, nextOffset = nil, 0
			return "ok"

		case "produce":
			var epoch int16
			var seq int32
			var n int
			d.ScanArgs(t, "epoch", &epoch)
			d.ScanArgs(t, "seq", &seq)
			d.ScanArgs(t, "records", &n)
			lastSeq := batchLastSeq(seq, int32(n-1))
			dup, err := checkProducer(st, epoch, seq, lastSeq)
			switch {
			case err != nil:
				if dup != nil {
					t.Fatalf("checkProducer returned both a duplicate and %v", err)
				}
				return fmt.Sprintf("rejected: %s: %v", errorClass(err), err)
			case dup != nil:
				return fmt.Sprintf("duplicate of seq %d..%d: base=%d", dup.firstSeq, dup.lastSeq, dup.baseOffset)
			}
			base := nextOffset
			nextOffset += int64(n)
			if st == nil {
				st = &producerState{epoch: epoch}
			}
			st.record(epoch, producerBatch{firstSeq: seq, lastSeq: lastSeq, baseOffset: base, lastOffsetDelta: int32(n - 1)})
			checkProducerInvariants(t, st)
			return fmt.Sprintf("appended seq %d..%d: base=%d", seq, lastSeq, base)

		case "load":
			var epoch int16
			d.ScanArgs(t, "epoch", &epoch)
			st = &producerState{epoch: epoch}
			for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
				f := strings.Fields(line)
				if len(f) != 4 {
					d.Fatalf(t, "want 4 fields in %q", line)
				}
				n := make([]int64, 4)
				for i, s := range f {
					v, err := strconv.ParseInt(s, 10, 64)
					if err != nil {
						d.Fatalf(t, "%v", err)
					}
					n[i] = v
				}
				b := producerBatch{firstSeq: int32(n[0]), lastSeq: int32(n[1]), baseOffset: n[2], lastOffsetDelta: int32(n[3])}
				st.batches = append(st.batches, b)
				nextOffset = b.baseOffset + int64(b.lastOffsetDelta) + 1
			}
			return formatProducerState(st)

		case "state":
			return formatProducerState(st)

		case "encode":
			if st == nil {
				d.Fatalf(t, "no producer state")
			}
			v := st.encode()
			got, err := decodeProducerState(v)
			if err != nil {
				t.Fatalf("decode own encoding %x: %v", v, err)
			}
			if !reflect.DeepEqual(normalizeProducerState(got), normalizeProducerState(st)) {
				t.Fatalf("round trip changed state:\n%s\nto\n%s", formatProducerState(st), formatProducerState(got))
			}
			return formatProducerEncoding(v)

		case "decode":
			v, err := hex.DecodeString(strings.Join(strings.Fields(d.Input), ""))
			if err != nil {
				d.Fatalf(t, "bad hex: %v", err)
			}
			got, err := decodeProducerState(v)
			if err != nil {
				return "error: " + err.Error()
			}
			return formatProducerState(got)

		default:
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		}
	})
}

// formatProducerEncoding prints an encoded producer state as its fields:
// version, epoch, count, then one line per batch.
func formatProducerEncoding(v []byte) string {
	if len(v) < 4 || (len(v)-4)%producerBatchLen != 0 {
		return hex.EncodeToString(v)
	}
	h := hex.EncodeToString
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s %s", h(v[:1]), h(v[1:3]), h(v[3:4]))
	for r := v[4:]; len(r) > 0; r = r[producerBatchLen:] {
		fmt.Fprintf(&sb, "\n%s %s %s %s", h(r[:4]), h(r[4:8]), h(r[8:16]), h(r[16:20]))
	}
	return sb.String()
}

func errorClass(err error) string {
	switch {
	case errors.Is(err, ErrOutOfOrderSequence):
		return "OutOfOrderSequence"
	case errors.Is(err, ErrInvalidProducerEpoch):
		return "InvalidProducerEpoch"
	}
	return "unexpected error"
}

func formatProducerState(st *producerState) string {
	if st == nil {
		return "no producer state"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "epoch=%d batches=%d", st.epoch, len(st.batches))
	for _, b := range st.batches {
		fmt.Fprintf(&sb, "\n  seq %d..%d base=%d lastOffsetDelta=%d", b.firstSeq, b.lastSeq, b.baseOffset, b.lastOffsetDelta)
	}
	return sb.String()
}

// normalizeProducerState makes nil and empty batch slices compare equal.
func normalizeProducerState(st *producerState) producerState {
	c := producerState{epoch: st.epoch, batches: append([]producerBatch{}, st.batches...)}
	return c
}

// checkProducerInvariants checks the invariant documented on producerState.
func checkProducerInvariants(t *testing.T, st *producerState) {
	t.Helper()
	if len(st.batches) > dedupWindow {
		t.Fatalf("%d batches remembered, window is %d", len(st.batches), dedupWindow)
	}
	for i := 1; i < len(st.batches); i++ {
		if want := nextSeq(st.batches[i-1].lastSeq); st.batches[i].firstSeq != want {
			t.Fatalf("batch %d starts at seq %d, want %d:\n%s", i, st.batches[i].firstSeq, want, formatProducerState(st))
		}
	}
}

func TestDecodeProducerStateRejectsMalformed(t *testing.T) {
	t.Parallel()
	good := (&producerState{epoch: 3, batches: []producerBatch{{firstSeq: 0, lastSeq: 1, baseOffset: 7, lastOffsetDelta: 1}}}).encode()
	if _, err := decodeProducerState(good); err != nil {
		t.Fatalf("good encoding: %v", err)
	}
	for name, v := range map[string][]byte{
		"empty":      nil,
		"short":      good[:3],
		"version 2":  append([]byte{2}, good[1:]...),
		"truncated":  good[:len(good)-1],
		"trailing":   append(append([]byte(nil), good...), 0),
		"count 6":    {1, 0, 0, 6},
		"count lies": append([]byte{1, 0, 3, 2}, good[4:]...),
		"count 255":  {1, 0, 0, 255},
	} {
		if _, err := decodeProducerState(v); err == nil {
			t.Errorf("%s: decoded %x without error", name, v)
		}
	}
}
