package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ClusterConfig describes a cluster of `raftka start` processes.
type ClusterConfig struct {
	// Binary is the raftka executable; it is run with `start`.
	Binary string
	// Nodes is the number of brokers (1–9).
	Nodes int
	// Dir holds each broker's data and log, in node-<id>/.
	Dir string
	// IPBase places broker i on 127.0.0.(IPBase+i). Linux routes all of
	// 127/8 to the loopback interface, so no setup is needed.
	IPBase int
	// BrokerArgs are appended to every `raftka start` command line.
	BrokerArgs []string
	// History, when set, receives a note when a broker exits on its own.
	History *History
	Logger  *slog.Logger
}

// Cluster runs brokers as `raftka start` processes, each on its own
// loopback address with a Proxy in front of its Raft and Kafka listeners.
// Brokers advertise the proxies, so all Raft and client traffic passes
// through them; gossip does not (memberlist finds peers by the gossip
// addresses, and brokers also heartbeat over Raft).
type Cluster struct {
	cfg    ClusterConfig
	log    *slog.Logger
	Broker []*BrokerProcess // Broker[i] has node id i+1
}

// BrokerProcess is one broker: its addresses, proxies and process.
type BrokerProcess struct {
	ID         int32
	IP         string
	KafkaAddr  string // where the broker listens
	RaftAddr   string
	GossipAddr string
	AdminAddr  string
	KafkaProxy *Proxy
	RaftProxy  *Proxy
	DataDir    string
	LogPath    string

	c  *Cluster
	mu struct {
		sync.Mutex
		cmd     *exec.Cmd
		exited  chan struct{} // closed when cmd exits
		err     error         // cmd's exit error, once exited
		paused  bool
		stopped bool // we stopped it on purpose (kill, term)
	}
}

// StartCluster sets up the proxies and launches every broker, then waits
// until all are healthy.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes < 1 || cfg.Nodes > 9 {
		return nil, fmt.Errorf("cluster: %d nodes, want 1 to 9", cfg.Nodes)
	}
	if cfg.IPBase <= 0 {
		cfg.IPBase = 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	for i := 1; i <= cfg.Nodes; i++ {
		b, err := c.newBroker(int32(i))
		if err != nil {
			return nil, err
		}
		c.Broker = append(c.Broker, b)
	}
	for _, b := range c.Broker {
		if err := b.Launch(); err != nil {
			return nil, err
		}
	}
	if err := c.WaitHealthy(ctx, 90*time.Second); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

func (c *Cluster) newBroker(id int32) (*BrokerProcess, error) {
	ip := fmt.Sprintf("127.0.0.%d", c.cfg.IPBase+int(id))
	b := &BrokerProcess{ID: id, IP: ip, c: c, DataDir: filepath.Join(c.cfg.Dir, fmt.Sprintf("node-%d", id))}
	b.LogPath = filepath.Join(b.DataDir, "raftka.log")
	if err := os.MkdirAll(b.DataDir, 0o755); err != nil {
		return nil, err
	}
	// The broker's ports stay reserved until its proxies hold their own
	// (ephemeral) ports on the same address, so that a proxy cannot be
	// given one of them, nor two of them be the same port.
	ports, release, err := reservePorts(ip, 4)
	if err != nil {
		return nil, fmt.Errorf("broker %d: no free port on %s: %w", id, ip, err)
	}
	defer release()
	join := func(p int) string { return net.JoinHostPort(ip, strconv.Itoa(p)) }
	b.KafkaAddr, b.RaftAddr, b.GossipAddr, b.AdminAddr = join(ports[0]), join(ports[1]), join(ports[2]), join(ports[3])
	if b.KafkaProxy, err = NewProxy(fmt.Sprintf("kafka-%d", id), join(0), b.KafkaAddr, c.log); err != nil {
		return nil, fmt.Errorf("broker %d: kafka proxy: %w", id, err)
	}
	if b.RaftProxy, err = NewProxy(fmt.Sprintf("raft-%d", id), join(0), b.RaftAddr, c.log); err != nil {
		b.KafkaProxy.Close()
		return nil, fmt.Errorf("broker %d: raft proxy: %w", id, err)
	}
	return b, nil
}

// reservePorts returns n distinct TCP ports on ip, each also free for UDP
// (memberlist needs both), and holds them until release is called: ports
// that were merely free a moment ago can be handed out again by the next
// bind to port 0, which once gave a broker's admin port to something else
// and failed a chaos run at start.
func reservePorts(ip string, n int) (ports []int, release func(), err error) {
	var held []io.Closer
	release = func() {
		for _, c := range held {
			c.Close()
		}
	}
	for tries := 0; len(ports) < n; tries++ {
		if tries == 20*n {
			release()
			return nil, nil, errors.New("no port free for both TCP and UDP")
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			release()
			return nil, nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			ln.Close()
			continue
		}
		held = append(held, ln, udp)
		ports = append(ports, port)
	}
	return ports, release, nil
}

// KafkaAddrs returns the proxied Kafka addresses clients should use.
func (c *Cluster) KafkaAddrs() []string {
	out := make([]string, len(c.Broker))
	for i, b := range c.Broker {
		out[i] = b.KafkaProxy.Addr()
	}
	return out
}

// Node returns broker id.
func (c *Cluster) Node(id int32) *BrokerProcess { return c.Broker[id-1] }

// args is the command line of b.
func (b *BrokerProcess) args() []string {
	var join, voters []string
	for _, o := range b.c.Broker {
		if o != b {
			join = append(join, o.GossipAddr)
		}
		if o.ID <= 5 {
			voters = append(voters, strconv.Itoa(int(o.ID)))
		}
	}
	args := []string{"start",
		"--node-id", strconv.Itoa(int(b.ID)),
		"--data-dir", b.DataDir,
		"--kafka-addr", b.KafkaAddr,
		"--advertise-kafka-addr", b.KafkaProxy.Addr(),
		"--admin-addr", b.AdminAddr,
		"--raft-addr", b.RaftAddr,
		"--advertise-raft-addr", b.RaftProxy.Addr(),
		"--gossip-addr", b.GossipAddr,
		"--gossip-preset", "local",
		"--metadata-voters", strings.Join(voters, ","),
	}
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	}
	return append(args, b.c.cfg.BrokerArgs...)
}

// Launch starts the broker process (if it is not running) without
// waiting for it to be healthy.
func (b *BrokerProcess) Launch() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runningLocked() {
		return nil
	}
	logf, err := os.OpenFile(b.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== chaos: %s launching broker %d\n", time.Now().Format(time.RFC3339Nano), b.ID)
	for _, px := range []*Proxy{b.KafkaProxy, b.RaftProxy} {
		if err := px.Up(); err != nil {
			logf.Close()
			return err
		}
	}
	cmd := exec.Command(b.c.cfg.Binary, b.args()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = brokerSysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("broker %d: %w", b.ID, err)
	}
	exited := make(chan struct{})
	b.mu.cmd, b.mu.exited, b.mu.err, b.mu.paused, b.mu.stopped = cmd, exited, nil, false, false
	go func() {
		err := cmd.Wait()
		logf.Close()
		// Refuse connections while the broker is down, as its own
		// listeners would.
		b.KafkaProxy.Down()
		b.RaftProxy.Down()
		b.mu.Lock()
		b.mu.err = err
		stopped := b.mu.stopped
		b.mu.Unlock()
		close(exited)
		if !stopped {
			b.c.log.Error("broker exited on its own", "node", b.ID, "err", err)
			if h := b.c.cfg.History; h != nil {
				h.Append(Op{Type: OpCrash, Process: "nemesis", Nodes: []int32{b.ID},
					Error: fmt.Sprintf("broker %d exited on its own (%v); see %s", b.ID, err, b.LogPath)})
			}
		}
	}()
	return nil
}

func (b *BrokerProcess) runningLocked() bool {
	if b.mu.cmd == nil {
		return false
	}
	select {
	case <-b.mu.exited:
		return false
	default:
		return true
	}
}

// Running reports whether the process is alive (paused counts).
func (b *BrokerProcess) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runningLocked()
}

// Paused reports whether the process is stopped by SIGSTOP.
func (b *BrokerProcess) Paused() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.paused && b.runningLocked()
}

// signal sends sig to the process, if it runs.
func (b *BrokerProcess) signal(sig syscall.Signal) (<-chan struct{}, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.runningLocked() {
		return nil, nil
	}
	switch sig {
	case syscall.SIGSTOP:
		b.mu.paused = true
	case syscall.SIGCONT:
		b.mu.paused = false
	case syscall.SIGKILL, syscall.SIGTERM:
		b.mu.stopped = true
	}
	return b.mu.exited, b.mu.cmd.Process.Signal(sig)
}

// Kill SIGKILLs the broker and waits until it is gone.
func (b *BrokerProcess) Kill() error {
	// Refuse new connections from the moment of the kill, not only once
	// the exit is reaped: a proxy that accepts and finds no broker behind
	// it hangs up, which clients take for a TLS mismatch.
	b.KafkaProxy.Down()
	b.RaftProxy.Down()
	exited, err := b.signal(syscall.SIGKILL)
	if err != nil || exited == nil {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("broker %d did not die after SIGKILL", b.ID)
	}
}

// Terminate SIGTERMs the broker and waits up to grace for it to exit
// (continuing it first if paused), then kills it.
func (b *BrokerProcess) Terminate(grace time.Duration) error {
	if _, err := b.signal(syscall.SIGCONT); err != nil {
		return err
	}
	exited, err := b.signal(syscall.SIGTERM)
	if err != nil || exited == nil {
		return err
	}
	select {
	case <-exited:
		b.mu.Lock()
		err := b.mu.err
		b.mu.Unlock()
		if err != nil {
			return fmt.Errorf("broker %d exited after SIGTERM: %w", b.ID, err)
		}
		return nil
	case <-time.After(grace):
		_ = b.Kill()
		return fmt.Errorf("broker %d did not stop within %v of SIGTERM; killed", b.ID, grace)
	}
}

// Pause SIGSTOPs the broker.
func (b *BrokerProcess) Pause() error { _, err := b.signal(syscall.SIGSTOP); return err }

// Resume SIGCONTs the broker.
func (b *BrokerProcess) Resume() error { _, err := b.signal(syscall.SIGCONT); return err }

// Healthy reports whether /healthz answers 200.
func (b *BrokerProcess) Healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.AdminAddr+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitHealthy waits until the broker is healthy, failing early if its
// process exits.
func (b *BrokerProcess) WaitHealthy(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if b.Healthy(ctx) {
			return nil
		}
		b.mu.Lock()
		exited := b.mu.exited
		b.mu.Unlock()
		select {
		case <-exited:
			return fmt.Errorf("broker %d exited while starting; see %s", b.ID, b.LogPath)
		case <-ctx.Done():
			return fmt.Errorf("broker %d not healthy after %v; see %s", b.ID, d, b.LogPath)
		case <-tick.C:
		}
	}
}

// WaitHealthy waits until every broker is healthy.
func (c *Cluster) WaitHealthy(ctx context.Context, d time.Duration) error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, b := range c.Broker {
		wg.Go(func() {
			if err := b.WaitHealthy(ctx, d); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Stop terminates every broker and closes the proxies.
func (c *Cluster) Stop() error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, b := range c.Broker {
		wg.Go(func() {
			if err := b.Terminate(15 * time.Second); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, b := range c.Broker {
		b.KafkaProxy.Close()
		b.RaftProxy.Close()
	}
	return errors.Join(errs...)
}
