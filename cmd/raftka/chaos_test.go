package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftka/raftka/chaos"
	"github.com/twmb/franz-go/pkg/kfake"
)

// writeHistory writes ops as a history file and returns its path.
func writeHistory(t *testing.T, ops []chaos.Op) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(f)
	for _, op := range ops {
		if err := enc.Encode(op); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// smallHistory is two records written and read; lose drops the read of the
// second, which the final read claims to have covered.
func smallHistory(lose bool) []chaos.Op {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ops := []chaos.Op{
		{Type: chaos.OpSeek, Process: "r1", Time: at(0), Partition: 0, Offset: 0},
		{Type: chaos.OpSend, Process: "p1", Start: at(1), Time: at(2), Partition: 0, Offset: 0, Value: "a", Outcome: chaos.OutcomeOK},
		{Type: chaos.OpSend, Process: "p1", Start: at(3), Time: at(4), Partition: 0, Offset: 1, Value: "b", Outcome: chaos.OutcomeOK},
		{Type: chaos.OpPoll, Process: "r1", Time: at(5), Partition: 0, Offset: 0, Value: "a"},
	}
	if !lose {
		ops = append(ops, chaos.Op{Type: chaos.OpPoll, Process: "r1", Time: at(6), Partition: 0, Offset: 1, Value: "b"})
	}
	return append(ops, chaos.Op{Type: chaos.OpFinal, Process: "r1", Time: at(7), Partition: 0, Offset: 2, Complete: true})
}

func TestChaosCheckCommand(t *testing.T) {
	t.Parallel()
	clean := mustRun(t, "", "chaos", "check", writeHistory(t, smallHistory(false)))
	if !strings.Contains(clean.stdout, "result: valid, no anomalies") {
		t.Fatalf("clean history:\n%s", clean.stdout)
	}

	out := filepath.Join(t.TempDir(), "reports")
	r := runCLI(t, "", "chaos", "check", writeHistory(t, smallHistory(true)), "--out", out)
	if r.code != exitError {
		t.Fatalf("lossy history: exit %d, want %d\n%s%s", r.code, exitError, r.stdout, r.stderr)
	}
	for _, want := range []string{"lost-write: 1 found", `p1 acknowledged "b" at partition 0 offset 1`, "result: INVALID: lost-write"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, f := range []string{chaos.ReportFile, chaos.ResultFile, chaos.TimelineFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("--out %s: %v", f, err)
		}
	}
}

func TestChaosCheckErrors(t *testing.T) {
	t.Parallel()
	if r := runCLI(t, "", "chaos", "check"); r.code != exitUsage {
		t.Fatalf("no history: exit %d\n%s", r.code, r.stderr)
	}
	r := runCLI(t, "", "chaos", "check", filepath.Join(t.TempDir(), "missing.jsonl"))
	if r.code != exitError || !strings.Contains(r.stderr, "missing.jsonl") {
		t.Fatalf("missing history: exit %d\n%s", r.code, r.stderr)
	}
	bad := writeFile(t, "bad.jsonl", "{}\nnot json\n{}\n")
	if r := runCLI(t, "", "chaos", "check", bad); r.code != exitError || !strings.Contains(r.stderr, "line 2") {
		t.Fatalf("corrupt history: exit %d\n%s", r.code, r.stderr)
	}
}

func TestChaosUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"chaos", "--faults", "meteor"}, `unknown fault "meteor"`},
		{[]string{"chaos", "--nodes", "0"}, "nodes must be 1 to 9"},
		{[]string{"chaos", "--nodes", "2", "--replicas", "3"}, "replicas (3) cannot exceed nodes (2)"},
		{[]string{"chaos", "--fault-cmd", "kill=true"}, "need --brokers"},
		{[]string{"chaos", "--brokers", "127.0.0.1:1", "--fault-cmd", "kill"}, "want KIND='shell command'"},
		{[]string{"chaos", "--brokers", "127.0.0.1:1", "--faults", "pause", "--fault-cmd", "kill=true"}, "fault pause needs --fault-cmd pause="},
		{[]string{"chaos", "extra"}, "unknown command"},
	}
	for _, tc := range cases {
		r := runCLI(t, "", tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("raftka %s: exit %d, want %d with %q\n%s", strings.Join(tc.args, " "), r.code, exitUsage, tc.want, r.stderr)
		}
	}
}

// TestChaosAgainstBrokers runs `raftka chaos --brokers` against franz-go's
// fake Kafka with a fault command, end to end through the CLI.
func TestChaosAgainstBrokers(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs for ~10 s")
	}
	fake, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	out := t.TempDir()
	marks := filepath.Join(out, "marks")
	te := newTestEnv("")
	code := run(t.Context(), &te.env, []string{"chaos", "--brokers", strings.Join(fake.ListenAddrs(), ","),
		"--duration", "8s", "--seed", "5", "--rate", "100", "--catch-up", "15s", "--out", out,
		"--fault-cmd", "pause=echo pause {node} >> " + marks, "--heal-cmd", "echo heal $CHAOS_FAULT >> " + marks})
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, te.stdoutBuf.String(), te.stderrBuf.String())
	}
	if !strings.Contains(te.stdoutBuf.String(), "result: valid") {
		t.Fatalf("stdout:\n%s", te.stdoutBuf.String())
	}
	m, _ := os.ReadFile(marks)
	if !strings.Contains(string(m), "pause ") || !strings.Contains(string(m), "heal all") {
		t.Fatalf("fault commands:\n%s\nstderr:\n%s", m, te.stderrBuf.String())
	}
}
