package bench

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// BandwidthSample is what one client of the bandwidth scenario received,
// sent and cost over the windows of one workload, summed.
type BandwidthSample struct {
	Windows int `json:"windows"`
	// Seconds is the windows' wall time; DriveSeconds the part of it
	// while input was sent (all of it for a workload without input).
	Seconds      float64 `json:"seconds"`
	DriveSeconds float64 `json:"drive_seconds"`
	// RXBytes and RXMessages are the WebSocket payload bytes and messages
	// the terminal received; TXBytes and TXMessages what it sent.
	RXBytes    int64 `json:"rx_bytes"`
	RXMessages int64 `json:"rx_messages"`
	TXBytes    int64 `json:"tx_bytes"`
	TXMessages int64 `json:"tx_messages"`
	// CanvasUpdates counts the terminal's animation frames, while input
	// was sent, in which the client drew on its visible canvas.
	CanvasUpdates int64 `json:"canvas_updates"`
	// Units is what the bytes are counted per, summed: seconds, thousands
	// of CSS pixels scrolled, or characters typed.
	Units float64 `json:"units"`
	// NodeCPUSeconds is the CPU time of the session's processes on the
	// node; TerminalCPUSeconds that of the terminal browser.
	NodeCPUSeconds     float64 `json:"node_cpu_seconds"`
	TerminalCPUSeconds float64 `json:"terminal_cpu_seconds"`
}

// add returns the sum of two samples.
func (a BandwidthSample) add(b BandwidthSample) BandwidthSample {
	return BandwidthSample{
		Windows: a.Windows + b.Windows, Seconds: a.Seconds + b.Seconds, DriveSeconds: a.DriveSeconds + b.DriveSeconds,
		RXBytes: a.RXBytes + b.RXBytes, RXMessages: a.RXMessages + b.RXMessages, TXBytes: a.TXBytes + b.TXBytes, TXMessages: a.TXMessages + b.TXMessages,
		CanvasUpdates: a.CanvasUpdates + b.CanvasUpdates, Units: a.Units + b.Units,
		NodeCPUSeconds: a.NodeCPUSeconds + b.NodeCPUSeconds, TerminalCPUSeconds: a.TerminalCPUSeconds + b.TerminalCPUSeconds,
	}
}

// BandwidthFigure is one figure of one bandwidth workload: shoji (the
// real viewer) beside the VNC peer, and Ratio = Shoji / Peer.
type BandwidthFigure struct {
	Workload string   `json:"workload"`
	Title    string   `json:"title"`
	Figure   string   `json:"figure"`
	Unit     string   `json:"unit"`
	Shoji    *float64 `json:"shoji"`
	Peer     *float64 `json:"vnc_peer"`
	Ratio    *float64 `json:"ratio"`
}

// Figures of a bandwidth workload.
const (
	bwReceived    = "received"
	bwMessages    = "messages received"
	bwUpstream    = "sent upstream"
	bwUpdates     = "canvas updates"
	bwNodeCPU     = "node CPU per session"
	bwTerminalCPU = "terminal CPU"
)

// ratio returns a / b, nil when either is missing or b is 0.
func ratio(a, b *float64) *float64 {
	if a == nil || b == nil || *b == 0 {
		return nil
	}
	return num(*a / *b)
}

// bandwidthValues returns the figures of one client's sample: bytes,
// messages and upstream bytes per unit, canvas updates per second while
// driven, and CPU time as a fraction of one core. A missing sample or a
// zero denominator gives nil.
func bandwidthValues(s BandwidthSample, ok bool) map[string]*float64 {
	out := map[string]*float64{}
	if !ok || s.Windows == 0 {
		return out
	}
	per := func(v float64, d float64) *float64 {
		if d <= 0 {
			return nil
		}
		return num(v / d)
	}
	out[bwReceived] = per(float64(s.RXBytes), s.Units)
	out[bwMessages] = per(float64(s.RXMessages), s.Units)
	out[bwUpstream] = per(float64(s.TXBytes), s.Units)
	out[bwUpdates] = per(float64(s.CanvasUpdates), s.DriveSeconds)
	out[bwNodeCPU] = per(s.NodeCPUSeconds, s.Seconds)
	out[bwTerminalCPU] = per(s.TerminalCPUSeconds, s.Seconds)
	return out
}

// bandwidthUnit is the unit of figure for a workload counted per unit.
func bandwidthUnit(figure, unit string) string {
	switch figure {
	case bwReceived, bwUpstream:
		if unit == unitSecond {
			return "B/s"
		}
		return "B per " + unit
	case bwMessages:
		if unit == unitSecond {
			return "messages/s"
		}
		return "messages per " + unit
	case bwUpdates:
		return "frames/s"
	}
	return "cores"
}

// bandwidthFigures returns the figures of every workload that has a
// sample, in the workloads' order, shoji beside the peer.
func bandwidthFigures(m map[string]BandwidthSample) []BandwidthFigure {
	var out []BandwidthFigure
	for _, w := range bwWorkloads {
		ss, sok := m[key(bwKey(w.name), clientViewer)]
		ps, pok := m[key(bwKey(w.name), clientVNC)]
		if !sok && !pok {
			continue
		}
		sv, pv := bandwidthValues(ss, sok), bandwidthValues(ps, pok)
		for _, f := range []string{bwReceived, bwMessages, bwUpstream, bwUpdates, bwNodeCPU, bwTerminalCPU} {
			out = append(out, BandwidthFigure{Workload: w.name, Title: w.title, Figure: f, Unit: bandwidthUnit(f, w.unit),
				Shoji: sv[f], Peer: pv[f], Ratio: ratio(sv[f], pv[f])})
		}
	}
	return out
}

// Targets of issue 12 on the bandwidth figures.
var (
	targetAtMostPeer = target{text: "≤ 1.0 × the VNC peer", conds: []cond{{"peer", func(s, p float64) bool { return s <= p }}}}
	targetQuarter    = target{text: "≤ 0.25 of one core", conds: []cond{{"", func(s, _ float64) bool { return s <= 0.25 }}}}
)

// bandwidthTargetFigures are the bandwidth figures that have a target, for
// the report's main table.
func bandwidthTargetFigures(b figureBuilder) []Figure {
	get := func(workload, client, figure string) *float64 {
		s, ok := b.res.Bandwidth[key(bwKey(workload), client)]
		return bandwidthValues(s, ok)[figure]
	}
	one := func(id, name, workload, figure, unit string, t target, withPeer bool) Figure {
		f := Figure{ID: id, Name: name, Unit: unit, Shoji: get(workload, clientViewer, figure)}
		peerKey := ""
		if withPeer {
			peerKey = key(bwKey(workload), clientVNC)
			f.Peer = get(workload, clientVNC, figure)
		}
		return b.finish(f, t, "bandwidth", key(bwKey(workload), clientViewer), "", peerKey)
	}
	return []Figure{
		one("bandwidth_typing_bytes_per_char", "bytes received per typed character, real viewer", "typing", bwReceived, "B", targetAtMostPeer, true),
		one("bandwidth_spinner_bytes", "bytes/s received, 100×100 spinner on a still page, real viewer", "spinner", bwReceived, "B/s", targetAtMostPeer, true),
		one("bandwidth_scroll_bytes_per_1000px", "bytes received per 1000 px scrolled, real viewer", "scroll", bwReceived, "B", targetAtMostPeer, true),
		one("bandwidth_spinner_cpu", "node CPU per session (Chromium + broker), spinner, fraction of one core", "spinner", bwNodeCPU, "cores", targetQuarter, true),
	}
}

// formatBandwidth formats a bandwidth figure's value in its unit.
func formatBandwidth(v *float64, unit string) string {
	if v == nil {
		return "—"
	}
	switch {
	case unit == "cores":
		return fmt.Sprintf("%.3f", *v)
	case unit == "frames/s":
		return fmt.Sprintf("%.1f/s", *v)
	case strings.HasPrefix(unit, "messages"):
		return fmt.Sprintf("%.1f %s", *v, unit)
	}
	u := strings.TrimPrefix(unit, "B")
	switch x := math.Abs(*v); {
	case x >= 1e6:
		return fmt.Sprintf("%.2f MB%s", *v/1e6, u)
	case x >= 1e3:
		return fmt.Sprintf("%.1f kB%s", *v/1e3, u)
	}
	return fmt.Sprintf("%.0f B%s", *v, u)
}

// writeBandwidthMarkdown writes the bandwidth table.
func writeBandwidthMarkdown(b *strings.Builder, figs []BandwidthFigure) {
	if len(figs) == 0 {
		return
	}
	b.WriteString("\n## Bandwidth at the terminal: shoji's real viewer against the VNC peer\n\n" +
		"| workload | figure | shoji | VNC peer | shoji / peer |\n|---|---|---|---|---|\n")
	for _, f := range figs {
		r := "—"
		if f.Ratio != nil {
			r = fmt.Sprintf("%.2f", *f.Ratio)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", mdEscape(f.Title), f.Figure, formatBandwidth(f.Shoji, f.Unit), formatBandwidth(f.Peer, f.Unit), r)
	}
}

// bandwidthPlot draws, for each workload, the ratio shoji / peer of the
// bytes received and of the node's CPU on a logarithmic axis; it reports
// false when no ratio could be drawn.
func bandwidthPlot(path string, figs []BandwidthFigure) (bool, error) {
	var names []string
	vals := map[string]plotter.Values{}
	idx := map[string]int{}
	for _, f := range figs {
		if _, ok := idx[f.Workload]; !ok {
			idx[f.Workload] = len(names)
			names = append(names, f.Workload)
		}
	}
	any := false
	lo, hi := 0.0, 0.0
	for _, series := range []string{bwReceived, bwNodeCPU} {
		v := make(plotter.Values, len(names))
		for _, f := range figs {
			if f.Figure == series && f.Ratio != nil && *f.Ratio > 0 {
				v[idx[f.Workload]] = math.Log10(*f.Ratio)
				lo, hi = min(lo, math.Floor(v[idx[f.Workload]])), max(hi, math.Ceil(v[idx[f.Workload]]))
				any = true
			}
		}
		vals[series] = v
	}
	if !any {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = "shoji / VNC peer, per workload (1 = equal; above: shoji costs more)"
	p.Y.Label.Text = "shoji / peer (log scale)"
	p.Add(plotter.NewGrid())
	w := vg.Points(14)
	for i, series := range []string{bwReceived, bwNodeCPU} {
		bars, err := plotter.NewBarChart(vals[series], w)
		if err != nil {
			return false, fmt.Errorf("plot %s: %w", path, err)
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(2*i-1) * w / 2
		p.Add(bars)
		label := "bytes received"
		if series == bwNodeCPU {
			label = "node CPU per session"
		}
		p.Legend.Add(label, bars)
	}
	p.Legend.Top = true
	p.NominalX(names...)
	// Whole decades, with 2 and 5 between them unlabelled.
	p.Y.Min, p.Y.Max = lo, hi
	var ticks []plot.Tick
	for e := lo; e <= hi; e++ {
		ticks = append(ticks, plot.Tick{Value: e, Label: fmt.Sprintf("×%g", math.Pow(10, e))})
		for _, m := range []float64{2, 5} {
			if e < hi {
				ticks = append(ticks, plot.Tick{Value: e + math.Log10(m)})
			}
		}
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	if err := p.Save(vg.Points(640), vg.Points(400), path); err != nil {
		return false, fmt.Errorf("plot %s: %w", path, err)
	}
	return true, nil
}
