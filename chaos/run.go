package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config is one chaos run. Start from DefaultConfig; Validate reports every
// problem at once.
type Config struct {
	// Nodes is the number of brokers to start (3 or 5 for a meaningful
	// run), or, with Brokers, the number of brokers fault commands may
	// target (default: len(Brokers)).
	Nodes int
	// Duration is how long faults are injected for; the run takes longer
	// (startup, healing, catching up, checking).
	Duration time.Duration
	// Faults are the fault kinds to schedule (FaultKinds).
	Faults []string
	// Overlap lets faults overlap (see ScheduleConfig.Overlap).
	Overlap bool
	// Seed decides the fault schedule.
	Seed int64
	// Out is the directory of the history, the reports and (for started
	// clusters) the brokers' data and logs.
	Out string

	// Binary is the raftka executable to start brokers with.
	Binary string
	// BrokerArgs are extra arguments of every `raftka start`.
	BrokerArgs []string

	// Brokers, if set, targets an existing cluster: no processes are
	// started and faults run FaultCmds.
	Brokers []string
	// FaultCmds maps a fault kind to the shell command that injects it.
	FaultCmds map[string]string
	// HealCmd heals a fault (and, at the end, everything).
	HealCmd string

	// Topic is created for the run; empty names it chaos-<seed>-<time>.
	Topic string
	// Partitions and Replicas of the topic.
	Partitions int32
	Replicas   int16
	// Producers, Readers (assigning every partition) and GroupReaders
	// (members of one consumer group, 0 for none) of the workload; Rate is
	// the sends per second of all producers.
	Producers    int
	Readers      int
	GroupReaders int
	Rate         int
	// Settle is the time before the first fault, and Recover how long
	// producers keep writing after everything healed.
	Settle  time.Duration
	Recover time.Duration
	// CatchUp bounds how long readers may take to reach the end offsets.
	CatchUp time.Duration
	// Examples is how many anomalies of each kind the report shows.
	Examples int

	// Logger receives the harness's log; Progress, if set, a line per
	// step and fault for people watching.
	Logger   *slog.Logger
	Progress io.Writer
}

// DefaultConfig is a one-minute run of kill, pause and partition faults on
// three brokers.
func DefaultConfig() Config {
	return Config{
		Nodes:      3,
		Duration:   60 * time.Second,
		Faults:     []string{FaultKill, FaultPause, FaultPartition},
		Partitions: 6,
		Replicas:   3,
		Producers:  3,
		Readers:    2,
		// Two members, so that faults cause rebalances.
		GroupReaders: 2,
		// Enough to keep every partition busy without saturating a
		// laptop that runs all brokers and the harness.
		Rate:     300,
		Settle:   3 * time.Second,
		Recover:  3 * time.Second,
		CatchUp:  60 * time.Second,
		Examples: 10,
	}
}

// External reports whether the config targets an existing cluster.
func (c *Config) External() bool { return len(c.Brokers) > 0 }

// Validate returns every problem with the config.
func (c *Config) Validate() error {
	var errs []error
	if c.External() {
		for _, f := range c.Faults {
			if _, ok := c.FaultCmds[f]; !ok {
				errs = append(errs, fmt.Errorf("fault %s needs --fault-cmd %s='…' against --brokers", f, f))
			}
		}
	} else {
		if c.Nodes < 1 || c.Nodes > 9 {
			errs = append(errs, fmt.Errorf("nodes must be 1 to 9, got %d", c.Nodes))
		}
		if c.Binary == "" {
			errs = append(errs, errors.New("no raftka binary to start brokers with"))
		}
		if len(c.FaultCmds) > 0 || c.HealCmd != "" {
			errs = append(errs, errors.New("fault and heal commands need --brokers (a cluster the harness did not start)"))
		}
	}
	for _, f := range c.Faults {
		if !slices.Contains(FaultKinds, f) {
			errs = append(errs, fmt.Errorf("unknown fault %q (known: %v)", f, FaultKinds))
		}
	}
	for k := range c.FaultCmds {
		if !slices.Contains(FaultKinds, k) {
			errs = append(errs, fmt.Errorf("--fault-cmd for unknown fault %q (known: %v)", k, FaultKinds))
		}
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration must be > 0, got %v", c.Duration))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions must be >= 1, got %d", c.Partitions))
	}
	if c.Replicas < 1 {
		errs = append(errs, fmt.Errorf("replicas must be >= 1, got %d", c.Replicas))
	} else if !c.External() && int(c.Replicas) > c.Nodes {
		errs = append(errs, fmt.Errorf("replicas (%d) cannot exceed nodes (%d)", c.Replicas, c.Nodes))
	}
	if c.Producers < 1 {
		errs = append(errs, fmt.Errorf("producers must be >= 1, got %d", c.Producers))
	}
	if c.GroupReaders < 0 {
		errs = append(errs, fmt.Errorf("group readers must be >= 0, got %d", c.GroupReaders))
	}
	if c.Readers < 1 {
		errs = append(errs, fmt.Errorf("readers must be >= 1, got %d", c.Readers))
	}
	if c.Rate < 1 {
		errs = append(errs, fmt.Errorf("rate must be >= 1, got %d", c.Rate))
	}
	if c.CatchUp <= 0 {
		errs = append(errs, fmt.Errorf("catch-up must be > 0, got %v", c.CatchUp))
	}
	return errors.Join(errs...)
}

// Files of a run's output directory.
const (
	HistoryFile  = "history.jsonl"
	ReportFile   = "report.txt"
	ResultFile   = "result.json"
	TimelineFile = "timeline.html"
	ScheduleFile = "schedule.txt"
)

// poisonLimit is the topic's max.message.bytes; poison records are twice
// as large.
const poisonLimit = 16 << 10

// Run starts the cluster (unless cfg.Brokers), runs the workload under the
// fault schedule, heals, lets the readers catch up, checks the history and
// writes the reports to cfg.Out. The result says whether anomalies were
// found; an error means the run itself could not be carried out.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	say := func(format string, args ...any) {
		fmt.Fprintf(progress, "chaos: "+format+"\n", args...)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("out: %w", err)
	}
	if cfg.Topic == "" {
		cfg.Topic = fmt.Sprintf("chaos-%d-%d", cfg.Seed, time.Now().Unix())
	}
	nodes := cfg.Nodes
	if cfg.External() && nodes <= 0 {
		nodes = len(cfg.Brokers)
	}
	schedule, err := NewSchedule(ScheduleConfig{Seed: cfg.Seed, Kinds: cfg.Faults, Nodes: nodes,
		Partitions: cfg.Partitions, Window: cfg.Duration, Settle: cfg.Settle, Overlap: cfg.Overlap})
	if err != nil {
		return nil, err
	}
	if err := writeSchedule(filepath.Join(cfg.Out, ScheduleFile), cfg, schedule); err != nil {
		return nil, err
	}
	historyPath := filepath.Join(cfg.Out, HistoryFile)
	h, err := CreateHistory(historyPath)
	if err != nil {
		return nil, err
	}
	defer h.Close()

	var nemesis Nemesis
	brokers := cfg.Brokers
	if cfg.External() {
		cmdLog, err := os.Create(filepath.Join(cfg.Out, "fault-commands.log"))
		if err != nil {
			return nil, err
		}
		defer cmdLog.Close()
		nemesis = &commandNemesis{faultCmds: cfg.FaultCmds, healCmd: cfg.HealCmd, seed: cfg.Seed,
			nodes: nodes, out: cmdLog, log: log}
	} else {
		say("starting %d brokers (data and logs in %s)", cfg.Nodes, cfg.Out)
		cl, err := StartCluster(ctx, ClusterConfig{Binary: cfg.Binary, Nodes: cfg.Nodes, Dir: cfg.Out,
			BrokerArgs: cfg.BrokerArgs, History: h, Logger: log})
		if err != nil {
			return nil, err
		}
		defer func() {
			// A broker that does not stop cleanly on SIGTERM is worth
			// knowing about, though the history is checked by then.
			if err := cl.Stop(); err != nil {
				say("stopping brokers: %v", err)
			}
		}()
		brokers = cl.KafkaAddrs()
		ln, err := newLocalNemesis(cl, cfg.Topic, log)
		if err != nil {
			return nil, err
		}
		defer ln.close()
		nemesis = ln
		say("brokers healthy; Kafka through proxies at %v", brokers)
	}

	if err := createTopic(ctx, brokers, cfg.Topic, cfg.Partitions, cfg.Replicas); err != nil {
		return nil, err
	}
	say("topic %s: %d partitions, replication factor %d", cfg.Topic, cfg.Partitions, cfg.Replicas)
	wcfg := WorkloadConfig{Brokers: brokers, Topic: cfg.Topic, Partitions: cfg.Partitions,
		Producers: cfg.Producers, Readers: cfg.Readers, Rate: cfg.Rate,
		PoisonEvery: time.Second, PoisonBytes: 2 * poisonLimit, History: h, Logger: log}
	if cfg.GroupReaders > 0 {
		wcfg.Group = cfg.Topic + "-group"
		wcfg.GroupReaders = cfg.GroupReaders
	}
	w, err := StartWorkload(ctx, wcfg)
	if err != nil {
		return nil, err
	}
	say("workload started: %d producers at %d/s, %d readers, %d group readers; faults for %v, seed %d",
		cfg.Producers, cfg.Rate, cfg.Readers, w.GroupReaders(), cfg.Duration, cfg.Seed)

	began := time.Now()
	runSchedule(ctx, began, cfg.Duration, schedule, cfg.Overlap, nemesis, h, log, say)
	say("healing everything")
	healed := time.Now()
	if err := nemesis.HealAll(context.WithoutCancel(ctx)); err != nil {
		h.Append(Op{Type: OpNote, Process: "nemesis", Error: "heal: " + err.Error()})
		say("heal: %v", err)
	}
	say("healed in %v; producing %v more", time.Since(healed).Round(time.Millisecond), cfg.Recover)
	sleepCtx(ctx, cfg.Recover)
	w.StopProducing()
	ends, err := EndOffsets(context.WithoutCancel(ctx), brokers, cfg.Topic, cfg.Partitions, 30*time.Second)
	if err != nil {
		h.Append(Op{Type: OpNote, Process: "final", Error: err.Error()})
		ends = map[int32]int64{}
	}
	say("end offsets %v; readers catching up", ends)
	w.CatchUp(ends, cfg.CatchUp)
	FinalRead(context.WithoutCancel(ctx), brokers, cfg.Topic, ends, h, cfg.CatchUp)
	if err := h.Close(); err != nil {
		return nil, err
	}
	say("history: %s", historyPath)
	return CheckFile(historyPath, cfg.Out, cfg.Examples, fmt.Sprintf("raftka chaos: seed %d, %v of %v", cfg.Seed, cfg.Duration, cfg.Faults))
}

// runSchedule injects and heals the faults at their times until the window
// ends or ctx is canceled. Without overlap, one fault at a time: a fault
// whose healing takes long delays the next. With overlap, each fault keeps
// its own time.
func runSchedule(ctx context.Context, began time.Time, window time.Duration, schedule []Fault, overlap bool,
	n Nemesis, h *History, log *slog.Logger, say func(string, ...any)) {
	var wg sync.WaitGroup
	for _, f := range schedule {
		if !sleepCtx(ctx, time.Until(began.Add(f.At))) {
			break
		}
		if overlap {
			wg.Go(func() { runFault(ctx, began, f, n, h, log, say) })
			continue
		}
		runFault(ctx, began, f, n, h, log, say)
	}
	wg.Wait()
	sleepCtx(ctx, time.Until(began.Add(window)))
}

// runFault injects f, holds it, heals it and records both.
func runFault(ctx context.Context, began time.Time, f Fault, n Nemesis, h *History, log *slog.Logger, say func(string, ...any)) {
	injected := time.Now()
	nodes, desc, err := n.Inject(ctx, f)
	// The window opens when the injection began (a rolling restart
	// takes a while to inject).
	op := Op{Type: OpFault, Process: "nemesis", Time: injected, FaultID: f.ID, Fault: desc, Nodes: nodes}
	if err != nil {
		op.Error = err.Error()
		log.Warn("fault", "fault", desc, "err", err)
		h.Append(Op{Type: OpNote, Process: "nemesis", Nodes: nodes, Error: fmt.Sprintf("fault %d (%s): %v", f.ID, desc, err)})
	}
	h.Append(op)
	say("%6.1fs fault %d: %s%s", injected.Sub(began).Seconds(), f.ID, desc, errSuffix(err))
	sleepCtx(ctx, f.Hold)
	err = n.Heal(context.WithoutCancel(ctx), f)
	heal := Op{Type: OpHeal, Process: "nemesis", FaultID: f.ID, Fault: desc, Nodes: nodes}
	if err != nil {
		heal.Error = err.Error()
		h.Append(Op{Type: OpNote, Process: "nemesis", Nodes: nodes, Error: fmt.Sprintf("healing fault %d (%s): %v", f.ID, desc, err)})
	}
	h.Append(heal)
	say("%6.1fs healed %d%s", time.Since(began).Seconds(), f.ID, errSuffix(err))
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (error: " + err.Error() + ")"
}

// sleepCtx sleeps for d, reporting false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// createTopic creates the run's topic, retrying while the cluster settles,
// and waits until every partition has a leader.
func createTopic(ctx context.Context, brokers []string, topic string, partitions int32, replicas int16) error {
	cl, err := kgo.NewClient(clientOpts(brokers)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	configs := map[string]*string{"max.message.bytes": new(strconv.Itoa(poisonLimit))}
	var lastErr error
	for created := false; ; {
		if !created {
			resp, err := adm.CreateTopic(ctx, partitions, replicas, configs, topic)
			if err == nil {
				err = resp.Err
			}
			if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
				created = true
			} else {
				lastErr = err
			}
		}
		if created {
			md, err := adm.Metadata(ctx, topic)
			if err == nil {
				td := md.Topics[topic]
				ready := td.Err == nil && int32(len(td.Partitions)) == partitions
				for _, p := range td.Partitions {
					ready = ready && p.Leader >= 0 && p.Err == nil
				}
				if ready {
					return nil
				}
				lastErr = fmt.Errorf("partitions without leaders yet")
			} else {
				lastErr = err
			}
		}
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return fmt.Errorf("create topic %s: %w (last error: %v)", topic, ctx.Err(), lastErr)
		}
	}
}

// writeSchedule writes the planned faults, for people and for reproducing
// a run.
func writeSchedule(path string, cfg Config, schedule []Fault) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "seed %d, %d nodes, window %v, faults %v, overlap %v\n", cfg.Seed, cfg.Nodes, cfg.Duration, cfg.Faults, cfg.Overlap)
	for _, flt := range schedule {
		fmt.Fprintf(f, "%3d  at %6.1fs  hold %4.1fs  %s\n", flt.ID, flt.At.Seconds(), flt.Hold.Seconds(), flt)
	}
	return f.Close()
}

// CheckFile checks the history at path and, if out is not empty, writes
// report.txt, result.json and timeline.html there.
func CheckFile(path, out string, examples int, title string) (*Result, error) {
	ops, err := ReadHistoryFile(path)
	if err != nil {
		return nil, err
	}
	res := Check(ops, CheckOptions{Examples: examples})
	if out == "" {
		return res, nil
	}
	write := func(name string, fn func(io.Writer) error) error {
		f, err := os.Create(filepath.Join(out, name))
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := errors.Join(
		write(ReportFile, res.WriteText),
		write(ResultFile, res.WriteJSON),
		write(TimelineFile, func(w io.Writer) error { return WriteTimeline(w, ops, res, title) }),
	); err != nil {
		return res, fmt.Errorf("report: %w", err)
	}
	return res, nil
}
