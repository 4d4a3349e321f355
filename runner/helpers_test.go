//go:build linux

package runner_test

// The test binary doubles as every program the runner tests need: the child
// (exit with a code, trap and report signals, ignore SIGTERM, read a line,
// report its signal masks), a tiny locked-run ("wrapper", which uses
// runner.Start and signals.Relay the way the command does), and a minimal
// job-control shell ("shell") that runs the wrapper as its foreground or
// background job on a pseudo-terminal. Helpers report what happens to them
// over a Unix socket, one line per event, so tests wait for events on a
// channel with a deadline rather than sleeping.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/creack/pty"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/locked-run/locked-run/runner"
	"github.com/locked-run/locked-run/signals"
)

const (
	helperEnv = "RUNNER_TEST_HELPER" // "1" in helpers; the mode is in the arguments
	eventsEnv = "RUNNER_TEST_EVENTS" // the Unix socket helpers report to
	runIDEnv  = "RUNNER_TEST_RUN"    // marks every helper of one test, for cleanup
)

// wait bounds waiting for something that should happen promptly. It is
// generous because CI machines are small and slow under -race; the bounds a
// test asserts on (kill-after plus a second, a second for the parent-death
// signal) are measured separately.
const wait = 15 * time.Second

func init() {
	if os.Getenv(helperEnv) == "1" {
		// Keep each helper's main goroutine on the main thread. The
		// runtime never ends the main thread, so a goroutine that locks it
		// and returns does not end its thread, which the
		// -start-from-dying-thread wrapper needs to happen.
		runtime.LockOSThread()
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" && len(os.Args) > 1 {
		os.Exit(helperMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// ---- the test side --------------------------------------------------------

// events collects the lines helpers report.
type events struct {
	t     *testing.T
	path  string
	lines chan string
	seen  []string
}

func newEvents(t *testing.T) *events {
	t.Helper()
	// Unix socket paths are limited to 108 bytes, too short for t.TempDir
	// under long test names.
	dir, err := os.MkdirTemp("", "runner")
	if err != nil {
		t.Fatal(err)
	}
	e := &events{t: t, path: filepath.Join(dir, "ev"), lines: make(chan string, 1024)}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: e.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					select {
					case e.lines <- sc.Text():
					case <-closed:
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		close(closed)
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		os.RemoveAll(dir)
		if t.Failed() {
			e.drain()
			t.Logf("events:\n\t%s", strings.Join(e.seen, "\n\t"))
		}
	})
	return e
}

// waitFor returns the first line, not returned before, that starts with
// prefix; it fails the test when none arrives within wait.
func (e *events) waitFor(prefix string) string {
	e.t.Helper()
	for _, l := range e.seen {
		if strings.HasPrefix(l, prefix) && !e.taken(l) {
			return e.take(l)
		}
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		select {
		case l := <-e.lines:
			e.seen = append(e.seen, l)
			if strings.HasPrefix(l, prefix) {
				return e.take(l)
			}
		case <-timeout.C:
			e.t.Fatalf("no event %q within %v; saw:\n\t%s", prefix, wait, strings.Join(e.seen, "\n\t"))
		}
	}
}

// taken marks lines waitFor has returned, so that waiting twice for the same
// prefix finds two events.
func (e *events) taken(l string) bool { return strings.HasPrefix(l, "\x00") }

func (e *events) take(l string) string {
	for i := range e.seen {
		if e.seen[i] == l {
			e.seen[i] = "\x00" + l
			break
		}
	}
	return l
}

// drain moves the lines that have arrived into seen.
func (e *events) drain() {
	for {
		select {
		case l := <-e.lines:
			e.seen = append(e.seen, l)
		default:
			return
		}
	}
}

// count returns how many lines seen so far equal line.
func (e *events) count(line string) int {
	e.drain()
	n := 0
	for _, l := range e.seen {
		if strings.TrimPrefix(l, "\x00") == line {
			n++
		}
	}
	return n
}

// field returns the integer value of key=value in line.
func field(t *testing.T, line, key string) int {
	t.Helper()
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s in %q: %v", key, line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s= in %q", key, line)
	return 0
}

// helperCmd returns a command running the test binary as the helper args
// name, reporting to e. Everything it starts carries a run id, and cleanup
// kills whatever still carries it.
func helperCmd(t *testing.T, e *events, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%d-%p", os.Getpid(), e)
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(),
		helperEnv+"=1",
		eventsEnv+"="+e.path,
		runIDEnv+"="+id,
		// A binary built with -race sleeps a second before exiting
		// (atexit_sleep_ms); helpers must exit when they are done.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"),
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t.Cleanup(func() { killRun(id) })
	return cmd
}

// killRun SIGKILLs every process whose environment carries run id id,
// scanning again while it finds some, since one may be starting another.
func killRun(id string) {
	want := []byte(runIDEnv + "=" + id + "\x00")
	for range 10 {
		found := false
		names, _ := filepath.Glob("/proc/[0-9]*/environ")
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil || !bytes.Contains(b, want) {
				continue
			}
			pid, err := strconv.Atoi(strings.Split(n, "/")[2])
			if err == nil && pid != os.Getpid() && !gone(pid) {
				unix.Kill(pid, unix.SIGKILL)
				found = true
			}
		}
		if !found {
			return
		}
	}
}

// started is a helper process the test started directly.
type started struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start starts cmd, with its output collected unless already set, and
// reaps it in the background; cleanup kills it if it is still running.
func start(t *testing.T, cmd *exec.Cmd) *started {
	t.Helper()
	s := &started{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = s.out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = s.out
	}
	// Wait also waits for the output pipe to close, which a leftover
	// grandchild could hold open until cleanup kills it.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() && s.out.String() != "" {
			t.Logf("output of %v:\n%s", cmd.Args[1:], s.out.String())
		}
	})
	return s
}

// status waits for the process to exit and returns its shell-style status.
func (s *started) status(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(wait):
		t.Fatalf("%v did not exit within %v", s.cmd.Args[1:], wait)
	}
	ws := s.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// terminal is a pseudo-terminal whose output is collected.
type terminal struct {
	master *os.File
	slave  *os.File
	out    *syncBuffer
}

func newTerminal(t *testing.T) *terminal {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{master: master, slave: slave, out: &syncBuffer{}}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(term.out, master) //nolint:errcheck // ends with EIO once no one has the terminal open
	}()
	t.Cleanup(func() {
		slave.Close()
		master.Close()
		<-copied
		if t.Failed() {
			t.Logf("terminal output:\n%q", term.out.String())
		}
	})
	return term
}

// startInTerminal starts cmd as a session leader with term as its
// controlling terminal on stdin, stdout and stderr: a login shell's place.
func startInTerminal(t *testing.T, term *terminal, cmd *exec.Cmd) *started {
	t.Helper()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = term.slave, term.slave, term.slave
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0
	s := start(t, cmd)
	// The helper has its own copy; ours would keep the terminal open after
	// every helper has exited.
	term.slave.Close()
	return s
}

func (term *terminal) typ(t *testing.T, s string) {
	t.Helper()
	if _, err := term.master.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// gone reports whether pid no longer runs: it does not exist, or it is a
// zombie (an orphan reparented to an init that does not reap is one).
func gone(pid int) bool {
	if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// procState returns the state letter of pid from /proc, or 0.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// eventually polls cond until it holds or d passes, and returns how long it
// took and whether it held. Polling is the only way to watch another
// process's state in /proc; the tick is short so the measurement is fine.
func eventually(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if cond() {
			return time.Since(start), true
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return time.Since(start), cond()
		}
	}
}

// sigmask returns the SigIgn and SigBlk masks of /proc/<pid>/status.
func sigmask(pid string) (ign, blk uint64) {
	b, _ := os.ReadFile("/proc/" + pid + "/status")
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		switch k {
		case "SigIgn":
			ign = n
		case "SigBlk":
			blk = n
		}
	}
	return ign, blk
}

func bit(sig syscall.Signal) uint64 { return 1 << (uint(sig) - 1) }

func name(sig syscall.Signal) string { return unix.SignalName(sig) }

// ---- the helper side ------------------------------------------------------

// reporter sends events to the test, each line prefixed with a role.
type reporter struct {
	mu   sync.Mutex
	c    net.Conn
	role string
}

func dial(role string) *reporter {
	c, err := net.Dial("unix", os.Getenv(eventsEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: cannot report:", err)
		os.Exit(99)
	}
	return &reporter{c: c, role: role}
}

func (r *reporter) say(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.c, r.role+" "+format+"\n", args...)
}

func helperMain(args []string) int {
	// Helpers wait with select {}; in a build without cgo the runtime
	// would call that a deadlock and exit 2, were no goroutine asleep in
	// a timer.
	go func() {
		for {
			time.Sleep(time.Hour)
		}
	}()
	switch args[0] {
	case "child":
		return childMain(args[1:])
	case "wrapper":
		return wrapperMain(args[1:])
	case "shell":
		return shellMain(args[1:])
	}
	fmt.Fprintln(os.Stderr, "unknown helper", args)
	return 99
}

// childMain is the command locked-run runs.
func childMain(args []string) int {
	ev := dial("child")
	ready := func() { ev.say("ready pid=%d pgid=%d", os.Getpid(), unix.Getpgrp()) }
	switch args[0] {
	case "exit":
		n, _ := strconv.Atoi(args[1])
		return n
	case "kill-self":
		sig := unix.SignalNum(args[1])
		signal.Reset(sig)
		unix.Kill(os.Getpid(), sig)
		select {}
	case "signals":
		// Reports every forwardable signal, plus SIGWINCH and SIGCONT,
		// and exits 3 on the marker signal (args[1]), which tells it the
		// test has seen what it wanted.
		marker := unix.SignalNum(args[1])
		ch := make(chan os.Signal, 16)
		signal.Notify(ch, append([]os.Signal{syscall.SIGWINCH, syscall.SIGCONT}, signals.Forwarded...)...)
		ready()
		for s := range ch {
			ev.say("got %s", name(s.(syscall.Signal)))
			if s == marker {
				return 3
			}
		}
	case "trap-term":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		ready()
		<-ch
		ev.say("got SIGTERM")
		return 0
	case "log-term":
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGTERM)
		ready()
		for range ch {
			ev.say("got SIGTERM")
		}
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		ready()
		select {}
	case "sleep":
		ready()
		select {}
	case "readline":
		ready()
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			ev.say("read error %v", err)
			return 1
		}
		ev.say("read %s", strings.TrimSpace(line))
		return 0
	case "sigmask":
		ign, blk := sigmask("self")
		ev.say("sigmask ign=%d blk=%d", ign, blk)
		return 0
	case "leave-in-group":
		// Leaves a process that ignores SIGTERM in its group, as a script
		// with a background job does, and exits on SIGTERM.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		self, _ := os.Executable()
		gc := exec.Command(self, "child", "ignore-term")
		if err := gc.Start(); err != nil {
			ev.say("error %v", err)
			return 1
		}
		ev.say("left pid=%d", gc.Process.Pid)
		ready()
		<-ch
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown child", args)
	return 99
}

// wrapperMain is locked-run reduced to its runner and signal handling, wired
// the way the command wires them: one relay for the whole life of the
// process, forwarding to the child once it runs, and the child's status as
// the exit status.
func wrapperMain(args []string) int {
	fs := flag.NewFlagSet("wrapper", flag.ContinueOnError)
	killAfter := fs.Duration("kill-after", 0, "grace between SIGTERM and SIGKILL")
	dyingThread := fs.Bool("start-from-dying-thread", false, "call Start from a goroutine whose thread then exits")
	refuseContinue := fs.Bool("refuse-continue", false, "refuse to continue a stopped child and stop it instead, as on a lease that ran out")
	if err := fs.Parse(args); err != nil {
		return 125
	}
	ev := dial("wrapper")
	var proc atomic.Pointer[runner.Process]
	stop := signals.Relay(func(sig syscall.Signal) {
		ev.say("got %s", name(sig))
		if p := proc.Load(); p != nil {
			if err := p.Signal(sig); err != nil {
				ev.say("signal error %v", err)
			}
		}
	})
	defer stop()

	cfg := runner.Config{
		Args:      fs.Args(),
		Env:       os.Environ(),
		KillAfter: *killAfter,
		Logger:    hclog.New(&hclog.LoggerOptions{Name: "wrapper", Level: hclog.Debug, Output: os.Stderr}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if *refuseContinue {
		cfg.MayContinue = func() bool {
			ev.say("refused to continue")
			cancel()
			return false
		}
	}
	var p *runner.Process
	var err error
	if *dyingThread {
		type result struct {
			p   *runner.Process
			err error
			tid int
		}
		res := make(chan result, 1)
		go func() {
			// Never unlocked: when this goroutine returns, the runtime
			// ends its thread.
			runtime.LockOSThread()
			p, err := runner.Start(context.Background(), cfg)
			res <- result{p, err, unix.Gettid()}
		}()
		r := <-res
		p, err = r.p, r.err
		task := fmt.Sprintf("/proc/self/task/%d", r.tid)
		if _, ok := eventually(wait, func() bool { _, err := os.Stat(task); return err != nil }); ok {
			ev.say("thread gone tid=%d", r.tid)
		} else {
			ev.say("thread still there tid=%d", r.tid)
		}
	} else {
		p, err = runner.Start(ctx, cfg)
	}
	if err != nil {
		ev.say("start error %v", err)
		reportTerminal(ev)
		switch {
		case errors.Is(err, runner.ErrNotFound):
			return 127
		case errors.Is(err, runner.ErrNotExecutable):
			return 126
		}
		return 125
	}
	proc.Store(p)
	ev.say("started child=%d pid=%d pgrp=%d", p.Pid(), os.Getpid(), unix.Getpgrp())
	res := p.Wait()
	reportTerminal(ev)
	ev.say("exit %d", res.Status())
	return res.Status()
}

// reportTerminal reports the terminal's foreground group and our own.
func reportTerminal(ev *reporter) {
	fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	if err != nil {
		ev.say("terminal none")
		return
	}
	ev.say("terminal fg=%d own=%d", int32(fg), unix.Getpgrp())
}

// shellMain runs one job the way an interactive shell does: the job gets its
// own process group, made the terminal's foreground group unless -bg, and the
// shell waits for it to exit or stop. With -job-control a stopped job is
// reported, the terminal taken back, and then the job continued in the
// foreground (as if the user typed fg); without, a stopped job is a failure
// and is killed.
func shellMain(args []string) int {
	fs := flag.NewFlagSet("shell", flag.ContinueOnError)
	bg := fs.Bool("bg", false, "start the job in the background")
	jobControl := fs.Bool("job-control", false, "continue a stopped job in the foreground")
	if err := fs.Parse(args); err != nil {
		return 125
	}
	ev := dial("shell")
	// Pdeathsig of the job follows this thread.
	runtime.LockOSThread()
	argv := fs.Args()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if !*bg {
		cmd.SysProcAttr.Foreground = true
		cmd.SysProcAttr.Ctty = 0
	}
	if err := cmd.Start(); err != nil {
		ev.say("error %v", err)
		return 125
	}
	job := cmd.Process.Pid
	own := unix.Getpgrp()
	ev.say("job pid=%d own=%d", job, own)
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(job, &ws, unix.WUNTRACED, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			ev.say("error %v", err)
			return 125
		}
		switch {
		case ws.Stopped():
			fg, _ := unix.IoctlGetInt(0, unix.TIOCGPGRP)
			ev.say("job stopped %s fg=%d", name(ws.StopSignal()), int32(fg))
			if !*jobControl {
				unix.Kill(-job, unix.SIGKILL)
				continue
			}
			if err := tcsetpgrp(0, own); err != nil {
				ev.say("error taking the terminal %v", err)
			}
			if err := tcsetpgrp(0, job); err != nil {
				ev.say("error giving the terminal %v", err)
			}
			unix.Kill(-job, unix.SIGCONT)
			ev.say("job continued in foreground")
		case ws.Exited():
			ev.say("job exit %d", ws.ExitStatus())
			return ws.ExitStatus()
		case ws.Signaled():
			ev.say("job exit %d", 128+int(ws.Signal()))
			return 128 + int(ws.Signal())
		}
	}
}

// tcsetpgrp sets the terminal's foreground group with SIGTTOU blocked on
// this (locked) thread, as a shell that is not in the foreground must.
func tcsetpgrp(fd, pgrp int) error {
	var set, old unix.Sigset_t
	n := uint(unix.SIGTTOU) - 1
	bits := uint(unsafe.Sizeof(set.Val[0]) * 8)
	set.Val[n/bits] |= 1 << (n % bits)
	unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old)
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, pgrp)
}
