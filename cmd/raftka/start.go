package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftka/raftka/broker"
	"github.com/spf13/cobra"
)

// startCommand is `raftka start`: it runs one broker until a signal.
type startCommand struct {
	env *env
	cmd *cobra.Command
	// flags holds the values the flags are bound to; resolveStartConfig
	// takes those set on the command line.
	flags      startConfig
	configFile string
}

func newStartCmd(e *env) *cobra.Command { return newStartCommand(e).cmd }

func newStartCommand(e *env) *startCommand {
	s := &startCommand{env: e, flags: defaultStartConfig()}
	s.cmd = &cobra.Command{
		Use:   "start",
		Short: "Run a broker",
		Long: `Run a Raftka broker in the foreground until SIGINT (Ctrl-C) or SIGTERM.

The broker serves the Kafka protocol on --kafka-addr and, on --admin-addr,
/healthz (200 once the broker serves) and Prometheus /metrics. On the first
signal it stops accepting, finishes in-flight requests and closes its storage;
a second signal exits at once with status 1.

Settings come from the defaults, then the --config file, then the flags given
on the command line, each overriding the one before. The file is YAML whose
keys are the flag names, plus settings without a flag:

  node-id: 1
  data-dir: /var/lib/raftka
  kafka-addr: 0.0.0.0:9092
  advertise-kafka-addr: kafka1.example.com:9092
  admin-addr: 127.0.0.1:9644     # "" disables the admin server
  storage: pebble                # or memory: nothing survives a restart
  cache-log-pages: false         # true keeps written batches in the page cache
  rack: eu-west-1a
  cluster-id: raftka
  metadata-voters: [1]
  raft-addr: 127.0.0.1:9093
  advertise-raft-addr: ""
  gossip-addr: 127.0.0.1:9094
  join: [127.0.0.1:19094]
  gossip-preset: lan             # or local: fast failure detection on one machine
  fence-after: 6s
  leader-balance-interval: 30s
  max-frame-bytes: 104857600
  max-inflight-requests: 32
  max-message-bytes: 1048588
  auto-create-topics: false
  default-partitions: 1
  default-replication-factor: 1
  max-fetch-wait: 30s
  shutdown-timeout: 10s
  offsets-topic-partitions: 50   # partitions of __consumer_offsets, fixed once created
  offsets-retention: 168h        # committed offsets of an empty group are kept this long
  group-initial-rebalance-delay: 3s
  group-min-session-timeout: 6s
  group-max-session-timeout: 30m
  log-level: info
  log-format: text

An unknown key is an error.`,
		Example: `  # A throwaway broker for development
  raftka start --storage memory

  # A durable broker on other ports, with JSON logs
  raftka start --data-dir /var/lib/raftka --kafka-addr 0.0.0.0:19092 \
    --advertise-kafka-addr kafka1.example.com:19092 --log-format json

  # A three-broker cluster on one machine (run each in its own terminal)
  raftka start --node-id 1 --data-dir d1 --kafka-addr 127.0.0.1:9092 --raft-addr 127.0.0.1:9192 \
    --gossip-addr 127.0.0.1:9292 --admin-addr 127.0.0.1:9644 --metadata-voters 1,2,3 --gossip-preset local
  raftka start --node-id 2 --data-dir d2 --kafka-addr 127.0.0.1:9093 --raft-addr 127.0.0.1:9193 \
    --gossip-addr 127.0.0.1:9293 --admin-addr 127.0.0.1:9645 --metadata-voters 1,2,3 --gossip-preset local \
    --join 127.0.0.1:9292
  (and node 3 likewise; 'raftka demo' does all of this in one process)

  # Settings from a file; the flag wins over the file's node-id
  raftka start --config raftka.yaml --node-id 2`,
		Args:             positional(cobra.NoArgs),
		PersistentPreRun: func(*cobra.Command, []string) { e.tuneRuntime() },
		RunE:             func(cmd *cobra.Command, _ []string) error { return s.run(cmd.Context()) },
	}
	f := s.cmd.Flags()
	c := &s.flags
	f.StringVar(&s.configFile, "config", "", "YAML file of settings; flags given on the command line override it")
	f.Int32Var(&c.NodeID, "node-id", c.NodeID, "broker id, unique in the cluster")
	f.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the broker's data (pebble storage)")
	f.StringVar(&c.KafkaAddr, "kafka-addr", c.KafkaAddr, "host:port the Kafka listener binds; port 0 picks a free port")
	f.StringVar(&c.AdvertiseKafkaAddr, "advertise-kafka-addr", c.AdvertiseKafkaAddr, "host:port clients are told to connect to (default: the bound --kafka-addr)")
	f.StringVar(&c.AdminAddr, "admin-addr", c.AdminAddr, `host:port serving /healthz and /metrics; "" disables it`)
	f.StringVar(&c.Storage, "storage", c.Storage, "storage engine: pebble (durable) or memory (lost on exit)")
	f.BoolVar(&c.CacheLogPages, "cache-log-pages", c.CacheLogPages, "keep written record batches in the OS page cache: faster reads of old data, more memory and CPU (default: written with direct I/O and evicted once synced)")
	f.BoolVar(&c.AutoCreateTopics, "auto-create-topics", c.AutoCreateTopics, "create unknown topics when clients ask for them")
	f.Int32Var(&c.DefaultPartitions, "default-partitions", c.DefaultPartitions, "partitions of auto-created topics and of create requests that ask for -1")
	f.StringVar(&c.Rack, "rack", c.Rack, "rack of this broker, for rack-aware replica placement")
	f.StringVar(&c.RaftAddr, "raft-addr", c.RaftAddr, "host:port the Raft transport binds, for replication between brokers")
	f.StringVar(&c.AdvertiseRaftAddr, "advertise-raft-addr", c.AdvertiseRaftAddr, "host:port other brokers use to reach --raft-addr (default: the bound address)")
	f.StringVar(&c.GossipAddr, "gossip-addr", c.GossipAddr, "host:port the gossip membership (memberlist) binds")
	f.StringSliceVar(&c.Join, "join", c.Join, "gossip addresses of brokers to join, comma-separated, e.g. 127.0.0.1:9094")
	f.StringVar(&c.GossipPreset, "gossip-preset", c.GossipPreset, "failure detection timing: lan, or local (fast, for brokers on one machine)")
	f.Var(idList{&c.MetadataVoters}, "metadata-voters", "broker ids of the controller quorum, comma-separated, e.g. 1,2,3 (default: this broker)")
	f.BoolVar(&c.UnsafeAckBeforeCommit, "unsafe-ack-before-commit", false, "acknowledge produce requests before Raft commits them: loses data; only for proving chaos checks")
	_ = f.MarkHidden("unsafe-ack-before-commit")
	f.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	f.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	return s
}

// config returns the settings to run with; see resolveStartConfig.
func (s *startCommand) config() (startConfig, error) {
	return resolveStartConfig(s.cmd.Flags(), &s.flags, s.configFile)
}

func (s *startCommand) run(ctx context.Context) error {
	e := s.env
	cfg, err := s.config()
	if err != nil {
		return fmt.Errorf("%w\nhint: see 'raftka start --help' for the settings and their values", err)
	}
	log, err := newLogger(e.stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	cfg.Logger = log

	// Subscribe before starting, so that a signal during startup shuts the
	// broker down cleanly instead of killing it half-started.
	sigs, stop := e.signals()
	defer stop()

	b, err := broker.New(cfg.Config)
	if err != nil {
		return startupError(err, cfg)
	}
	if err := b.Start(); err != nil {
		// Start releases what New opened when it fails; Close must not
		// run after it (the engine would be closed twice).
		return startupError(err, cfg)
	}
	admin := "admin server disabled"
	if a := b.AdminAddr(); a != "" {
		admin = fmt.Sprintf("admin on http://%s (/healthz, /metrics)", a)
	}
	fmt.Fprintf(e.stderr, "raftka broker %d serving Kafka on %s, %s, storage %s; Ctrl-C stops it\n",
		cfg.NodeID, b.Addr(), admin, cfg.Storage)

	readyCtx, cancelReady := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		reportReadiness(readyCtx, b, log, cfg.MetadataVoters)
	}()
	defer wg.Wait()
	defer cancelReady()
	// A broker that stops itself (a fatal storage error) ends the command
	// with its error, so supervisors see a failure and restart it.
	stopCtx, cancelStop := context.WithCancel(ctx)
	defer cancelStop()
	go func() {
		select {
		case <-b.Done():
			cancelStop()
		case <-stopCtx.Done():
		}
	}()
	if err := awaitShutdown(stopCtx, sigs, b.Close, e.stderr, e.exit); err != nil {
		return err
	}
	if err := b.Err(); err != nil {
		return fmt.Errorf("broker stopped: %w", err)
	}
	return nil
}

// readinessWarnAfter is how long a broker may take to register before the
// operator is told what it waits for.
const readinessWarnAfter = 10 * time.Second

// reportReadiness logs when the broker has registered in the metadata log,
// and warns if that takes long: a broker of a larger quorum waits for a
// majority of the voters.
func reportReadiness(ctx context.Context, b *broker.Broker, log *slog.Logger, voters []uint64) {
	warnCtx, cancel := context.WithTimeout(ctx, readinessWarnAfter)
	err := b.WaitReady(warnCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		log.Warn("broker not registered yet; it waits for a majority of the metadata voters to be up",
			"after", readinessWarnAfter, "metadata_voters", voters)
		if b.WaitReady(ctx) != nil {
			return
		}
	}
	log.Info("broker ready")
}

// awaitShutdown blocks until a signal arrives on sigs (or ctx ends), then
// runs closeFn. A second signal before closeFn returns exits the process at
// once with status 1.
func awaitShutdown(ctx context.Context, sigs <-chan os.Signal, closeFn func() error, stderr io.Writer, exit func(int)) error {
	select {
	case sig := <-sigs:
		fmt.Fprintf(stderr, "received %v, shutting down (send it again to exit at once)\n", sig)
	case <-ctx.Done():
		fmt.Fprintln(stderr, "shutting down")
	}
	done := make(chan error, 1)
	go func() { done <- closeFn() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		fmt.Fprintln(stderr, "broker stopped")
		return nil
	case sig := <-sigs:
		fmt.Fprintf(stderr, "received %v again, exiting without finishing shutdown\n", sig)
		exit(exitError)
		return failed() // reached only when exit does not end the process (tests)
	}
}

// startupError explains why the broker could not start and what to do.
// The broker's own messages name the flag for listener errors.
func startupError(err error, cfg startConfig) error {
	msg := err.Error()
	var hint string
	switch {
	case strings.Contains(msg, "invalid configuration"):
		hint = "fix the flags or the --config file; 'raftka start --help' describes them"
	case errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(msg, "--"):
		hint = "another process is using that port: stop it, or choose other --kafka-addr / --admin-addr ports"
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENOENT):
		hint = fmt.Sprintf("check that --data-dir %s can be created and written by this user, or use --storage memory", cfg.DataDir)
	case errors.Is(err, syscall.EAGAIN) || strings.Contains(msg, "lock"):
		// Pebble's lock file is held: flock fails with EAGAIN.
		hint = fmt.Sprintf("is another raftka using --data-dir %s? Stop it, or give this one its own --data-dir", cfg.DataDir)
	}
	err = fmt.Errorf("broker did not start: %w", err)
	if hint != "" {
		err = fmt.Errorf("%w\nhint: %s", err, hint)
	}
	return err
}
