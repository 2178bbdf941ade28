package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PartitionsConfig configures a many-partitions run: create one topic with
// Count partitions, then measure what the idle replicas cost.
type PartitionsConfig struct {
	// Target says what the brokers are, for the report.
	Target  string
	Brokers []string
	// Topic is the topic to create; empty generates a name. It is deleted
	// at the end unless KeepTopic.
	Topic     string
	KeepTopic bool
	// Count is the number of partitions; Replicas the replication factor
	// (-1 for the cluster's default).
	Count    int32
	Replicas int16
	// IdleWindow is how long the process CPU time is sampled once the
	// replicas are idle.
	IdleWindow time.Duration
	// QuiesceTimeout bounds the wait for the Raft groups to quiesce
	// (in-process brokers only).
	QuiesceTimeout time.Duration
	// CreateTimeout bounds topic creation, leaders included.
	CreateTimeout time.Duration
}

// Validate returns every problem with c at once.
func (c PartitionsConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no broker addresses"))
	}
	if c.Count < 1 {
		errs = append(errs, fmt.Errorf("count must be >= 1, got %d", c.Count))
	}
	if c.Replicas == 0 || c.Replicas < -1 {
		errs = append(errs, fmt.Errorf("replicas must be >= 1 or -1 (the cluster's default), got %d", c.Replicas))
	}
	if c.IdleWindow <= 0 {
		errs = append(errs, fmt.Errorf("idle window must be > 0, got %v", c.IdleWindow))
	}
	if c.QuiesceTimeout < 0 {
		errs = append(errs, fmt.Errorf("quiesce timeout must be >= 0, got %v", c.QuiesceTimeout))
	}
	if c.CreateTimeout <= 0 {
		errs = append(errs, fmt.Errorf("create timeout must be > 0, got %v", c.CreateTimeout))
	}
	return errors.Join(errs...)
}

// MarshalJSON writes durations as strings.
func (c PartitionsConfig) MarshalJSON() ([]byte, error) {
	return marshalJSON(map[string]any{
		"target": c.Target, "brokers": c.Brokers, "topic": c.Topic, "keep_topic": c.KeepTopic,
		"count": c.Count, "replicas": c.Replicas, "idle_window": c.IdleWindow.String(),
		"quiesce_timeout": c.QuiesceTimeout.String(), "create_timeout": c.CreateTimeout.String(),
	})
}

// LocalBrokers is what a partitions run can see of brokers running in this
// process: their number and how many of their Raft groups are quiesced.
// Without it, only creation time is measured.
type LocalBrokers interface {
	NumBrokers() int
	QuiescedGroups() int
}

// NumBrokers is the number of in-process brokers.
func (c *InProcess) NumBrokers() int { return len(c.brokers) }

var _ LocalBrokers = (*InProcess)(nil)

// PartitionsResult is the outcome of a partitions run.
type PartitionsResult struct {
	Topic    string `json:"topic"`
	Count    int32  `json:"partitions"`
	Replicas int    `json:"replication_factor"`
	// CreateSeconds is how long CreateTopics took to answer; LeadersSeconds
	// how long until Metadata showed a leader for every partition (from the
	// same start).
	CreateSeconds  float64 `json:"create_s"`
	LeadersSeconds float64 `json:"leaders_s"`
	// QuiesceSeconds is how long after the leaders every replica's group
	// quiesced; Quiesced how many did (in-process only).
	QuiesceSeconds float64 `json:"quiesce_s,omitempty"`
	Quiesced       int     `json:"quiesced_replicas,omitempty"`
	// Local reports whether the brokers ran in this process, so that CPU
	// and memory figures are theirs.
	Local bool `json:"local"`
	// IdleCPUPercent is the process CPU time over the idle window, as a
	// percentage of one core, divided by the number of brokers; per 1,000
	// replicas it is IdleCPUPercentPer1kReplicas.
	IdleCPUPercent              float64 `json:"idle_cpu_percent_per_broker,omitempty"`
	IdleCPUPercentPer1kReplicas float64 `json:"idle_cpu_percent_per_1k_replicas,omitempty"`
	// HeapBytesPerReplica is the growth of the live Go heap (after GC) from
	// before the topic to after quiescence, per partition replica;
	// RSSBytesPerReplica the same for the resident set, which includes
	// memory outside the Go heap (Pebble's caches).
	HeapBytesPerReplica float64  `json:"heap_bytes_per_replica,omitempty"`
	RSSBytesPerReplica  float64  `json:"rss_bytes_per_replica,omitempty"`
	HeapBefore          uint64   `json:"heap_before_bytes,omitempty"`
	HeapAfter           uint64   `json:"heap_after_bytes,omitempty"`
	Notes               []string `json:"notes,omitempty"`
}

// RunPartitions creates cfg.Count partitions and measures creation time;
// with local brokers (or a nil local and a cluster in this process such as
// kfake, processLocal), also idle CPU and memory per replica.
func RunPartitions(ctx context.Context, cfg PartitionsConfig, local LocalBrokers, processLocal bool, logf func(string, ...any)) (*PartitionsResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(cfg.CreateTimeout.Milliseconds()))
	topic := cfg.Topic
	if topic == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		topic = "raftka-bench-partitions-" + hex.EncodeToString(b[:])
	}
	res := &PartitionsResult{Topic: topic, Count: cfg.Count, Local: local != nil || processLocal}
	// Connect before measuring, so the baseline includes the client.
	if _, err := adm.BrokerMetadata(ctx); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var heapBefore uint64
	var rssBefore int64
	if res.Local {
		heapBefore, rssBefore = liveHeap(), rss()
		res.HeapBefore = heapBefore
	}

	logf("creating topic %s with %d partitions", topic, cfg.Count)
	cctx, cancel := context.WithTimeout(ctx, cfg.CreateTimeout)
	defer cancel()
	began := time.Now()
	resp, err := adm.CreateTopic(cctx, cfg.Count, cfg.Replicas, nil, topic)
	if err == nil && resp.Err != nil {
		err = resp.Err
		if resp.ErrMessage != "" {
			err = fmt.Errorf("%s: %w", resp.ErrMessage, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create topic %s: %w", topic, err)
	}
	res.CreateSeconds = time.Since(began).Seconds()
	if !cfg.KeepTopic {
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), cfg.CreateTimeout)
			defer cancel()
			if _, err := adm.DeleteTopic(dctx, topic); err != nil {
				logf("could not delete topic %s: %v", topic, err)
			}
		}()
	}
	if _, err := waitLeaders(cctx, adm, topic, int(cfg.Count)); err != nil {
		return nil, err
	}
	res.LeadersSeconds = time.Since(began).Seconds()
	md, err := adm.Metadata(cctx, topic)
	if err == nil {
		res.Replicas = md.Topics[topic].Partitions.NumReplicas()
	}
	logf("created in %.2fs; leaders for all partitions after %.2fs", res.CreateSeconds, res.LeadersSeconds)
	replicas := int(cfg.Count) * max(res.Replicas, 1)

	if local != nil && cfg.QuiesceTimeout > 0 {
		logf("waiting up to %v for %d replicas to quiesce", cfg.QuiesceTimeout, replicas)
		qbegan := time.Now()
		deadline := qbegan.Add(cfg.QuiesceTimeout)
		for ctx.Err() == nil {
			res.Quiesced = local.QuiescedGroups()
			if res.Quiesced >= replicas || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		res.QuiesceSeconds = time.Since(qbegan).Seconds()
		if res.Quiesced < replicas {
			res.Notes = append(res.Notes, fmt.Sprintf("only %d of %d replicas quiesced within %v", res.Quiesced, replicas, cfg.QuiesceTimeout))
		}
	}
	if !res.Local {
		res.Notes = append(res.Notes, "brokers are not in this process: idle CPU and memory are not measured")
		return res, nil
	}

	logf("measuring idle CPU for %v", cfg.IdleWindow)
	cpu0, wall0 := processCPUTime(), time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(cfg.IdleWindow):
	}
	used := processCPUTime() - cpu0
	brokers := 1
	if local != nil {
		brokers = max(local.NumBrokers(), 1)
	}
	pct := 100 * used.Seconds() / time.Since(wall0).Seconds()
	res.IdleCPUPercent = pct / float64(brokers)
	res.IdleCPUPercentPer1kReplicas = pct / (float64(replicas) / 1000)
	res.HeapAfter = liveHeap()
	res.HeapBytesPerReplica = (float64(res.HeapAfter) - float64(heapBefore)) / float64(replicas)
	if rssBefore > 0 {
		res.RSSBytesPerReplica = float64(rss()-rssBefore) / float64(replicas)
	}
	return res, nil
}

// processCPUTime is the CPU time (user and system) this process has used.
func processCPUTime() time.Duration { return rusage().cpu }

// processUsage is what this process has used since it started.
type processUsage struct {
	cpu    time.Duration // user and system
	faults int64         // minor and major page faults
	rss    int64         // resident bytes now; 0 if unknown
}

// readProcessUsage reads the process's usage; zero values where the system
// does not say.
func readProcessUsage() processUsage {
	u := rusage()
	u.rss = rss()
	return u
}

// rusage reads the CPU time and page faults of getrusage(2), without the
// file read rss needs.
func rusage() processUsage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return processUsage{}
	}
	return processUsage{
		cpu:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		faults: int64(ru.Minflt + ru.Majflt),
	}
}

// since is the usage between prev and u, dt seconds apart.
func (u processUsage) since(prev processUsage, dt float64) ProcessSample {
	if dt <= 0 {
		return ProcessSample{RSSMB: float64(u.rss) / 1e6}
	}
	return ProcessSample{
		CPUPercent:       100 * (u.cpu - prev.cpu).Seconds() / dt,
		PageFaultsPerSec: float64(u.faults-prev.faults) / dt,
		RSSMB:            float64(u.rss) / 1e6,
	}
}

// liveHeap is the Go heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rss is the process's resident set in bytes, from /proc (0 elsewhere).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
