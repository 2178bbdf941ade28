package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText writes a report for people: the stats, the count of every
// anomaly kind and the examples of those found.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	st := r.Stats
	fmt.Fprintf(&b, "history: %s, %d sends (%d ok, %d failed, %d unknown of which %d were read), %d polls of %d distinct values by %d readers, %d commits, %d fetch errors, %d faults\n",
		st.End.Sub(st.Start).Round(time.Millisecond), st.SendsOK+st.SendsFailed+st.SendsUnknown, st.SendsOK, st.SendsFailed, st.SendsUnknown,
		st.UnknownSeen, st.Polls, st.DistinctRead, len(st.Readers), st.Commits, st.FetchErrors, st.Faults)
	if st.FinalIncomplete > 0 {
		fmt.Fprintf(&b, "final read: %d partitions did not reach their end offset\n", st.FinalIncomplete)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	fmt.Fprintln(&b, "anomalies:")
	for _, k := range AnomalyKinds {
		fmt.Fprintf(&b, "  %-20s %6d  %s\n", k, r.Counts[k], anomalyMeaning[k])
	}
	for _, k := range r.Found() {
		ex := r.Examples[k]
		fmt.Fprintf(&b, "%s: %d found, %d shown\n", k, r.Counts[k], len(ex))
		for _, a := range ex {
			fmt.Fprintf(&b, "  - %s\n", a.Detail)
			for _, op := range a.Ops {
				fmt.Fprintf(&b, "      %s\n", opLine(op))
			}
		}
	}
	if r.Valid() {
		fmt.Fprintln(&b, "result: valid, no anomalies")
	} else {
		fmt.Fprintf(&b, "result: INVALID: %s\n", strings.Join(r.Found(), ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// opLine renders an op compactly for examples.
func opLine(op Op) string {
	s := fmt.Sprintf("%s %-6s %-11s", op.Time.Format("15:04:05.000"), op.Process, op.Type)
	switch op.Type {
	case OpSend, OpPoll, OpSeek, OpCommit, OpCommitted, OpFinal, OpFetchError:
		s += fmt.Sprintf(" p%d@%d", op.Partition, op.Offset)
	}
	if op.Value != "" {
		s += " " + op.Value
	}
	if op.Outcome != "" {
		s += " " + op.Outcome
	}
	if l := op.Latency(); l > 0 {
		s += " in " + l.Round(time.Millisecond).String()
	}
	if op.Error != "" {
		s += " (" + op.Error + ")"
	}
	return s
}

// WriteJSON writes the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
