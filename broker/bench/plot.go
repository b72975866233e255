package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// seriesLabel names the client of a series in a plot or table.
type seriesLabel struct{ client, label string }

// clientLabels name the clients in plots, in the order they are drawn.
var clientLabels = []seriesLabel{
	{clientRaw, "raw CDP"},
	{clientProtocol, "shoji, protocol client"},
	{clientViewer, "shoji, real viewer"},
	{clientVNC, "VNC peer (noVNC)"},
}

// writePlots writes the latency distributions and the capacity plot into
// dir and returns the files' names.
func writePlots(dir string, r *Report) ([]string, error) {
	var names []string
	var errs []error
	for _, s := range []struct{ scenario, title string }{
		{"click", "click → first frame (protocol, raw) or paint (viewer, VNC)"},
		{"key", "key press → character visible"},
		{"ime", "IME commit → text visible"},
		{"capture", "mousedown → first picture showing it, raw CDP: screencast against capture"},
	} {
		name := "latency-" + s.scenario + ".png"
		labels := clientLabels
		if s.scenario == "capture" {
			labels = captureMethods
		}
		ok, err := latencyPlot(filepath.Join(dir, name), s.title, s.scenario, labels, r.Results)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			names = append(names, name)
		}
	}
	if ok, err := bandwidthPlot(filepath.Join(dir, "bandwidth.png"), r.Bandwidth); err != nil {
		errs = append(errs, err)
	} else if ok {
		names = append(names, "bandwidth.png")
	}
	if len(r.Results.Capacity) > 0 {
		name := "capacity.png"
		if err := capacityPlot(filepath.Join(dir, name), r.Results.Capacity); err != nil {
			errs = append(errs, err)
		} else {
			names = append(names, name)
		}
	}
	return names, errors.Join(errs...)
}

// cdf returns the empirical distribution of xs as points.
func cdf(xs []float64) plotter.XYs {
	s := slices.Clone(xs)
	slices.Sort(s)
	pts := make(plotter.XYs, len(s))
	for i, x := range s {
		pts[i] = plotter.XY{X: x, Y: float64(i+1) / float64(len(s))}
	}
	return pts
}

// latencyPlot draws the distribution of each client's latencies in a
// scenario as a cumulative curve; it reports false when there was nothing
// to draw.
func latencyPlot(path, title, scenario string, labels []seriesLabel, res *Results) (bool, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "latency (ms)"
	p.Y.Label.Text = "fraction of samples ≤ latency"
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	p.Legend.Top = false
	p.Legend.Left = false
	n := 0
	xmax := 0.0
	for i, c := range labels {
		xs := res.Latency[key(scenario, c.client)]
		if len(xs) == 0 {
			continue
		}
		xmax = max(xmax, Summarize(xs).P99)
		l, err := plotter.NewLine(cdf(xs))
		if err != nil {
			return false, fmt.Errorf("plot %s: %w", path, err)
		}
		l.LineStyle.Width = vg.Points(1.5)
		l.LineStyle.Color = plotutil.Color(i)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (n=%d)", c.label, len(xs)), l)
		n++
	}
	if n == 0 {
		return false, nil
	}
	// The axis ends past the slowest p99: the last percent's tail is in
	// the tables, and would squeeze the curves.
	p.X.Min, p.X.Max = 0, xmax*1.25
	if err := p.Save(vg.Points(640), vg.Points(400), path); err != nil {
		return false, fmt.Errorf("plot %s: %w", path, err)
	}
	return true, nil
}

// capacityPlot draws the active session's click latency and the node's
// memory against the number of idle sessions, one above the other.
func capacityPlot(path string, pts []CapacityPoint) error {
	lat := plot.New()
	lat.Title.Text = "capacity: the active session's click → frame latency"
	lat.X.Label.Text = "idle sessions beside the active one"
	lat.Y.Label.Text = "ms"
	lat.Add(plotter.NewGrid())
	lat.Legend.Top, lat.Legend.Left = true, true
	mem := plot.New()
	mem.Title.Text = "capacity: memory"
	mem.X.Label.Text = "idle sessions beside the active one"
	mem.Y.Label.Text = "MiB"
	mem.Add(plotter.NewGrid())
	mem.Legend.Top, mem.Legend.Left = true, true

	series := []struct {
		p     *plot.Plot
		label string
		get   func(CapacityPoint) float64
	}{
		{lat, "p50", func(c CapacityPoint) float64 { return c.Click.P50 }},
		{lat, "p95", func(c CapacityPoint) float64 { return c.Click.P95 }},
		{mem, "node memory in use", func(c CapacityPoint) float64 { return c.NodeMemoryMiB }},
		{mem, "Chromium PSS, all sessions", func(c CapacityPoint) float64 { return c.ChromiumPSSMiB }},
		{mem, "broker RSS", func(c CapacityPoint) float64 { return c.BrokerRSSMiB }},
	}
	for i, s := range series {
		xy := make(plotter.XYs, len(pts))
		for j, c := range pts {
			xy[j] = plotter.XY{X: float64(c.Sessions), Y: s.get(c)}
		}
		l, sc, err := plotter.NewLinePoints(xy)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		l.LineStyle.Width = vg.Points(1.5)
		l.LineStyle.Color = plotutil.Color(i)
		sc.GlyphStyle.Color = plotutil.Color(i)
		s.p.Add(l, sc)
		s.p.Legend.Add(s.label, l, sc)
	}
	lat.Y.Min = 0
	mem.Y.Min = 0

	img := vgimg.New(vg.Points(640), vg.Points(720))
	dc := draw.New(img)
	t := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	plots := [][]*plot.Plot{{lat}, {mem}}
	canvases := plot.Align(plots, t, dc)
	lat.Draw(canvases[0][0])
	mem.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Close()
}
