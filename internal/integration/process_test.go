//go:build integration

package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// binary is the raftka binary built once for the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "raftka-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "raftka")
	build := exec.Command("go", "build", "-race", "-o", binary, "../../cmd/raftka")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building raftka:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// node is one `raftka start` process and the ports it keeps across
// restarts.
type node struct {
	t         *testing.T
	dataDir   string
	kafkaPort int
	adminPort int
	extra     []string
	cmd       *exec.Cmd
	exited    chan error
}

func newNode(t *testing.T, extra ...string) *node {
	return &node{t: t, dataDir: t.TempDir(), kafkaPort: freePort(t), adminPort: freePort(t), extra: extra}
}

func (n *node) kafkaAddr() string { return "127.0.0.1:" + strconv.Itoa(n.kafkaPort) }
func (n *node) adminAddr() string { return "127.0.0.1:" + strconv.Itoa(n.adminPort) }

// start runs the process and waits until /healthz answers 200.
func (n *node) start() {
	n.t.Helper()
	args := append([]string{"start", "--data-dir", n.dataDir, "--kafka-addr", n.kafkaAddr(), "--admin-addr", n.adminAddr()}, n.extra...)
	n.cmd = exec.Command(binary, args...)
	logf, err := os.OpenFile(filepath.Join(n.dataDir, "raftka.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.exited = make(chan error, 1)
	go func() { n.exited <- n.cmd.Wait(); logf.Close() }()
	n.t.Cleanup(func() { n.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + n.adminAddr() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-n.exited:
			log, _ := os.ReadFile(filepath.Join(n.dataDir, "raftka.log"))
			n.t.Fatalf("raftka exited during startup: %v\n%s", err, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.t.Fatal("raftka did not become healthy in 30s")
		}
	}
}

// kill sends SIGKILL and waits for the process to go.
func (n *node) kill() {
	if n.cmd == nil || n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		n.t.Error("process did not die after SIGKILL")
	}
	n.cmd = nil
}

// stop sends SIGTERM and returns the exit error (nil for status 0).
func (n *node) stop(ctx context.Context) error {
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-n.exited:
		n.cmd = nil
		return err
	case <-ctx.Done():
		return fmt.Errorf("no exit after SIGTERM: %w", ctx.Err())
	}
}
