package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Nemesis injects and heals faults.
type Nemesis interface {
	// Inject starts f and returns the brokers it hit and a description
	// of what it did (the leader it found, say).
	Inject(ctx context.Context, f Fault) (nodes []int32, desc string, err error)
	// Heal ends f.
	Heal(ctx context.Context, f Fault) error
	// HealAll ends every fault and brings every broker back.
	HealAll(ctx context.Context) error
}

// localNemesis applies faults to a Cluster: signals to its processes and
// blocks and delays in its proxies. It is safe for concurrent use, and
// faults may overlap: healing one partition or slow-down keeps the others
// that are still active.
type localNemesis struct {
	c     *Cluster
	topic string
	log   *slog.Logger
	adm   *kadm.Client

	// mu serializes the changes to processes and proxies, and guards hit.
	mu struct {
		sync.Mutex
		// hit maps the id of each active fault to what its injection
		// did, so that Heal undoes exactly that.
		hit map[int]nemesisHit
	}
}

type nemesisHit struct {
	action  string // kill, pause, partition, slow, none
	nodes   []int32
	variant string        // of a partition
	clients bool          // of a partition
	latency time.Duration // of a slow-down
}

var _ Nemesis = (*localNemesis)(nil)

func newLocalNemesis(c *Cluster, topic string, log *slog.Logger) (*localNemesis, error) {
	cl, err := kgo.NewClient(clientOpts(c.KafkaAddrs())...)
	if err != nil {
		return nil, err
	}
	n := &localNemesis{c: c, topic: topic, log: log, adm: kadm.NewClient(cl)}
	n.mu.hit = map[int]nemesisHit{}
	return n, nil
}

func (n *localNemesis) close() { n.adm.Close() }

func (n *localNemesis) Inject(ctx context.Context, f Fault) ([]int32, string, error) {
	hit := nemesisHit{action: f.Kind, nodes: f.Nodes, variant: f.Variant, clients: f.Clients, latency: f.Latency}
	desc := f.String()
	if f.Kind == FaultLeader {
		leader, what := n.findLeader(ctx, f.Partition)
		if leader > 0 {
			hit.nodes = []int32{leader}
			desc = fmt.Sprintf("leader %s node %d (%s)", f.Variant, leader, what)
		} else {
			desc = fmt.Sprintf("leader %s node %d (%s not found; scheduled fallback)", f.Variant, f.Nodes[0], what)
		}
		switch f.Variant {
		case LeaderKill:
			hit.action = FaultKill
		case LeaderPause:
			hit.action = FaultPause
		default:
			hit.action, hit.variant = FaultPartition, PartitionIsolate
		}
	}
	if hit.action == FaultSlow && len(hit.nodes) == 0 {
		for _, b := range n.c.Broker {
			hit.nodes = append(hit.nodes, b.ID)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var err error
	switch hit.action {
	case FaultKill:
		err = n.c.Node(hit.nodes[0]).Kill()
	case FaultPause:
		err = n.c.Node(hit.nodes[0]).Pause()
	case FaultPartition:
		n.partition(hit)
	case FaultSlow:
		n.slow(hit.nodes, hit.latency)
	case FaultRestartAll:
		if f.Variant == RestartCrash {
			err = n.crashAll(ctx)
		} else {
			err = n.restartAll(ctx, hit.nodes)
		}
		hit.action = "none"
	}
	n.mu.hit[f.ID] = hit
	return hit.nodes, desc, err
}

func (n *localNemesis) slow(nodes []int32, d time.Duration) {
	for _, id := range nodes {
		n.c.Node(id).RaftProxy.SetLatency(d)
		n.c.Node(id).KafkaProxy.SetLatency(d)
	}
}

// findLeader returns the leader of partition p of the topic, or the
// controller if p < 0.
func (n *localNemesis) findLeader(ctx context.Context, p int32) (int32, string) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	md, err := n.adm.Metadata(ctx, n.topic)
	if p < 0 {
		if err != nil || md.Controller < 0 {
			return -1, "controller"
		}
		return md.Controller, "controller"
	}
	what := fmt.Sprintf("leader of partition %d", p)
	if err != nil {
		return -1, what
	}
	pd, ok := md.Topics[n.topic].Partitions[p]
	if !ok || pd.Leader < 1 || int(pd.Leader) > len(n.c.Broker) {
		return -1, what
	}
	return pd.Leader, what
}

// partition blocks Raft traffic between hit.nodes and the rest, in the
// variant's directions; with hit.clients, the Kafka proxies of hit.nodes
// also blackhole every client.
func (n *localNemesis) partition(hit nemesisHit) {
	side := hit.nodes
	var rest []int32
	for _, b := range n.c.Broker {
		if !slices.Contains(side, b.ID) {
			rest = append(rest, b.ID)
		}
	}
	ips := func(ids []int32) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = n.c.Node(id).IP
		}
		return out
	}
	// A proxy in front of broker x blocking source y cuts y → x.
	cut := func(to, from []int32) {
		for _, id := range to {
			n.c.Node(id).RaftProxy.Block(Blackhole, ips(from)...)
		}
	}
	switch hit.variant {
	case PartitionInbound:
		cut(side, rest)
	case PartitionOutbnd:
		cut(rest, side)
	default: // isolate, split
		cut(side, rest)
		cut(rest, side)
	}
	if hit.clients {
		for _, id := range side {
			n.c.Node(id).KafkaProxy.Block(Blackhole, AnySource)
		}
	}
}

func (n *localNemesis) restartAll(ctx context.Context, order []int32) error {
	var errs []error
	for _, id := range order {
		b := n.c.Node(id)
		if err := b.Terminate(15 * time.Second); err != nil {
			errs = append(errs, err)
		}
		if err := b.Launch(); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := b.WaitHealthy(ctx, 60*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// crashAll SIGKILLs every broker at once, then starts them all and waits
// until they are healthy.
func (n *localNemesis) crashAll(ctx context.Context) error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, b := range n.c.Broker {
		wg.Go(func() {
			if err := b.Kill(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, b := range n.c.Broker {
		if err := b.Launch(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := n.c.WaitHealthy(ctx, 60*time.Second); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (n *localNemesis) Heal(ctx context.Context, f Fault) error {
	n.mu.Lock()
	hit := n.mu.hit[f.ID]
	delete(n.mu.hit, f.ID)
	var relaunched *BrokerProcess
	var err error
	switch hit.action {
	case FaultKill:
		relaunched = n.c.Node(hit.nodes[0])
		err = relaunched.Launch()
	case FaultPause:
		err = n.c.Node(hit.nodes[0]).Resume()
	case FaultPartition:
		// Lift every block, then put back those of the partitions
		// still in force.
		for _, b := range n.c.Broker {
			b.RaftProxy.Unblock()
			b.KafkaProxy.Unblock()
		}
		for _, other := range n.mu.hit {
			if other.action == FaultPartition {
				n.partition(other)
			}
		}
	case FaultSlow:
		n.slow(hit.nodes, 0)
		for _, other := range n.mu.hit {
			if other.action == FaultSlow {
				n.slow(other.nodes, other.latency)
			}
		}
	}
	n.mu.Unlock()
	if err == nil && relaunched != nil {
		err = relaunched.WaitHealthy(ctx, 60*time.Second)
	}
	return err
}

func (n *localNemesis) HealAll(ctx context.Context) error {
	var errs []error
	n.mu.Lock()
	clear(n.mu.hit)
	for _, b := range n.c.Broker {
		b.RaftProxy.Unblock()
		b.KafkaProxy.Unblock()
		b.RaftProxy.SetLatency(0)
		b.KafkaProxy.SetLatency(0)
		if b.Paused() {
			if err := b.Resume(); err != nil {
				errs = append(errs, err)
			}
		}
		if !b.Running() {
			if err := b.Launch(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	n.mu.Unlock()
	if err := n.c.WaitHealthy(ctx, 60*time.Second); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// commandNemesis applies faults by running the user's shell commands, for
// clusters the harness did not start.
type commandNemesis struct {
	faultCmds map[string]string
	healCmd   string
	seed      int64
	nodes     int
	out       io.Writer // the commands' output
	log       *slog.Logger
}

var _ Nemesis = (*commandNemesis)(nil)

// run runs cmd with sh -c. {node} in cmd, and $CHAOS_NODE, are the
// targeted broker (1-based); $CHAOS_NODES lists all targeted brokers,
// $CHAOS_FAULT is the fault kind ("all" for the final heal), $CHAOS_DETAIL
// describes the fault, $CHAOS_SEED is the run's seed.
func (n *commandNemesis) run(ctx context.Context, cmdline, kind string, f Fault) error {
	node := ""
	if len(f.Nodes) > 0 {
		node = strconv.Itoa(int(f.Nodes[0]))
	}
	cmdline = strings.ReplaceAll(cmdline, "{node}", node)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
	cmd.Env = append(os.Environ(),
		"CHAOS_FAULT="+kind,
		"CHAOS_NODE="+node,
		"CHAOS_NODES="+joinIDs(f.Nodes),
		"CHAOS_DETAIL="+f.String(),
		"CHAOS_LATENCY_MS="+strconv.FormatInt(f.Latency.Milliseconds(), 10),
		"CHAOS_SEED="+strconv.FormatInt(n.seed, 10),
	)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	fmt.Fprintf(n.out, "=== %s %s: %s\n%s", time.Now().Format(time.RFC3339Nano), kind, cmdline, buf.String())
	if err != nil {
		return fmt.Errorf("%s command %q: %w: %s", kind, cmdline, err, strings.TrimSpace(buf.String()))
	}
	return nil
}

func (n *commandNemesis) Inject(ctx context.Context, f Fault) ([]int32, string, error) {
	cmd, ok := n.faultCmds[f.Kind]
	if !ok {
		return nil, "", fmt.Errorf("no --fault-cmd for %s", f.Kind)
	}
	return f.Nodes, f.String(), n.run(ctx, cmd, f.Kind, f)
}

func (n *commandNemesis) Heal(ctx context.Context, f Fault) error {
	if n.healCmd == "" {
		return nil
	}
	return n.run(ctx, n.healCmd, f.Kind, f)
}

func (n *commandNemesis) HealAll(ctx context.Context) error {
	if n.healCmd == "" {
		return nil
	}
	all := Fault{Kind: "all"}
	for i := range n.nodes {
		all.Nodes = append(all.Nodes, int32(i)+1)
	}
	return n.run(ctx, n.healCmd, "all", all)
}
