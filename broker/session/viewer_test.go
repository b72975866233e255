package session

import (
	"context"
	"log/slog"
	"testing"

	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// BenchmarkViewerFrame measures the handoff of one frame from the browser
// to a viewer's writer: "mailbox" is putFrame and Take of one Viewer,
// "observer" is the whole path from the browser's Observer.Frame call
// through the session to the viewer's Take.
func BenchmarkViewerFrame(b *testing.B) {
	jpg := make([]byte, 250<<10)

	b.Run("mailbox", func(b *testing.B) {
		v := newViewer()
		f := &isolation.Frame{JPEG: jpg, Width: 1366, Height: 768}
		b.ReportAllocs()
		for b.Loop() {
			v.putFrame(f)
			<-v.Wake()
			if _, got, _ := v.Take(); got == nil {
				b.Fatal("Take returned no frame")
			}
		}
	})

	b.Run("observer", func(b *testing.B) {
		l := &isolationtest.Launcher{}
		m, err := NewManager(Config{Launcher: l, Egress: &fakeEgress{}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Shutdown(context.Background()) })
		s, err := m.Attach(context.Background(), Owner{User: "a", Role: "clinician"}, vp)
		if err != nil {
			b.Fatal(err)
		}
		v, err := s.AddViewer()
		if err != nil {
			b.Fatal(err)
		}
		br := l.Last()
		v.Take() // the status and state events
		b.ReportAllocs()
		for b.Loop() {
			br.EmitFrame(isolation.Frame{JPEG: jpg, Width: 1366, Height: 768})
			<-v.Wake()
			if _, got, _ := v.Take(); got == nil {
				b.Fatal("Take returned no frame")
			}
		}
	})
}
