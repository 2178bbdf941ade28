package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Environment is the machine a run was measured on: absolute figures move
// between machines, so every report names it.
type Environment struct {
	Hostname   string `json:"hostname"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	MemTotal   string `json:"mem_total,omitempty"`
	GoVersion  string `json:"go_version"`
	// Raftka is the version string of the binary.
	Raftka string `json:"raftka,omitempty"`
	// LoadAvg is the 1, 5 and 15 minute load average at the start: a
	// busy machine makes figures low and noisy.
	LoadAvg string `json:"load_avg,omitempty"`
}

// CollectEnvironment describes this machine.
func CollectEnvironment(raftkaVersion string) Environment {
	e := Environment{
		OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), Raftka: raftkaVersion,
	}
	e.Hostname, _ = os.Hostname()
	e.CPUModel = procField("/proc/cpuinfo", "model name")
	e.MemTotal = procField("/proc/meminfo", "MemTotal")
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			e.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return e
}

// procField returns the value of the first "key: value" line of a /proc
// file, or "".
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Report is everything a run writes to --json: what ran, where, and every
// figure. Config and Result are the workload's own types (Config and
// *Result; StorageRun and StorageResult; PartitionsConfig and
// *PartitionsResult).
type Report struct {
	Kind        string      `json:"kind"`
	Command     []string    `json:"command,omitempty"`
	Target      string      `json:"target"`
	Time        time.Time   `json:"time"`
	Environment Environment `json:"environment"`
	Config      any         `json:"config"`
	Result      any         `json:"result"`
}

// WriteJSON writes r to path, indented.
func WriteJSON(path string, r Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func marshalJSON(v any) ([]byte, error) { return json.Marshal(v) }

// StorageRun is the configuration of `raftka bench storage` as reported.
type StorageRun struct {
	Dir          string `json:"dir"`
	RecordSize   int    `json:"record_size"`
	BatchRecords int    `json:"batch_records"`
	ValueRecords int    `json:"value_records"`
	Writers      int    `json:"writers"`
	Duration     string `json:"duration"`
	Warmup       string `json:"warmup"`
	Payload      string `json:"payload"`
	// Rate is the target records/s; 0 means as fast as possible.
	Rate float64 `json:"rate"`
}

// StorageReport is the reported outcome of a storage ceiling run.
type StorageReport struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Batches       int64   `json:"batches"`
	Seconds       float64 `json:"elapsed_s"`
	RecordsPerSec float64 `json:"records_per_s"`
	MBPerSec      float64 `json:"mb_per_s"`
	SyncsPerSec   float64 `json:"synced_batches_per_s"`
	// CommitLatency is the distribution of synced commit latencies (see
	// StorageResult.Latency).
	CommitLatency LatencySummary `json:"commit_latency"`
}

// NewStorageReport derives the rates of r.
func NewStorageReport(r StorageResult) StorageReport {
	s := StorageReport{Records: r.Records, Bytes: r.Bytes, Batches: r.Batches, Seconds: r.Elapsed.Seconds(), MBPerSec: r.MBPerSec}
	if r.Latency != nil {
		s.CommitLatency = Summarize(r.Latency)
	}
	if s.Seconds > 0 {
		s.RecordsPerSec = float64(r.Records) / s.Seconds
		s.SyncsPerSec = float64(r.Batches) / s.Seconds
	}
	return s
}

// WriteSummary prints the final table of a produce, consume or e2e run.
func WriteSummary(w io.Writer, cfg Config, res *Result) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, row := range summaryRows(cfg, res) {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lats := latencyRows(res)
	if len(lats) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "LATENCY (ms)\tCOUNT\tP50\tP90\tP99\tP99.9\tMAX\t")
	for _, l := range lats {
		s := l.s
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", l.name, s.Count, ms(s.P50Ms), ms(s.P90Ms), ms(s.P99Ms), ms(s.P999Ms), ms(s.MaxMs))
	}
	return tw.Flush()
}

type namedLatency struct {
	name string
	s    *LatencySummary
}

func latencyRows(res *Result) []namedLatency {
	var out []namedLatency
	if res.ProduceLatency != nil {
		out = append(out, namedLatency{"send → ack", res.ProduceLatency})
	}
	if res.E2ELatency != nil {
		out = append(out, namedLatency{"send → consume", res.E2ELatency})
	}
	// A Produce request's time on the wire, counted per request: the part
	// of send → ack that the client did not spend before sending.
	if res.RequestLatency != nil && res.RequestLatency.Count > 0 {
		out = append(out, namedLatency{"request → response", res.RequestLatency})
	}
	return out
}

func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// summaryRows are the label/value rows of the summary, shared by the text
// table and the HTML report.
func summaryRows(cfg Config, res *Result) [][2]string {
	rate := "maximum"
	if cfg.Rate > 0 {
		rate = fmt.Sprintf("%.0f records/s (open loop)", cfg.Rate)
	}
	rows := [][2]string{
		{"workload", res.Workload},
		{"target", cfg.Target},
		{"topic", fmt.Sprintf("%s (%d partitions, replication factor %d)", res.Topic, res.Partitions, res.ReplicationFactor)},
		{"records", fmt.Sprintf("%s bytes, keys %s, %s payload", cfg.RecordSize, keysString(cfg), cfg.Payload)},
		{"clients", clientsString(cfg)},
		{"rate", rate},
		{"window", fmt.Sprintf("%.1fs measured after %v warm-up", res.WindowSeconds, cfg.Warmup)},
	}
	if res.Fill != nil {
		rows = append(rows, [2]string{"fill", throughputString(res.Fill) + " (before the window, at maximum rate)"})
	}
	if res.Produced != nil {
		rows = append(rows, [2]string{"produced", throughputString(res.Produced)})
	}
	if res.Consumed != nil {
		rows = append(rows, [2]string{"consumed", throughputString(res.Consumed)})
	}
	errs := fmt.Sprintf("%d in the window, %d in all", res.Errors, res.ErrorsTotal)
	if res.FirstError != "" {
		errs += "; first: " + res.FirstError
	}
	rows = append(rows, [2]string{"errors", errs})
	if p, ok := windowProcess(res.Samples); ok {
		rows = append(rows, [2]string{"process", p})
	}
	if b := res.Brokers; b != nil && (b.ProduceRequests > 0 || b.LogWrites > 0) {
		rows = append(rows, [2]string{"brokers", brokersString(b)})
	}
	if res.Interrupted {
		rows = append(rows, [2]string{"note", "interrupted: figures cover the part that ran"})
	}
	return rows
}

// windowProcess sums up the process's use over the measured window: its
// mean CPU, its page faults and its largest resident set.
func windowProcess(samples []Sample) (string, bool) {
	var secs, cpu, faults, peak, prevT float64
	for _, s := range samples {
		dt := s.T - prevT
		prevT = s.T
		if s.Phase != phaseMeasure || dt <= 0 {
			continue
		}
		secs += dt
		cpu += s.Process.CPUPercent * dt
		faults += s.Process.PageFaultsPerSec * dt
		peak = max(peak, s.Process.RSSMB)
	}
	if secs == 0 {
		return "", false
	}
	out := fmt.Sprintf("cpu %.0f%% of a core on average, %.0f page faults", cpu/secs, faults)
	if peak > 0 {
		out += fmt.Sprintf(", resident memory up to %.0f MB", peak)
	}
	return out, true
}

func clientsString(cfg Config) string {
	prod := fmt.Sprintf("%d producer(s): acks=%s, idempotent=%v, compression=%s, linger=%v",
		cfg.Producers, cfg.Acks, cfg.Idempotent, cfg.Compression, cfg.Linger)
	switch cfg.Workload {
	case WorkloadProduce:
		return prod
	case WorkloadConsume:
		return fmt.Sprintf("%d consumer(s); fill by %s", cfg.Consumers, prod)
	}
	return fmt.Sprintf("%s; %d consumer(s)", prod, cfg.Consumers)
}

func keysString(cfg Config) string {
	if cfg.Keys == KeysNone {
		return "none"
	}
	return fmt.Sprintf("%s over %d", cfg.Keys, cfg.KeyCount)
}

func throughputString(t *Throughput) string {
	return fmt.Sprintf("%d records, %.0f records/s, %.2f MB/s", t.Records, t.RecordsPerSec, t.MBPerSec)
}

// FormatSample is the progress line of one second.
func FormatSample(s Sample, workload string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%5.1fs %-7s]", s.T, s.Phase)
	if workload != WorkloadConsume {
		fmt.Fprintf(&b, " produced %9.0f rec/s %7.2f MB/s", s.ProducedPerSec, s.ProducedMBPerSec)
	}
	if workload != WorkloadProduce {
		fmt.Fprintf(&b, " consumed %9.0f rec/s %7.2f MB/s", s.ConsumedPerSec, s.ConsumedMBPerSec)
	}
	if s.Latency != nil {
		name := "latency"
		if workload == WorkloadE2E {
			name = "e2e"
		}
		if s.Latency.Count > 0 {
			fmt.Fprintf(&b, "  %s p50 %s ms p99 %s ms", name, ms(s.Latency.P50Ms), ms(s.Latency.P99Ms))
		} else {
			fmt.Fprintf(&b, "  %s -", name)
		}
	}
	if br := s.Brokers; br != nil && br.ProduceRequests > 0 {
		fmt.Fprintf(&b, "  broker p99 %s ms", ms(br.ProduceP99Ms))
		if br.WriteStallMs > 0 {
			fmt.Fprintf(&b, " (stalled %s ms)", ms(br.WriteStallMs))
		}
	}
	fmt.Fprintf(&b, "  errors %d", s.Errors)
	return b.String()
}

// brokersString sums up what in-process brokers measured in the window.
func brokersString(b *BrokerSample) string {
	out := fmt.Sprintf("produce p50 %s ms, p99 %s ms from request to response (%d requests)",
		ms(b.ProduceP50Ms), ms(b.ProduceP99Ms), b.ProduceRequests)
	if b.LogWrites > 0 {
		out += fmt.Sprintf("; synced log writes p99 %s ms, of which WAL write and fsync p99 %s ms (%d writes)",
			ms(b.LogWriteP99Ms), ms(b.WALSyncP99Ms), b.LogWrites)
		out += fmt.Sprintf("; write stalls %s ms, WAL rotations %s ms", ms(b.WriteStallMs), ms(b.WALRotationMs))
	}
	return out
}

// WriteHTMLReport writes dir/index.html, a self-contained page with the
// report's tables and, for produce/consume/e2e runs, charts of throughput
// and latency over time and of latency by percentile, each also written
// as an .svg file beside it.
func WriteHTMLReport(dir string, r Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var body bytes.Buffer
	title := "raftka bench " + r.Kind
	fmt.Fprintf(&body, "<h1>%s</h1>\n<p>%s · %s</p>\n", esc(title), esc(r.Target), esc(r.Time.Format(time.RFC1123)))
	charts := map[string]string{}
	switch res := r.Result.(type) {
	case *Result:
		cfg, _ := r.Config.(Config)
		body.WriteString("<h2>Summary</h2>\n")
		writeRowsTable(&body, summaryRows(cfg, res))
		if lats := latencyRows(res); len(lats) > 0 {
			body.WriteString("<table><tr><th>latency (ms)</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n")
			for _, l := range lats {
				s := l.s
				fmt.Fprintf(&body, "<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
					esc(l.name), s.Count, ms(s.P50Ms), ms(s.P90Ms), ms(s.P99Ms), ms(s.P999Ms), ms(s.MaxMs))
			}
			body.WriteString("</table>\n")
		}
		for _, c := range runCharts(cfg, res) {
			charts[c.file] = c.svg
			fmt.Fprintf(&body, "<figure>%s</figure>\n", c.svg)
		}
		body.WriteString("<p class=note>Latency is measured from each record's intended send time: at a target rate, the open-loop schedule's slot, so a stall counts against every record it delayed (no coordinated omission); at maximum rate, the moment the record was handed to the client. Throughput counts completions inside the measured window; the grey band is the warm-up, not counted.</p>\n")
	default:
		body.WriteString("<h2>Result</h2>\n")
		writeRowsTable(&body, flatten(r.Result))
	}
	body.WriteString("<h2>Configuration</h2>\n")
	writeRowsTable(&body, flatten(r.Config))
	if len(r.Command) > 0 {
		fmt.Fprintf(&body, "<p>Command: <code>%s</code></p>\n", esc(strings.Join(r.Command, " ")))
	}
	body.WriteString("<h2>Machine</h2>\n")
	writeRowsTable(&body, flatten(r.Environment))

	page := fmt.Sprintf(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title>
<style>
body{font-family:sans-serif;max-width:860px;margin:24px auto;padding:0 12px;color:#222}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}figure{margin:12px 0}.note{color:#555;font-size:90%%}code{background:#f4f4f4;padding:1px 3px}
</style></head><body>
%s</body></html>
`, esc(title), body.String())
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
		return err
	}
	for name, svg := range charts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(svg+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

type namedChart struct{ file, svg string }

// brokerChart draws, per second, the p99 latencies in-process brokers
// measured themselves beside the client's, from the outside in: a record's
// send → ack, its Produce request on the wire, the request in the broker,
// the broker's synced log write and the WAL's write and fsync in it.
func brokerChart(res *Result, warm float64) (namedChart, bool) {
	var t, client, wire, produce, write, sync []float64
	for _, s := range res.Samples {
		b := s.Brokers
		if b == nil || b.ProduceRequests == 0 || b.LogWrites == 0 || s.Latency == nil || s.Latency.Count == 0 ||
			s.Requests == nil || s.Requests.Count == 0 {
			continue
		}
		t = append(t, s.T)
		client, wire, produce = append(client, s.Latency.P99Ms), append(wire, s.Requests.P99Ms), append(produce, b.ProduceP99Ms)
		write, sync = append(write, b.LogWriteP99Ms), append(sync, b.WALSyncP99Ms)
	}
	if len(t) == 0 {
		return namedChart{}, false
	}
	return namedChart{"brokers.svg", chart{Title: "p99 per second: client and in-process brokers (ms)", XLabel: "seconds", YLabel: "ms", LogY: true,
		ShadeTo: warm, ShadeLabel: "warm-up",
		Series: []chartSeries{
			{Name: "client send → ack", X: t, Y: client, Dashed: true}, {Name: "client request → response", X: t, Y: wire, Dashed: true},
			{Name: "broker produce request", X: t, Y: produce},
			{Name: "synced log write", X: t, Y: write}, {Name: "WAL write and fsync", X: t, Y: sync},
		}}.SVG()}, true
}

// runCharts draws throughput and latency over time, and latency by
// percentile over the window.
func runCharts(cfg Config, res *Result) []namedChart {
	var t, pr, pmb, cr, cmb []float64
	var lt, p50, p90, p99, p999, pmax []float64
	var cpu, faults, rssMB []float64
	for _, s := range res.Samples {
		t = append(t, s.T)
		cpu, faults, rssMB = append(cpu, s.Process.CPUPercent), append(faults, s.Process.PageFaultsPerSec), append(rssMB, s.Process.RSSMB)
		pr, pmb = append(pr, s.ProducedPerSec), append(pmb, s.ProducedMBPerSec)
		cr, cmb = append(cr, s.ConsumedPerSec), append(cmb, s.ConsumedMBPerSec)
		if s.Latency != nil && s.Latency.Count > 0 {
			lt = append(lt, s.T)
			p50, p90, p99 = append(p50, s.Latency.P50Ms), append(p90, s.Latency.P90Ms), append(p99, s.Latency.P99Ms)
			p999, pmax = append(p999, s.Latency.P999Ms), append(pmax, s.Latency.MaxMs)
		}
	}
	warm := cfg.Warmup.Seconds()
	var rs, ms []chartSeries
	if res.Produced != nil {
		rs = append(rs, chartSeries{Name: "produced", X: t, Y: pr})
		ms = append(ms, chartSeries{Name: "produced", X: t, Y: pmb})
	}
	if res.Consumed != nil {
		rs = append(rs, chartSeries{Name: "consumed", X: t, Y: cr, Dashed: res.Produced != nil})
		ms = append(ms, chartSeries{Name: "consumed", X: t, Y: cmb, Dashed: res.Produced != nil})
	}
	out := []namedChart{
		{"throughput.svg", chart{Title: "Throughput (records/s)", XLabel: "seconds", YLabel: "records/s", Series: rs,
			ShadeTo: warm, ShadeLabel: "warm-up"}.SVG()},
		{"throughput-mb.svg", chart{Title: "Throughput (MB/s of payload)", XLabel: "seconds", YLabel: "MB/s", Series: ms,
			ShadeTo: warm, ShadeLabel: "warm-up"}.SVG()},
	}
	if len(lt) > 0 {
		name := "Latency per second, send → ack (ms)"
		if res.Workload == WorkloadE2E {
			name = "Latency per second, send → consume (ms)"
		}
		out = append(out, namedChart{"latency.svg", chart{Title: name, XLabel: "seconds", YLabel: "ms", LogY: true,
			ShadeTo: warm, ShadeLabel: "warm-up",
			Series: []chartSeries{
				{Name: "p50", X: lt, Y: p50}, {Name: "p90", X: lt, Y: p90}, {Name: "p99", X: lt, Y: p99},
				{Name: "p99.9", X: lt, Y: p999}, {Name: "max", X: lt, Y: pmax, Dashed: true},
			}}.SVG()})
	}
	if c, ok := brokerChart(res, warm); ok {
		out = append(out, c)
	}
	if len(t) > 0 {
		out = append(out,
			namedChart{"process-cpu.svg", chart{Title: "This process's CPU (% of one core)", XLabel: "seconds", YLabel: "%",
				ShadeTo: warm, ShadeLabel: "warm-up", Series: []chartSeries{{Name: "cpu", X: t, Y: cpu}}}.SVG()},
			namedChart{"process-memory.svg", chart{Title: "This process's resident memory (MB)", XLabel: "seconds", YLabel: "MB",
				ShadeTo: warm, ShadeLabel: "warm-up", Series: []chartSeries{{Name: "rss", X: t, Y: rssMB}}}.SVG()},
			namedChart{"process-faults.svg", chart{Title: "This process's page faults per second", XLabel: "seconds", YLabel: "faults/s",
				ShadeTo: warm, ShadeLabel: "warm-up", Series: []chartSeries{{Name: "page faults", X: t, Y: faults}}}.SVG()})
	}
	var dist []chartSeries
	maxP := 0.0
	for _, l := range latencyRows(res) {
		if l.s.Count == 0 {
			continue
		}
		var x, y []float64
		for _, p := range l.s.Percentiles {
			if p.Percentile >= 100 || p.Percentile > 100-100/float64(l.s.Count) {
				continue // beyond what this many samples can resolve
			}
			x, y = append(x, percentileX(p.Percentile)), append(y, p.Ms)
			maxP = math.Max(maxP, p.Percentile)
		}
		dist = append(dist, chartSeries{Name: l.name, X: x, Y: y})
	}
	if len(dist) > 0 {
		out = append(out, namedChart{"latency-percentiles.svg", chart{Title: "Latency by percentile over the window (ms)",
			XLabel: "percentile", YLabel: "ms", LogY: true, Series: dist, XTicks: percentileTicks(maxP)}.SVG()})
	}
	return out
}

func writeRowsTable(w io.Writer, rows [][2]string) {
	fmt.Fprintln(w, "<table>")
	for _, r := range rows {
		fmt.Fprintf(w, "<tr><th>%s</th><td>%s</td></tr>\n", html.EscapeString(r[0]), html.EscapeString(r[1]))
	}
	fmt.Fprintln(w, "</table>")
}

// flatten turns a value's JSON form into sorted key/value rows; nested
// objects become dotted keys, and long arrays are summarised.
func flatten(v any) [][2]string {
	b, err := json.Marshal(v)
	if err != nil {
		return [][2]string{{"error", err.Error()}}
	}
	var m any
	if err := json.Unmarshal(b, &m); err != nil {
		return [][2]string{{"error", err.Error()}}
	}
	var rows [][2]string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch t := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, t[k])
			}
		case []any:
			if len(t) > 8 {
				rows = append(rows, [2]string{prefix, fmt.Sprintf("(%d entries)", len(t))})
				return
			}
			s, _ := json.Marshal(t)
			rows = append(rows, [2]string{prefix, string(s)})
		case nil:
			rows = append(rows, [2]string{prefix, ""})
		case float64:
			rows = append(rows, [2]string{prefix, formatFloat(t)})
		default:
			rows = append(rows, [2]string{prefix, fmt.Sprint(t)})
		}
	}
	walk("", m)
	return rows
}

// formatFloat prints a JSON number for people: integers whole, large
// numbers to one decimal, small ones to four significant digits.
func formatFloat(f float64) string {
	switch {
	case f == math.Trunc(f) && math.Abs(f) < 1e15:
		return fmt.Sprintf("%.0f", f)
	case math.Abs(f) >= 100:
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.4g", f)
}
