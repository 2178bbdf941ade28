// Command benchtable turns the JSON files of `raftka bench` runs into the
// markdown tables of BENCHMARKS.md: medians over repeated runs, and each
// broker figure as a ratio of the storage ceiling for the same record size.
// bench/run.sh drives it.
//
//	benchtable -dir RESULTS [-update BENCHMARKS.md] [-note TEXT] [-machine FILE]
//	benchtable -median-rate RESULTS/GROUP
//
// RESULTS holds one directory per group of repeated runs, named
// NN-KIND-LABEL (the number orders the rows), each with one JSON file per
// run.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// run is the part of a `raftka bench` JSON file the tables need.
type run struct {
	Kind        string `json:"kind"`
	Target      string `json:"target"`
	Environment struct {
		CPUs      int    `json:"cpus"`
		CPUModel  string `json:"cpu_model"`
		MemTotal  string `json:"mem_total"`
		GoVersion string `json:"go_version"`
		Raftka    string `json:"raftka"`
		LoadAvg   string `json:"load_avg"`
	} `json:"environment"`
	Config struct {
		RecordSize   any     `json:"record_size"` // "1024" for workloads, 1024 for storage
		Acks         string  `json:"acks"`
		Partitions   int     `json:"partitions"`
		Rate         float64 `json:"rate"`
		Duration     string  `json:"duration"`
		BatchRecords int     `json:"batch_records"`
		ValueRecords int     `json:"value_records"`
		Writers      int     `json:"writers"`
		Count        int     `json:"count"`
	} `json:"config"`
	Result struct {
		// produce
		ReplicationFactor int `json:"replication_factor"`
		Produced          *struct {
			RecordsPerSec float64 `json:"records_per_s"`
			MBPerSec      float64 `json:"mb_per_s"`
		} `json:"produced"`
		ProduceLatency *latencyJSON `json:"produce_latency"`
		ErrorsTotal    int64        `json:"errors_total"`
		// storage
		RecordsPerSec float64      `json:"records_per_s"`
		MBPerSec      float64      `json:"mb_per_s"`
		CommitLatency *latencyJSON `json:"commit_latency"`
		// RequestLatency is a produce run's Produce requests on the wire,
		// and Brokers what in-process brokers measured themselves; both
		// are absent from runs older than them.
		RequestLatency *latencyJSON `json:"produce_request_latency"`
		Brokers        *brokersJSON `json:"brokers"`
		// partitions
		Partitions                  int     `json:"partitions"`
		CreateSeconds               float64 `json:"create_s"`
		LeadersSeconds              float64 `json:"leaders_s"`
		QuiesceSeconds              float64 `json:"quiesce_s"`
		IdleCPUPercent              float64 `json:"idle_cpu_percent_per_broker"`
		IdleCPUPercentPer1kReplicas float64 `json:"idle_cpu_percent_per_1k_replicas"`
		HeapBytesPerReplica         float64 `json:"heap_bytes_per_replica"`
	} `json:"result"`
}

// brokersJSON is what in-process brokers measured over a run's window.
type brokersJSON struct {
	ProduceP99 float64 `json:"produce_p99_ms"`
	WALSyncP99 float64 `json:"wal_sync_p99_ms"`
	StallMs    float64 `json:"write_stall_ms"`
}

// latencyJSON is a latency summary of a run.
type latencyJSON struct {
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	Max  float64 `json:"max_ms"`
}

func (r run) recordSize() string { return fmt.Sprint(r.Config.RecordSize) }

// group is the runs of one directory.
type group struct {
	name, kind, label string
	runs              []run
}

func main() {
	dir := flag.String("dir", "", "directory of result groups")
	update := flag.String("update", "", "replace the generated section of this markdown file")
	note := flag.String("note", "", "text to put above the tables")
	machine := flag.String("machine", "", "file describing the machine (nproc, lscpu), quoted below the tables")
	medianRate := flag.String("median-rate", "", "print the median records/s of one group directory and exit")
	flag.Parse()
	if err := mainErr(*dir, *update, *note, *machine, *medianRate); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func mainErr(dir, update, note, machine, medianRate string) error {
	if medianRate != "" {
		g, err := loadGroup(medianRate)
		if err != nil {
			return err
		}
		fmt.Printf("%.0f\n", median(collect(g.runs, func(r run) float64 { return rate(r) })))
		return nil
	}
	if dir == "" {
		return errors.New("-dir is required")
	}
	groups, err := loadGroups(dir)
	if err != nil {
		return err
	}
	md := render(groups, note)
	if machine != "" {
		m, err := os.ReadFile(machine)
		if err != nil {
			return err
		}
		md += "\n```\n" + strings.TrimRight(string(m), "\n") + "\n```\n"
	}
	if update == "" {
		fmt.Print(md)
		return nil
	}
	return replaceSection(update, md)
}

func loadGroups(dir string) ([]group, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []group
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		g, err := loadGroup(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if len(g.runs) > 0 {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func loadGroup(dir string) (group, error) {
	name := filepath.Base(dir)
	g := group{name: name}
	parts := strings.SplitN(name, "-", 3)
	if len(parts) == 3 {
		g.kind, g.label = parts[1], parts[2]
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return g, err
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return g, err
		}
		var r run
		if err := json.Unmarshal(b, &r); err != nil {
			return g, fmt.Errorf("%s: %w", f, err)
		}
		g.runs = append(g.runs, r)
	}
	return g, nil
}

func rate(r run) float64 {
	if r.Result.Produced != nil {
		return r.Result.Produced.RecordsPerSec
	}
	return r.Result.RecordsPerSec
}

func mbps(r run) float64 {
	if r.Result.Produced != nil {
		return r.Result.Produced.MBPerSec
	}
	return r.Result.MBPerSec
}

func collect(rs []run, f func(run) float64) []float64 {
	out := make([]float64, 0, len(rs))
	for _, r := range rs {
		out = append(out, f(r))
	}
	return out
}

// median of xs; the mean of the middle two for an even count.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func spread(xs []float64, format string) string {
	if len(xs) < 2 {
		return "–"
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return fmt.Sprintf(format+"–"+format, s[0], s[len(s)-1])
}

func render(groups []group, note string) string {
	var b bytes.Buffer
	if note != "" {
		b.WriteString(note + "\n\n")
	}
	// The storage ceiling per record size, for the ratios.
	ceiling := map[string]float64{}
	for _, g := range groups {
		if g.kind == "storage" {
			ceiling[g.runs[0].recordSize()] = median(collect(g.runs, mbps))
		}
	}

	b.WriteString("### Produce throughput (maximum rate)\n\n")
	b.WriteString("| setup | record | runs | records/s | MB/s | of storage ceiling | p50 ms | p99 ms | MB/s min–max | errors |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, g := range groups {
		if g.kind != "storage" && g.kind != "produce" {
			continue
		}
		r0 := g.runs[0]
		size := r0.recordSize()
		mb := median(collect(g.runs, mbps))
		ratio := "–"
		if c := ceiling[size]; c > 0 && g.kind != "storage" {
			ratio = fmt.Sprintf("%.0f%%", 100*mb/c)
		} else if g.kind == "storage" {
			ratio = "100%"
		}
		p50, p99, errs := "–", "–", "–"
		if g.kind == "produce" {
			p50 = fmt.Sprintf("%.1f", median(collect(g.runs, func(r run) float64 { return lat(r).P50 })))
			p99 = fmt.Sprintf("%.1f", median(collect(g.runs, func(r run) float64 { return lat(r).P99 })))
			var n int64
			for _, r := range g.runs {
				n += r.Result.ErrorsTotal
			}
			errs = fmt.Sprint(n)
		}
		fmt.Fprintf(&b, "| %s | %s B | %d | %.0f | %.1f | %s | %s | %s | %s | %s |\n",
			setup(g), size, len(g.runs), median(collect(g.runs, rate)), mb, ratio, p50, p99, spread(collect(g.runs, mbps), "%.0f"), errs)
	}

	var latRows []string
	engineRows := false
	for _, g := range groups {
		if g.kind != "latency" {
			continue
		}
		r0 := g.runs[0]
		engineRows = engineRows || r0.Kind == "storage"
		// Unlike spread, a single run shows its rate: whether it kept to
		// its target is the point of the column.
		rates := collect(g.runs, rate)
		latRows = append(latRows, fmt.Sprintf("| %s | %s B | %.0f | %.0f–%.0f | %d | %.2f | %.2f | %.2f | %.1f | %s | %s | %s | %s |",
			setup(g), r0.recordSize(), r0.Config.Rate, slices.Min(rates), slices.Max(rates), len(g.runs),
			median(collect(g.runs, func(r run) float64 { return lat(r).P50 })),
			median(collect(g.runs, func(r run) float64 { return lat(r).P99 })),
			median(collect(g.runs, func(r run) float64 { return lat(r).P999 })),
			median(collect(g.runs, func(r run) float64 { return lat(r).Max })),
			medianOf(g.runs, "%.2f", requestP99),
			medianOf(g.runs, "%.2f", brokerFigure(func(b *brokersJSON) float64 { return b.ProduceP99 })),
			medianOf(g.runs, "%.2f", brokerFigure(func(b *brokersJSON) float64 { return b.WALSyncP99 })),
			medianOf(g.runs, "%.0f", brokerFigure(func(b *brokersJSON) float64 { return b.StallMs }))))
	}
	if len(latRows) > 0 {
		b.WriteString("\n### Produce latency at half the maximum rate (open loop, from the intended send time)\n\n")
		b.WriteString("| setup | record | target records/s | measured records/s | runs | p50 ms | p99 ms | p99.9 ms | max ms | request p99 ms | broker p99 ms | WAL fsync p99 ms | write stalls ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		b.WriteString(strings.Join(latRows, "\n") + "\n")
		b.WriteString("\nThe last four columns take a record's p99 apart, from the outside in (medians of the runs' " +
			"figures): *request* is a Produce request from being written to its response being read, as the client " +
			"saw it; *broker* the same request from being read to being answered, as the broker measured it, which " +
			"includes its synced log write; *WAL fsync* that write's wait for Pebble's write-ahead log to be written " +
			"and synced; *write stalls* the time log writes waited for flushes or compactions. The gap between p99 and " +
			"request p99 was spent in the client before sending: the linger, requests in flight ahead (at most five " +
			"per connection for an idempotent producer) and the load generator. The broker's figures come from its " +
			"Prometheus histograms, whose buckets are a factor of two apart, by interpolation.\n")
		b.WriteString("\nA run whose measured rate is well above its target was still working off a backlog " +
			"from before its window, and its latencies are those of the backlog, not of the target rate.\n")
		if engineRows {
			b.WriteString("\nThe storage engine rows write the same records at the same rate straight to Pebble " +
				"(`raftka bench storage --rate`, latency from each batch's due time): the latency of the disk and " +
				"the engine alone at that load, a floor under the broker's.\n")
		}
	}

	var partRows []string
	for _, g := range groups {
		if g.kind != "partitions" {
			continue
		}
		r0 := g.runs[0]
		partRows = append(partRows, fmt.Sprintf("| %s | %d | %d | %.1f | %.1f | %.2f | %.3f | %.0f |",
			setup(g), r0.Result.Partitions, len(g.runs),
			median(collect(g.runs, func(r run) float64 { return r.Result.CreateSeconds })),
			median(collect(g.runs, func(r run) float64 { return r.Result.LeadersSeconds })),
			median(collect(g.runs, func(r run) float64 { return r.Result.IdleCPUPercent })),
			median(collect(g.runs, func(r run) float64 { return r.Result.IdleCPUPercentPer1kReplicas })),
			median(collect(g.runs, func(r run) float64 { return r.Result.HeapBytesPerReplica }))))
	}
	if len(partRows) > 0 {
		b.WriteString("\n### Many partitions\n\n")
		b.WriteString("| setup | partitions | runs | CreateTopics s | all leaders s | idle CPU % of a core per broker | idle CPU % per 1k replicas | Go heap bytes per replica |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		b.WriteString(strings.Join(partRows, "\n") + "\n")
	}

	if len(groups) > 0 {
		e := groups[0].runs[0].Environment
		fmt.Fprintf(&b, "\nMeasured with %s on %d × %s, %s memory; load average at the first run %s.\n",
			e.Raftka, e.CPUs, e.CPUModel, e.MemTotal, e.LoadAvg)
	}
	return b.String()
}

// requestP99 is a produce run's Produce request p99, if it has one.
func requestP99(r run) (float64, bool) {
	if l := r.Result.RequestLatency; l != nil {
		return l.P99, true
	}
	return 0, false
}

// brokerFigure reads one of the brokers' figures of a run that has them.
func brokerFigure(f func(*brokersJSON) float64) func(run) (float64, bool) {
	return func(r run) (float64, bool) {
		if b := r.Result.Brokers; b != nil {
			return f(b), true
		}
		return 0, false
	}
}

// medianOf formats the median of f over the runs that have the figure,
// or "–" when none has it.
func medianOf(runs []run, format string, f func(run) (float64, bool)) string {
	var vs []float64
	for _, r := range runs {
		if v, ok := f(r); ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return "–"
	}
	return fmt.Sprintf(format, median(vs))
}

type latencies struct{ P50, P99, P999, Max float64 }

// lat is a produce run's latency, or a storage run's commit latency.
func lat(r run) latencies {
	if l := r.Result.ProduceLatency; l != nil {
		return latencies{l.P50, l.P99, l.P999, l.Max}
	}
	if l := r.Result.CommitLatency; l != nil {
		return latencies{l.P50, l.P99, l.P999, l.Max}
	}
	return latencies{}
}

// setup describes a group's target in a table cell.
func setup(g group) string {
	r := g.runs[0]
	switch {
	case g.kind == "storage":
		return fmt.Sprintf("storage ceiling: Pebble, synced batches of %d, %d writer(s)", r.Config.BatchRecords, r.Config.Writers)
	case r.Kind == "storage":
		return fmt.Sprintf("storage engine alone: Pebble, synced group commits of %d-record values", max(1, r.Config.ValueRecords))
	case g.kind == "partitions":
		return fmt.Sprintf("%s, RF=%d", r.Target, r.Result.ReplicationFactor)
	}
	s := r.Target
	if r.Result.ReplicationFactor > 0 {
		s += fmt.Sprintf(", RF=%d", r.Result.ReplicationFactor)
	}
	return fmt.Sprintf("%s, acks=%s, %d partitions", s, r.Config.Acks, r.Config.Partitions)
}

const (
	beginMarker = "<!-- bench/run.sh: begin generated section -->"
	endMarker   = "<!-- bench/run.sh: end generated section -->"
)

// replaceSection puts md between the markers of path, or appends the
// markers and md if path has none.
func replaceSection(path, md string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	section := beginMarker + "\n" + md + endMarker + "\n"
	s := string(old)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i >= 0 && j > i {
		s = s[:i] + section + strings.TrimPrefix(s[j+len(endMarker):], "\n")
	} else {
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		s += "\n" + section
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
