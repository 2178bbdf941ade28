package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/raftka/raftka/bench"
	"github.com/raftka/raftka/broker"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// benchOptions are the flags every bench subcommand shares: where the
// brokers are, and where the results go.
type benchOptions struct {
	inProcess int
	storage   string
	kfake     bool
	dataDir   string
	jsonPath  string
	reportDir string
	logLevel  string
	cpuProf   string
	memProf   string
}

func newBenchCmd(e *env, cf *clientFlags) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency of Raftka or any Kafka endpoint",
		Long: `Generate load and measure it: producer throughput and latency ('produce'),
consumer throughput ('consume'), end-to-end latency from produce to consume
('e2e'), the storage engine's ceiling on this disk ('storage'), and the cost of
many partitions ('partitions').

The load goes to --brokers (any Kafka-compatible cluster), to --in-process N
Raftka brokers started in this process on temporary directories, or to
--kfake, franz-go's in-process fake broker (in memory, no replication, no
fsync), the reference for what the client and the load generator reach
against a broker that costs almost nothing.

Latency is measured with HDR histograms (p50, p90, p99, p99.9, max). With
--rate, records are sent on an open-loop schedule and latency is measured from
each record's intended send time, so a stall counts against every record it
delays (no coordinated omission). Without --rate, producers send as fast as
the client accepts records.

A progress line is printed to stderr every second, a summary table to stdout
at the end; --json writes every figure and the configuration, --report DIR a
self-contained HTML page with charts.`,
		Example: `  # Three replicated brokers in this process, 20 s of 1 KiB records, acks=all
  raftka bench produce --in-process 3 --replicas 3 --duration 20s --json r.json --report out/

  # The same load against any Kafka endpoint
  raftka bench produce --brokers 127.0.0.1:9092 --duration 20s

  # Latency at a fixed rate, records of 100 to 2,000 bytes, keyed
  raftka bench e2e --in-process 1 --rate 5000 --record-size uniform:100-2000 --keys random

  # The disk's ceiling, to compare broker figures with
  raftka bench storage --record-size 1024 --duration 10s

  # The cost of 1,000 idle partitions on three brokers
  raftka bench partitions --in-process 3 --count 1000 --replicas 3`,
		Args:             noSubcommand,
		PersistentPreRun: func(*cobra.Command, []string) { e.tuneRuntime() },
		RunE:             func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.IntVar(&o.inProcess, "in-process", 0, fmt.Sprintf("start this many Raftka brokers (1 to %d) in this process instead of using --brokers", bench.MaxInProcessBrokers))
	pf.StringVar(&o.storage, "storage", broker.StoragePebble, "storage of --in-process brokers: pebble (durable, on disk) or memory")
	pf.BoolVar(&o.kfake, "kfake", false, "run against franz-go's in-process fake broker instead of --brokers (the reference: in memory, not replicated)")
	pf.StringVar(&o.dataDir, "data-dir", "", "directory under which temporary data directories are made (default: the system's temporary directory); put it on the disk to measure")
	pf.StringVar(&o.jsonPath, "json", "", "write every figure and the full configuration to this JSON file")
	pf.StringVar(&o.reportDir, "report", "", "write a self-contained HTML report with charts (index.html and .svg files) to this directory")
	pf.StringVar(&o.cpuProf, "cpu-profile", "", "write a pprof CPU profile of the whole process (load generator and in-process brokers) to this file")
	pf.StringVar(&o.memProf, "mem-profile", "", "write a pprof allocation profile of the whole process (every allocation since it started, sampled) to this file at the end")
	pf.StringVar(&o.logLevel, "log-level", "error", "log level of --in-process brokers: debug, info, warn or error (to stderr)")
	cmd.AddCommand(
		newBenchWorkloadCmd(e, cf, o, bench.WorkloadProduce),
		newBenchWorkloadCmd(e, cf, o, bench.WorkloadConsume),
		newBenchWorkloadCmd(e, cf, o, bench.WorkloadE2E),
		newBenchStorageCmd(e, o),
		newBenchPartitionsCmd(e, cf, o),
	)
	return cmd
}

// validate checks the shared flags; replicas is the workload's replication
// factor (to size a kfake cluster).
func (o *benchOptions) validate(cmd *cobra.Command) error {
	var errs []error
	if o.inProcess < 0 || o.inProcess > bench.MaxInProcessBrokers {
		errs = append(errs, fmt.Errorf("--in-process must be between 1 and %d, got %d: every in-process broker is a metadata voter", bench.MaxInProcessBrokers, o.inProcess))
	}
	if o.inProcess > 0 && o.kfake {
		errs = append(errs, errors.New("--in-process and --kfake are alternatives; give one"))
	}
	if (o.inProcess > 0 || o.kfake) && cmd.Flags().Changed("brokers") {
		errs = append(errs, errors.New("--brokers names an existing cluster; it cannot be combined with --in-process or --kfake"))
	}
	if o.storage != broker.StoragePebble && o.storage != broker.StorageMemory {
		errs = append(errs, fmt.Errorf("--storage must be %s or %s, got %q", broker.StoragePebble, broker.StorageMemory, o.storage))
	}
	if _, err := newLogger(io.Discard, o.logLevel, "text"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// startCluster starts the cluster the flags name: in-process brokers,
// kfake with enough brokers for replicas, or the --brokers addresses.
func (o *benchOptions) startCluster(ctx context.Context, e *env, cf *clientFlags, replicas int16) (bench.Cluster, error) {
	switch {
	case o.inProcess > 0:
		log, err := newLogger(e.stderr, o.logLevel, "text")
		if err != nil {
			return nil, err
		}
		p := &progress{w: e.stderr, tty: isTerminal(e.stderr)}
		p.logf("starting %d in-process broker(s) on %s storage", o.inProcess, o.storage)
		c, err := bench.StartInProcess(ctx, bench.InProcessConfig{Brokers: o.inProcess, Storage: o.storage, DataDir: o.dataDir, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("%w\nhint: rerun with --log-level info to see what the brokers are doing", err)
		}
		return c, nil
	case o.kfake:
		return bench.StartKfake(int(max(replicas, 1)))
	}
	seeds, err := cf.seeds()
	if err != nil {
		return nil, err
	}
	return bench.External{Addrs: seeds}, nil
}

// profile starts the CPU profile the flags ask for; the returned function
// stops it and writes the allocation profile, if asked for.
func (o *benchOptions) profile(e *env) (func(), error) {
	stopCPU := func() {}
	if o.cpuProf != "" {
		f, err := os.Create(o.cpuProf)
		if err != nil {
			return nil, fmt.Errorf("--cpu-profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("--cpu-profile: %w", err)
		}
		stopCPU = func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				fmt.Fprintf(e.stderr, "warning: --cpu-profile: %v\n", err)
				return
			}
			fmt.Fprintf(e.stderr, "wrote %s (go tool pprof %s)\n", o.cpuProf, o.cpuProf)
		}
	}
	if o.memProf != "" {
		// Fail now rather than after the run.
		f, err := os.Create(o.memProf)
		if err != nil {
			stopCPU()
			return nil, fmt.Errorf("--mem-profile: %w", err)
		}
		return func() {
			stopCPU()
			err := pprof.Lookup("allocs").WriteTo(f, 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "warning: --mem-profile: %v\n", err)
				return
			}
			fmt.Fprintf(e.stderr, "wrote %s (go tool pprof -sample_index=alloc_space %s)\n", o.memProf, o.memProf)
		}, nil
	}
	return stopCPU, nil
}

// write writes the JSON file and the HTML report the flags ask for.
func (o *benchOptions) write(e *env, r bench.Report) error {
	if o.jsonPath != "" {
		if err := bench.WriteJSON(o.jsonPath, r); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
		fmt.Fprintf(e.stderr, "wrote %s\n", o.jsonPath)
	}
	if o.reportDir != "" {
		if err := bench.WriteHTMLReport(o.reportDir, r); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
		fmt.Fprintf(e.stderr, "wrote %s\n", filepath.Join(o.reportDir, "index.html"))
	}
	return nil
}

// commandLine reconstructs the command for the report: its path and the
// flags that were set.
func commandLine(cmd *cobra.Command) []string {
	out := strings.Fields(cmd.CommandPath())
	cmd.Flags().Visit(func(f *pflag.Flag) {
		v := f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			v = strings.Join(sv.GetSlice(), ",")
		}
		out = append(out, "--"+f.Name+"="+v)
	})
	return out
}

// workloadFlags are the flags of produce, consume and e2e.
type workloadFlags struct {
	cfg        bench.Config
	recordSize string
}

func newBenchWorkloadCmd(e *env, cf *clientFlags, o *benchOptions, workload string) *cobra.Command {
	w := &workloadFlags{cfg: bench.DefaultConfig()}
	w.cfg.Workload = workload
	var short, long, example string
	switch workload {
	case bench.WorkloadProduce:
		short = "Measure producer throughput and send-to-acknowledgement latency"
		long = `Produce records for --warmup and then --duration, with --producers clients, and
report the throughput and the latency from each record's intended send time to
its acknowledgement. A fresh topic is created (and deleted at the end) unless
--topic names one.`
		example = `  raftka bench produce --in-process 1 --duration 20s
  raftka bench produce --in-process 3 --replicas 3 --record-size 100 --producers 2
  raftka bench produce --brokers 127.0.0.1:9092 --rate 20000 --acks 1 --idempotence=false`
	case bench.WorkloadConsume:
		short = "Measure consumer throughput"
		long = `Fill a topic with --fill-records records (by default about 256 MiB), then read it
with --consumers clients, each assigned a share of the partitions, for
--duration or until every record is read, and report the throughput.`
		example = `  raftka bench consume --in-process 1 --fill-records 200000 --consumers 2
  raftka bench consume --brokers 127.0.0.1:9092 --topic existing --fill-records 0`
	case bench.WorkloadE2E:
		short = "Measure end-to-end latency from produce to consume"
		long = `Produce and consume at once. Every record carries its intended send time in a
header; consumers report the latency from that time to receipt, which includes
replication and the wait for the high watermark. Producer acknowledgement
latency is reported too. Use --rate for latency at a given load.`
		example = `  raftka bench e2e --in-process 3 --replicas 3 --rate 10000
  raftka bench e2e --brokers 127.0.0.1:9092 --rate 1000 --record-size 256`
	}
	cmd := &cobra.Command{
		Use:     workload,
		Short:   short,
		Long:    long,
		Example: example,
		Args:    positional(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(cmd); err != nil {
				return usageError(cmd, "%v", err)
			}
			size, err := bench.ParseSizeDist(w.recordSize)
			if err != nil {
				return usageError(cmd, "--%v", err)
			}
			cfg := w.cfg
			cfg.RecordSize = size
			if !cmd.Flags().Changed("idempotence") && cfg.Acks != "all" && cfg.Acks != "-1" {
				cfg.Idempotent = false // idempotence needs acks=all; follow --acks
			}
			if cmd.Flags().Changed("timeout") {
				cfg.RequestTimeout = cf.timeout
			}
			cfg.Brokers = []string{"placeholder:0"} // validated before starting anything
			if err := cfg.Validate(); err != nil {
				return usageError(cmd, "%v", flagNames(err))
			}
			return runWorkload(cmd, e, cf, o, cfg)
		},
	}
	f := cmd.Flags()
	c := &w.cfg
	f.StringVar(&c.Topic, "topic", "", "topic to use, created if missing and kept (default: a fresh raftka-bench-* topic, deleted at the end)")
	f.BoolVar(&c.KeepTopic, "keep-topic", false, "keep the generated topic at the end")
	f.Int32VarP(&c.Partitions, "partitions", "p", c.Partitions, "partitions of a created topic")
	f.Int16VarP(&c.Replicas, "replicas", "r", c.Replicas, "replication factor of a created topic; -1 takes the cluster's default")
	f.StringVar(&w.recordSize, "record-size", "1024", "value size in bytes: fixed (1024) or uniform:MIN-MAX (uniform:100-2000)")
	f.StringVar(&c.Keys, "keys", c.Keys, "key distribution: none, random or sequential over --key-count keys")
	f.IntVar(&c.KeyCount, "key-count", c.KeyCount, "number of distinct keys for --keys random or sequential")
	f.StringVar(&c.Payload, "payload", c.Payload, "value contents: random (incompressible), text (words; compressible) or zeros")
	f.StringVar(&c.Acks, "acks", c.Acks, "acknowledgements: all, 1 or 0")
	f.StringVar(&c.Compression, "compression", c.Compression, "compression: none, gzip, snappy, lz4 or zstd")
	f.BoolVar(&c.Idempotent, "idempotence", c.Idempotent, "idempotent producer (needs --acks all; off by default with other acks)")
	f.DurationVar(&c.Linger, "linger", c.Linger, "how long the client waits for a batch to fill, as Kafka's linger.ms (0: send at once)")
	f.Int32Var(&c.BatchMaxBytes, "batch-max-bytes", c.BatchMaxBytes, "maximum bytes of one record batch")
	f.IntVar(&c.MaxBufferedRecords, "max-buffered-records", c.MaxBufferedRecords, "records each producer may have unacknowledged; at maximum rate it waits there")
	f.IntVar(&c.Producers, "producers", c.Producers, "number of producer clients")
	if workload != bench.WorkloadProduce {
		f.IntVar(&c.Consumers, "consumers", c.Consumers, "number of consumer clients; each reads its share of the partitions")
	}
	f.DurationVar(&c.Duration, "duration", c.Duration, "length of the measured window")
	if workload == bench.WorkloadConsume {
		c.Warmup = 0 // the fill is the warm-up; reading runs out by itself
	}
	f.DurationVar(&c.Warmup, "warmup", c.Warmup, "load before the measured window, not counted")
	f.Float64Var(&c.Rate, "rate", 0, "target records/s over all producers, on an open-loop schedule; 0 sends as fast as possible")
	f.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "after the window, how long to wait for outstanding acknowledgements and deliveries")
	if workload == bench.WorkloadConsume {
		f.Int64Var(&c.FillRecords, "fill-records", c.FillRecords, "records to write before reading; -1 writes about 256 MiB, 0 reads what the topic holds")
	}
	return cmd
}

// flagNames rewrites the config's field names in err to flag names.
func flagNames(err error) error {
	r := strings.NewReplacer("record size", "--record-size", "key count", "--key-count", "batch max bytes", "--batch-max-bytes",
		"max buffered records", "--max-buffered-records", "drain timeout", "--drain-timeout", "request timeout", "--timeout")
	return errors.New(r.Replace(err.Error()))
}

func runWorkload(cmd *cobra.Command, e *env, cf *clientFlags, o *benchOptions, cfg bench.Config) error {
	ctx, cancel := e.interruptible(cmd.Context())
	defer cancel()
	env := bench.CollectEnvironment(versionString())
	c, err := o.startCluster(ctx, e, cf, cfg.Replicas)
	if err != nil {
		return cf.explain(err)
	}
	defer c.Close()
	cfg.Brokers, cfg.Target = c.Seeds(), c.Describe()

	stopProfile, err := o.profile(e)
	if err != nil {
		return err
	}
	p := &progress{w: e.stderr, tty: isTerminal(e.stderr)}
	opts := bench.RunOptions{
		Progress: func(s bench.Sample) { p.line(bench.FormatSample(s, cfg.Workload)) },
		Logf:     p.logf,
	}
	if ip, ok := c.(*bench.InProcess); ok {
		opts.Brokers = ip.Gatherers()
	}
	res, err := bench.Run(ctx, cfg, opts)
	p.done()
	stopProfile()
	if err != nil {
		return cf.explain(err)
	}
	if err := bench.WriteSummary(e.stdout, cfg, res); err != nil {
		return err
	}
	rep := bench.Report{Kind: cfg.Workload, Command: commandLine(cmd), Target: cfg.Target, Time: res.Started, Environment: env, Config: cfg, Result: res}
	if err := o.write(e, rep); err != nil {
		return err
	}
	measured := int64(0)
	if res.Produced != nil {
		measured += res.Produced.Records
	}
	if res.Consumed != nil {
		measured += res.Consumed.Records
	}
	if measured == 0 && !res.Interrupted {
		err := bench.ErrNothingMeasured
		if res.FirstError != "" {
			err = fmt.Errorf("%w; first error: %s", err, res.FirstError)
		}
		return fmt.Errorf("%w\nhint: check that the cluster takes writes ('raftka topic create' and 'raftka produce' against it)", err)
	}
	return nil
}

func newBenchStorageCmd(e *env, o *benchOptions) *cobra.Command {
	var (
		recordSize string
		sc         = bench.StorageConfig{BatchRecords: 256, ValueRecords: 1, Writers: 1, Duration: 10 * time.Second, Payload: bench.PayloadRandom}
	)
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Measure the storage engine's ceiling on this disk",
		Long: `Write synced batches of records straight to a fresh Pebble engine, as a broker's
log writes would be with no Raft, network or Kafka protocol in between, and
report the rate and the latency of the synced commits. Broker results are best
read as a fraction of this ceiling, measured on the same disk (--data-dir). A
--record-size distribution is written at its mean size.

With --rate, batches are committed on an open-loop schedule at that many
records/s and each commit's latency counts from when its batch was due: the
engine's and disk's own latency at that load, the floor under a broker's
produce latency at the same rate. Batches that fall due while a commit waits
for its fsync are committed together, as a broker's group commit does. To
write as a broker's log does, set --value-records to the records of one
produced batch of one partition (16 KiB of records is typical) and
--batch-records to the same.`,
		Example: `  raftka bench storage --record-size 1024 --duration 10s
  raftka bench storage --record-size 1024 --rate 100000 --batch-records 16 --value-records 16 --warmup 15s
  raftka bench storage --record-size 100 --batch-records 1024 --writers 4 --data-dir /mnt/nvme`,
		Args: positional(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(cmd); err != nil {
				return usageError(cmd, "%v", err)
			}
			if o.inProcess > 0 || o.kfake || cmd.Flags().Changed("brokers") {
				return usageError(cmd, "bench storage uses no brokers: --in-process, --kfake and --brokers do not apply")
			}
			size, err := bench.ParseSizeDist(recordSize)
			if err != nil {
				return usageError(cmd, "--%v", err)
			}
			sc.RecordSize = int(size.Mean())
			dir, err := os.MkdirTemp(o.dataDir, "raftka-bench-storage-")
			if err != nil {
				return fmt.Errorf("data directory: %w", err)
			}
			defer os.RemoveAll(dir)
			sc.Dir = dir
			if err := sc.Validate(); err != nil {
				return usageError(cmd, "%v", err)
			}
			ctx, cancel := e.interruptible(cmd.Context())
			defer cancel()
			env := bench.CollectEnvironment(versionString())
			p := &progress{w: e.stderr, tty: isTerminal(e.stderr)}
			pace := "as fast as possible"
			if sc.Rate > 0 {
				pace = fmt.Sprintf("at %.0f records/s", sc.Rate)
			}
			p.logf("writing synced batches of %d x %d-byte records with %d writer(s) %s to %s for %v after %v of warm-up", sc.BatchRecords, sc.RecordSize, sc.Writers, pace, dir, sc.Duration, sc.Warmup)
			stopProfile, err := o.profile(e)
			if err != nil {
				return err
			}
			began := time.Now()
			res, err := bench.RunStorage(ctx, sc)
			stopProfile()
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			sr := bench.NewStorageReport(res)
			valueRecords := sc.RecordsPerKey()
			workload := "storage ceiling (pebble, synced batches)"
			if sc.Rate > 0 {
				workload = "storage latency at a target rate (pebble, synced group commits)"
			}
			tw := newTable(e.stdout)
			fmt.Fprintf(tw, "workload\t%s\n", workload)
			fmt.Fprintf(tw, "records\t%d bytes (%s payload), %d per batch, %d per key, %d writer(s)\n", sc.RecordSize, sc.Payload, sc.BatchRecords, valueRecords, sc.Writers)
			fmt.Fprintf(tw, "written\t%d records, %.0f records/s, %.2f MB/s\n", sr.Records, sr.RecordsPerSec, sr.MBPerSec)
			fmt.Fprintf(tw, "syncs\t%d batches, %.0f synced batches/s\n", sr.Batches, sr.SyncsPerSec)
			from := "from each commit's start"
			if sc.Rate > 0 {
				from = fmt.Sprintf("from each batch's due time, target %.0f records/s", sc.Rate)
			}
			fmt.Fprintf(tw, "latency\t%s (%s)\n", sr.CommitLatency, from)
			if err := tw.Flush(); err != nil {
				return err
			}
			run := bench.StorageRun{Dir: dir, RecordSize: sc.RecordSize, BatchRecords: sc.BatchRecords, ValueRecords: valueRecords, Writers: sc.Writers, Duration: sc.Duration.String(), Warmup: sc.Warmup.String(), Payload: sc.Payload, Rate: sc.Rate}
			return o.write(e, bench.Report{Kind: "storage", Command: commandLine(cmd), Target: "pebble in " + dir, Time: began, Environment: env, Config: run, Result: sr})
		},
	}
	f := cmd.Flags()
	f.StringVar(&recordSize, "record-size", "1024", "record size in bytes (a uniform:MIN-MAX distribution is written at its mean)")
	f.IntVar(&sc.BatchRecords, "batch-records", sc.BatchRecords, "records per synced batch (at a --rate, per scheduled batch; overdue ones are committed together)")
	f.IntVar(&sc.ValueRecords, "value-records", sc.ValueRecords, "records stored under one key (a broker stores each produced record batch as one entry; 1 is the conservative ceiling)")
	f.IntVar(&sc.Writers, "writers", sc.Writers, "concurrent committers (Pebble shares one fsync among concurrent commits)")
	f.StringVar(&sc.Payload, "payload", sc.Payload, "value contents, as in produce: random (incompressible), text (words; compressible) or zeros")
	f.DurationVar(&sc.Duration, "duration", sc.Duration, "how long to write")
	f.Float64Var(&sc.Rate, "rate", 0, "target records/s over all writers, on an open-loop schedule; 0 writes as fast as possible")
	f.DurationVar(&sc.Warmup, "warmup", 0, "write this long before --duration without counting it (Pebble starts with no flush or compaction running)")
	return cmd
}

func newBenchPartitionsCmd(e *env, cf *clientFlags, o *benchOptions) *cobra.Command {
	pc := bench.PartitionsConfig{Count: 1000, Replicas: -1, IdleWindow: 10 * time.Second, QuiesceTimeout: 3 * time.Minute, CreateTimeout: 5 * time.Minute}
	cmd := &cobra.Command{
		Use:   "partitions",
		Short: "Measure creating many partitions and what idle replicas cost",
		Long: `Create one topic with --count partitions and report how long CreateTopics took
and how long until every partition had a leader. With --in-process brokers (or
--kfake), also wait for the replicas' Raft groups to quiesce and report the
idle CPU of the process over --idle-window (per broker, as a percentage of one
core) and the growth of the live Go heap and of the resident set per partition
replica.`,
		Example: `  raftka bench partitions --in-process 3 --count 1000 --replicas 3
  raftka bench partitions --in-process 1 --count 10000 --storage memory
  raftka bench partitions --brokers 127.0.0.1:9092 --count 2000`,
		Args: positional(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(cmd); err != nil {
				return usageError(cmd, "%v", err)
			}
			pc.Brokers = []string{"placeholder:0"}
			if err := pc.Validate(); err != nil {
				return usageError(cmd, "%v", err)
			}
			ctx, cancel := e.interruptible(cmd.Context())
			defer cancel()
			env := bench.CollectEnvironment(versionString())
			c, err := o.startCluster(ctx, e, cf, pc.Replicas)
			if err != nil {
				return cf.explain(err)
			}
			defer c.Close()
			pc.Brokers, pc.Target = c.Seeds(), c.Describe()
			var local bench.LocalBrokers
			if ip, ok := c.(*bench.InProcess); ok {
				local = ip
			}
			p := &progress{w: e.stderr, tty: isTerminal(e.stderr)}
			stopProfile, err := o.profile(e)
			if err != nil {
				return err
			}
			began := time.Now()
			res, err := bench.RunPartitions(ctx, pc, local, o.kfake, p.logf)
			stopProfile()
			if err != nil {
				return cf.explain(err)
			}
			tw := newTable(e.stdout)
			fmt.Fprintf(tw, "target\t%s\n", pc.Target)
			fmt.Fprintf(tw, "topic\t%s: %d partitions, replication factor %d\n", res.Topic, res.Count, res.Replicas)
			fmt.Fprintf(tw, "create\t%.2fs (CreateTopics), %.2fs until every partition had a leader\n", res.CreateSeconds, res.LeadersSeconds)
			if local != nil {
				fmt.Fprintf(tw, "quiesce\t%d replicas quiesced after %.2fs more\n", res.Quiesced, res.QuiesceSeconds)
			}
			if res.Local {
				fmt.Fprintf(tw, "idle cpu\t%.2f%% of a core per broker; %.3f%% per 1,000 replicas\n", res.IdleCPUPercent, res.IdleCPUPercentPer1kReplicas)
				fmt.Fprintf(tw, "memory\t%.0f bytes of Go heap per replica (%.1f MB before, %.1f MB after); %.0f bytes RSS per replica\n",
					res.HeapBytesPerReplica, float64(res.HeapBefore)/1e6, float64(res.HeapAfter)/1e6, res.RSSBytesPerReplica)
			}
			for _, n := range res.Notes {
				fmt.Fprintf(tw, "note\t%s\n", n)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return o.write(e, bench.Report{Kind: "partitions", Command: commandLine(cmd), Target: pc.Target, Time: began, Environment: env, Config: pc, Result: res})
		},
	}
	f := cmd.Flags()
	f.Int32Var(&pc.Count, "count", pc.Count, "number of partitions to create")
	f.Int16VarP(&pc.Replicas, "replicas", "r", pc.Replicas, "replication factor; -1 takes the cluster's default")
	f.StringVar(&pc.Topic, "topic", "", "name of the topic to create (default: a fresh raftka-bench-partitions-* name)")
	f.BoolVar(&pc.KeepTopic, "keep-topic", false, "keep the topic at the end")
	f.DurationVar(&pc.IdleWindow, "idle-window", pc.IdleWindow, "how long to sample idle CPU")
	f.DurationVar(&pc.QuiesceTimeout, "quiesce-timeout", pc.QuiesceTimeout, "how long to wait for idle Raft groups to quiesce (in-process); 0 skips the wait")
	f.DurationVar(&pc.CreateTimeout, "create-timeout", pc.CreateTimeout, "how long topic creation may take, leaders included")
	return cmd
}

// progress writes progress lines to stderr: on a terminal one line that is
// rewritten in place every second, elsewhere (a file, a CI log) one plain
// line per second.
type progress struct {
	w   io.Writer
	tty bool
	mu  sync.Mutex
	// open is whether a rewritable line is on the terminal.
	open bool
}

func (p *progress) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", s)
		p.open = true
		return
	}
	fmt.Fprintln(p.w, s)
}

// logf prints a note on its own line, above the live line.
func (p *progress) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		fmt.Fprint(p.w, "\r\033[K")
		p.open = false
	}
	fmt.Fprintf(p.w, "bench: "+format+"\n", args...)
}

// done ends the live line, leaving the last progress on screen.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
