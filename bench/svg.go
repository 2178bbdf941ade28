package bench

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// chartSeries is one line of a chart.
type chartSeries struct {
	Name   string
	Color  string
	Dashed bool
	X, Y   []float64
}

// chart is a line chart rendered as a self-contained SVG element: no
// scripts, no fonts or styles from elsewhere, so a report opens offline.
type chart struct {
	Title          string
	XLabel, YLabel string
	Series         []chartSeries
	LogY           bool
	// XTicks, if set, replaces the numeric x ticks: positions and labels.
	XTicks []axisTick
	// Shade, if ShadeTo > ShadeFrom, greys the x range [ShadeFrom, ShadeTo]
	// with ShadeLabel (the warm-up).
	ShadeFrom, ShadeTo float64
	ShadeLabel         string
}

type axisTick struct {
	V     float64
	Label string
}

// Palette of series colours, distinguishable in colour and in grey.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}

const (
	chartW, chartH                     = 780, 320
	marginL, marginR, marginT, marginB = 72, 24, 36, 48
)

// SVG renders the chart.
func (c chart) SVG() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="12">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`, chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`, marginL, esc(c.Title))

	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for i := range s.X {
			y := s.Y[i]
			if math.IsNaN(y) || math.IsInf(y, 0) || (c.LogY && y <= 0) {
				continue
			}
			xmin, xmax = math.Min(xmin, s.X[i]), math.Max(xmax, s.X[i])
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	for _, t := range c.XTicks {
		xmin, xmax = math.Min(xmin, t.V), math.Max(xmax, t.V)
	}
	if math.IsInf(xmin, 0) { // no data
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#888">no data</text></svg>`, chartW/2-25, chartH/2)
		return b.String()
	}
	if c.ShadeTo > c.ShadeFrom {
		xmin = math.Min(xmin, c.ShadeFrom)
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	var yticks []axisTick
	if c.LogY {
		ymin, ymax, yticks = logTicks(ymin, ymax)
	} else {
		ymin = math.Min(ymin, 0)
		ymax, yticks = linearTicks(ymin, ymax)
	}
	pw, ph := float64(chartW-marginL-marginR), float64(chartH-marginT-marginB)
	px := func(x float64) float64 { return float64(marginL) + (x-xmin)/(xmax-xmin)*pw }
	py := func(y float64) float64 {
		if c.LogY {
			return float64(marginT) + ph - (math.Log10(y)-math.Log10(ymin))/(math.Log10(ymax)-math.Log10(ymin))*ph
		}
		return float64(marginT) + ph - (y-ymin)/(ymax-ymin)*ph
	}

	if c.ShadeTo > c.ShadeFrom {
		x0, x1 := px(c.ShadeFrom), px(math.Min(c.ShadeTo, xmax))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%.1f" fill="#eee"/>`, x0, marginT, x1-x0, ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#888">%s</text>`, x0+4, marginT+14, esc(c.ShadeLabel))
	}
	// Grid and y ticks.
	for _, t := range yticks {
		y := py(t.V)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, marginL, y, chartW-marginR, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, marginL-6, y+4, esc(t.Label))
	}
	xticks := c.XTicks
	if xticks == nil {
		_, xticks = linearTicks(xmin, xmax)
	}
	for _, t := range xticks {
		if t.V < xmin || t.V > xmax {
			continue
		}
		x := px(t.V)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, x, marginT, x, float64(marginT)+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x, float64(marginT)+ph+16, esc(t.Label))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#888"/>`, marginL, marginT, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, float64(marginL)+pw/2, chartH-8, esc(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`, float64(marginT)+ph/2, esc(c.YLabel))

	// Lines, then the legend.
	for i, s := range c.Series {
		color := s.Color
		if color == "" {
			color = palette[i%len(palette)]
		}
		var pts []string
		for j := range s.X {
			y := s.Y[j]
			if math.IsNaN(y) || math.IsInf(y, 0) || (c.LogY && y <= 0) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[j]), py(math.Min(y, ymax))))
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="5 3"`
		}
		if len(pts) == 1 {
			fmt.Fprintf(&b, `<circle cx="%s" r="3" fill="%s"/>`, strings.Replace(pts[0], ",", `" cy="`, 1), color)
		} else if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.8"%s/>`, strings.Join(pts, " "), color, dash)
		}
		lx := chartW - marginR - 120
		ly := marginT + 14 + 16*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"%s/>`, lx, ly-4, lx+18, ly-4, color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, lx+24, ly, esc(s.Name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func esc(s string) string { return html.EscapeString(s) }

// linearTicks returns a rounded-up maximum and ticks at 1, 2 or 5 × 10^k
// steps from lo.
func linearTicks(lo, hi float64) (float64, []axisTick) {
	if hi <= lo {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / 5)
	top := math.Ceil(hi/step) * step
	var out []axisTick
	for v := math.Floor(lo/step) * step; v <= top+step/2; v += step {
		out = append(out, axisTick{V: v, Label: formatNum(v)})
	}
	return top, out
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / mag; {
	case f <= 1:
		return mag
	case f <= 2:
		return 2 * mag
	case f <= 5:
		return 5 * mag
	}
	return 10 * mag
}

// logTicks widens [lo, hi] to powers of ten and returns ticks at each
// power, and at 2 and 5 times it when the range is narrow.
func logTicks(lo, hi float64) (float64, float64, []axisTick) {
	a := math.Floor(math.Log10(lo))
	z := math.Ceil(math.Log10(hi))
	if z == a {
		z = a + 1
	}
	var out []axisTick
	for e := a; e <= z; e++ {
		p := math.Pow(10, e)
		out = append(out, axisTick{V: p, Label: formatNum(p)})
		if z-a <= 3 && e < z {
			out = append(out, axisTick{V: 2 * p, Label: formatNum(2 * p)}, axisTick{V: 5 * p, Label: formatNum(5 * p)})
		}
	}
	return math.Pow(10, a), math.Pow(10, z), out
}

// formatNum prints an axis value compactly: 0.05, 2, 150, 20k, 1.5M.
func formatNum(v float64) string {
	av := math.Abs(v)
	switch {
	case av >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 4, 64) + "M"
	case av >= 1e4:
		return strconv.FormatFloat(v/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// percentileX maps a percentile to the x axis of a latency-by-percentile
// chart: log10(1/(1-p)), so 90%, 99%, 99.9% are equally spaced.
func percentileX(p float64) float64 {
	return math.Log10(100 / (100 - math.Min(p, 99.9999)))
}

// percentileTicks label the percentile axis up to the finest percentile
// present.
func percentileTicks(maxP float64) []axisTick {
	out := []axisTick{{V: 0, Label: "0%"}}
	for _, p := range []float64{90, 99, 99.9, 99.99, 99.999} {
		if p <= maxP {
			out = append(out, axisTick{V: percentileX(p), Label: strconv.FormatFloat(p, 'f', -1, 64) + "%"})
		}
	}
	return out
}
