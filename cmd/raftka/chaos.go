package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/raftka/raftka/chaos"
	"github.com/spf13/cobra"
)

// chaosOptions are the flags of `raftka chaos`.
type chaosOptions struct {
	cfg        chaos.Config
	faults     []string
	faultCmds  []string
	brokerArgs []string
	binary     string
	seedSet    bool
	verbose    bool
}

func newChaosCmd(e *env, cf *clientFlags) *cobra.Command {
	o := &chaosOptions{cfg: chaos.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Run a cluster under faults and check what clients saw",
		Long: `Run a cluster under faults while clients work, record every operation the
clients saw, and check the history for lost, duplicated, reordered and
inconsistent records (in the manner of Jepsen's Kafka tests).

Without --brokers, chaos starts --nodes 'raftka start' processes, broker i on
its own loopback address 127.0.0.(10+i), with a TCP proxy in front of each
broker's Raft and Kafka listeners through which it partitions and slows the
network. It creates a topic, starts idempotent acks=all producers writing
unique values, readers that assign every partition and read from the start,
and readers in a consumer group (committing every second) if the cluster
serves groups. Faults follow a
schedule derived from --seed for --duration:

  kill         SIGKILL a broker; restart it when the fault heals
  pause        SIGSTOP a broker; SIGCONT it when the fault heals
  partition    cut Raft traffic: isolate a broker, split a minority off,
               or one way only; sometimes clients are cut off too
  slow         add latency to one broker's traffic, or everyone's
  leader       kill, pause or isolate the leader of a partition or the
               controller
  restart-all  restart every broker in turn (SIGTERM), or SIGKILL them all
               at once and start them again

Faults come one at a time, with a few seconds to recover in between;
--overlap starts a new fault every 1-4 s regardless, so they combine.

Then everything is healed, producers stop, readers read up to the end
offsets, and the checker looks for: lost-write, unseen-write, duplicate,
inconsistent-offset, ack-offset-mismatch, aborted-read, phantom-read,
non-monotonic-poll, skipped-poll and commit-backwards, and counts a crash
for every broker that exited without being told to. The report goes to
stdout; --out holds history.jsonl, report.txt, result.json, timeline.html,
schedule.txt and each broker's data and log. The exit status is 1 if any
anomaly was found.

With --brokers, chaos runs the same workload and checker against any Kafka
cluster, and injects each fault by running the shell command given with
--fault-cmd KIND='...' (and --heal-cmd to heal it). The commands see
$CHAOS_FAULT, $CHAOS_NODE (also substituted for {node}), $CHAOS_NODES,
$CHAOS_DETAIL, $CHAOS_LATENCY_MS and $CHAOS_SEED; the final heal has
CHAOS_FAULT=all.

'raftka chaos check HISTORY' checks a saved history again.`,
		Example: `  # One minute of kills, pauses and partitions on three brokers
  raftka chaos --nodes 3 --duration 60s --faults kill,pause,partition --seed 1

  # Five brokers, every fault, output kept in ./chaos-out
  raftka chaos --nodes 5 --faults kill,pause,partition,slow,leader,restart-all --seed 7 --out chaos-out

  # Your own cluster, faults by your commands
  raftka chaos --brokers k1:9092,k2:9092,k3:9092 --nodes 3 --faults kill \
    --fault-cmd kill='ssh k{node} sudo systemctl kill -s KILL kafka' \
    --heal-cmd 'for n in 1 2 3; do ssh k$n sudo systemctl start kafka; done'

  # Check a history again
  raftka chaos check chaos-out/history.jsonl`,
		Args: positional(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.resolve(cmd, cf); err != nil {
				return usageError(cmd, "%v", err)
			}
			return o.run(cmd.Context(), e)
		},
	}
	f := cmd.Flags()
	c := &o.cfg
	f.IntVar(&c.Nodes, "nodes", c.Nodes, "brokers to start (3 or 5); with --brokers, how many brokers the fault commands may target")
	f.DurationVar(&c.Duration, "duration", c.Duration, "how long to inject faults for")
	f.StringSliceVar(&o.faults, "faults", c.Faults, "fault kinds, comma-separated: "+strings.Join(chaos.FaultKinds, ",")+"; \"\" for none")
	f.BoolVar(&c.Overlap, "overlap", false, "let faults overlap: a new one every 1-4 s, whether or not the last has healed (at times no majority is up)")
	f.Int64Var(&c.Seed, "seed", 0, "seed of the fault schedule (default: from the clock, printed)")
	f.StringVar(&c.Out, "out", "", "directory for the history, reports and broker data (default: a new temporary directory)")
	f.Int32Var(&c.Partitions, "partitions", c.Partitions, "partitions of the test topic")
	f.Int16Var(&c.Replicas, "replicas", c.Replicas, "replication factor of the test topic (default: 3, or --nodes if fewer)")
	f.IntVar(&c.Producers, "producers", c.Producers, "idempotent acks=all producers")
	f.IntVar(&c.Readers, "readers", c.Readers, "readers that assign every partition (no group)")
	f.IntVar(&c.GroupReaders, "group-readers", c.GroupReaders, "members of a consumer group reading the topic, if the cluster serves groups; 0 for none")
	f.IntVar(&c.Rate, "rate", c.Rate, "records per second, all producers together")
	f.DurationVar(&c.CatchUp, "catch-up", c.CatchUp, "how long readers may take to reach the end offsets after healing")
	f.IntVar(&c.Examples, "examples", c.Examples, "examples to show per anomaly kind")
	f.StringArrayVar(&o.faultCmds, "fault-cmd", nil, "KIND='shell command' injecting a fault, with --brokers; repeatable")
	f.StringVar(&c.HealCmd, "heal-cmd", "", "shell command healing a fault (and, at the end, everything), with --brokers")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log the harness's warnings and client details to stderr")
	f.StringArrayVar(&o.brokerArgs, "broker-arg", nil, "extra argument of every 'raftka start', e.g. --broker-arg=--unsafe-ack-before-commit; repeatable")
	_ = f.MarkHidden("broker-arg")
	f.StringVar(&o.binary, "binary", "", "raftka executable to start brokers with (default: this one)")
	_ = f.MarkHidden("binary")
	cmd.AddCommand(newChaosCheckCmd(e))
	return cmd
}

// resolve turns the flags into the run's config.
func (o *chaosOptions) resolve(cmd *cobra.Command, cf *clientFlags) error {
	c := &o.cfg
	o.seedSet = cmd.Flags().Changed("seed")
	if !o.seedSet {
		c.Seed = time.Now().UnixNano() % 1_000_000
	}
	c.Faults = nil
	for _, f := range o.faults {
		if f = strings.TrimSpace(f); f != "" {
			c.Faults = append(c.Faults, f)
		}
	}
	if len(o.faultCmds) > 0 {
		c.FaultCmds = map[string]string{}
	}
	for _, fc := range o.faultCmds {
		kind, command, ok := strings.Cut(fc, "=")
		if !ok || strings.TrimSpace(command) == "" {
			return fmt.Errorf("--fault-cmd %q: want KIND='shell command'", fc)
		}
		c.FaultCmds[strings.TrimSpace(kind)] = command
	}
	c.BrokerArgs = o.brokerArgs
	if cmd.Flags().Changed("brokers") {
		seeds, err := cf.seeds()
		if err != nil {
			return err
		}
		c.Brokers = seeds
		if !cmd.Flags().Changed("nodes") {
			c.Nodes = len(seeds)
		}
		if !cmd.Flags().Changed("faults") {
			// Against an outside cluster, inject what there are
			// commands for.
			c.Faults = nil
			for _, k := range chaos.FaultKinds {
				if _, ok := c.FaultCmds[k]; ok {
					c.Faults = append(c.Faults, k)
				}
			}
		}
	} else {
		c.Binary = o.binary
		if c.Binary == "" {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the raftka binary: %w (give --binary)", err)
			}
			c.Binary = exe
		}
	}
	if !cmd.Flags().Changed("replicas") {
		c.Replicas = int16(min(3, max(c.Nodes, 1)))
	}
	return c.Validate()
}

func (o *chaosOptions) run(ctx context.Context, e *env) error {
	c := &o.cfg
	if c.Out == "" {
		dir, err := os.MkdirTemp("", fmt.Sprintf("raftka-chaos-%d-", c.Seed))
		if err != nil {
			return err
		}
		c.Out = dir
	}
	level := slog.LevelError
	if o.verbose {
		level = slog.LevelInfo
	}
	c.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	c.Progress = e.stderr
	if !o.seedSet {
		fmt.Fprintf(e.stderr, "chaos: seed %d (repeat the run with --seed %d)\n", c.Seed, c.Seed)
	}
	ctx, cancel := e.interruptible(ctx)
	defer cancel()
	res, err := chaos.Run(ctx, *c)
	if err != nil {
		return fmt.Errorf("chaos run (output in %s): %w", c.Out, err)
	}
	if err := res.WriteText(e.stdout); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "output: %s (timeline: %s)\n", c.Out, filepath.Join(c.Out, chaos.TimelineFile))
	if !res.Valid() {
		return failed()
	}
	return nil
}

func newChaosCheckCmd(e *env) *cobra.Command {
	var out string
	examples := 10
	cmd := &cobra.Command{
		Use:   "check HISTORY",
		Short: "Check a chaos history file for anomalies",
		Long: `Check a JSON-lines history written by 'raftka chaos' (or by any tool that writes
the same format) and print the report. With --out, also write report.txt,
result.json and timeline.html there. The exit status is 1 if any anomaly
was found.`,
		Example: `  raftka chaos check /tmp/raftka-chaos-1-123/history.jsonl --out /tmp/recheck`,
		Args:    positional(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out != "" {
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
			}
			res, err := chaos.CheckFile(args[0], out, examples, "raftka chaos check "+args[0])
			if err != nil {
				return err
			}
			if err := res.WriteText(e.stdout); err != nil {
				return err
			}
			if !res.Valid() {
				return failed()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write report.txt, result.json and timeline.html to")
	cmd.Flags().IntVar(&examples, "examples", examples, "examples to show per anomaly kind")
	return cmd
}
