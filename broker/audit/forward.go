package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// ForwarderOptions configures a Forwarder. The zero value is usable.
type ForwarderOptions struct {
	// Name names the cursor file, DIR/NAME.cursor, which remembers the
	// last record the collector acknowledged. Give each collector its
	// own. Default "syslog".
	Name string
	// Hostname is the syslog HOSTNAME; default os.Hostname().
	Hostname string
	// AppName is the syslog APP-NAME; default "shoji".
	AppName string
	// Facility is the syslog facility; zero means 13, "log audit".
	Facility int
	// SDID is the structured data ID that carries the record's seq;
	// default "shoji@32473" (32473 is the private enterprise number set
	// aside for examples, RFC 5612).
	SDID string
	// DialTimeout bounds a connection attempt; default 10s.
	DialTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts, which doubles after each failure; default 100ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// AckTimeout is how long the collector may take to acknowledge sent
	// records before the connection is given up as dead; default 60s.
	AckTimeout time.Duration
	Logger     *slog.Logger
}

const (
	forwardBatch    = 512  // records read and sent at a time
	forwardInflight = 4096 // records sent but not yet acknowledged
	ackPollMin      = time.Millisecond
	ackPollMax      = 100 * time.Millisecond
)

// Forwarder sends the trail to a syslog collector: RFC 5424 messages over
// TCP with octet-counting framing (RFC 6587), one per record, whose MSG is
// the record's line exactly as in the chain (so the collector's copy can
// be verified with the same rule) and whose structured data carries the
// seq.
//
// It reads the chain files themselves, which are its buffer: a collector
// outage never blocks Commit or Record and loses nothing. A record counts
// as forwarded once the collector's TCP stack has acknowledged all of its
// bytes (on Linux; elsewhere once it is written to the socket); the
// cursor file remembers the last one, and after a reconnect or a restart
// the Forwarder sends again from the record after it. A record can reach
// the collector twice only when the broker stops between the
// acknowledgement and saving the cursor. A record is lost only when the
// collector's host acknowledged it and the collector died before reading
// it, which plain syslog over TCP cannot tell.
type Forwarder struct {
	file   *File
	addr   string
	opts   ForwarderOptions
	cursor string // cursor file path
	log    *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	confirmed position // after the last acknowledged record
	// acked is closed when confirmed moves, then replaced (Flush waits on
	// it).
	acked chan struct{}

	// Owned by the forwarding goroutine, then by Close.
	saved     position  // what the cursor file holds
	lastSaved time.Time // when it was written
}

// cursorEvery bounds how often the cursor file is rewritten while records
// flow; Close writes the last position.
const cursorEvery = time.Second

// position is a place in the chain and the seq of the record before it.
type position struct {
	filePos
	seq uint64
}

// cursorFile is the cursor's JSON.
type cursorFile struct {
	// Seq is the last record the collector acknowledged; File and Offset
	// where the record after it begins.
	Seq    uint64 `json:"seq"`
	File   string `json:"file"`
	Offset int64  `json:"offset"`
}

// NewForwarder starts forwarding f's trail to the collector at addr
// (host:port) from the record after the one in the cursor file, or from
// the first record when there is none. Close stops it.
func NewForwarder(f *File, addr string, opts ForwarderOptions) (*Forwarder, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("syslog collector address %q: %w", addr, err)
	}
	if opts.Name == "" {
		opts.Name = "syslog"
	}
	for _, c := range opts.Name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return nil, fmt.Errorf("forwarder name %q: want lowercase letters, digits, - and _", opts.Name)
		}
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	opts.Hostname = syslogToken(opts.Hostname, 255)
	if opts.AppName == "" {
		opts.AppName = "shoji"
	}
	opts.AppName = syslogToken(opts.AppName, 48)
	if opts.Facility <= 0 || opts.Facility > 23 {
		opts.Facility = 13
	}
	if opts.SDID == "" {
		opts.SDID = "shoji@32473"
	}
	opts.SDID = syslogToken(opts.SDID, 32)
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(opts.MinBackoff, 30*time.Second)
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 60 * time.Second
	}
	fw := &Forwarder{
		file: f, addr: addr, opts: opts,
		cursor: filepath.Join(f.Dir(), opts.Name+".cursor"),
		log:    opts.Logger,
		done:   make(chan struct{}),
	}
	if fw.log == nil {
		fw.log = slog.New(slog.DiscardHandler)
	}
	fw.log = fw.log.With("collector", addr)
	fw.confirmed = fw.loadCursor()
	fw.saved = fw.confirmed
	fw.acked = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	fw.cancel = cancel
	go fw.run(ctx)
	return fw, nil
}

// Close stops forwarding and saves the cursor.
func (fw *Forwarder) Close() error {
	fw.cancel()
	<-fw.done
	if p := fw.confirmedPos(); p != fw.saved {
		if err := fw.saveCursor(p); err != nil {
			return fmt.Errorf("save syslog cursor: %w", err)
		}
	}
	return nil
}

// Flush waits until the collector has acknowledged every durable record of
// the trail, or ctx ends. The broker calls it at a clean stop, after the
// trail's closing checkpoint, so that the collector's copy ends where the
// trail does.
func (fw *Forwarder) Flush(ctx context.Context) error {
	for {
		head, _ := fw.file.Head()
		fw.mu.Lock()
		got, acked := fw.confirmed.seq, fw.acked
		fw.mu.Unlock()
		if got >= head {
			return nil
		}
		select {
		case <-acked:
		case <-fw.done:
			return fmt.Errorf("syslog forwarding stopped with records up to seq %d of %d acknowledged", got, head)
		case <-ctx.Done():
			return fmt.Errorf("syslog collector acknowledged records up to seq %d of %d: %w", got, head, ctx.Err())
		}
	}
}

// Forwarded is the seq of the last record the collector acknowledged.
func (fw *Forwarder) Forwarded() uint64 {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.confirmed.seq
}

func (fw *Forwarder) confirmedPos() position {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.confirmed
}

// run connects, serves the connection until it fails, and connects again
// after a pause that doubles up to MaxBackoff while nothing gets through.
func (fw *Forwarder) run(ctx context.Context) {
	defer close(fw.done)
	backoff := fw.opts.MinBackoff
	for {
		before := fw.Forwarded()
		d := net.Dialer{Timeout: fw.opts.DialTimeout}
		conn, err := d.DialContext(ctx, "tcp", fw.addr)
		if err == nil {
			err = fw.serve(ctx, conn.(*net.TCPConn))
		}
		if ctx.Err() != nil {
			return
		}
		if fw.Forwarded() > before {
			backoff = fw.opts.MinBackoff
		}
		fw.log.Warn("audit forwarding to syslog interrupted; will resend from the last acknowledged record",
			"err", err, "acknowledged_seq", fw.Forwarded(), "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, fw.opts.MaxBackoff)
	}
}

// sent is a record written to the connection: where its bytes end in the
// connection's stream, and the chain position after it.
type sent struct {
	end int64
	pos position
}

var errCollectorGone = errors.New("the collector closed the connection")

// serve sends the chain from the last acknowledged record on conn, and
// keeps sending as records become durable, until the connection fails or
// ctx ends.
func (fw *Forwarder) serve(ctx context.Context, conn *net.TCPConn) error {
	// A syslog collector sends nothing: a read that ends means it is gone.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		_, _ = io.Copy(io.Discard, conn)
	}()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer func() {
		stop()
		_ = conn.Close()
		<-gone
	}()

	bw := bufio.NewWriterSize(conn, 64<<10)
	pos := fw.confirmedPos()
	var written int64
	var inflight []sent
	poll := ackPollMin
	lastAck := time.Now()
	for {
		end, changed, closed := fw.file.durable()
		if len(inflight) < forwardInflight && pos.before(end) {
			recs, next, err := fw.readBatch(pos, end)
			if err != nil {
				return err
			}
			if len(inflight) == 0 {
				lastAck = time.Now() // the wait for an acknowledgement starts now
			}
			for _, r := range recs {
				n, _ := bw.Write(fw.frame(r))
				written += int64(n)
				inflight = append(inflight, sent{end: written, pos: r.next})
			}
			_ = conn.SetWriteDeadline(time.Now().Add(fw.opts.AckTimeout))
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("send to collector: %w", err)
			}
			pos = next
		}
		if len(inflight) > 0 {
			q, err := unacked(conn)
			if err != nil {
				return fmt.Errorf("read the connection's send queue: %w", err)
			}
			acked := written - int64(q)
			n := 0
			for n < len(inflight) && inflight[n].end <= acked {
				n++
			}
			if n > 0 {
				fw.confirm(inflight[n-1].pos)
				inflight = inflight[n:]
				poll, lastAck = ackPollMin, time.Now()
			} else if time.Since(lastAck) > fw.opts.AckTimeout {
				return fmt.Errorf("the collector acknowledged nothing for %v", fw.opts.AckTimeout)
			}
		}
		switch {
		case len(inflight) < forwardInflight && pos.before(end):
			continue
		case len(inflight) > 0:
			more := changed
			if closed || len(inflight) >= forwardInflight {
				more = nil // nothing more will come, or acknowledgements must come first
			}
			t := time.NewTimer(poll)
			select {
			case <-t.C:
			case <-more:
				t.Stop()
			case <-gone:
				t.Stop()
				return errCollectorGone
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
			poll = min(2*poll, ackPollMax)
		case closed:
			select {
			case <-gone:
				return errCollectorGone
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			select {
			case <-changed:
			case <-gone:
				return errCollectorGone
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// outRecord is a line read from the chain to send.
type outRecord struct {
	line []byte
	link link
	ok   bool     // the line is a record
	next position // where the next line begins
}

// readBatch reads up to forwardBatch lines from pos, stopping at end.
func (fw *Forwarder) readBatch(pos position, end filePos) ([]outRecord, position, error) {
	var out []outRecord
	for len(out) < forwardBatch && pos.before(end) {
		recs, next, eof, err := fw.readFile(pos, end, forwardBatch-len(out))
		out = append(out, recs...)
		pos = next
		if err != nil {
			return out, pos, err
		}
		if eof {
			if pos.index >= end.index {
				return out, pos, fmt.Errorf("audit trail damaged: %s ends before byte %d, where its last durable record ended", fileName(pos.index), end.offset)
			}
			idx, err := fw.nextFile(pos.index)
			if err != nil {
				return out, pos, err
			}
			pos.filePos = filePos{index: idx}
		}
	}
	return out, pos, nil
}

// readFile reads up to max lines of one file from pos, stopping at end;
// eof reports that the file has no more lines.
func (fw *Forwarder) readFile(pos position, end filePos, max int) (recs []outRecord, next position, eof bool, err error) {
	f, err := os.Open(filepath.Join(fw.file.Dir(), fileName(pos.index)))
	if err != nil {
		return nil, pos, false, fmt.Errorf("read audit trail: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(pos.offset, io.SeekStart); err != nil {
		return nil, pos, false, fmt.Errorf("read audit trail: %w", err)
	}
	lr := newLineReader(f)
	lr.offset = pos.offset
	for len(recs) < max && (pos.index < end.index || lr.offset < end.offset) {
		line, terminated, off, err := lr.next()
		if errors.Is(err, io.EOF) {
			return recs, pos, true, nil
		}
		if err != nil {
			return recs, pos, false, fmt.Errorf("read %s: %w", fileName(pos.index), err)
		}
		pos.offset = lr.offset
		if !terminated {
			fw.log.Error("audit trail damaged: a line without newline before the end; not forwarded", "file", fileName(pos.index), "offset", off)
			continue
		}
		l, perr := parseLink(line)
		r := outRecord{line: line, link: l, ok: perr == nil}
		switch {
		case perr != nil:
			fw.log.Error("audit trail damaged: forwarding a line that is not a record", "file", fileName(pos.index), "offset", off, "err", perr)
		case l.Seq != pos.seq+1:
			fw.log.Error("audit trail damaged: seq out of order", "file", fileName(pos.index), "offset", off, "seq", l.Seq, "want", pos.seq+1)
			pos.seq = l.Seq
		default:
			pos.seq = l.Seq
		}
		r.next = pos
		recs = append(recs, r)
	}
	return recs, pos, false, nil
}

// nextFile is the number of the first chain file after index.
func (fw *Forwarder) nextFile(index int) (int, error) {
	files, err := listFiles(fw.file.Dir())
	if err != nil {
		return 0, fmt.Errorf("list audit files: %w", err)
	}
	for _, cf := range files {
		if cf.index > index {
			if cf.index != index+1 {
				fw.log.Error("audit trail damaged: files missing", "after", fileName(index), "next", cf.name)
			}
			return cf.index, nil
		}
	}
	return 0, fmt.Errorf("audit trail: no file after %s", fileName(index))
}

// frame is the record as one octet-counted RFC 5424 message.
func (fw *Forwarder) frame(r outRecord) []byte {
	ts, msgid, sd := "-", "-", "-"
	if r.ok {
		if !r.link.Time.IsZero() {
			ts = r.link.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
		}
		if r.link.Type != "" {
			msgid = syslogToken(string(r.link.Type), 32)
		}
		sd = fmt.Sprintf(`[%s seq="%d"]`, fw.opts.SDID, r.link.Seq)
	}
	pri := fw.opts.Facility*8 + severity(r.link.Type)
	head := fmt.Sprintf("<%d>1 %s %s %s - %s %s ", pri, ts, fw.opts.Hostname, fw.opts.AppName, msgid, sd)
	var b bytes.Buffer
	b.WriteString(strconv.Itoa(len(head) + len(r.line)))
	b.WriteByte(' ')
	b.WriteString(head)
	b.Write(r.line)
	return b.Bytes()
}

// severity is the syslog severity of a record of type t.
func severity(t Type) int {
	switch t {
	case TypeLockout, TypeKillSwitch, TypeStartWarning, TypeRecovered, TypeDropped:
		return 4 // warning
	case TypeLoginFailed, TypeDeny, TypePolicyChange, TypeUserChange, TypeSiteDecision, TypeMaintenance, TypeExport:
		return 5 // notice
	default:
		return 6 // informational
	}
}

// syslogToken makes s a syslog header field: printable ASCII without
// spaces, at most n characters, "-" when empty.
func syslogToken(s string, n int) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if c := s[i]; c > 32 && c < 127 {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

// confirm records that the collector has everything before p: in memory
// at once, in the cursor file at most every cursorEvery.
func (fw *Forwarder) confirm(p position) {
	fw.mu.Lock()
	fw.confirmed = p
	close(fw.acked)
	fw.acked = make(chan struct{})
	fw.mu.Unlock()
	if time.Since(fw.lastSaved) < cursorEvery {
		return
	}
	if err := fw.saveCursor(p); err != nil {
		fw.log.Error("save syslog cursor; a restart will resend records the collector has", "err", err)
	}
}

// saveCursor writes p to the cursor file.
func (fw *Forwarder) saveCursor(p position) error {
	data, _ := json.Marshal(cursorFile{Seq: p.seq, File: fileName(p.index), Offset: p.offset})
	fw.lastSaved = time.Now()
	if err := writeFileAtomic(fw.cursor, data); err != nil {
		return err
	}
	fw.saved = p
	return nil
}

// writeFileAtomic replaces path with data: a reader sees the old content
// or the new, never a mix.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// loadCursor returns the position after the last acknowledged record:
// from the cursor file when it matches the chain, else found by reading
// the chain for the cursor's seq, else the start of the chain.
func (fw *Forwarder) loadCursor() position {
	start := position{filePos: filePos{index: 1}}
	if files, err := listFiles(fw.file.Dir()); err == nil && len(files) > 0 {
		start.index = files[0].index
	}
	data, err := os.ReadFile(fw.cursor)
	if errors.Is(err, fs.ErrNotExist) {
		return start
	}
	var c cursorFile
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil {
		fw.log.Error("syslog cursor unreadable; forwarding the whole trail again", "file", fw.cursor, "err", err)
		return start
	}
	if c.Seq == 0 {
		return start
	}
	if p, ok := fw.checkCursor(c); ok {
		return p
	}
	if p, ok := fw.findAfter(c.Seq); ok {
		return p
	}
	fw.log.Error("syslog cursor does not match the trail; forwarding the whole trail again", "cursor_seq", c.Seq)
	return start
}

// checkCursor reports whether the cursor's position is the start of the
// record after its seq, or the end of the durable chain right after it.
func (fw *Forwarder) checkCursor(c cursorFile) (position, bool) {
	var idx int
	if _, err := fmt.Sscanf(c.File, filePrefix+"%d"+fileSuffix, &idx); err != nil || fileName(idx) != c.File || c.Offset < 0 {
		return position{}, false
	}
	p := position{filePos: filePos{index: idx, offset: c.Offset}, seq: c.Seq}
	end, _, _ := fw.file.durable()
	if headSeq, _ := fw.file.Head(); headSeq == c.Seq {
		return p, p.filePos == end
	}
	for range 2 {
		l, eof, ok := firstRecordAt(filepath.Join(fw.file.Dir(), fileName(p.index)), p.offset)
		switch {
		case eof && p.index < end.index:
			p.filePos = filePos{index: p.index + 1} // the record after is the next file's first
		case ok && l.Seq == c.Seq+1:
			return p, true
		default:
			return position{}, false
		}
	}
	return position{}, false
}

// firstRecordAt reads the record that starts at offset in the file at
// path; eof reports that the file ends there.
func firstRecordAt(path string, offset int64) (l link, eof, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return link{}, false, false
	}
	defer f.Close()
	if offset > 0 {
		// A record starts right after a newline.
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, offset-1); err != nil || b[0] != '\n' {
			return link{}, false, false
		}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return link{}, false, false
	}
	line, terminated, _, err := newLineReader(f).next()
	if errors.Is(err, io.EOF) {
		return link{}, true, false
	}
	if err != nil || !terminated {
		return link{}, false, false
	}
	l, err = parseLink(line)
	return l, false, err == nil
}

// findAfter finds the position after the record seq by reading the
// chain from its start.
func (fw *Forwarder) findAfter(seq uint64) (position, bool) {
	files, err := listFiles(fw.file.Dir())
	if err != nil {
		return position{}, false
	}
	for _, cf := range files {
		f, err := os.Open(cf.path)
		if err != nil {
			return position{}, false
		}
		lr := newLineReader(f)
		for {
			line, terminated, _, err := lr.next()
			if err != nil || !terminated {
				break
			}
			if l, err := parseLink(line); err == nil && l.Seq == seq {
				_ = f.Close()
				return position{filePos: filePos{index: cf.index, offset: lr.offset}, seq: seq}, true
			}
		}
		_ = f.Close()
	}
	return position{}, false
}
