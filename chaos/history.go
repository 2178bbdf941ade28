// Package chaos is Raftka's fault-injection harness and history checker, in
// the manner of Jepsen's Kafka tests: it runs a cluster under faults while
// producers and readers work, records every operation the clients saw in a
// JSON-lines history, and then checks the history for lost, duplicated,
// reordered and inconsistent records.
//
// The pieces stand alone: Check is a pure function of a history, so
// `raftka chaos check HISTORY` re-checks a saved run; Proxy is a small TCP
// proxy that partitions and slows connections by source address; Schedule
// derives the faults of a run from its seed; Run ties them to a cluster of
// `raftka start` processes (or to any Kafka cluster with user-given fault
// commands).
package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Op types of a history. Their values are the "type" field of a history
// line; append new ones, never rename.
const (
	// OpSend is one produce: Start is when the record was handed to the
	// client, Time when its outcome arrived; Offset is the acknowledged
	// offset when Outcome is OutcomeOK.
	OpSend = "send"
	// OpPoll is one record returned by a poll, at Partition/Offset.
	OpPoll = "poll"
	// OpSeek says the reader Process will next read Partition from Offset
	// (Offset -1: from wherever its group's committed offset says). A
	// reader's polls of a partition must continue from the last poll or
	// seek without gaps or steps back.
	OpSeek = "seek"
	// OpCommit is a consumer group committing Offset (the next offset to
	// read) of Partition; Outcome says whether the broker accepted it.
	OpCommit = "commit"
	// OpCommitted is an observation of a group's committed Offset of
	// Partition, read back with OffsetFetch.
	OpCommitted = "committed"
	// OpFetchError is an error a reader's fetch returned for Partition.
	OpFetchError = "fetch-error"
	// OpFinal ends a reader's catch-up of Partition: Offset is the end
	// offset it had to reach, Complete whether it got there.
	OpFinal = "final"
	// OpFault and OpHeal open and close a fault window; Fault describes it
	// and FaultID pairs the two.
	OpFault = "fault"
	OpHeal  = "heal"
	// OpNote is free text for the report (Error holds it), such as why
	// the consumer-group reader did not run.
	OpNote = "note"
	// OpCrash is a broker (Nodes) exiting without being told to: Error
	// says how, and where its log is.
	OpCrash = "crash"
)

// Outcomes of a send or commit.
const (
	// OutcomeOK: the broker acknowledged it.
	OutcomeOK = "ok"
	// OutcomeFail: it definitely did not happen (the broker rejected it,
	// or it was never sent).
	OutcomeFail = "fail"
	// OutcomeUnknown: it may or may not have happened (a timeout, a
	// connection lost after sending, a leader change).
	OutcomeUnknown = "unknown"
)

// Op is one line of a history.
type Op struct {
	Type    string    `json:"type"`
	Process string    `json:"process,omitempty"`
	Time    time.Time `json:"time"`
	// Start is when a send or commit was invoked; zero for instant ops.
	Start     time.Time `json:"start,omitzero"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Value     string    `json:"value,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
	Error     string    `json:"error,omitempty"`
	Group     string    `json:"group,omitempty"`
	Complete  bool      `json:"complete,omitempty"`
	Fault     string    `json:"fault,omitempty"`
	FaultID   int       `json:"fault_id,omitempty"`
	Nodes     []int32   `json:"nodes,omitempty"`
}

// Latency is how long a send or commit took (zero for instant ops).
func (o Op) Latency() time.Duration {
	if o.Start.IsZero() {
		return 0
	}
	return o.Time.Sub(o.Start)
}

// History writes ops as JSON lines. It is safe for concurrent use; the
// order of lines is the order of Append calls, which for one client
// process is the order in which it saw its results.
type History struct {
	mu struct {
		sync.Mutex
		w   *bufio.Writer
		enc *json.Encoder
		n   int
		err error
		// closed drops later appends: a broker may exit (and be
		// noted) while the harness shuts down.
		closed bool
	}
	closer io.Closer
}

// NewHistory writes to w. Close flushes it (and closes w if it is an
// io.Closer).
func NewHistory(w io.Writer) *History {
	h := &History{}
	h.mu.w = bufio.NewWriterSize(w, 1<<16)
	h.mu.enc = json.NewEncoder(h.mu.w)
	if c, ok := w.(io.Closer); ok {
		h.closer = c
	}
	return h
}

// CreateHistory creates the history file at path.
func CreateHistory(path string) (*History, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return NewHistory(f), nil
}

// Append records op, stamping Time with now if it is zero. A write error is
// kept and returned by Close.
func (h *History) Append(op Op) {
	if op.Time.IsZero() {
		op.Time = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.err != nil || h.mu.closed {
		return
	}
	h.mu.err = h.mu.enc.Encode(op)
	h.mu.n++
}

// Len returns the number of ops appended.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.n
}

// Flush writes buffered lines out.
func (h *History) Flush() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.err == nil {
		h.mu.err = h.mu.w.Flush()
	}
	return h.mu.err
}

// Close flushes the history and closes its file.
func (h *History) Close() error {
	h.mu.Lock()
	if h.mu.closed {
		h.mu.Unlock()
		return nil
	}
	h.mu.closed = true
	if h.mu.err == nil {
		h.mu.err = h.mu.w.Flush()
	}
	err := h.mu.err
	h.mu.Unlock()
	if h.closer != nil {
		if cerr := h.closer.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// ReadHistory parses a JSON-lines history. A malformed line is an error
// naming its line number; a truncated last line (a run that was killed
// mid-write) is skipped.
func ReadHistory(r io.Reader) ([]Op, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 16<<20)
	var ops []Op
	var pendingErr error
	line := 0
	for sc.Scan() {
		line++
		if pendingErr != nil {
			return nil, pendingErr
		}
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var op Op
		if err := json.Unmarshal(b, &op); err != nil {
			// Only the last line may be torn; decide when we see
			// whether another follows.
			pendingErr = fmt.Errorf("history line %d: %w", line, err)
			continue
		}
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return ops, nil
}

// ReadHistoryFile reads the history at path.
func ReadHistoryFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	return ReadHistory(f)
}
