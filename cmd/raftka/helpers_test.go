package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raftka/raftka/broker"
	"github.com/raftka/raftka/internal/syncbuf"
)

// testEnv is an env with captured streams, a signal channel the test sends
// on, and an exit that records its code instead of ending the process.
type testEnv struct {
	env
	stdoutBuf, stderrBuf syncbuf.Buffer
	sigs                 chan os.Signal
	exits                chan int
}

func newTestEnv(stdin string) *testEnv {
	te := &testEnv{sigs: make(chan os.Signal, 2), exits: make(chan int, 2)}
	te.env = env{
		stdin:   strings.NewReader(stdin),
		stdout:  &te.stdoutBuf,
		stderr:  &te.stderrBuf,
		signals: func() (<-chan os.Signal, func()) { return te.sigs, func() {} },
		exit:    func(code int) { te.exits <- code },
	}
	return te
}

// result is the outcome of one raftka invocation.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs raftka with args in-process, with stdin as its input, and
// fails the test if it does not finish within 20 seconds.
func runCLI(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	return runCLIIn(t, newTestEnv(stdin), args...)
}

// runCLIIn is runCLI in an environment the test prepared.
func runCLIIn(t testing.TB, te *testEnv, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	began := time.Now()
	code := run(ctx, &te.env, args)
	if d := time.Since(began); d > time.Second {
		t.Logf("slow: raftka %s took %v", strings.Join(args, " "), d.Round(time.Millisecond))
	}
	if ctx.Err() != nil {
		t.Fatalf("raftka %s: did not finish in time\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), te.stdoutBuf.String(), te.stderrBuf.String())
	}
	return result{code: code, stdout: te.stdoutBuf.String(), stderr: te.stderrBuf.String()}
}

// mustRun runs raftka and fails the test unless it exits 0.
func mustRun(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	r := runCLI(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("raftka %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// quietLogger logs only warnings and errors, to stderr.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startTestBroker starts an in-memory broker on an ephemeral port and stops
// it when the test ends.
func startTestBroker(t testing.TB) *broker.Broker {
	t.Helper()
	cfg := broker.TestConfig()
	cfg.Logger = quietLogger()
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		began := time.Now()
		b.Close()
		if d := time.Since(began); d > time.Second {
			t.Logf("slow: broker Close took %v", d.Round(time.Millisecond))
		}
	})
	waitFor(t, 10*time.Second, "broker ready", b.Ready)
	return b
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// writeFile writes content to a new file in the test's temporary directory.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := t.TempDir() + "/" + name
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
