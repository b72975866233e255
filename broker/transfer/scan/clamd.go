package scan

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Defaults of ClamdOptions.
const (
	DefaultTimeout   = 60 * time.Second
	DefaultChunkSize = 64 << 10
	// MaxChunkSize bounds ClamdOptions.ChunkSize; clamd itself refuses
	// chunks larger than its StreamMaxLength.
	MaxChunkSize = 16 << 20
)

// engineRefresh is how long a VERSION answer is reused for Result.Engine.
// clamd reloads its signature database on its own schedule, so the ledger
// may name the previous database version for up to this long.
const engineRefresh = time.Minute

// maxReply bounds what is read of one clamd answer.
const maxReply = 4 << 10

var (
	// ErrSizeLimit means clamd refused the content because it is larger
	// than its StreamMaxLength: the file could not be scanned.
	ErrSizeLimit = errors.New("content exceeds clamd's StreamMaxLength")
	// ErrClamd means clamd answered with an error or something that is not
	// a scan verdict.
	ErrClamd = errors.New("clamd error")
)

// ClamdOptions tune a Clamd client. Zero values mean the defaults.
type ClamdOptions struct {
	// Timeout bounds one exchange with clamd (a whole scan, a PING or a
	// VERSION), on top of the context's deadline. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// ChunkSize is the INSTREAM chunk size in bytes. Zero means
	// DefaultChunkSize; at most MaxChunkSize.
	ChunkSize int
}

// Clamd is a Scanner that sends content to a clamd daemon with the INSTREAM
// command. It opens one connection per request and is safe for concurrent
// use.
type Clamd struct {
	addr    string // as configured, for errors
	network string // "unix" or "tcp"
	address string
	opts    ClamdOptions
	dialer  net.Dialer

	mu       sync.Mutex
	engine   string
	engineAt time.Time
}

var _ Scanner = (*Clamd)(nil)

// NewClamd returns a client of the clamd listening at addr:
// "unix:/run/clamav/clamd.ctl", a bare absolute path (a Unix socket), or
// "tcp:host:port". It does not connect; use Ping to check the daemon.
func NewClamd(addr string, opts ClamdOptions) (*Clamd, error) {
	network, address, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.Timeout < 0:
		return nil, fmt.Errorf("clamd %s: Timeout must not be negative, got %v", addr, opts.Timeout)
	case opts.ChunkSize < 0 || opts.ChunkSize > MaxChunkSize:
		return nil, fmt.Errorf("clamd %s: ChunkSize must be between 1 and %d bytes, got %d", addr, MaxChunkSize, opts.ChunkSize)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	return &Clamd{addr: addr, network: network, address: address, opts: opts}, nil
}

// parseAddr splits a clamd address into a network and an address for
// net.Dial.
func parseAddr(addr string) (network, address string, err error) {
	switch {
	case strings.HasPrefix(addr, "unix:"):
		network, address = "unix", strings.TrimPrefix(addr, "unix:")
		if !filepath.IsAbs(address) {
			return "", "", fmt.Errorf("clamd address %q: the Unix socket path must be absolute", addr)
		}
	case strings.HasPrefix(addr, "tcp:"):
		network, address = "tcp", strings.TrimPrefix(addr, "tcp:")
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return "", "", fmt.Errorf("clamd address %q: want tcp:host:port: %w", addr, err)
		}
		if host == "" || port == "" {
			return "", "", fmt.Errorf("clamd address %q: want tcp:host:port with both host and port", addr)
		}
	case filepath.IsAbs(addr):
		network, address = "unix", addr
	default:
		return "", "", fmt.Errorf("clamd address %q: want unix:/path/to/socket, /path/to/socket or tcp:host:port", addr)
	}
	return network, address, nil
}

// String returns the address the client was made with.
func (c *Clamd) String() string { return "clamd " + c.addr }

// Ping checks that clamd answers.
func (c *Clamd) Ping(ctx context.Context) error {
	reply, err := c.command(ctx, "PING")
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("clamd %s: PING: answered %q instead of PONG: %w", c.addr, reply, ErrClamd)
	}
	return nil
}

// Version returns clamd's version and signature database version, e.g.
// "ClamAV 1.4.6/27400/Mon Nov 23 08:00:00 2026" ("ClamAV 1.4.6" when it
// runs on custom signatures only).
func (c *Clamd) Version(ctx context.Context) (string, error) {
	reply, err := c.command(ctx, "VERSION")
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(reply, "ClamAV ") {
		return "", fmt.Errorf("clamd %s: VERSION: unexpected answer %q: %w", c.addr, reply, ErrClamd)
	}
	return reply, nil
}

// Scan sends r to clamd and returns its verdict. Result.Engine is clamd's
// VERSION answer, reused for up to a minute.
func (c *Clamd) Scan(ctx context.Context, r io.Reader) (Result, error) {
	engine, err := c.engineVersion(ctx)
	if err != nil {
		return Result{}, err
	}
	reply, err := c.instream(ctx, r)
	if err != nil {
		return Result{}, err
	}
	res, err := parseScanReply(reply)
	if err != nil {
		return Result{}, fmt.Errorf("clamd %s: INSTREAM: %w", c.addr, err)
	}
	res.Engine = engine
	return res, nil
}

// engineVersion returns the cached VERSION answer, asking clamd when it is
// older than engineRefresh.
func (c *Clamd) engineVersion(ctx context.Context) (string, error) {
	c.mu.Lock()
	engine, at := c.engine, c.engineAt
	c.mu.Unlock()
	if engine != "" && time.Since(at) < engineRefresh {
		return engine, nil
	}
	engine, err := c.Version(ctx)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.engine, c.engineAt = engine, time.Now()
	c.mu.Unlock()
	return engine, nil
}

// parseScanReply turns an INSTREAM answer into a Result.
func parseScanReply(reply string) (Result, error) {
	switch {
	case reply == "stream: OK":
		return Result{}, nil
	case strings.HasSuffix(reply, " ERROR"):
		if strings.Contains(reply, "size limit exceeded") {
			return Result{}, fmt.Errorf("%q: %w", reply, ErrSizeLimit)
		}
		return Result{}, fmt.Errorf("%q: %w", reply, ErrClamd)
	case strings.HasPrefix(reply, "stream: "):
		sig, found := strings.CutSuffix(strings.TrimPrefix(reply, "stream: "), " FOUND")
		sig = strings.TrimSpace(sig)
		if !found || sig == "" {
			return Result{}, fmt.Errorf("unexpected answer %q: %w", reply, ErrClamd)
		}
		return Result{Infected: true, Signature: sig}, nil
	default:
		return Result{}, fmt.Errorf("unexpected answer %q: %w", reply, ErrClamd)
	}
}

// session is one connection to clamd, bounded by the context and the
// client's timeout.
type session struct {
	c    *Clamd
	op   string
	ctx  context.Context
	conn net.Conn
}

// open dials clamd for one request. The connection's deadline is the
// earlier of the context's deadline and now+Timeout; canceling the context
// interrupts any read or write in progress.
func (c *Clamd) open(ctx context.Context, op string) (*session, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	conn, err := c.dialer.DialContext(ctx, c.network, c.address)
	if err != nil {
		cancel()
		s := &session{c: c, op: op, ctx: ctx}
		return nil, nil, s.wrap("connect", err)
	}
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		cancel()
		return nil, nil, fmt.Errorf("clamd %s: %s: set deadline: %w", c.addr, op, err)
	}
	stop := context.AfterFunc(ctx, func() {
		// Wake up a blocked read or write at once.
		_ = conn.SetDeadline(time.Unix(1, 0))
	})
	s := &session{c: c, op: op, ctx: ctx, conn: conn}
	return s, func() {
		stop()
		conn.Close()
		cancel()
	}, nil
}

// wrap names the address, the request and the step that failed, and turns
// a deadline into context.DeadlineExceeded.
func (s *session) wrap(step string, err error) error {
	if cerr := s.ctx.Err(); cerr != nil {
		err = cerr
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		err = context.DeadlineExceeded
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("clamd %s: %s: %s: no answer in time: %w", s.c.addr, s.op, step, err)
	}
	return fmt.Errorf("clamd %s: %s: %s: %w", s.c.addr, s.op, step, err)
}

// readReply reads one NUL-terminated answer.
func (s *session) readReply() (string, error) {
	br := bufio.NewReaderSize(io.LimitReader(s.conn, maxReply), 512)
	line, err := br.ReadString(0)
	switch {
	case err == nil:
		return strings.TrimSpace(strings.TrimSuffix(line, "\x00")), nil
	case errors.Is(err, io.EOF) && line != "":
		// Some clamd versions close right after the answer without NUL.
		return strings.TrimSpace(line), nil
	case errors.Is(err, io.EOF):
		return "", s.wrap("read answer", errors.New("connection closed without an answer"))
	default:
		return "", s.wrap("read answer", err)
	}
}

// command sends a one-word command and returns the answer.
func (c *Clamd) command(ctx context.Context, cmd string) (string, error) {
	s, done, err := c.open(ctx, cmd)
	if err != nil {
		return "", err
	}
	defer done()
	if _, err := io.WriteString(s.conn, "z"+cmd+"\x00"); err != nil {
		return "", s.wrap("send", err)
	}
	return s.readReply()
}

// instream sends r with INSTREAM and returns clamd's answer.
func (c *Clamd) instream(ctx context.Context, r io.Reader) (string, error) {
	s, done, err := c.open(ctx, "INSTREAM")
	if err != nil {
		return "", err
	}
	defer done()
	if err := s.send(r); err != nil {
		// clamd answers and closes when it refuses the stream (size
		// limit); its answer says more than the broken pipe does.
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "write" && s.ctx.Err() == nil {
			if reply, rerr := s.readReply(); rerr == nil && reply != "" {
				return reply, nil
			}
		}
		return "", err
	}
	return s.readReply()
}

// send writes the INSTREAM command, r in length-prefixed chunks, and the
// zero-length terminator.
func (s *session) send(r io.Reader) error {
	w := bufio.NewWriterSize(s.conn, s.c.opts.ChunkSize+4)
	if _, err := w.WriteString("zINSTREAM\x00"); err != nil {
		return s.wrap("send", err)
	}
	buf := make([]byte, 4+s.c.opts.ChunkSize)
	for {
		n, rerr := io.ReadFull(r, buf[4:])
		if n > 0 {
			binary.BigEndian.PutUint32(buf[:4], uint32(n))
			if _, err := w.Write(buf[:4+n]); err != nil {
				return s.wrap("send content", err)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("clamd %s: INSTREAM: read content: %w", s.c.addr, rerr)
		}
		if err := s.ctx.Err(); err != nil {
			return s.wrap("send content", err)
		}
	}
	if _, err := w.Write(make([]byte, 4)); err != nil {
		return s.wrap("send end of content", err)
	}
	if err := w.Flush(); err != nil {
		return s.wrap("send end of content", err)
	}
	return nil
}
