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
	"strings"
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

// freePorts returns n distinct loopback ports that were free a moment ago.
// They are held open until all n are chosen: ports each closed at once
// could come back from the next bind to port 0, giving a node one port
// twice.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// node is one `raftka start` process and the ports it keeps across
// restarts.
type node struct {
	t          *testing.T
	dataDir    string
	kafkaPort  int
	adminPort  int
	raftPort   int
	gossipPort int
	extra      []string
	cmd        *exec.Cmd
	// exit is the running process's exit, one per launch (a goroutine
	// left over from an earlier launch writes only its own).
	exit *exit
}

// exit is how one launched process ended. done is closed once it has been
// reaped; err is its exit error, valid once done is closed. Closing rather
// than sending lets waitHealthy and kill both see the exit.
type exit struct {
	done chan struct{}
	err  error
}

// newNode returns a node on four fresh ports. Nodes meant to run together
// take their ports from one freePorts call through newNodes, so that no node
// is handed a port another has chosen but not yet bound.
func newNode(t *testing.T) *node {
	return newNodes(t, 1)[0]
}

// newNodes returns n nodes on 4n distinct ports.
func newNodes(t *testing.T, n int) []*node {
	p := freePorts(t, 4*n)
	nodes := make([]*node, n)
	for i := range nodes {
		q := p[4*i:]
		nodes[i] = &node{t: t, dataDir: t.TempDir(), kafkaPort: q[0], adminPort: q[1],
			raftPort: q[2], gossipPort: q[3]}
	}
	return nodes
}

func (n *node) kafkaAddr() string  { return "127.0.0.1:" + strconv.Itoa(n.kafkaPort) }
func (n *node) adminAddr() string  { return "127.0.0.1:" + strconv.Itoa(n.adminPort) }
func (n *node) gossipAddr() string { return "127.0.0.1:" + strconv.Itoa(n.gossipPort) }

// start runs the process and waits until /healthz answers 200.
func (n *node) start() {
	n.t.Helper()
	n.launch()
	n.waitHealthy(30 * time.Second)
}

// kill sends SIGKILL and waits for the process to go.
func (n *node) kill() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-n.exit.done:
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
	case <-n.exit.done:
		n.cmd = nil
		return n.exit.err
	case <-ctx.Done():
		return fmt.Errorf("no exit after SIGTERM: %w", ctx.Err())
	}
}

// launch runs the process like start but does not wait for /healthz: a
// broker of a multi-voter cluster is healthy only once a majority of the
// metadata voters is up, so a cluster's nodes are launched together and
// then waited for with waitHealthy.
func (n *node) launch() {
	n.t.Helper()
	args := append([]string{"start", "--data-dir", n.dataDir, "--kafka-addr", n.kafkaAddr(), "--admin-addr", n.adminAddr(),
		"--raft-addr", "127.0.0.1:" + strconv.Itoa(n.raftPort), "--gossip-addr", n.gossipAddr(), "--gossip-preset", "local"}, n.extra...)
	n.cmd = exec.Command(binary, args...)
	logf, err := os.OpenFile(filepath.Join(n.dataDir, "raftka.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	e := &exit{done: make(chan struct{})}
	n.exit = e
	cmd := n.cmd
	go func() { e.err = cmd.Wait(); logf.Close(); close(e.done) }()
	n.t.Cleanup(func() { n.kill() })
}

// waitHealthy waits until /healthz answers 200, failing the test (with the
// tail of the log) if the process exits or d passes.
func (n *node) waitHealthy(d time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get("http://" + n.adminAddr() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-n.exit.done:
			n.t.Fatalf("raftka exited during startup: %v\n%s", n.exit.err, n.logTail(100))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("raftka did not become healthy in %v\n%s", d, n.logTail(100))
		}
	}
}

// running reports whether the process was started and not yet stopped or
// killed through the node.
func (n *node) running() bool { return n.cmd != nil }

// logTail returns the last lines of the process's log.
func (n *node) logTail(lines int) string {
	data, err := os.ReadFile(filepath.Join(n.dataDir, "raftka.log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = append([]string{fmt.Sprintf("... (%d earlier lines)", len(all)-lines)}, all[len(all)-lines:]...)
	}
	return strings.Join(all, "\n")
}
