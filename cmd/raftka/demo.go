package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftka/raftka/broker"
	"github.com/spf13/cobra"
)

// maxDemoNodes is the largest demo cluster: every demo broker is a metadata
// voter, and a controller quorum has at most 5 voters until brokers can
// join it as learners.
const maxDemoNodes = 5

// demoReadyTimeout bounds how long the demo waits for every broker to
// register in the metadata log. Brokers in one process find each other in
// well under a second; a minute leaves room for a loaded machine.
const demoReadyTimeout = time.Minute

// demoOptions are the flags of `raftka demo`.
type demoOptions struct {
	nodes         int
	basePort      int
	adminBasePort int
	storage       string
	dataDir       string
	keep          bool
	logLevel      string
	logFormat     string
}

func newDemoCmd(e *env) *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole cluster of brokers in this one process",
		Long: `Run a cluster of --nodes brokers (default 3) in this one process, for trying
Raftka out: every partition can be replicated across them, and they elect
leaders and a controller just as separate 'raftka start' processes do.

Broker i (from 1) serves Kafka on 127.0.0.1:<base-port + i - 1> and /healthz and
/metrics on 127.0.0.1:<admin-base-port + i - 1>. Raft and gossip use free
ports. Every broker is a voter of the controller quorum, so --nodes is at most
5. Topics created with replication factor -1 get min(3, --nodes) replicas.

With --storage pebble (the default) the data lives in a temporary directory
that is removed on exit, unless --keep or --data-dir is given. The demo prints
the bootstrap servers once every broker is ready, then runs until SIGINT
(Ctrl-C) or SIGTERM and stops the brokers cleanly; a second signal exits at
once.`,
		Example: `  # Three brokers on 127.0.0.1:9092, 9093 and 9094
  raftka demo

  # In another terminal: a topic replicated on all three, written and read back
  raftka topic create orders --partitions 6 --replicas 3
  printf 'one\ntwo\nthree\n' | raftka produce orders
  raftka consume orders --from-beginning -n 3

  # Five brokers on other ports, nothing on disk
  raftka demo --nodes 5 --base-port 19092 --admin-base-port 0 --storage memory`,
		Args:             positional(cobra.NoArgs),
		PersistentPreRun: func(*cobra.Command, []string) { e.tuneRuntime() },
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return usageError(cmd, "%v", err)
			}
			return o.run(cmd.Context(), e)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.nodes, "nodes", 3, fmt.Sprintf("number of brokers, 1 to %d (all are metadata voters)", maxDemoNodes))
	f.IntVar(&o.basePort, "base-port", 9092, "Kafka port of broker 1; broker i listens on base-port + i - 1")
	f.IntVar(&o.adminBasePort, "admin-base-port", 9644, "admin (/healthz, /metrics) port of broker 1, then consecutive; 0 disables the admin servers")
	f.StringVar(&o.storage, "storage", broker.StoragePebble, "storage engine: pebble (in a temporary directory) or memory")
	f.StringVar(&o.dataDir, "data-dir", "", "directory for the brokers' pebble data, kept on exit (default: a new temporary directory)")
	f.BoolVar(&o.keep, "keep", false, "keep the temporary data directory on exit and print its path")
	f.StringVar(&o.logLevel, "log-level", "warn", "log level of the brokers: debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

// validate returns every problem with the flags at once.
func (o *demoOptions) validate() error {
	var errs []error
	if o.nodes < 1 || o.nodes > maxDemoNodes {
		errs = append(errs, fmt.Errorf("--nodes must be between 1 and %d, got %d: every demo broker is a metadata voter, and a controller quorum has at most %d voters (brokers that are not voters are not supported yet)",
			maxDemoNodes, o.nodes, maxDemoNodes))
	}
	validRange := func(flag string, base int) {
		if base < 1 || base+o.nodes-1 > 65535 {
			errs = append(errs, fmt.Errorf("--%s %d: the ports %d..%d must be between 1 and 65535", flag, base, base, base+o.nodes-1))
		}
	}
	validRange("base-port", o.basePort)
	if o.adminBasePort != 0 {
		validRange("admin-base-port", o.adminBasePort)
		if o.adminBasePort < o.basePort+o.nodes && o.basePort < o.adminBasePort+o.nodes {
			errs = append(errs, fmt.Errorf("--admin-base-port %d overlaps the Kafka ports %d..%d", o.adminBasePort, o.basePort, o.basePort+o.nodes-1))
		}
	}
	switch o.storage {
	case broker.StoragePebble:
	case broker.StorageMemory:
		if o.dataDir != "" || o.keep {
			errs = append(errs, errors.New("--data-dir and --keep need --storage pebble"))
		}
	default:
		errs = append(errs, fmt.Errorf("--storage must be %s or %s, got %q", broker.StoragePebble, broker.StorageMemory, o.storage))
	}
	if _, err := newLogger(io.Discard, o.logLevel, o.logFormat); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// kafkaAddr and adminAddr are broker i's (from 0) listener addresses.
func (o *demoOptions) kafkaAddr(i int) string { return "127.0.0.1:" + strconv.Itoa(o.basePort+i) }

func (o *demoOptions) adminAddr(i int) string {
	if o.adminBasePort == 0 {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(o.adminBasePort+i)
}

func (o *demoOptions) run(ctx context.Context, e *env) error {
	log, err := newLogger(e.stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	// Subscribe before starting, so that a signal during startup stops the
	// brokers cleanly instead of killing them half-started.
	sigs, stop := e.signals()
	defer stop()
	if err := o.checkPorts(); err != nil {
		return err
	}

	dir, removeDir := o.dataDir, false
	if o.storage == broker.StoragePebble && dir == "" {
		if dir, err = os.MkdirTemp("", "raftka-demo-"); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		removeDir = !o.keep
	}
	defer func() {
		switch {
		case removeDir:
			if err := os.RemoveAll(dir); err != nil {
				fmt.Fprintf(e.stderr, "warning: removing %s: %v\n", dir, err)
			}
		case dir != "":
			fmt.Fprintf(e.stderr, "data kept in %s\n", dir)
		}
	}()
	if dir != "" {
		fmt.Fprintf(e.stderr, "data in %s\n", dir)
	}

	c, err := o.startBrokers(log, dir)
	if err != nil {
		return err
	}
	if len(c.brokers) == 1 {
		fmt.Fprintln(e.stderr, "started 1 broker; waiting for it to register")
	} else {
		fmt.Fprintf(e.stderr, "started %d brokers; waiting for them to elect a controller and register\n", len(c.brokers))
	}

	// Wait for every broker to register, or a signal.
	readyCtx, cancelReady := context.WithTimeout(ctx, demoReadyTimeout)
	defer cancelReady()
	ready := make(chan error, 1)
	go func() { ready <- c.waitReady(readyCtx) }()
	select {
	case err := <-ready:
		if err != nil {
			c.close()
			return fmt.Errorf("%w\nhint: rerun with --log-level info to see what the brokers are doing", err)
		}
	case sig := <-sigs:
		cancelReady()
		<-ready
		fmt.Fprintf(e.stderr, "received %v during startup, shutting down\n", sig)
		return c.close()
	}
	o.printWelcome(e.stdout, c)

	// Run until a signal, or until a broker stops by itself (a fatal
	// storage error): then stop them all and report it.
	stopCtx, cancelStop := context.WithCancel(ctx)
	defer cancelStop()
	for _, b := range c.brokers {
		go func() {
			select {
			case <-b.Done():
				cancelStop()
			case <-stopCtx.Done():
			}
		}()
	}
	if err := awaitShutdown(stopCtx, sigs, c.close, e.stderr, e.exit); err != nil {
		return err
	}
	var errs []error
	for _, b := range c.brokers {
		if err := b.Err(); err != nil {
			errs = append(errs, fmt.Errorf("broker %d stopped: %w", b.NodeID(), err))
		}
	}
	return errors.Join(errs...)
}

// checkPorts fails, naming the port and the flag to change, if one of the
// fixed listener ports is taken. It runs before any broker starts, so a
// clash is reported without a half-started cluster.
func (o *demoOptions) checkPorts() error {
	check := func(addr, what, flag string) error {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln.Close()
		}
		hint := fmt.Sprintf("another process (another raftka?) uses it: stop it, or choose another range with %s", flag)
		if !errors.Is(err, syscall.EADDRINUSE) {
			hint = "choose another range with " + flag
		}
		_, port, _ := net.SplitHostPort(addr)
		return fmt.Errorf("port %s (%s) is not available: %w\nhint: %s", port, what, err, hint)
	}
	for i := range o.nodes {
		if err := check(o.kafkaAddr(i), fmt.Sprintf("Kafka listener of broker %d", i+1), "--base-port, e.g. --base-port 19092"); err != nil {
			return err
		}
		if a := o.adminAddr(i); a != "" {
			if err := check(a, fmt.Sprintf("admin server of broker %d", i+1), "--admin-base-port, or disable the admin servers with --admin-base-port 0"); err != nil {
				return err
			}
		}
	}
	return nil
}

// demoCluster is the demo's running brokers.
type demoCluster struct {
	brokers []*broker.Broker
	once    sync.Once
	err     error
}

// startBrokers creates and starts every broker; the later ones join the
// first one's gossip. On failure it stops those already started.
func (o *demoOptions) startBrokers(log *slog.Logger, dir string) (*demoCluster, error) {
	voters := make([]uint64, o.nodes)
	for i := range voters {
		voters[i] = uint64(i + 1)
	}
	c := &demoCluster{}
	for i := range o.nodes {
		cfg := broker.DefaultConfig()
		cfg.NodeID = int32(i + 1)
		cfg.KafkaAddr = o.kafkaAddr(i)
		cfg.AdminAddr = o.adminAddr(i)
		cfg.RaftAddr = "127.0.0.1:0"
		cfg.GossipAddr = "127.0.0.1:0"
		cfg.GossipPreset = "local"
		cfg.MetadataVoters = voters
		cfg.Storage = o.storage
		cfg.DefaultReplicationFactor = int16(min(o.nodes, 3))
		if dir != "" {
			cfg.DataDir = filepath.Join(dir, fmt.Sprintf("broker-%d", i+1))
		}
		if i > 0 {
			cfg.Join = []string{c.brokers[0].GossipAddr()}
		}
		cfg.Logger = log
		b, err := broker.New(cfg)
		if err == nil {
			// Start releases what New opened when it fails.
			err = b.Start()
		}
		if err != nil {
			c.close()
			err = fmt.Errorf("broker %d did not start: %w", i+1, err)
			if errors.Is(err, syscall.EADDRINUSE) {
				err = fmt.Errorf("%w\nhint: a port is taken; choose other ports with --base-port or --admin-base-port", err)
			}
			return nil, err
		}
		c.brokers = append(c.brokers, b)
	}
	return c, nil
}

// waitReady waits until every broker has registered in the metadata log.
func (c *demoCluster) waitReady(ctx context.Context) error {
	for _, b := range c.brokers {
		if err := b.WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

// close stops every broker, all at once; it is safe to call more than once.
func (c *demoCluster) close() error {
	c.once.Do(func() {
		errs := make([]error, len(c.brokers))
		var wg sync.WaitGroup
		for i, b := range c.brokers {
			wg.Go(func() {
				if err := b.Close(); err != nil {
					errs[i] = fmt.Errorf("broker %d: %w", b.NodeID(), err)
				}
			})
		}
		wg.Wait()
		c.err = errors.Join(errs...)
	})
	return c.err
}

// printWelcome prints the bootstrap servers and what to try next.
func (o *demoOptions) printWelcome(w io.Writer, c *demoCluster) {
	addrs := make([]string, len(c.brokers))
	for i, b := range c.brokers {
		addrs[i] = b.Addr()
	}
	seeds := strings.Join(addrs, ",")
	fmt.Fprintf(w, "bootstrap servers: %s\n", seeds)
	brokersFlag := ""
	if seeds != "127.0.0.1:9092" && !strings.HasPrefix(seeds, "127.0.0.1:9092,") {
		brokersFlag = " --brokers " + seeds
	}
	fmt.Fprintf(w, "\nTry it:\n")
	fmt.Fprintf(w, "  kcat -L -b %s\n", seeds)
	fmt.Fprintf(w, "  raftka topic create orders --partitions 6 --replicas %d%s\n", min(o.nodes, 3), brokersFlag)
	fmt.Fprintf(w, "  printf 'one\\ntwo\\nthree\\n' | raftka produce orders%s\n", brokersFlag)
	fmt.Fprintf(w, "  raftka consume orders --from-beginning -n 3%s\n", brokersFlag)
	if a := c.brokers[0].AdminAddr(); a != "" {
		fmt.Fprintf(w, "  curl http://%s/metrics\n", a)
	}
	fmt.Fprintf(w, "\nCtrl-C stops the cluster.\n")
}
