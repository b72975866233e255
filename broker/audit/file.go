package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FileOptions configures OpenFile. The zero value is usable.
type FileOptions struct {
	// MaxBytes is the size past which the next record starts a new file;
	// zero means 64 MiB.
	MaxBytes int64
	// Logger receives what the sink cannot report to a caller: Record
	// events it could not keep, write errors while retrying. Nil discards.
	Logger *slog.Logger
	// Now stamps the sink's own records (audit_rotated, audit_recovered,
	// audit_dropped); nil means time.Now.
	Now func() time.Time
	// QueueLimit is how many Record events may wait for the writer; zero
	// means 16384. Past it Record counts the event as dropped and the
	// writer records the count in an audit_dropped record.
	QueueLimit int

	// CheckpointKey signs the audit_checkpoint records the sink writes:
	// one when it opens (after any recovery records), one after every
	// CheckpointEvery records, one when a record has waited
	// CheckpointInterval for one, and one at a clean Close. Nil means no
	// checkpoints.
	CheckpointKey *SigningKey
	// CheckpointEvery is the most records (other than the sink's
	// audit_checkpoint, audit_rotated and audit_recovered) between two
	// checkpoints; zero means 1000.
	CheckpointEvery int
	// CheckpointInterval is the longest time, by Now, that a written
	// record waits for a checkpoint; zero means one minute.
	CheckpointInterval time.Duration
	// After returns a channel that receives after d, for the checkpoint
	// interval's timer; nil means time.After. Tests pass their own with
	// their Now.
	After func(d time.Duration) <-chan time.Time
}

const (
	defaultMaxBytes   = 64 << 20
	defaultQueueLimit = 16384
	// DefaultCheckpointEvery and DefaultCheckpointInterval are the
	// checkpoint cadence when FileOptions leaves it zero.
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = time.Minute
	// maxRetryWait bounds the writer's wait between attempts after a
	// write error.
	maxRetryWait = 5 * time.Second
)

// ErrInUse is returned by OpenFile when another File holds the directory.
var ErrInUse = errors.New("audit directory is in use by another shoji process")

// File is the default Sink: an append-only, hash-chained JSON Lines trail
// in a directory (audit-000001.jsonl, audit-000002.jsonl, ...).
//
// One writer goroutine owns the files. Commit and Record put events on its
// queue; the writer takes everything queued, writes it with one write and
// one fsync per file (group commit), and then answers the Commit calls the
// fsync covered. Record never waits for the writer: the queue holds up to
// QueueLimit Record events, and an event that finds it full is counted,
// logged, and accounted for by an audit_dropped record. Commit calls are
// never dropped; their number is bounded by the callers waiting on them.
//
// After a write or fsync error the writer cuts the file back to its last
// durable record, fails the Commit calls of that write, keeps their Record
// events queued, and retries after a pause. If it cannot cut the file back
// it stops writing for good, and every later Commit fails: the chain is
// never continued after bytes of unknown state.
//
// With a checkpoint key the writer signs the head of the chain in
// audit_checkpoint records (see FileOptions.CheckpointKey), in the same
// write and fsync as the records they follow, so that a trail stopped
// cleanly ends with a signed checkpoint and a crash leaves at most
// CheckpointEvery records after the last one.
type File struct {
	dir        string
	maxBytes   int64
	log        *slog.Logger
	now        func() time.Time
	queueLimit int
	lock       *os.File
	key        *SigningKey // nil: no checkpoints
	every      int64
	interval   time.Duration
	after      func(time.Duration) <-chan time.Time

	mu      sync.Mutex
	queue   []request
	queued  int            // Record events in queue
	dropped map[Type]int64 // Record events refused since the last audit_dropped
	closing bool
	// wake tells the writer there is work; capacity 1, latest wins.
	wake chan struct{}
	// stop is closed by Close; it ends a retry pause early.
	stop     chan struct{}
	done     chan struct{} // closed when the writer has exited
	closeErr error         // set by the writer before done is closed

	headMu   sync.Mutex
	headSeq  uint64
	headHash string
	headEnd  filePos       // end of the last durable record
	changed  chan struct{} // closed at the next durable write, then replaced
	closed   bool          // changed is closed for good
	// writeErr is the error of the last write when it failed; nil once a
	// write succeeds again.
	writeErr error

	// Owned by the writer goroutine (by OpenFile before it starts).
	cur    fileState
	failed error // set when the file could not be cut back after an error

	syncs atomic.Uint64 // data fsyncs, for the group commit test
}

// fileState is where the chain ends: the file being appended to and the
// last record in it, counting bytes encoded but not yet written.
type fileState struct {
	f     *os.File
	index int
	size  int64
	seq   uint64
	hash  string
	// onlyHeader is true while the file holds just its audit_rotated
	// record, which keeps a small MaxBytes from rotating forever.
	onlyHeader bool
	// sinceCheckpoint counts the records that count towards the next
	// checkpoint (all but the sink's checkpoint, rotated and recovered
	// records) written since the last checkpoint; waitingSince is when the
	// first of them was written, by the sink's clock.
	sinceCheckpoint int64
	waitingSince    time.Time
}

// filePos is a place in the chain: a byte offset in file number index.
type filePos struct {
	index  int
	offset int64
}

// before reports whether p comes before q.
func (p filePos) before(q filePos) bool {
	return p.index < q.index || p.index == q.index && p.offset < q.offset
}

// request is one event waiting for the writer.
type request struct {
	ev Event
	// done receives the outcome of a Commit; nil for Record and for the
	// sink's own events. Capacity 1: the writer never blocks on it.
	done chan result
}

type result struct {
	ev  Event
	err error
}

// OpenFile opens the trail in dir, creating dir (mode 0700) and the first
// file (mode 0600) if needed, and starts its writer. It refuses a
// directory that group or others may write to.
//
// It continues the chain where the last file ends. If a crash left an
// incomplete or unreadable final line, OpenFile cuts it off and writes an
// audit_recovered record saying how many bytes were discarded and their
// SHA-256. Only the final line is ever cut, and only one unreadable
// complete line; anything worse is an error for `shoji audit verify` to
// explain. With a CheckpointKey it then signs the head it found with an
// audit_checkpoint record.
func OpenFile(dir string, opts FileOptions) (*File, error) {
	f := &File{
		dir:        dir,
		maxBytes:   opts.MaxBytes,
		log:        opts.Logger,
		now:        opts.Now,
		queueLimit: opts.QueueLimit,
		key:        opts.CheckpointKey,
		every:      int64(opts.CheckpointEvery),
		interval:   opts.CheckpointInterval,
		after:      opts.After,
		dropped:    map[Type]int64{},
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		changed:    make(chan struct{}),
	}
	if f.maxBytes <= 0 {
		f.maxBytes = defaultMaxBytes
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.queueLimit <= 0 {
		f.queueLimit = defaultQueueLimit
	}
	if f.every <= 0 {
		f.every = DefaultCheckpointEvery
	}
	if f.interval <= 0 {
		f.interval = DefaultCheckpointInterval
	}
	if f.after == nil {
		f.after = time.After
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create audit directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("audit directory: %w", err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("audit directory %s has mode %v: group or others may write to it; chmod 700 it", dir, fi.Mode().Perm())
	}
	if f.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	pending, err := f.openTail()
	if err == nil && f.key != nil {
		pending = append(pending, request{ev: checkpointEvent(f.now(), CheckpointOpen)})
	}
	if err == nil && len(pending) > 0 {
		err = f.writeBatch(pending)
	}
	if err != nil {
		if f.cur.f != nil {
			_ = f.cur.f.Close()
		}
		_ = f.lock.Close()
		return nil, err
	}
	f.headSeq, f.headHash = f.cur.seq, f.cur.hash
	f.headEnd = filePos{f.cur.index, f.cur.size}
	go f.run()
	return f, nil
}

// openTail finds the end of the chain, repairs a torn final line, and
// returns the sink's own records that must be written before anything
// else.
func (f *File) openTail() ([]request, error) {
	files, err := listFiles(f.dir)
	if err != nil {
		return nil, fmt.Errorf("list audit files: %w", err)
	}
	if len(files) == 0 {
		nf, err := f.createFile(1)
		if err != nil {
			return nil, err
		}
		f.cur = fileState{f: nf, index: 1, hash: ZeroHash}
		return nil, nil
	}
	last := files[len(files)-1]
	t, err := readTail(last.path, true)
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", last.name, err)
	}
	var pending []request
	state := fileState{index: last.index, size: t.size, seq: t.seq, hash: t.hash, onlyHeader: t.onlyHeader}
	if t.empty {
		state.hash = ZeroHash
		if len(files) > 1 {
			// A crash between creating this file and writing its first
			// record: the chain ends in the file before.
			prev := files[len(files)-2]
			pt, err := readTail(prev.path, false)
			if err != nil {
				return nil, fmt.Errorf("read end of %s: %w", prev.name, err)
			}
			state.seq, state.hash = pt.seq, pt.hash
			pending = append(pending, request{ev: Event{Time: f.now().UTC(), Type: TypeRotated, Target: prev.name}})
		}
	}
	if t.cut > 0 {
		pending = append(pending, request{ev: Event{
			Time: f.now().UTC(), Type: TypeRecovered, Target: last.name,
			Length: t.cut, SHA256: t.cutHash, Reason: t.cutReason,
		}})
		f.log.Warn("audit trail recovered after a crash", "file", last.name, "discarded_bytes", t.cut, "reason", t.cutReason)
	}
	state.f, err = os.OpenFile(last.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit file: %w", err)
	}
	f.cur = state
	return pending, nil
}

// createFile creates the chain's file number index and makes its
// directory entry durable.
func (f *File) createFile(index int) (*os.File, error) {
	path := filepath.Join(f.dir, fileName(index))
	nf, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create audit file: %w", err)
	}
	if err := syncDir(f.dir); err != nil {
		_ = nf.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return nf, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync audit directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync audit directory: %w", err)
	}
	return nil
}

// Commit implements Sink.
func (f *File) Commit(ctx context.Context, e Event) (Event, error) {
	if err := e.check(); err != nil {
		return Event{}, err
	}
	if err := ctx.Err(); err != nil {
		return Event{}, fmt.Errorf("audit commit of %s event: %w", e.Type, err)
	}
	done := make(chan result, 1)
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		return Event{}, ErrClosed
	}
	f.queue = append(f.queue, request{ev: e, done: done})
	f.mu.Unlock()
	f.signal()
	select {
	case r := <-done:
		return r.ev, r.err
	case <-ctx.Done():
		return Event{}, fmt.Errorf("audit commit of %s event: %w (it may still be written)", e.Type, ctx.Err())
	}
}

// Record implements Sink. It takes only a short lock, never waits for
// I/O, and when the queue is full counts e as dropped instead of waiting.
func (f *File) Record(e Event) {
	invalid := e.check()
	if invalid != nil {
		f.log.Error("audit event refused", "type", string(e.Type), "err", invalid)
		e.Type = "invalid" // counted under this name in audit_dropped
	}
	f.mu.Lock()
	switch {
	case f.closing:
		f.mu.Unlock()
		f.log.Error("audit event lost: the sink is closed", "type", string(e.Type))
		return
	case invalid != nil || f.queued >= f.queueLimit:
		first := len(f.dropped) == 0
		f.dropped[e.Type]++
		f.mu.Unlock()
		if first && invalid == nil {
			f.log.Warn("audit queue full: counting dropped events until the writer catches up", "limit", f.queueLimit)
		}
	default:
		f.queue = append(f.queue, request{ev: e})
		f.queued++
		f.mu.Unlock()
	}
	f.signal()
}

func (f *File) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Head returns the sequence number and hash of the last durable record;
// 0 and ZeroHash for an empty trail.
func (f *File) Head() (seq uint64, hash string) {
	f.headMu.Lock()
	defer f.headMu.Unlock()
	return f.headSeq, f.headHash
}

// Notify returns a channel that is closed at the next durable write after
// the call, or when the sink closes. Take it before reading Head so that
// no write goes unnoticed.
func (f *File) Notify() <-chan struct{} {
	f.headMu.Lock()
	defer f.headMu.Unlock()
	return f.changed
}

// durable returns where the durable part of the chain ends, and a
// channel closed when that changes; closed reports that it never will.
func (f *File) durable() (end filePos, changed <-chan struct{}, closed bool) {
	f.headMu.Lock()
	defer f.headMu.Unlock()
	return f.headEnd, f.changed, f.closed
}

// Err says whether the trail takes records now: ErrClosed once Close was
// called, the error of the last write while writes fail (the writer
// retries them), nil otherwise. It is cheap: /readyz asks it.
func (f *File) Err() error {
	f.mu.Lock()
	closing := f.closing
	f.mu.Unlock()
	if closing {
		return ErrClosed
	}
	f.headMu.Lock()
	defer f.headMu.Unlock()
	return f.writeErr
}

// Dir is the trail's directory.
func (f *File) Dir() string { return f.dir }

// Close writes what is queued, closes the files and stops the writer.
// Later calls return nil.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		<-f.done
		return nil
	}
	f.closing = true
	close(f.stop)
	f.mu.Unlock()
	f.signal()
	<-f.done
	err := f.closeErr
	if cerr := f.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// run is the writer goroutine.
func (f *File) run() {
	defer close(f.done)
	var pause time.Duration
	// tick fires when the checkpoint interval may have passed; nil while
	// no records wait for a checkpoint.
	var tick <-chan time.Time
	for {
		batch, closing := f.take()
		if len(batch) > 0 {
			if err := f.writeBatch(batch); err != nil {
				if closing {
					f.loseQueued()
					f.closeErr = fmt.Errorf("audit: final write: %w", err)
					f.finish()
					return
				}
				pause = min(max(2*pause, 100*time.Millisecond), maxRetryWait)
				f.log.Error("audit write failed; retrying", "err", err, "retry_in", pause)
				t := time.NewTimer(pause)
				select {
				case <-t.C:
				case <-f.stop:
					t.Stop()
				}
			} else {
				pause = 0
			}
			continue
		}
		if closing {
			f.seal()
			f.finish()
			return
		}
		if tick == nil && f.key != nil && f.cur.sinceCheckpoint > 0 {
			tick = f.after(f.interval - f.now().Sub(f.cur.waitingSince))
		}
		select {
		case <-f.wake:
		case <-f.stop:
		case <-tick:
			tick = nil
		}
	}
}

// checkpointDue reports whether records have waited for a checkpoint for
// the checkpoint interval.
func (f *File) checkpointDue() bool {
	return f.key != nil && f.cur.sinceCheckpoint > 0 && !f.now().Before(f.cur.waitingSince.Add(f.interval))
}

// seal writes the closing checkpoint, so that a cleanly stopped trail
// ends with one.
func (f *File) seal() {
	if f.key == nil || f.failed != nil {
		return
	}
	if err := f.writeBatch([]request{{ev: checkpointEvent(f.now(), CheckpointClose)}}); err != nil {
		f.loseQueued()
		if f.closeErr == nil {
			f.closeErr = fmt.Errorf("audit: write the closing checkpoint: %w", err)
		}
	}
}

// take empties the queue, adding an audit_dropped record when events were
// dropped since the last one, and a checkpoint when one is due.
func (f *File) take() (batch []request, closing bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	batch, f.queue, f.queued = f.queue, nil, 0
	if len(f.dropped) > 0 {
		var total int64
		var parts []string
		for _, t := range slices.Sorted(maps.Keys(f.dropped)) {
			total += f.dropped[t]
			parts = append(parts, fmt.Sprintf("%s=%d", t, f.dropped[t]))
		}
		clear(f.dropped)
		batch = append(batch, request{ev: Event{
			Time: f.now().UTC(), Type: TypeDropped, Count: total,
			Reason: "the audit queue was full, or the event was invalid", Comment: strings.Join(parts, " "),
		}})
	}
	if f.checkpointDue() {
		batch = append(batch, request{ev: checkpointEvent(f.now(), CheckpointInterval)})
	}
	return batch, f.closing
}

// requeue puts events that were not written back at the front of the
// queue, ahead of newer ones.
func (f *File) requeue(reqs []request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(reqs, f.queue...)
	for _, r := range reqs {
		if !sinkTypes[r.ev.Type] {
			f.queued++
		}
	}
}

// loseQueued logs every queued event as lost: the sink is closing and
// its last write failed.
func (f *File) loseQueued() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.queue {
		f.log.Error("audit event lost: the sink closed after a write error", "type", string(r.ev.Type), "after_seq", f.cur.seq)
	}
	f.queue, f.queued = nil, 0
}

// finish closes the current file when the writer stops.
func (f *File) finish() {
	if f.cur.f != nil {
		if err := f.cur.f.Close(); err != nil && f.closeErr == nil {
			f.closeErr = fmt.Errorf("audit: close %s: %w", fileName(f.cur.index), err)
		}
	}
	f.headMu.Lock()
	close(f.changed)
	f.closed = true
	f.headMu.Unlock()
}

// writeBatch writes batch, one segment per file, and answers its Commit
// calls. On an error it fails the Commit calls not yet answered, puts the
// other events back on the queue, and returns the error.
func (f *File) writeBatch(batch []request) error {
	for len(batch) > 0 {
		n, results, err := f.writeSegment(batch)
		f.setWriteErr(err) // before any Commit hears of it
		if err != nil {
			var keep []request
			for _, r := range batch {
				if r.done != nil {
					r.done <- result{err: fmt.Errorf("audit: write %s event: %w", r.ev.Type, err)}
				} else {
					keep = append(keep, r)
				}
			}
			if len(keep) > 0 {
				f.requeue(keep)
			}
			return err
		}
		for i, r := range batch[:n] {
			if results[i].err != nil && r.done == nil {
				f.log.Error("audit event lost: it cannot be encoded", "type", string(r.ev.Type), "err", results[i].err)
				f.mu.Lock()
				f.dropped[r.ev.Type]++ // accounted for by the next audit_dropped record
				f.mu.Unlock()
			}
			if r.done != nil {
				r.done <- results[i]
			}
		}
		batch = batch[n:]
	}
	return nil
}

func (f *File) setWriteErr(err error) {
	f.headMu.Lock()
	f.writeErr = err
	f.headMu.Unlock()
}

// writeSegment appends as many of reqs as belong in one file, starting a
// new file first when the current one is full, and makes them durable
// with one fsync. It returns how many requests it consumed and their
// results. On an error the chain is as it was before the call.
func (f *File) writeSegment(reqs []request) (int, []result, error) {
	if f.failed != nil {
		return 0, nil, f.failed
	}
	saved := f.cur
	rotated := false
	var buf bytes.Buffer
	if f.cur.size >= f.maxBytes && !f.cur.onlyHeader {
		nf, err := f.createFile(saved.index + 1)
		if err != nil {
			return 0, nil, err
		}
		rotated = true
		f.cur = fileState{f: nf, index: saved.index + 1, seq: saved.seq, hash: saved.hash,
			sinceCheckpoint: saved.sinceCheckpoint, waitingSince: saved.waitingSince}
		hdr := Event{Time: f.now().UTC(), Type: TypeRotated, Target: fileName(saved.index)}
		if _, err := f.appendLine(&buf, hdr); err != nil {
			f.undo(saved, rotated)
			return 0, nil, err
		}
	}
	results := make([]result, 0, len(reqs))
	n := 0
	for ; n < len(reqs); n++ {
		if n > 0 && f.cur.size >= f.maxBytes && !f.cur.onlyHeader {
			break
		}
		ev, err := f.appendLine(&buf, reqs[n].ev)
		results = append(results, result{ev: ev, err: err})
		if f.key != nil && f.cur.sinceCheckpoint >= f.every {
			if _, err := f.appendLine(&buf, checkpointEvent(f.now(), CheckpointRecords)); err != nil {
				f.undo(saved, rotated)
				return 0, nil, err
			}
		}
	}
	if buf.Len() > 0 {
		if _, err := f.cur.f.Write(buf.Bytes()); err != nil {
			f.undo(saved, rotated)
			return 0, nil, fmt.Errorf("write %s: %w", fileName(f.cur.index), err)
		}
		if err := f.cur.f.Sync(); err != nil {
			f.undo(saved, rotated)
			return 0, nil, fmt.Errorf("fsync %s: %w", fileName(f.cur.index), err)
		}
		f.syncs.Add(1)
	}
	if rotated {
		if err := saved.f.Close(); err != nil {
			f.log.Error("audit: close full file", "file", fileName(saved.index), "err", err)
		}
	}
	f.publish()
	return n, results, nil
}

// appendLine gives e the next seq and the current hash as prev (and a
// checkpoint its head and signature), encodes it into buf and advances the
// state. An event that cannot be encoded changes nothing.
func (f *File) appendLine(buf *bytes.Buffer, e Event) (Event, error) {
	e.Seq, e.Prev = f.cur.seq+1, f.cur.hash
	if e.Type == TypeCheckpoint {
		cp := *e.Checkpoint
		cp.KeyID, cp.Seq, cp.Hash, cp.Every = f.key.pub.id, f.cur.seq, f.cur.hash, f.every
		cp.Sig = f.key.sign(checkpointMessage(cp.KeyID, cp.Seq, cp.Hash, e.Time, cp.Reason, cp.Every))
		e.Checkpoint = &cp
	}
	line, err := encodeLine(e)
	if err != nil {
		return Event{}, err
	}
	buf.Write(line)
	buf.WriteByte('\n')
	f.cur.seq, f.cur.hash = e.Seq, lineHash(line)
	f.cur.size += int64(len(line)) + 1
	f.cur.onlyHeader = e.Type == TypeRotated
	switch e.Type {
	case TypeCheckpoint:
		f.cur.sinceCheckpoint = 0
	case TypeRotated, TypeRecovered:
	default:
		if f.cur.sinceCheckpoint == 0 && f.key != nil {
			f.cur.waitingSince = f.now()
		}
		f.cur.sinceCheckpoint++
	}
	return e, nil
}

// undo returns the chain to saved after a failed segment: it removes a
// file the segment created, or cuts the current file back to its size
// before the segment. If that fails the sink stops writing.
func (f *File) undo(saved fileState, rotated bool) {
	if rotated {
		name := f.cur.f.Name()
		_ = f.cur.f.Close()
		f.cur = saved
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			f.failed = fmt.Errorf("audit trail stopped: remove partly written %s: %w", filepath.Base(name), err)
			return
		}
		if err := syncDir(f.dir); err != nil {
			f.failed = fmt.Errorf("audit trail stopped: %w", err)
		}
		return
	}
	f.cur = saved
	if err := saved.f.Truncate(saved.size); err != nil {
		f.failed = fmt.Errorf("audit trail stopped: cut %s back to its last record: %w", fileName(saved.index), err)
		return
	}
	if err := saved.f.Sync(); err != nil {
		f.failed = fmt.Errorf("audit trail stopped: fsync %s: %w", fileName(saved.index), err)
	}
}

// publish makes the new head visible and wakes Notify's waiters.
func (f *File) publish() {
	f.headMu.Lock()
	defer f.headMu.Unlock()
	if f.headSeq == f.cur.seq {
		return
	}
	f.headSeq, f.headHash = f.cur.seq, f.cur.hash
	f.headEnd = filePos{f.cur.index, f.cur.size}
	close(f.changed)
	f.changed = make(chan struct{})
}
