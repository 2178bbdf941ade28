package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartServesUntilSignal runs `raftka start` in-process, uses the
// broker it started, and stops it with SIGTERM: exit 0, ports released.
func TestStartServesUntilSignal(t *testing.T) {
	t.Parallel()
	adminAddr := freeAddr(t)
	te := newTestEnv("")
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), &te.env, []string{"start", "--storage", "memory",
			"--kafka-addr", "127.0.0.1:0", "--admin-addr", adminAddr, "--log-level", "warn"})
	}()

	serving := regexp.MustCompile(`serving Kafka on (127\.0\.0\.1:\d+), admin on http://(\S+) `)
	var kafkaAddr string
	waitFor(t, 10*time.Second, "the serving line", func() bool {
		select {
		case code := <-done:
			t.Fatalf("start exited with %d:\n%s", code, te.stderrBuf.String())
		default:
		}
		m := serving.FindStringSubmatch(te.stderrBuf.String())
		if m != nil {
			kafkaAddr = m[1]
			if m[2] != adminAddr {
				t.Errorf("admin address printed as %s, want %s", m[2], adminAddr)
			}
		}
		return m != nil
	})
	waitFor(t, 10*time.Second, "/healthz 200", func() bool {
		resp, err := http.Get("http://" + adminAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	mustRun(t, "", "--brokers", kafkaAddr, "topic", "create", "from-start")
	if r := mustRun(t, "", "--brokers", kafkaAddr, "topic", "list"); !strings.Contains(r.stdout, "from-start") {
		t.Fatalf("topic list does not show the new topic:\n%s", r.stdout)
	}

	te.sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM, want 0:\n%s", code, te.stderrBuf.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("start did not return after SIGTERM:\n%s", te.stderrBuf.String())
	}
	if !strings.Contains(te.stderrBuf.String(), "broker stopped") {
		t.Errorf("no shutdown message:\n%s", te.stderrBuf.String())
	}
	for _, addr := range []string{kafkaAddr, adminAddr} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s not released after shutdown: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

// TestStartPortInUse checks that a taken Kafka port fails startup with a
// message naming the flag to change.
func TestStartPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := runCLI(t, "", "start", "--storage", "memory", "--kafka-addr", ln.Addr().String(), "--admin-addr", "", "--log-level", "error")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d:\n%s", r.code, exitError, r.stderr)
	}
	for _, w := range []string{"address already in use", "--kafka-addr"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not contain %q:\n%s", w, r.stderr)
		}
	}
}

// TestAwaitShutdownSecondSignal checks that a second signal during a slow
// shutdown exits at once with status 1.
func TestAwaitShutdownSecondSignal(t *testing.T) {
	t.Parallel()
	sigs := make(chan os.Signal, 2)
	exits := make(chan int, 1)
	closing := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	slowClose := func() error {
		close(closing)
		<-release
		return nil
	}
	done := make(chan error, 1)
	go func() {
		done <- awaitShutdown(context.Background(), sigs, slowClose, io.Discard, func(code int) { exits <- code })
	}()
	sigs <- syscall.SIGINT
	<-closing
	sigs <- syscall.SIGINT
	select {
	case code := <-exits:
		if code != 1 {
			t.Fatalf("exit code %d, want 1", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second signal did not exit")
	}
	var ee *exitCodeError
	if err := <-done; !errors.As(err, &ee) || ee.code != exitError {
		t.Fatalf("awaitShutdown returned %v, want exit status 1", err)
	}
}

// TestAwaitShutdownCleanClose checks the ordinary path: one signal, Close
// returns, no forced exit.
func TestAwaitShutdownCleanClose(t *testing.T) {
	t.Parallel()
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM
	closed := false
	err := awaitShutdown(context.Background(), sigs, func() error { closed = true; return nil }, io.Discard,
		func(code int) { t.Errorf("exit(%d) called", code) })
	if err != nil || !closed {
		t.Fatalf("awaitShutdown = %v, closed = %v", err, closed)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
