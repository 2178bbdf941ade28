package chaos

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// secondStats are one second of a history.
type secondStats struct {
	ok, fail, unknown, polls int
	latencies                []time.Duration // of acknowledged sends
}

// faultWindow is a fault from its injection to its heal.
type faultWindow struct {
	id         int
	desc       string
	nodes      []int32
	start, end time.Time
}

// faultWindows pairs fault and heal ops; a fault never healed ends at end.
func faultWindows(ops []Op, end time.Time) []faultWindow {
	var out []faultWindow
	open := map[int]int{}
	for _, op := range ops {
		switch op.Type {
		case OpFault:
			open[op.FaultID] = len(out)
			out = append(out, faultWindow{id: op.FaultID, desc: op.Fault, nodes: op.Nodes, start: op.Time, end: end})
		case OpHeal:
			if i, ok := open[op.FaultID]; ok {
				out[i].end = op.Time
				delete(open, op.FaultID)
			}
		}
	}
	return out
}

// WriteTimeline writes an HTML page with the result and an inline SVG
// timeline of the history: fault windows per node, throughput per second
// (acknowledged, failed and unknown sends, polled records) and the latency
// of acknowledged sends (median and maximum per second).
func WriteTimeline(w io.Writer, ops []Op, r *Result, title string) error {
	st := r.Stats
	start, end := st.Start, st.End
	if !end.After(start) {
		end = start.Add(time.Second)
	}
	secs := int(math.Ceil(end.Sub(start).Seconds()))
	buckets := make([]secondStats, secs+1)
	bucket := func(t time.Time) *secondStats {
		i := int(t.Sub(start) / time.Second)
		return &buckets[min(max(i, 0), secs)]
	}
	nodeSet := map[int32]bool{}
	for _, op := range ops {
		switch op.Type {
		case OpSend:
			b := bucket(op.Time)
			switch op.Outcome {
			case OutcomeOK:
				b.ok++
				b.latencies = append(b.latencies, op.Latency())
			case OutcomeFail:
				b.fail++
			default:
				b.unknown++
			}
		case OpPoll:
			// The final reader reads everything at once at the end;
			// it would flatten the rest of the chart.
			if op.Process != "final" {
				bucket(op.Time).polls++
			}
		case OpFault:
			for _, n := range op.Nodes {
				nodeSet[n] = true
			}
		}
	}
	nodes := sortedKeys(nodeSet)
	windows := faultWindows(ops, end)

	const (
		width   = 1100.0
		left    = 90.0
		right   = 20.0
		laneH   = 18.0
		chartH  = 160.0
		gap     = 36.0
		plotW   = width - left - right
		fontCSS = `font-family="sans-serif" font-size="11"`
	)
	x := func(t time.Time) float64 {
		return left + plotW*t.Sub(start).Seconds()/end.Sub(start).Seconds()
	}
	xs := func(sec float64) float64 { return left + plotW*sec/end.Sub(start).Seconds() }

	var svg strings.Builder
	y := 10.0
	// Fault lanes: one per node, and one for faults without nodes.
	lanes := len(nodes) + 1
	laneOf := map[int32]int{}
	for i, n := range nodes {
		laneOf[n] = i
	}
	fmt.Fprintf(&svg, `<text x="4" y="%.0f" %s font-weight="bold">faults</text>`+"\n", y+10, fontCSS)
	y += 16
	for i := range lanes {
		label := "cluster"
		if i < len(nodes) {
			label = fmt.Sprintf("node %d", nodes[i])
		}
		ly := y + float64(i)*laneH
		fmt.Fprintf(&svg, `<text x="4" y="%.0f" %s>%s</text>`+"\n", ly+13, fontCSS, label)
		fmt.Fprintf(&svg, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f4f4f4"/>`+"\n", left, ly+1, plotW, laneH-2)
	}
	for _, fw := range windows {
		color := faultColor(fw.desc)
		rows := []int{lanes - 1}
		if len(fw.nodes) > 0 {
			rows = rows[:0]
			for _, n := range fw.nodes {
				rows = append(rows, laneOf[n])
			}
		}
		for _, row := range rows {
			ly := y + float64(row)*laneH
			fmt.Fprintf(&svg, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.8"><title>%s (%s)</title></rect>`+"\n",
				x(fw.start), ly+1, math.Max(1, x(fw.end)-x(fw.start)), laneH-2, color,
				html.EscapeString(fw.desc), fw.end.Sub(fw.start).Round(time.Millisecond))
		}
	}
	y += float64(lanes)*laneH + gap

	// Throughput.
	maxRate := 1
	for _, b := range buckets {
		maxRate = max(maxRate, b.ok+b.fail+b.unknown, b.polls)
	}
	series := func(name, color string, val func(secondStats) float64, top, h, vmax float64) {
		var pts []string
		for i, b := range buckets {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xs(float64(i)+0.5), top+h-h*math.Min(val(b), vmax)/vmax))
		}
		fmt.Fprintf(&svg, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>%s</title></polyline>`+"\n",
			color, strings.Join(pts, " "), name)
	}
	axes := func(top, h float64, label, unit string, vmax float64) {
		fmt.Fprintf(&svg, `<text x="4" y="%.0f" %s font-weight="bold">%s</text>`+"\n", top-6, fontCSS, label)
		fmt.Fprintf(&svg, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#999"/>`+"\n", left, top, plotW, h)
		fmt.Fprintf(&svg, `<text x="%.0f" y="%.0f" %s text-anchor="end">%.0f%s</text>`+"\n", left-4, top+10, fontCSS, vmax, unit)
		fmt.Fprintf(&svg, `<text x="%.0f" y="%.0f" %s text-anchor="end">0</text>`+"\n", left-4, top+h, fontCSS)
		for _, fw := range windows {
			fmt.Fprintf(&svg, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.12"/>`+"\n",
				x(fw.start), top, math.Max(1, x(fw.end)-x(fw.start)), h, faultColor(fw.desc))
		}
	}
	y += 10
	axes(y, chartH, "throughput per second: sends acknowledged (green), unknown (orange), failed (red); records polled by all readers but the final one (blue)", "/s", float64(maxRate))
	series("acknowledged", "#2a2", func(b secondStats) float64 { return float64(b.ok) }, y, chartH, float64(maxRate))
	series("unknown", "#e80", func(b secondStats) float64 { return float64(b.unknown) }, y, chartH, float64(maxRate))
	series("failed", "#d22", func(b secondStats) float64 { return float64(b.fail) }, y, chartH, float64(maxRate))
	series("polled", "#36c", func(b secondStats) float64 { return float64(b.polls) }, y, chartH, float64(maxRate))
	y += chartH + gap

	// Latency of acknowledged sends.
	p50 := make([]float64, len(buckets))
	pmax := make([]float64, len(buckets))
	maxLat := 1.0
	for i, b := range buckets {
		if len(b.latencies) == 0 {
			continue
		}
		slices.Sort(b.latencies)
		p50[i] = float64(b.latencies[len(b.latencies)/2].Milliseconds())
		pmax[i] = float64(b.latencies[len(b.latencies)-1].Milliseconds())
		maxLat = math.Max(maxLat, pmax[i])
	}
	axes(y, chartH, "latency of acknowledged sends by completion second: median (black), max (purple)", " ms", maxLat)
	idx := 0
	series("max", "#939", func(secondStats) float64 { v := pmax[idx]; idx++; return v }, y, chartH, maxLat)
	idx = 0
	series("median", "#222", func(secondStats) float64 { v := p50[idx]; idx++; return v }, y, chartH, maxLat)
	y += chartH + 16
	for s := 0; s <= secs; s += tickStep(secs) {
		fmt.Fprintf(&svg, `<text x="%.1f" y="%.0f" %s text-anchor="middle">%ds</text>`+"\n", xs(float64(s)), y, fontCSS, s)
	}
	y += 10

	var report strings.Builder
	_ = r.WriteText(&report)
	var faults strings.Builder
	for _, fw := range windows {
		fmt.Fprintf(&faults, "%7.1fs  %7.1fs  %s\n", fw.start.Sub(start).Seconds(), fw.end.Sub(start).Seconds(), fw.desc)
	}
	status := `<p style="color:#080"><b>valid: no anomalies</b></p>`
	if !r.Valid() {
		status = fmt.Sprintf(`<p style="color:#c00"><b>INVALID: %s</b></p>`, html.EscapeString(strings.Join(r.Found(), ", ")))
	}
	_, err := fmt.Fprintf(w, `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>%s</title></head>
<body style="font-family:sans-serif">
<h2>%s</h2>
%s
<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f">
%s</svg>
<h3>faults (from, to, what)</h3>
<pre>%s</pre>
<h3>report</h3>
<pre>%s</pre>
</body></html>
`, html.EscapeString(title), html.EscapeString(title), status, width, y, svg.String(),
		html.EscapeString(faults.String()), html.EscapeString(report.String()))
	return err
}

func tickStep(secs int) int {
	for _, s := range []int{1, 2, 5, 10, 15, 30, 60, 120, 300} {
		if secs/s <= 20 {
			return s
		}
	}
	return 600
}

// faultColor gives each fault kind its colour.
func faultColor(desc string) string {
	kind, _, _ := strings.Cut(desc, " ")
	switch kind {
	case FaultKill, FaultLeader:
		return "#d33"
	case FaultPause:
		return "#c90"
	case FaultPartition:
		return "#36c"
	case FaultSlow:
		return "#3a3"
	case FaultRestartAll:
		return "#939"
	}
	return "#777"
}
