//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/crashpoint"
	"github.com/shoji-rbi/shoji/broker/transfer"
	"github.com/shoji-rbi/shoji/broker/transfer/scan/clamdtest"
)

// The restart suite (docs/security.md, "Restarts and crashes"): each test
// ends a real broker one way, starts it again on the same data directory
// and checks it (restartAndCheck). Run it with
//
//	go test ./broker/e2e -run Restart

// must fails the test on an error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRestartAfterCleanStop: a broker stopped with SIGTERM while a
// clinician browses starts again and its trail closes the session.
func TestRestartAfterCleanStop(t *testing.T) {
	e := newRestartEnv(t, restartOptions{})
	run := e.start()
	s := run.mustLogin(nurseUser).mustStream()
	must(t, s.navigate(e.site.url("/before-stop")))
	run.stop()
	e.restartAndCheck(nil, e.useAfterRestart)
}

// TestRestartAfterKillWithLiveSessions: kill -9 while two users browse.
func TestRestartAfterKillWithLiveSessions(t *testing.T) {
	e := newRestartEnv(t, restartOptions{})
	run := e.start()
	nurse := run.mustLogin(nurseUser).mustStream()
	approver := run.mustLogin(approverUser).mustStream()
	must(t, nurse.navigate(e.site.url("/ward-3")))
	must(t, approver.navigate(e.site.url("/approvals-page")))
	run.kill9()
	e.restartAndCheck(liveSessions(nurse, approver), e.useAfterRestart)
}

// TestRestartAfterCrashWhileCleaningUp: the start after a kill -9 dies too,
// once it has recorded the browser and the profile the dead run left and
// before it clears them. The start after that clears them, and the trail
// records the profile's removal: a removal never goes unrecorded.
func TestRestartAfterCrashWhileCleaningUp(t *testing.T) {
	e := newRestartEnv(t, restartOptions{})
	run := e.start()
	nurse := run.mustLogin(nurseUser).mustStream()
	must(t, nurse.navigate(e.site.url("/ward-3")))
	run.kill9()
	e.launch(crashpoint.LeftoversRecorded).waitCrashed(crashpoint.LeftoversRecorded)
	events := e.restartAndCheck(liveSessions(nurse), e.useAfterRestart)
	profiles := 0
	for _, ev := range events {
		if ev.Type == audit.TypeRecovery && ev.What == "profile" && ev.Session == nurse.session {
			profiles++
		}
	}
	if profiles == 0 {
		t.Errorf("the trail has no record of the removal of session %s's profile", nurse.session)
	}
}

// TestRestartAfterKillDuringDownload: kill -9 while a download is half
// received: the ledger entry is receiving and a partial file lies in the
// session's quarantine directory.
func TestRestartAfterKillDuringDownload(t *testing.T) {
	e := newRestartEnv(t, restartOptions{})
	run := e.start()
	c := run.mustLogin(nurseUser)
	s := c.mustStream()
	must(t, s.navigate(e.site.url("/")))
	must(t, s.download(e.site.url("/slow.bin")))
	e.site.waitStalled(t)
	if _, err := c.waitTransfer("slow.bin", transfer.Receiving); err != nil {
		t.Fatal(err)
	}
	waitPartialFile(t, filepath.Join(e.data, "quarantine", "sessions", s.session))
	run.kill9()
	e.restartAndCheck(liveSessions(s), func(r *shojiRun) {
		tr, err := r.mustLogin(nurseUser).waitTransfer("slow.bin", transfer.Canceled)
		if err != nil {
			t.Errorf("the interrupted download after the restart: %v", err)
		} else if tr.Reason == "" {
			t.Errorf("the interrupted download was canceled without a reason: %+v", tr)
		}
	})
}

// waitPartialFile waits until a session's quarantine directory holds a
// partly received file.
func waitPartialFile(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(stepDeadline)
	for {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if info, err := e.Info(); err == nil && info.Size() > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no partial file in %s within %s", dir, stepDeadline)
		}
		time.Sleep(pollInterval)
	}
}

// TestRestartAfterKillDuringScan: kill -9 while clamd scans a download
// (a proxy in front of a real clamd holds the scan): the ledger entry is
// checking; after the restart the file is checked again and released.
func TestRestartAfterKillDuringScan(t *testing.T) {
	clamd := clamdtest.Start(t)
	proxy := newStallProxy(t, clamd.Socket)
	proxy.hold()
	e := newRestartEnv(t, restartOptions{clamd: proxy.addr()})
	run := e.start()
	c := run.mustLogin(nurseUser)
	s := c.mustStream()
	must(t, s.navigate(e.site.url("/")))
	must(t, s.download(e.site.url("/report.pdf")))
	proxy.waitStalled(t)
	if _, err := c.waitTransfer("report.pdf", transfer.Checking); err != nil {
		t.Fatal(err)
	}
	run.kill9()
	proxy.release()
	e.restartAndCheck(liveSessions(s), func(r *shojiRun) {
		tr, err := r.mustLogin(nurseUser).waitTransfer("report.pdf", transfer.Released)
		if err != nil {
			t.Errorf("the file whose scan was interrupted: %v", err)
		} else if !strings.HasPrefix(tr.Scan, "clean") {
			t.Errorf("released without a clean scan: %+v", tr)
		}
	})
}

// TestRestartDuringDownloadChecks: the broker dies while a finished
// download is checked: once the file is in the quarantine, before the
// ledger says it is checked; once the checks decided (the trail has the
// release), before the ledger holds the outcome; and once the ledger holds
// it (held), before anything else. After the restart the file is in a final
// or held state, and ledger and trail agree.
func TestRestartDuringDownloadChecks(t *testing.T) {
	for _, tc := range []struct {
		point, file string
		want        []transfer.State
	}{
		{crashpoint.DownloadQuarantined, "report.pdf", []transfer.State{transfer.Released, transfer.Canceled}},
		{crashpoint.FinishBeforeLedger, "report.pdf", []transfer.State{transfer.Released}},
		{crashpoint.FinishAfterLedger, "stock.csv", []transfer.State{transfer.Held}},
	} {
		t.Run(tc.point, func(t *testing.T) {
			e := newRestartEnv(t, restartOptions{})
			run := e.start(tc.point)
			c := run.mustLogin(nurseUser)
			s := c.mustStream()
			must(t, s.navigate(e.site.url("/")))
			must(t, s.download(e.site.url("/"+tc.file)))
			run.waitCrashed(tc.point)
			e.restartAndCheck(liveSessions(s), func(r *shojiRun) {
				tr, err := r.mustLogin(nurseUser).waitTransfer(tc.file, tc.want...)
				if err != nil {
					t.Errorf("the file whose checks were interrupted: %v", err)
				} else {
					t.Logf("after the restart the file is %s: %s", tr.State, tr.Reason)
				}
			})
		})
	}
}

// TestRestartDuringApproval: the broker dies in the middle of an
// approval, after the decision's audit record and before the ledger
// holds it. After the restart the file is still held or released, never
// lost, and an approver can decide it.
func TestRestartDuringApproval(t *testing.T) {
	e := newRestartEnv(t, restartOptions{})
	run := e.start(crashpoint.DecideBeforeLedger)
	c := run.mustLogin(nurseUser)
	s := c.mustStream()
	must(t, s.navigate(e.site.url("/")))
	must(t, s.download(e.site.url("/stock.csv")))
	held, err := c.waitTransfer("stock.csv", transfer.Held)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run.mustLogin(approverUser).decide(held.ID, true); err == nil {
		t.Fatal("the approval answered although the broker was to die at the crash point")
	}
	run.waitCrashed(crashpoint.DecideBeforeLedger)
	e.restartAndCheck(liveSessions(s), func(r *shojiRun) {
		nurse := r.mustLogin(nurseUser)
		tr, err := nurse.waitTransfer("stock.csv", transfer.Held, transfer.Released)
		if err != nil {
			t.Errorf("the file being approved at the crash: %v", err)
			return
		}
		if tr.State == transfer.Held {
			if _, err := r.mustLogin(approverUser).decide(tr.ID, true); err != nil {
				t.Errorf("approve again after the restart: %v", err)
			}
		}
		if _, err := nurse.waitTransfer("stock.csv", transfer.Released); err != nil {
			t.Error(err)
		}
	})
}

// TestRestartDuringPolicyChange: the broker dies in the middle of a site
// policy change, before or after the store holds it. After the restart the
// policy in force is one the trail records, and admins can change it again.
func TestRestartDuringPolicyChange(t *testing.T) {
	for _, tc := range []struct {
		point string
		// want is the version in force after the restart and its host.
		wantVersion int
		wantHost    string
	}{
		{crashpoint.PolicyBeforeStore, 1, "one.example.jp"},
		{crashpoint.PolicyAfterStore, 2, "two.example.jp"},
	} {
		t.Run(tc.point, func(t *testing.T) {
			e := newRestartEnv(t, restartOptions{})
			// The first change goes through; the second dies.
			run := e.start(tc.point + "@2")
			s := run.mustLogin(nurseUser).mustStream()
			must(t, s.navigate(e.site.url("/")))
			admin := run.mustLogin(adminUser)
			if v, err := admin.putPolicy("one.example.jp", 0); err != nil || v != 1 {
				t.Fatalf("first policy change: version %d, %v", v, err)
			}
			if _, err := admin.putPolicy("two.example.jp", 1); err == nil {
				t.Fatal("the policy change answered although the broker was to die at the crash point")
			}
			run.waitCrashed(tc.point)
			trail := e.restartAndCheck(liveSessions(s), func(r *shojiRun) {
				admin := r.mustLogin(adminUser)
				v, err := admin.policyVersion()
				if err != nil || v != tc.wantVersion {
					t.Errorf("policy version after the restart: %d, %v; want %d", v, err, tc.wantVersion)
				}
				e.checkPolicyRecordedLive(r, tc.wantVersion, tc.wantHost)
				if v, err := admin.putPolicy("three.example.jp", v); err != nil || v != tc.wantVersion+1 {
					t.Errorf("policy change after the restart: version %d, %v", v, err)
				}
			})
			e.checkPolicyRecorded(trail, tc.wantVersion+1, "three.example.jp")
		})
	}
}

// checkPolicyRecordedLive checks, on the running broker, that the policy in
// force allows host (it is the document the store held).
func (e *restartEnv) checkPolicyRecordedLive(r *shojiRun, version int, host string) {
	e.t.Helper()
	data, err := r.mustLogin(adminUser).call("GET", "/api/admin/policy", "", nil, http.StatusOK)
	if err != nil || !strings.Contains(string(data), host) {
		e.t.Errorf("policy in force after the restart (version %d): %s, %v; want %s", version, data, err, host)
	}
}

// TestRestartAfterFullDisk: the data directory's disk fills up while
// clinicians work (root: a small tmpfs); logins, a download and a policy
// change fail; the broker is killed, space is freed, and it starts.
func TestRestartAfterFullDisk(t *testing.T) {
	mnt := mountSmallDisk(t, 384<<20)
	e := newRestartEnv(t, restartOptions{dataParent: mnt})
	run := e.start()
	c := run.mustLogin(nurseUser)
	s := c.mustStream()
	must(t, s.navigate(e.site.url("/")))
	admin := run.mustLogin(adminUser)

	// The disk is filled again before each step: the browsers free space
	// as they go. What fails and how is the broker's business; the test
	// only looks at what it makes of it after the restart.
	filler := filepath.Join(mnt, "filler")
	fillDisk(t, filler)
	if _, err := run.login(approverUser); err != nil {
		t.Logf("login on a full disk: %v", err)
	}
	fillDisk(t, filler)
	if err := s.download(e.site.url("/report.pdf")); err != nil {
		t.Logf("download on a full disk: %v", err)
	} else if tr, err := c.waitTransfer("report.pdf", transfer.Released, transfer.Held, transfer.Rejected, transfer.Canceled); err != nil {
		t.Logf("download on a full disk: %v", err)
	} else {
		t.Logf("download on a full disk: %s (%s)", tr.State, tr.Reason)
	}
	// Policy changes until one fails: the last pages of the files on the
	// disk have room for a few records.
	saved, savedHost := 0, ""
	for i := range 40 {
		fillDisk(t, filler)
		host := fmt.Sprintf("full-%d.example.jp", i)
		v, err := admin.putPolicy(host, saved)
		if err != nil {
			t.Logf("policy change %d on a full disk: %v", i+1, err)
			break
		}
		saved, savedHost = v, host
	}
	run.kill9()
	must(t, os.Remove(filler))
	trail := e.restartAndCheck(liveSessions(s), e.useAfterRestart)
	if saved > 0 {
		e.checkPolicyRecorded(trail, saved, savedHost)
	}
}

// requireRoot skips a test that needs root, or fails it when
// SHOJI_REQUIRE_DEPS=1.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatal("this test mounts a tmpfs and needs root (SHOJI_REQUIRE_DEPS=1)")
		}
		t.Skip("needs root to mount a tmpfs")
	}
}

// mountSmallDisk mounts a tmpfs of size bytes and unmounts it when the
// test ends (after the brokers on it are gone).
func mountSmallDisk(t *testing.T, size int64) string {
	t.Helper()
	requireRoot(t)
	mnt := filepath.Join(t.TempDir(), "disk")
	must(t, os.Mkdir(mnt, 0o700))
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatalf("mount a tmpfs: %v", err)
		}
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Logf("unmount %s: %v; detaching it", mnt, err)
			if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", mnt, err)
			}
		}
	})
	return mnt
}

// fillDisk appends to path until the disk is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	must(t, err)
	defer f.Close()
	buf := make([]byte, 1<<20)
	for _, n := range []int{1 << 20, 4 << 10, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill the disk: %v", err)
				}
				break
			}
		}
	}
}

// TestRestartWithLargeTrail: a trail of several MiB in several files (a
// few weeks of use) is continued by a first start, a clean stop and a
// restart.
func TestRestartWithLargeTrail(t *testing.T) {
	const size = 3 << 20
	e := newRestartEnv(t, restartOptions{prepare: func(data string) {
		writeLargeTrail(t, filepath.Join(data, "audit"), size)
	}})
	run := e.start()
	s := run.mustLogin(nurseUser).mustStream()
	for _, p := range []string{"/guideline-1", "/guideline-2"} {
		must(t, s.navigate(e.site.url(p)))
	}
	run.stop()
	e.restartAndCheck(nil, e.useAfterRestart)
}

// writeLargeTrail appends navigation records to the trail in dir, with
// the audit package's own writer rotating at 1 MiB, until the trail holds
// at least size bytes, and checks that it spans several files.
func writeLargeTrail(t *testing.T, dir string, size int64) {
	t.Helper()
	f, err := audit.OpenFile(dir, audit.FileOptions{MaxBytes: 1 << 20})
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), stopDeadline)
	defer cancel()
	at := time.Now().Add(-21 * 24 * time.Hour)
	a := audit.Actor{User: nurseUser, Role: "clinician", Terminal: "10.10.3.21"}
	var written int64
	for i := 0; written < size; i++ {
		u := fmt.Sprintf("https://www.pmda.go.jp/safety/info-services/drugs/%06d/?q=%s", i, strings.Repeat("heparin+", 110))
		ev := audit.Navigation(at.Add(time.Duration(i)*time.Second), a, u)
		// A commit every 200 records keeps the queue short: nothing is
		// dropped.
		if i%200 == 199 {
			_, err := f.Commit(ctx, ev)
			must(t, err)
		} else {
			f.Record(ev)
		}
		written += int64(len(u))
	}
	_, err = f.Commit(ctx, audit.Navigation(at, a, "https://www.pmda.go.jp/"))
	must(t, err)
	must(t, f.Close())
	files, err := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	must(t, err)
	var total int64
	for _, p := range files {
		info, err := os.Stat(p)
		must(t, err)
		total += info.Size()
	}
	if len(files) < 3 || total < size {
		t.Fatalf("the trail written has %d files and %d bytes; want at least 3 files and %d bytes", len(files), total, size)
	}
}

// The soak's settings: SHOJI_RESTART_SEED repeats a run, and
// SHOJI_RESTART_ROUNDS sets how many times the broker is killed.
const (
	seedEnv   = "SHOJI_RESTART_SEED"
	roundsEnv = "SHOJI_RESTART_ROUNDS"
)

// soakPoints are the crash points the soak's workload can reach.
var soakPoints = []string{
	crashpoint.PolicyBeforeStore, crashpoint.PolicyAfterStore, crashpoint.DecideBeforeLedger,
	crashpoint.DownloadQuarantined, crashpoint.FinishBeforeLedger, crashpoint.FinishAfterLedger,
	crashpoint.SessionStarted, crashpoint.SessionEnded,
}

// TestRestartSoak runs a random workload (logins, navigations, downloads,
// approvals, policy changes, logouts) on one data directory and kills the broker
// at a random moment, four times: with SIGKILL while a step is under way,
// or at a random crash point. Each start must come up on the first try
// and clean up after the run before; the last one is checked in full.
// The seed is logged; SHOJI_RESTART_SEED repeats a run.
func TestRestartSoak(t *testing.T) {
	seed := time.Now().UnixNano()
	if v := os.Getenv(seedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: want an integer", seedEnv, v)
		}
	}
	rounds := 4
	if v := os.Getenv(roundsEnv); v != "" {
		var err error
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			t.Fatalf("%s=%q: want a number from 1", roundsEnv, v)
		}
	}
	t.Logf("seed %d (%s=%d repeats this run)", seed, seedEnv, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	e := newRestartEnv(t, restartOptions{})
	var died, diedBefore []string
	for round := 1; round <= rounds; round++ {
		var point string
		if rng.IntN(2) == 0 {
			point = soakPoints[rng.IntN(len(soakPoints))]
		}
		steps := 1 + rng.IntN(10)
		var points []string
		if point != "" {
			points = []string{fmt.Sprintf("%s@%d", point, 1+rng.IntN(2))}
			steps = 16
		}
		// The moment of an outside kill: a random time into one more step.
		killAfter := time.Duration(rng.IntN(1500)) * time.Millisecond
		t.Logf("round %d: crash points %v, %d steps, then a kill %s into the next", round, points, steps, killAfter)
		run := e.start(points...)
		e.checkNothingLeft(diedBefore)
		w := &soakWorkload{t: t, e: e, run: run, rng: rng, armed: point != "",
			clients: map[string]*client{}, streams: map[string]*viewerStream{}}
		for i := 0; i < steps && !run.exited() && !run.crashed(); i++ {
			w.step(false)
		}
		if w.armed {
			// It died at the crash point, or it is killed now.
			run.killNow()
			t.Logf("round %d: crash point fired: %v", round, run.crashed())
		} else {
			stepDone := make(chan struct{})
			go func() {
				defer close(stepDone)
				w.step(true)
			}()
			// Waiting for the random moment is the point here, not a
			// guess at how long something takes.
			select {
			case <-time.After(killAfter):
			case <-stepDone:
			}
			run.kill9()
			<-stepDone
		}
		diedBefore = liveSessions(w.live()...)
		died = append(died, diedBefore...)
	}
	e.restartAndCheck(died, e.useAfterRestart)
}

// soakWorkload is the soak's clinicians, approver and admin on one run.
type soakWorkload struct {
	t   *testing.T
	e   *restartEnv
	run *shojiRun
	rng *rand.Rand
	// armed says a crash point may end the run at any step.
	armed bool

	mu      sync.Mutex
	clients map[string]*client
	streams map[string]*viewerStream
}

// live returns the streams whose sessions are live.
func (w *soakWorkload) live() []*viewerStream {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*viewerStream
	for _, s := range w.streams {
		out = append(out, s)
	}
	return out
}

// step does one random thing. A step that fails while the broker runs
// fails the test, unless dying is expected (a crash point is armed, or
// the broker is being killed).
func (w *soakWorkload) step(dying bool) {
	w.mu.Lock()
	pick := w.rng.IntN(8)
	page := fmt.Sprintf("/page-%d", w.rng.IntN(1000))
	host := fmt.Sprintf("site-%d.example.jp", w.rng.IntN(1000))
	w.mu.Unlock()
	var err error
	switch pick {
	case 0:
		err = w.navigate(nurseUser, page)
	case 1:
		err = w.navigate(approverUser, page)
	case 2, 3, 4:
		file := []string{"/report.pdf", "/stock.csv", "/trickle.bin"}[pick-2]
		var s *viewerStream
		if s, err = w.stream(nurseUser); err == nil {
			err = s.download(w.e.site.url(file))
		}
	case 5:
		var c *client
		if c, err = w.login(adminUser); err == nil {
			var v int
			if v, err = c.policyVersion(); err == nil {
				_, err = c.putPolicy(host, v)
			}
		}
	case 6:
		err = w.approveOne()
	case 7:
		err = w.logout(nurseUser)
	}
	if err == nil {
		return
	}
	if dying || w.armed || w.run.exited() {
		w.t.Logf("step %d while the broker dies: %v", pick, err)
		return
	}
	w.t.Errorf("step %d: %v", pick, err)
}

// login returns the user's login on this run, logging in once.
func (w *soakWorkload) login(user string) (*client, error) {
	w.mu.Lock()
	c := w.clients[user]
	w.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := w.run.login(user)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.clients[user] = c
	w.mu.Unlock()
	return c, nil
}

// stream returns the user's live stream on this run, opening it once.
func (w *soakWorkload) stream(user string) (*viewerStream, error) {
	w.mu.Lock()
	s := w.streams[user]
	w.mu.Unlock()
	if s != nil {
		return s, nil
	}
	c, err := w.login(user)
	if err != nil {
		return nil, err
	}
	if s, err = c.stream(); err != nil {
		return nil, err
	}
	w.t.Cleanup(func() { s.ws.Close() })
	w.mu.Lock()
	w.streams[user] = s
	w.mu.Unlock()
	return s, nil
}

func (w *soakWorkload) navigate(user, page string) error {
	s, err := w.stream(user)
	if err != nil {
		return err
	}
	return s.navigate(w.e.site.url(page))
}

// logout logs the user out, if logged in; their session ends. From the
// moment it is asked for, the session no longer counts as one that dies
// with the broker: its end may be recorded as a logout.
func (w *soakWorkload) logout(user string) error {
	w.mu.Lock()
	c := w.clients[user]
	delete(w.clients, user)
	delete(w.streams, user)
	w.mu.Unlock()
	if c == nil {
		return nil
	}
	_, err := c.call("POST", "/api/logout", "", nil, http.StatusOK)
	return err
}

// approveOne approves the oldest held file, if any.
func (w *soakWorkload) approveOne() error {
	c, err := w.login(approverUser)
	if err != nil {
		return err
	}
	data, err := c.call("GET", "/api/approvals/transfers", "", nil, http.StatusOK)
	if err != nil {
		return err
	}
	var held []transfer.Transfer
	if err := json.Unmarshal(data, &held); err != nil {
		return fmt.Errorf("held transfers: %w", err)
	}
	if len(held) > 0 {
		_, err = c.decide(held[0].ID, true)
	}
	return err
}
