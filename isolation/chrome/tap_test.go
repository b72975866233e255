package chrome

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"

	"github.com/shoji-rbi/shoji/isolation"
)

// tapRig is a tap between a fake Chromium and a fake chromedp: the test
// writes what Chromium would send to chrome.out and reads its commands from
// chrome.cmds; it writes chromedp's commands to cdp.cmds and reads what
// chromedp would receive from cdp.in.
type tapRig struct {
	tap *tap
	// Chromium's side: its output (fd 4) and its commands (fd 3).
	chromeOut  *os.File
	chromeCmds *bufio.Reader
	// chromedp's side: its commands and what it reads.
	cdpCmds *os.File
	cdpIn   *bufio.Reader

	mu     sync.Mutex
	frames []isolation.Frame
}

const rigSession = "8E2F1C0A5B7D4E3F9A6B8C1D2E3F4A5B"

func newTapRig(t *testing.T) *tapRig {
	t.Helper()
	// The pipes as chromedp sets them up: it writes commands to cdpW and
	// reads from cdpR; Chromium's ends are the extra files.
	childR, cdpW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cdpR, childW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{ExtraFiles: []*os.File{childR, childW}}
	tp, err := attachTap(cmd, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	// chromedp closes its copies of Chromium's ends after the start, and
	// the process holds the tap's: the test plays the process with them.
	childR.Close()
	childW.Close()
	r := &tapRig{
		tap:        tp,
		chromeOut:  cmd.ExtraFiles[1],
		chromeCmds: bufio.NewReader(cmd.ExtraFiles[0]),
		cdpCmds:    cdpW,
		cdpIn:      bufio.NewReader(cdpR),
	}
	// The tap's copies of Chromium's ends would keep the pipes open: the
	// rig's own are the files above, so it closes the tap's references to
	// the originals only at the end.
	t.Cleanup(func() {
		r.chromeOut.Close()
		cdpW.Close()
		tp.close()
		cdpR.Close()
	})
	tp.watch(rigSession, func(f isolation.Frame, _ int64) {
		r.mu.Lock()
		r.frames = append(r.frames, f)
		r.mu.Unlock()
	})
	return r
}

// fromChrome writes msg as Chromium would.
func (r *tapRig) fromChrome(t *testing.T, msg []byte) {
	t.Helper()
	if _, err := r.chromeOut.Write(append(bytes.Clone(msg), 0)); err != nil {
		t.Fatal(err)
	}
}

// readMsg reads one zero-terminated message, or fails after a while.
func readMsg(t *testing.T, br *bufio.Reader, what string) []byte {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b, err := br.ReadBytes(0)
		ch <- res{b, err}
	}()
	select {
	case x := <-ch:
		if x.err != nil {
			t.Fatalf("reading %s: %v", what, x.err)
		}
		return x.b[:len(x.b)-1]
	case <-time.After(20 * time.Second):
		t.Fatalf("nothing arrived at %s", what)
		return nil
	}
}

// TestTap checks what the tap takes and what it passes on.
func TestTap(t *testing.T) {
	r := newTapRig(t)
	jpg := pageJPEG(t, 320, 200)
	frame := screencastMessage(t, jpg)

	// A frame of the watched session goes to the watcher, decoded, and is
	// acknowledged to Chromium; chromedp sees nothing of it. The message
	// after it shows that nothing came before it.
	r.fromChrome(t, frame)
	other := []byte(`{"method":"Page.frameNavigated","params":{"frame":{"id":"F"}},"sessionId":"` + rigSession + `"}`)
	r.fromChrome(t, other)
	if got := readMsg(t, r.cdpIn, "chromedp"); !bytes.Equal(got, other) {
		t.Fatalf("chromedp got %.200s, want the navigation event", got)
	}
	r.mu.Lock()
	frames := r.frames
	r.mu.Unlock()
	if len(frames) != 1 {
		t.Fatalf("watcher got %d frames, want 1", len(frames))
	}
	f := frames[0]
	if !bytes.Equal(f.JPEG, jpg) || f.Width != 320 || f.Height != 200 || f.Time.UnixMicro() != 1760000000123456 {
		t.Errorf("frame: %d bytes (want %d), %dx%d, time %d", len(f.JPEG), len(jpg), f.Width, f.Height, f.Time.UnixMicro())
	}
	var ack struct {
		ID        int64  `json:"id"`
		SessionID string `json:"sessionId"`
		Method    string `json:"method"`
		Params    struct {
			SessionID int64 `json:"sessionId"`
		} `json:"params"`
	}
	if err := json.Unmarshal(readMsg(t, r.chromeCmds, "Chromium"), &ack); err != nil {
		t.Fatal(err)
	}
	if ack.ID < ackIDBase || ack.SessionID != rigSession || ack.Method != "Page.screencastFrameAck" || ack.Params.SessionID != 1 {
		t.Errorf("ack = %+v", ack)
	}

	// The answer to the ack is dropped; an answer to chromedp is not.
	r.fromChrome(t, []byte(`{"id":1073741824,"result":{},"sessionId":"`+rigSession+`"}`))
	mine := []byte(`{"id":7,"result":{},"sessionId":"` + rigSession + `"}`)
	r.fromChrome(t, mine)
	if got := readMsg(t, r.cdpIn, "chromedp"); !bytes.Equal(got, mine) {
		t.Errorf("chromedp got %s, want its own answer", got)
	}

	// Frames the tap does not take go to chromedp unchanged: another
	// session's, and one whose data is escaped.
	otherSession := bytes.Replace(frame, []byte(rigSession), []byte("0000"), 1)
	escaped := bytes.Replace(frame, []byte(`"data":"`), []byte(`"data":"\u002f`), 1)
	for _, m := range [][]byte{otherSession, escaped} {
		r.fromChrome(t, m)
		if got := readMsg(t, r.cdpIn, "chromedp"); !bytes.Equal(got, m) {
			t.Errorf("chromedp got %d bytes, want the %d of the frame it must decode", len(got), len(m))
		}
	}
	// A frame whose base64 is broken is acknowledged and dropped: the
	// message after it is the next chromedp sees.
	r.fromChrome(t, bytes.Replace(frame, []byte(`"data":"`), []byte(`"data":"!!!!`), 1))
	r.fromChrome(t, other)
	if got := readMsg(t, r.cdpIn, "chromedp"); !bytes.Equal(got, other) {
		t.Errorf("chromedp got %.200s after a broken frame, want the navigation event", got)
	}
	if ack := readMsg(t, r.chromeCmds, "Chromium"); !bytes.Contains(ack, []byte("Page.screencastFrameAck")) {
		t.Errorf("Chromium got %s for a broken frame, want its acknowledgement", ack)
	}
	if n := r.tap.frames.Load(); n != 1 {
		t.Errorf("tap took %d frames, want 1", n)
	}

	// chromedp's commands reach Chromium whole, even while the tap
	// acknowledges frames: a 3 MiB command spans many pipe writes.
	big := []byte(`{"id":8,"method":"Input.insertText","params":{"text":"` + strings.Repeat("あ", 1<<20) + `"}}`)
	small := []byte(`{"id":9,"method":"Page.reload"}`)
	done := make(chan error, 1)
	go func() {
		_, err := r.cdpCmds.Write(append(append(bytes.Clone(big), 0), append(small, 0)...))
		done <- err
	}()
	for range 20 {
		r.fromChrome(t, frame)
	}
	var gotBig, gotSmall bool
	for acks := 0; !gotBig || !gotSmall || acks < 20; {
		m := readMsg(t, r.chromeCmds, "Chromium")
		switch {
		case bytes.Equal(m, big):
			gotBig = true
		case bytes.Equal(m, small):
			gotSmall = true
		default:
			if err := json.Unmarshal(m, &ack); err != nil || ack.Method != "Page.screencastFrameAck" {
				t.Fatalf("Chromium got a broken or unknown command (%d bytes): %.100s", len(m), m)
			}
			acks++
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A message far larger than the tap's buffer (a printed PDF) reaches
	// chromedp whole, and a frame after it is still taken.
	bigAnswer := []byte(`{"id":10,"result":{"data":"` + strings.Repeat("QUJD", 3<<20/4) + `"}}`)
	go func() {
		// The pipe holds less than the message: written while the test
		// reads.
		_, _ = r.chromeOut.Write(append(append(bytes.Clone(bigAnswer), 0), append(bytes.Clone(frame), 0)...))
	}()
	if got := readMsg(t, r.cdpIn, "chromedp"); !bytes.Equal(got, bigAnswer) {
		t.Errorf("chromedp got %d bytes, want the %d of the large answer", len(got), len(bigAnswer))
	}
	eventually(t, "the frame after the large answer", func() bool { return r.tap.frames.Load() == 22 })
	if ack := readMsg(t, r.chromeCmds, "Chromium"); !bytes.Contains(ack, []byte("Page.screencastFrameAck")) {
		t.Errorf("Chromium got %s, want the acknowledgement of the frame after the large answer", ack)
	}

	// Chromium's exit ends chromedp's reading; chromedp's close ends
	// Chromium's commands.
	r.chromeOut.Close()
	if _, err := r.cdpIn.ReadBytes(0); !errors.Is(err, io.EOF) {
		t.Errorf("chromedp read %v after Chromium's end, want EOF", err)
	}
	r.cdpCmds.Close()
	if _, err := r.chromeCmds.ReadBytes(0); !errors.Is(err, io.EOF) {
		t.Errorf("Chromium read %v after chromedp's end, want EOF", err)
	}
	r.tap.watch(target.SessionID(rigSession), nil)
}

// TestEachField checks the member scanner against encoding/json.
func TestEachField(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
	}{
		{`{}`, map[string]string{}},
		{` { "a" : 1 , "b":"x\"}" ,"c":{"d":[1,{"e":"]"}]},"f":true}`, map[string]string{"a": "1", "b": `"x\"}"`, "c": `{"d":[1,{"e":"]"}]}`, "f": "true"}},
		{`{"s":"a\\"}`, map[string]string{"s": `"a\\"`}},
	} {
		got := map[string]string{}
		if err := eachField([]byte(tc.in), func(k, v []byte) { got[string(k)] = string(v) }); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.in, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %s, want %s", tc.in, k, got[k], v)
			}
		}
	}
	for _, bad := range []string{``, `[]`, `{"a"}`, `{"a":}`, `{"a":"x}`, `{"a":1`, `{"a":{"b":1}`, `{a:1}`} {
		if err := eachField([]byte(bad), func(k, v []byte) {}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzEachField checks that the scanner never panics and, for objects
// encoding/json accepts, finds the same members with values that decode
// to the same thing.
func FuzzEachField(f *testing.F) {
	f.Add(`{"method":"Page.screencastFrame","params":{"data":"AAAA","sessionId":1},"sessionId":"S"}`)
	f.Add(`{"a":[1,2,{"b":"\"}"}],"c":null}`)
	f.Fuzz(func(t *testing.T, in string) {
		got := map[string]json.RawMessage{}
		err := eachField([]byte(in), func(k, v []byte) { got[string(k)] = bytes.Clone(v) })
		var want map[string]json.RawMessage
		if json.Unmarshal([]byte(in), &want) != nil || want == nil {
			return
		}
		if err != nil {
			t.Fatalf("%q: %v, but encoding/json reads it", in, err)
		}
		for k, w := range want {
			var a, b any
			if json.Unmarshal(w, &a) != nil {
				continue
			}
			// Keys with escapes are compared as written.
			g, ok := got[k]
			if !ok {
				if strings.ContainsRune(in, '\\') {
					continue
				}
				t.Fatalf("%q: member %q not found", in, k)
			}
			if err := json.Unmarshal(g, &b); err != nil {
				t.Fatalf("%q: member %q = %s: %v", in, k, g, err)
			}
		}
	})
}

// BenchmarkTapFrame measures the tap's work for one 1366×768 frame, from
// the message in its buffer to the frame handed over and the
// acknowledgement written (to /dev/null): compare ScreencastFrame/pipe,
// chromedp's path.
func BenchmarkTapFrame(b *testing.B) {
	jpg := pageJPEG(b, 1366, 768)
	raw := append(screencastMessage(b, jpg), 0)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	tp := &tap{log: slog.New(slog.DiscardHandler), nextID: ackIDBase, writeOK: true, toChrome: devnull,
		watched: map[target.SessionID]frameFunc{rigSession: func(f isolation.Frame, _ int64) { sinkFrame(f) }}}
	b.SetBytes(int64(len(jpg)))
	b.ReportAllocs()
	for b.Loop() {
		tp.message(raw[:len(raw)-1])
	}
	if tp.frames.Load() == 0 {
		b.Fatal("no frame taken")
	}
}

// TestTapWithChromium checks that a real Chromium's frames take the tap's
// path and keep coming: with two frames in flight, a page that moves gets
// many frames only if the tap acknowledges them.
func TestTapWithChromium(t *testing.T) {
	f := launchFixture(t, isolation.Viewport{Width: 400, Height: 300, DPR: 1}, "http://"+siteHost+"/animate")
	if f.b.screen.tap == nil {
		t.Fatal("the browser has no tap: chromedp's pipe layout changed")
	}
	n := f.rec.frameCount()
	eventually(t, "60 frames of the animation", func() bool { return f.rec.frameCount() >= n+60 })
	got := f.rec.frameCount()
	if taken := f.b.screen.tap.frames.Load(); taken < int64(got) {
		t.Errorf("the tap took %d frames, the observer got %d: some came through chromedp", taken, got)
	}
	if acks, taken := f.b.screen.tap.acks.Load(), f.b.screen.tap.frames.Load(); acks < taken-1 {
		t.Errorf("the tap acknowledged %d of %d frames", acks, taken)
	}
	waitFrame(t, f.rec, 0, nil)
}
