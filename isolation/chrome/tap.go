package chrome

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/target"

	"github.com/shoji-rbi/shoji/isolation"
)

// The screencast's frames are most of what Chromium sends: at 60 frames a
// second of a busy page, megabytes a second of base64 in JSON. chromedp
// reads each message with two copies, decodes its JSON into a generic
// message, then the event's JSON, then the base64: about 1.5 ms of CPU and
// 1.2 MB of garbage per 250 kB frame, plus the goroutine hand-offs of its
// event dispatch and of an acknowledgement round trip.
//
// The tap takes the frames out of the DevTools pipe before chromedp sees
// them. It sits between Chromium's two pipe descriptors and chromedp's:
//
//	chromedp → (its command pipe) → tap.proxy → Chromium's fd 3
//	Chromium's fd 4 → tap.read → (chromedp's reading pipe) → chromedp
//
// tap.read reads Chromium's messages into one reused buffer. A
// Page.screencastFrame event of a watched DevTools session is decoded in
// place (its base64 once, straight into the frame), handed to the
// session's watcher and acknowledged at once (or when the frame pace
// allows, pace.go), by the tap itself, with a command id above any
// chromedp uses; the answers to those commands are
// dropped. Every other message goes on to chromedp unchanged, so chromedp
// still owns the connection and everything else on it. tap.proxy copies
// chromedp's commands to Chromium a whole message at a time, so an
// acknowledgement never lands inside one of them.
//
// Chromium's output pipe is enlarged to 1 MiB where the system allows it,
// so that a frame usually crosses it in one write and one read.
//
// The tap relies on how chromedp lays out the pipe (its two extra files
// become Chromium's fd 3 and fd 4). If a chromedp release changes that,
// attachTap refuses the command (errPipeLayout), the browser logs it and
// the frames come through chromedp to frameLoop instead. TestFramePaths
// holds both paths to the same contract, and TestTapWithChromium fails
// when a real launch no longer gets a tap.

// ackIDBase is the first command id the tap uses for its acknowledgements.
// chromedp numbers its commands from 1; it would need a billion commands in
// one browser to reach this. Chromium takes ids up to 2³¹−1.
const ackIDBase = 1 << 30

// tapPipeSize is the size asked for Chromium's output pipe.
const tapPipeSize = 1 << 20

// minRead is the least free space read asks the pipe to fill.
const minRead = 64 << 10

// maxMessage bounds one message from Chromium. Screenshots and PDFs are
// the largest (a printed PDF is limited by the transfer policy well below
// this; base64 adds a third).
const maxMessage = 512 << 20

// frameFunc receives a decoded screencast frame and the number of the
// screencast that sent it (Chromium numbers each start of a tab's
// screencast). It runs on the tap's reading goroutine and must return
// quickly.
type frameFunc func(f isolation.Frame, cast int64)

// tap is the frame path of one browser's DevTools pipe. See the comment
// above.
type tap struct {
	// childClosed closes the child's ends once, after the start or at close.
	childClosed sync.Once
	log         *slog.Logger

	// Chromium's ends: fd 3 (it reads commands) and fd 4 (it writes
	// messages). closeChild closes the parent's copies once the process
	// started.
	childCmds, childOut *os.File

	out      *os.File // Chromium's messages, read by read
	toCDP    *os.File // chromedp's reading pipe, written by read
	fromCDP  *os.File // chromedp's commands, read by proxy
	toChrome *os.File // Chromium's command pipe

	// wmu makes each message written to toChrome whole. wbuf and nextID
	// are the acknowledgements', guarded by wmu too.
	wmu     sync.Mutex
	wbuf    []byte
	nextID  int64
	writeOK bool

	mu      sync.Mutex
	watched map[target.SessionID]frameFunc

	// pace, if set, holds acknowledgements back (pace.go): one that must
	// wait goes to later, which ackLater sends; once one waits, the
	// following ones queue behind it, in order. stop ends ackLater.
	pace  *framePace
	later queue[heldAck]
	stop  chan struct{}

	// frames, acks and forwarded count what the tap did, for tests.
	frames, acks, forwarded atomic.Int64

	wg sync.WaitGroup
}

// errPipeLayout means chromedp no longer starts Chromium with the pipe
// descriptors the tap expects.
var errPipeLayout = errors.New("chromedp's DevTools pipe layout is not the expected fd 3 and fd 4")

// errTapLeftOut means the tap was left out on purpose (Config.withoutTap,
// in tests), so the frames take chromedp's path.
var errTapLeftOut = errors.New("the DevTools tap is left out")

// attachTap rewires cmd, which chromedp set up for --remote-debugging-pipe,
// through a new tap and starts the tap's goroutines. chromedp closes its
// own copies of Chromium's ends after the start; the tap keeps duplicates
// of them until closeChild. The tap's acknowledgements follow pace; nil
// acknowledges every frame at once.
func attachTap(cmd *exec.Cmd, log *slog.Logger, pace *framePace) (*tap, error) {
	if len(cmd.ExtraFiles) != 2 {
		return nil, fmt.Errorf("%w: %d extra files", errPipeLayout, len(cmd.ExtraFiles))
	}
	t := &tap{log: log, nextID: ackIDBase, writeOK: true, watched: map[target.SessionID]frameFunc{},
		pace: pace, stop: make(chan struct{})}
	t.later.init()
	var err error
	var files []*os.File
	fail := func(e error) (*tap, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, e
	}
	// chromedp's command pipe, read end, and its reading pipe, write end.
	if t.fromCDP, err = dupFile(cmd.ExtraFiles[0], "devtools-commands"); err != nil {
		return fail(err)
	}
	files = append(files, t.fromCDP)
	if t.toCDP, err = dupFile(cmd.ExtraFiles[1], "devtools-to-chromedp"); err != nil {
		return fail(err)
	}
	files = append(files, t.toCDP)
	if t.childCmds, t.toChrome, err = os.Pipe(); err != nil {
		return fail(fmt.Errorf("devtools command pipe: %w", err))
	}
	files = append(files, t.childCmds, t.toChrome)
	if t.out, t.childOut, err = os.Pipe(); err != nil {
		return fail(fmt.Errorf("devtools output pipe: %w", err))
	}
	files = append(files, t.out, t.childOut)
	if err := setPipeSize(t.out, tapPipeSize); err != nil {
		log.Debug("devtools pipe size", logErr, err)
	}
	cmd.ExtraFiles = []*os.File{t.childCmds, t.childOut}
	t.wg.Add(3)
	go t.read()
	go t.proxy()
	go t.ackLater()
	return t, nil
}

// dupFile duplicates f's descriptor, close-on-exec and non-blocking, so the
// runtime's poller serves it and Close interrupts a blocked read.
func dupFile(f *os.File, name string) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", name, err)
	}
	var fd int
	var derr error
	syscall.ForkLock.RLock()
	err = rc.Control(func(s uintptr) {
		fd, derr = syscall.Dup(int(s))
		if derr == nil {
			syscall.CloseOnExec(fd)
		}
	})
	syscall.ForkLock.RUnlock()
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", name, err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("dup %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// closeChild closes the tap's copies of Chromium's ends, so that the tap
// sees the end of the pipe when Chromium exits. Call it once the process
// started, or failed to.
func (t *tap) closeChild() {
	t.childClosed.Do(func() {
		t.childCmds.Close()
		t.childOut.Close()
	})
}

// afterStart is an exec.Cmd's Stdin that runs fn once the process has
// started. exec.Cmd copies a Stdin that is not a file from a goroutine that
// Start launches only after the process exists; the first Read runs fn and
// ends the input, so the process reads an empty stdin, as from /dev/null.
// exec.Cmd has no other hook between the fork and Wait.
type afterStart struct {
	once sync.Once
	fn   func()
}

func (a *afterStart) Read([]byte) (int, error) {
	a.once.Do(a.fn)
	return 0, io.EOF
}

// close stops the tap's goroutines and waits for them. Chromium and
// chromedp then see their pipes end.
func (t *tap) close() {
	t.closeChild()
	t.out.Close()
	t.fromCDP.Close()
	if t.stop != nil {
		close(t.stop)
	}
	t.wg.Wait()
}

// watch has the frames of DevTools session sid handed to fn instead of
// chromedp. A nil fn stops watching.
func (t *tap) watch(sid target.SessionID, fn frameFunc) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fn == nil {
		delete(t.watched, sid)
		return
	}
	t.watched[sid] = fn
}

// read splits Chromium's output into messages, takes the frames and passes
// the rest on. It ends when Chromium's output ends, then closes chromedp's
// reading pipe so chromedp sees the browser go.
func (t *tap) read() {
	defer t.wg.Done()
	defer t.toCDP.Close()
	// It starts small and grows to the largest message (a frame is tens
	// to hundreds of kilobytes); an idle browser's tap holds little.
	buf := make([]byte, 0, 2*minRead)
	start, scanned := 0, 0 // the unprocessed message begins at start
	for {
		if cap(buf)-len(buf) < minRead {
			if start > 0 {
				// Move the partial message to the front.
				n := copy(buf, buf[start:])
				buf = buf[:n]
				scanned -= start
				start = 0
			}
			if cap(buf)-len(buf) < minRead {
				if cap(buf) >= maxMessage {
					t.log.Error("devtools message too large", "limit", maxMessage)
					return
				}
				nb := make([]byte, len(buf), 2*cap(buf))
				copy(nb, buf)
				buf = nb
			}
		}
		n, err := t.out.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		for {
			i := bytes.IndexByte(buf[scanned:], 0)
			if i < 0 {
				scanned = len(buf)
				break
			}
			end := scanned + i
			t.message(buf[start:end])
			start, scanned = end+1, end+1
		}
		if start == len(buf) {
			if cap(buf) > 4*tapPipeSize {
				// A large answer (a PDF) is done with.
				buf = make([]byte, 0, 2*minRead)
			}
			buf, start, scanned = buf[:0], 0, 0
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				t.log.Debug("devtools pipe", logErr, err)
			}
			return
		}
	}
}

// message handles one message from Chromium, without its zero byte.
func (t *tap) message(msg []byte) {
	if t.takeFrame(msg) || t.dropAckAnswer(msg) {
		return
	}
	t.forwarded.Add(1)
	// One write with the terminating zero: msg lies in read's buffer, and
	// the byte after it is the zero that ended it.
	full := msg[:len(msg)+1]
	if _, err := t.toCDP.Write(full); err != nil && !errors.Is(err, os.ErrClosed) {
		t.log.Debug("devtools pipe to chromedp", logErr, err)
	}
}

// takeFrame decodes msg and hands it to its watcher if it is a screencast
// frame of a watched session, and acknowledges it. It reports whether it
// took the message; anything it cannot read goes on to chromedp.
func (t *tap) takeFrame(msg []byte) bool {
	// Chromium writes an event's method first; a frame it writes otherwise
	// goes to chromedp, which decodes it too.
	if len(msg) < 256 || !bytes.Contains(msg[:256], []byte(`"Page.screencastFrame"`)) {
		return false
	}
	var method, params, sid []byte
	if err := eachField(msg, func(k, v []byte) {
		switch string(k) {
		case "method":
			method = v
		case "params":
			params = v
		case "sessionId":
			sid = v
		}
	}); err != nil || string(method) != `"Page.screencastFrame"` || len(sid) < 2 || params == nil {
		return false
	}
	session := target.SessionID(sid[1 : len(sid)-1])
	t.mu.Lock()
	fn := t.watched[session]
	t.mu.Unlock()
	if fn == nil {
		return false
	}
	var data, meta, castID []byte
	if err := eachField(params, func(k, v []byte) {
		switch string(k) {
		case "data":
			data = v
		case "metadata":
			meta = v
		case "sessionId":
			castID = v
		}
	}); err != nil || len(data) < 2 || data[0] != '"' || castID == nil {
		return false
	}
	b64 := data[1 : len(data)-1]
	if bytes.IndexByte(b64, '\\') >= 0 {
		return false // escaped: chromedp decodes it
	}
	cast, err := strconv.ParseInt(string(castID), 10, 64)
	if err != nil {
		return false
	}
	// Acknowledged first: Chromium answers while the frame is decoded and
	// delivered, so the answer is usually waiting in the pipe when read
	// comes back, and costs no wake-up of its own. Unless the pace holds
	// it back.
	t.ackPaced(sid, castID)
	jpg := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(jpg, b64)
	if err != nil {
		// Acknowledged already, so not for chromedp: dropped.
		t.log.Warn("screencast frame with bad base64 dropped", logErr, err)
		return true
	}
	f := isolation.Frame{JPEG: jpg[:n], Time: frameTime(meta)}
	if w, h, ok := jpegSize(f.JPEG); ok {
		f.Width, f.Height = w, h
	}
	metaScroll(&f, meta)
	t.frames.Add(1)
	fn(f, cast)
	return true
}

// frameTime is the timestamp in a frame's metadata, or now.
func frameTime(meta []byte) time.Time {
	var ts []byte
	if meta != nil {
		_ = eachField(meta, func(k, v []byte) {
			if string(k) == "timestamp" {
				ts = v
			}
		})
	}
	if v, err := strconv.ParseFloat(string(ts), 64); err == nil && v > 0 {
		sec, frac := math.Modf(v)
		return time.Unix(int64(sec), int64(frac*1e9))
	}
	return time.Now()
}

// metaScroll sets f's scroll offset from a frame's metadata (a JSON
// object), as frameOf does for chromedp's frames.
func metaScroll(f *isolation.Frame, meta []byte) {
	if meta == nil {
		return
	}
	var x, y, width, scale float64
	var seen int
	_ = eachField(meta, func(k, v []byte) {
		var dst *float64
		switch string(k) {
		case "scrollOffsetX":
			dst = &x
		case "scrollOffsetY":
			dst = &y
		case "deviceWidth":
			dst = &width
		case "pageScaleFactor":
			dst = &scale
		default:
			return
		}
		if n, err := strconv.ParseFloat(string(v), 64); err == nil {
			*dst = n
			seen++
		}
	})
	if seen == 4 {
		frameScroll(f, x, y, width, scale)
	}
}

// ack acknowledges screencast frame castID (a JSON number) of DevTools
// session sid (a JSON string as Chromium sent it).
func (t *tap) ack(sid, castID []byte) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if !t.writeOK {
		return
	}
	id := t.nextID
	t.nextID++
	if t.nextID == math.MaxInt32 {
		t.nextID = ackIDBase
	}
	b := t.wbuf[:0]
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"sessionId":`...)
	b = append(b, sid...)
	b = append(b, `,"method":"Page.screencastFrameAck","params":{"sessionId":`...)
	b = append(b, castID...)
	b = append(b, "}}\x00"...)
	t.wbuf = b
	if _, err := t.toChrome.Write(b); err != nil {
		t.writeOK = false
		t.log.Debug("devtools ack", logErr, err)
		return
	}
	t.acks.Add(1)
}

// heldAck is an acknowledgement the pace holds back: its DevTools session
// and screencast frame number as Chromium wrote them (copies).
type heldAck struct {
	sid, castID []byte
}

// ackPaced acknowledges a frame at once if the pace allows it and none is
// held back already, or else hands it to ackLater.
func (t *tap) ackPaced(sid, castID []byte) {
	if t.pace == nil {
		t.ack(sid, castID)
		return
	}
	t.later.mu.Lock()
	queued := len(t.later.items) > 0
	t.later.mu.Unlock()
	if d, _ := t.pace.delay(time.Now()); d <= 0 && !queued {
		t.ack(sid, castID)
		t.pace.acked(time.Now())
		return
	}
	t.later.push(heldAck{sid: bytes.Clone(sid), castID: bytes.Clone(castID)})
}

// ackLater sends the acknowledgements the pace held back, each when the
// pace allows it, until the tap closes.
func (t *tap) ackLater() {
	defer t.wg.Done()
	for {
		select {
		case <-t.stop:
			return
		case <-t.later.wake:
		}
		for {
			// The head stays queued while it waits, so that ackPaced
			// queues later frames behind it.
			t.later.mu.Lock()
			if len(t.later.items) == 0 {
				t.later.mu.Unlock()
				break
			}
			a := t.later.items[0]
			t.later.mu.Unlock()
			if !t.pace.wait(t.stop) {
				return
			}
			t.ack(a.sid, a.castID)
			t.pace.acked(time.Now())
			t.later.mu.Lock()
			t.later.items = t.later.items[1:]
			t.later.mu.Unlock()
		}
	}
}

// dropAckAnswer reports whether msg answers one of the tap's own commands,
// which chromedp must not see.
func (t *tap) dropAckAnswer(msg []byte) bool {
	if len(msg) > 1024 || !bytes.HasPrefix(msg, []byte(`{"id":`)) {
		return false
	}
	var id, errv []byte
	if eachField(msg, func(k, v []byte) {
		switch string(k) {
		case "id":
			id = v
		case "error":
			errv = v
		}
	}) != nil {
		return false
	}
	n, err := strconv.ParseInt(string(id), 10, 64)
	if err != nil || n < ackIDBase {
		return false
	}
	if errv != nil {
		t.log.Debug("devtools ack refused", "detail", string(errv))
	}
	return true
}

// proxy copies chromedp's commands to Chromium, one whole message per
// write. When chromedp closes its end, it closes Chromium's, which makes
// Chromium exit as it would without the tap. After a failed write it keeps
// reading, so that chromedp never blocks on a full pipe.
func (t *tap) proxy() {
	defer t.wg.Done()
	defer func() {
		t.wmu.Lock()
		t.writeOK = false
		t.toChrome.Close()
		t.wmu.Unlock()
	}()
	r := bufio.NewReaderSize(t.fromCDP, 64<<10)
	for {
		msg, err := r.ReadBytes(0)
		if len(msg) > 0 && err == nil {
			t.wmu.Lock()
			if t.writeOK {
				if _, werr := t.toChrome.Write(msg); werr != nil {
					t.writeOK = false
					t.log.Debug("devtools pipe to chromium", logErr, werr)
				}
			}
			t.wmu.Unlock()
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				t.log.Debug("devtools pipe from chromedp", logErr, err)
			}
			return
		}
	}
}

// eachField calls fn with the key (unquoted, as written) and the raw value
// of each member of the JSON object obj, without decoding the values. It
// checks no more of the syntax than it needs to find the members.
func eachField(obj []byte, fn func(key, value []byte)) error {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return errors.New("json: not an object")
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return errors.New("json: want a member name")
		}
		end, err := skipString(obj, i)
		if err != nil {
			return err
		}
		key := obj[i+1 : end-1]
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return errors.New("json: want ':'")
		}
		i = skipSpace(obj, i+1)
		vend, err := skipValue(obj, i)
		if err != nil {
			return err
		}
		fn(key, obj[i:vend])
		i = skipSpace(obj, vend)
		if i >= len(obj) {
			return errors.New("json: unterminated object")
		}
		switch obj[i] {
		case ',':
			i = skipSpace(obj, i+1)
		case '}':
			return nil
		default:
			return errors.New("json: want ',' or '}'")
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i].
func skipString(b []byte, i int) (int, error) {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return 0, errors.New("json: unterminated string")
		}
		q := i + j
		// The quote is escaped if an odd number of backslashes precede it.
		k := q
		for k > i && b[k-1] == '\\' {
			k--
		}
		if (q-k)%2 == 0 {
			return q + 1, nil
		}
		i = q + 1
	}
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("json: want a value")
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errors.New("json: unterminated value")
	default:
		start := i
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' {
			i++
		}
		if i == start {
			return 0, errors.New("json: want a value")
		}
		return i, nil
	}
}

// fSetPipeSize is Linux's F_SETPIPE_SZ, which package syscall lacks.
const fSetPipeSize = 1031

// setPipeSize asks the kernel for a pipe buffer of size bytes
// (/proc/sys/fs/pipe-max-size bounds it for unprivileged processes).
func setPipeSize(f *os.File, size int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSize, uintptr(size))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return fmt.Errorf("F_SETPIPE_SZ %d: %w", size, errno)
	}
	return nil
}
