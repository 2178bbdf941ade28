//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runChaos runs `raftka chaos` with args, its output in a temporary
// directory, and returns its exit code, stdout and stderr. On failure of
// the test, the report and the tails of the broker logs are logged.
func runChaos(t *testing.T, args ...string) (code int, stdout, stderr string, out string) {
	t.Helper()
	out = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"chaos", "--out", out}, args...)...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	began := time.Now()
	err := cmd.Run()
	t.Logf("raftka chaos %s: %v in %v", strings.Join(args, " "), err, time.Since(began).Round(time.Second))
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("raftka chaos: %v\n%s", err, se.String())
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("stdout:\n%s\nstderr:\n%s", so.String(), se.String())
		logs, _ := filepath.Glob(filepath.Join(out, "node-*", "raftka.log"))
		for _, l := range logs {
			data, _ := os.ReadFile(l)
			lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
			t.Logf("--- tail of %s ---\n%s", l, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return code, so.String(), se.String(), out
}

// TestChaosHealthyCluster is a short chaos run of kills and partitions on
// three brokers: a correct cluster comes out with no anomaly.
func TestChaosHealthyCluster(t *testing.T) {
	code, stdout, _, out := runChaos(t, "--nodes", "3", "--duration", "20s", "--faults", "kill,partition",
		"--seed", "1", "--rate", "200")
	if code != 0 || !strings.Contains(stdout, "result: valid, no anomalies") {
		t.Fatalf("exit %d, want 0 and a valid result\n%s", code, stdout)
	}
	for _, f := range []string{"history.jsonl", "report.txt", "result.json", "timeline.html", "schedule.txt"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}
	if !strings.Contains(stdout, "2 faults") && !strings.Contains(stdout, "3 faults") {
		t.Errorf("expected the scheduled faults in the report:\n%s", stdout)
	}
}

// TestChaosCatchesAckBeforeCommit proves the checker can fail: brokers that
// acknowledge produce requests before Raft commits them
// (--unsafe-ack-before-commit), with faults aimed at leaders (seed 9:
// isolate the controller, which leads partitions, then pause a partition
// leader), lose acknowledged writes, and the run says so by name.
func TestChaosCatchesAckBeforeCommit(t *testing.T) {
	code, stdout, _, _ := runChaos(t, "--nodes", "3", "--duration", "20s", "--faults", "leader",
		"--seed", "9", "--rate", "200", "--broker-arg=--unsafe-ack-before-commit")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (anomalies found)\n%s", code, stdout)
	}
	for _, want := range []string{"lost-write: ", "result: INVALID: lost-write"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
}
