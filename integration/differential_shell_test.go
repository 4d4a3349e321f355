package integration

// The differential harness's shell: a real interactive bash (job control on,
// readline on, no rc files) on a pseudo-terminal of its own, driven the way
// a person types, and observed through the terminal, the events its child
// programs log, and /proc.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

const (
	// diffPrompt is PS1. Commands the tests type never contain it, so each
	// occurrence on the screen is a prompt.
	diffPrompt = "@P@ "
	// diffWait bounds waiting for something that should happen promptly:
	// a program starting under bash (and locked-run, built with -race),
	// a signal arriving, a prompt coming back. Generous for a loaded
	// two-core machine; a scenario only waits this long when the wrapper
	// breaks it (a hang), and then the observation says so.
	diffWait = 10 * time.Second
	// envDiffRun marks every process of one shell, so cleanup finds them
	// all, whatever process group or session they moved to.
	envDiffRun = "DIFF_RUN"
)

// statusRE matches what `echo "@S@$?:${PIPESTATUS[*]}@E@"` prints, never its
// echo on the terminal (which shows "$?").
var statusRE = regexp.MustCompile(`@S@([0-9]+):([0-9 ]*)@E@`)

// noticeRE matches bash's job notices ("[1]+  Stopped  cmd") and the line it
// prints for a foreground job killed by a signal ("Quit", "Terminated").
var noticeRE = regexp.MustCompile(`(?m)^(?:\[[0-9]+\][+-]? +)?(Stopped|Done|Exit [0-9]+|Running|Killed|Terminated|Quit|Hangup|User defined signal [12]|Broken pipe|Interrupt)\b[^\r\n]*`)

// ansiRE matches the terminal control sequences bash and readline print.
var ansiRE = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>])`)

// diffShell is one interactive bash on its own pseudo-terminal.
type diffShell struct {
	t       *testing.T
	wrapped bool   // commands run under locked-run
	dir     string // the shell's working directory, private to this run
	events  string // the events file the children append to
	runID   string
	cmd     *exec.Cmd
	master  *os.File
	screen  *ptyOutput
	copied  chan struct{}
	mark    int  // screen offset where the current command's output starts
	hungUp  bool // the terminal was closed: nothing more can be typed
	obs     *diffObs
}

// diffObs is what one run of a scenario shows. Two runs, with and
// without locked-run, must observe the same.
type diffObs struct {
	// Children is what each child program received and how it ended,
	// sorted by label.
	Children []childObs
	// Marks are the "mark" events scripts logged, in order.
	Marks []string
	// Facts are what the scenario recorded along the way, in order:
	// statuses, whether a prompt came back, which processes were stopped.
	Facts []string
	// Notices are bash's job notices on the terminal ("Stopped", "Quit", ...).
	Notices []string
	// Foreground is true when, at the end, the terminal's foreground
	// process group is the shell's.
	Foreground bool
	// Stty is `stty -a` at the end.
	Stty string
}

// childObs is one child program's life.
type childObs struct {
	Label   string
	Starts  int
	Signals []string // "INT", "WINCH 30x100", sorted
	Lines   []string // "line x", "key 'q'", "stdin 1": what it read
	End     string   // "exit 0", "die INT", or "" when it never said
}

func (c childObs) String() string {
	return fmt.Sprintf("%s: starts=%d signals=%v read=%v end=%q", c.Label, c.Starts, c.Signals, c.Lines, c.End)
}

// diffTools checks that what the harness drives is installed: a missing
// tool skips the tests on a laptop and fails them under CI=true.
func diffTools(t *testing.T, more ...string) {
	t.Helper()
	for _, tool := range append([]string{"bash", "stty", "head", "seq", "sleep", "sh"}, more...) {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("the differential tests need %s on PATH (Debian: apt-get install -y bash coreutils less): %v", tool, err)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// newDiffShell starts bash on a fresh 24x200 terminal and waits for its first
// prompt. With wrapped, $W is a locked-run prefix; without, it is empty, so
// the same typed line "$W $CH sig" runs the child bare or wrapped, and bash
// shows the same job text both ways.
func newDiffShell(t *testing.T, wrapped bool) *diffShell {
	return newShellWith(t, wrapped, "")
}

// newShellWith is newDiffShell with $W and $W2 set to wrapper instead of
// locked-run when wrapper is not empty.
func newShellWith(t *testing.T, wrapped bool, wrapper string) *diffShell {
	t.Helper()
	// Not t.TempDir: its long path would be in every lock key (the
	// command line) and every locked-run log line on the terminal.
	dir, err := os.MkdirTemp("", "diff")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	lockDir := filepath.Join(dir, "locks")
	if err := os.Mkdir(lockDir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &diffShell{
		t:       t,
		wrapped: wrapped,
		dir:     dir,
		events:  filepath.Join(dir, "events"),
		runID:   fmt.Sprintf("%d-%s", os.Getpid(), filepath.Base(dir)),
		screen:  &ptyOutput{},
		copied:  make(chan struct{}),
		obs:     &diffObs{},
	}
	w, w2 := "", ""
	if wrapped {
		w = binPath + " --local --lock-dir " + lockDir + " --"
		// A second, nested locked-run needs a key of its own: without
		// one it would take the outer one's from LOCKED_RUN_KEY.
		w2 = binPath + " --local --lock-dir " + lockDir + " --key inner --"
	}
	if wrapped && wrapper != "" {
		w, w2 = wrapper, wrapper
	}
	var env []string
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "AWS_"), strings.HasPrefix(kv, "LOCKED_RUN_"), strings.HasPrefix(kv, "BASH_ENV="),
			strings.HasPrefix(kv, "ENV="), strings.HasPrefix(kv, "PROMPT_COMMAND="), strings.HasPrefix(kv, "PS1="),
			strings.HasPrefix(kv, "GORACE="), strings.HasPrefix(kv, "TERM="), strings.HasPrefix(kv, "HISTFILE="):
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"PS1="+diffPrompt,
		"TERM=xterm",
		"HISTFILE=/dev/null",
		"INPUTRC=/dev/null",
		"LC_ALL=C",
		"W="+w,
		"W2="+w2,
		"CH="+testExe(t),
		"D="+dir,
		envDiffChild+"=1",
		envDiffEvents+"="+s.events,
		envDiffRun+"="+s.runID,
		// A -race binary sleeps a second before exiting (atexit_sleep_ms);
		// locked-run and the children must exit when they are done.
		"GORACE=atexit_sleep_ms=0",
	)
	// LOCKED_RUN_DIFF_CHILD=1 is in bash's environment so that $CH is a
	// child program wherever it runs; the test binary itself was started
	// without it. The shell is started through shell-exec, which gives it
	// default signal actions.
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(testExe(t), "shell-exec", bash, "--norc", "--noprofile", "-i")
	s.cmd.Env = env
	s.cmd.Dir = dir
	s.master, err = pty.StartWithAttrs(s.cmd, &pty.Winsize{Rows: 24, Cols: 200}, &syscall.SysProcAttr{Setsid: true, Setctty: true})
	if err != nil {
		t.Fatalf("start bash on a terminal: %v", err)
	}
	// creack/pty hands back the master in blocking mode (it calls Fd), and
	// closing a blocking *os.File waits for the read in progress: a hangup
	// would never happen. A non-blocking duplicate is pollable, so Close
	// really closes it. Its descriptor is only used through SyscallConn.
	if err := s.pollableMaster(); err != nil {
		t.Fatalf("terminal master: %v", err)
	}
	// No core files from children that die of SIGQUIT, whatever the
	// machine's default.
	unix.Prlimit(s.cmd.Process.Pid, unix.RLIMIT_CORE, &unix.Rlimit{}, nil) //nolint:errcheck
	go func() {
		io.Copy(s.screen, s.master)
		close(s.copied)
	}()
	t.Cleanup(s.close)
	if !s.waitPrompt(diffWait) {
		t.Fatalf("bash showed no prompt within %s; terminal:\n%s", diffWait, s.screen.String())
	}
	return s
}

// close kills everything the shell started and the shell, and closes the
// terminal.
func (s *diffShell) close() {
	s.killAll(true)
	s.master.Close()
	if s.cmd.ProcessState == nil {
		s.cmd.Wait()
	}
	<-s.copied
	if s.t.Failed() {
		s.t.Logf("%s run, terminal:\n%s\nevents:\n%s", s.mode(), s.screen.String(), s.eventsText())
	}
}

func (s *diffShell) mode() string {
	if s.wrapped {
		return "wrapped"
	}
	return "bare"
}

// procs returns the live (not zombie) processes of this shell: every process
// whose environment carries its run id, the shell included when shell is set.
func (s *diffShell) procs(shell bool) []diffProc {
	want := []byte(envDiffRun + "=" + s.runID + "\x00")
	var out []diffProc
	names, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, n := range names {
		pid, err := strconv.Atoi(strings.Split(n, "/")[2])
		if err != nil || (!shell && pid == s.cmd.Process.Pid) {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil || !bytes.Contains(b, want) {
			continue
		}
		if p, ok := readDiffProc(pid); ok && p.state != 'Z' && p.state != 'X' {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

// tree returns the live processes descended from the shell, whatever their
// environment: what systemd's KillMode=control-group or a CI runner's
// cancellation would signal (helpers with an environment of their own
// included).
func (s *diffShell) tree() []diffProc {
	var all []diffProc
	names, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, n := range names {
		pid, err := strconv.Atoi(strings.Split(n, "/")[2])
		if err != nil {
			continue
		}
		if p, ok := readDiffProc(pid); ok {
			all = append(all, p)
		}
	}
	in := map[int]bool{s.cmd.Process.Pid: true}
	for grew := true; grew; {
		grew = false
		for _, p := range all {
			if !in[p.pid] && in[p.ppid] {
				in[p.pid] = true
				grew = true
			}
		}
	}
	var out []diffProc
	for _, p := range all {
		if in[p.pid] && p.pid != s.cmd.Process.Pid && p.state != 'Z' && p.state != 'X' {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

// diffProc is a line of /proc/PID/stat.
type diffProc struct {
	pid, ppid, pgrp int
	state           byte
	comm            string
}

func readDiffProc(pid int) (diffProc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return diffProc{}, false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < 0 {
		return diffProc{}, false
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 3 {
		return diffProc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	return diffProc{pid: pid, ppid: ppid, pgrp: pgrp, state: f[0][0], comm: string(b[open+1 : end])}, true
}

// killAll SIGKILLs every process of the shell but the shell (with shell, the
// shell too), scanning again while it finds some, since one may be starting
// another.
func (s *diffShell) killAll(shell bool) {
	for range 20 {
		ps := append(s.procs(shell), s.tree()...)
		if len(ps) == 0 {
			return
		}
		for _, p := range ps {
			unix.Kill(p.pid, unix.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// typeLine types line and Enter. What the terminal shows from now on is the
// command's. Anything typed before and not read is thrown away first: a key
// meant for a program that got stopped before reading it must not become
// part of the next command.
func (s *diffShell) typeLine(line string) {
	s.t.Helper()
	s.flushInput()
	s.markNow()
	// Ctrl-U first: it empties readline's line (or the terminal's line
	// buffer), in case the shell already read such a key.
	if _, err := s.master.Write([]byte("\x15" + line + "\r")); err != nil {
		s.t.Fatalf("type %q: %v", line, err)
	}
}

// markNow makes what the terminal shows from now on the current command's.
func (s *diffShell) markNow() { s.mark = len(s.screen.String()) }

// page drives a pager (what) that the line just typed started. running says
// whether it runs, up whether it also has the terminal in raw mode. Once it
// is up, it is quit with q. A job stopped before or after that is recorded
// and brought back with fg, as the user in the issue did; a pager that runs
// while the terminal stays in line mode (less continued after a stop it did
// not catch) is recorded and quit with q and Enter.
func (s *diffShell) page(what string, running, up func() bool) {
	s.t.Helper()
	for range 3 {
		if !pollUntil(diffWait, func() bool { return up() || s.prompted() }) {
			if running() {
				s.fact("%s runs with the terminal in line mode", what)
				s.typeLine("q")
				s.settle("the prompt after q and Enter", s.prompted)
				return
			}
			s.fact("hung waiting for %s to take the terminal, or the job to stop", what)
			s.recover()
			return
		}
		if up() {
			s.markNow()
			s.key('q')
			if !s.settle("the prompt after q", s.prompted) {
				return
			}
			if !strings.Contains(s.output(), "Stopped") {
				return
			}
			s.fact("job stopped after %s took the terminal", what)
		} else {
			s.fact("job stopped before %s took the terminal", what)
		}
		s.typeLine("fg")
	}
	s.fact("still stopped after fg twice")
	s.recover()
}

// key types one key, such as 0x03 (Ctrl-C).
func (s *diffShell) key(b byte) {
	s.t.Helper()
	if _, err := s.master.Write([]byte{b}); err != nil {
		s.t.Fatalf("type %q: %v", b, err)
	}
}

// output is what the terminal showed since the last typed line.
func (s *diffShell) output() string {
	all := s.screen.String()
	if s.mark > len(all) {
		return ""
	}
	return all[s.mark:]
}

// prompted reports whether a prompt appeared since the last typed line.
func (s *diffShell) prompted() bool { return strings.Contains(s.output(), diffPrompt) }

// pollUntil polls cond every 5 ms for at most d and reports whether it held.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitPrompt waits for a prompt after the last typed line.
func (s *diffShell) waitPrompt(d time.Duration) bool { return pollUntil(d, s.prompted) }

// fact records one step's result in the observation.
func (s *diffShell) fact(format string, args ...any) {
	s.obs.Facts = append(s.obs.Facts, fmt.Sprintf(format, args...))
}

// command types line and waits for the prompt after it, recording whether
// it came back (a hang is recovered from by killing the job).
func (s *diffShell) command(line string) {
	s.t.Helper()
	s.typeLine(line)
	s.settle("the prompt after "+line, s.prompted)
}

// settle waits for cond; when it does not come, it records that the shell
// hung there, kills every process but the shell, and waits for the prompt.
func (s *diffShell) settle(what string, cond func() bool) bool {
	s.t.Helper()
	if pollUntil(diffWait, cond) {
		return true
	}
	s.fact("hung waiting for %s", what)
	s.logTree("hung waiting for " + what)
	s.recover()
	return false
}

// logTree logs the shell's processes, for whoever debugs a hang.
func (s *diffShell) logTree(when string) {
	var b strings.Builder
	fg := s.foreground()
	fmt.Fprintf(&b, "%s run, %s: shell %d, terminal's foreground group %d\n", s.mode(), when, s.cmd.Process.Pid, fg)
	for _, p := range s.tree() {
		fmt.Fprintf(&b, "\tpid %d ppid %d pgrp %d state %c %s\n", p.pid, p.ppid, p.pgrp, p.state, p.comm)
	}
	s.t.Log(b.String())
}

// recover kills everything but the shell, throws away what was typed and
// not read (an answer meant for a child must not become a command), and
// waits for the shell's prompt.
func (s *diffShell) recover() {
	s.t.Helper()
	s.killAll(false)
	s.flushInput()
	if !s.waitPrompt(diffWait) {
		// Typing Enter makes bash show a prompt even when its job
		// notifications consumed the last one.
		s.typeLine("")
		if !s.waitPrompt(diffWait) {
			s.t.Fatalf("%s run: bash gave no prompt even with its jobs killed; terminal:\n%s", s.mode(), s.screen.String())
		}
	}
}

// status types a line that prints the last command's $? and PIPESTATUS and
// records them.
func (s *diffShell) status() {
	s.t.Helper()
	s.typeLine(`echo "@S@$?:${PIPESTATUS[*]}@E@"`)
	if !pollUntil(diffWait, func() bool { return statusRE.MatchString(s.output()) && s.prompted() }) {
		s.t.Fatalf("%s run: no status line; terminal:\n%s", s.mode(), s.screen.String())
	}
	m := statusRE.FindStringSubmatch(s.output())
	s.fact("status %s pipestatus %s", m[1], m[2])
}

// stoppedness says whether all of the shell's other processes are stopped,
// none is, or some are.
func (s *diffShell) stoppedness() string {
	ps := s.procs(false)
	stopped := 0
	for _, p := range ps {
		if p.state == 'T' {
			stopped++
		}
	}
	switch {
	case len(ps) == 0:
		return "no process left"
	case stopped == len(ps):
		return "all stopped"
	case stopped == 0:
		return "none stopped"
	}
	return "some stopped"
}

// top is the pid of the command the shell started (bash's direct child that
// is not a subshell of its own): the child itself, or locked-run.
func (s *diffShell) top() int {
	for _, p := range s.procs(false) {
		if p.ppid == s.cmd.Process.Pid {
			return p.pid
		}
	}
	return 0
}

// finish records bash's notices, the terminal's foreground group and
// `stty -a`, then the children's events.
func (s *diffShell) finish() {
	s.t.Helper()
	plain := ansiRE.ReplaceAllString(strings.ReplaceAll(s.screen.String(), "\r", ""), "")
	// The terminal echoes a typed Ctrl-C as "^C" before bash's notice.
	plain = strings.NewReplacer("^C", "", "^\\", "", "^Z", "").Replace(plain)
	for _, m := range noticeRE.FindAllString(plain, -1) {
		s.obs.Notices = append(s.obs.Notices, strings.Join(strings.Fields(m), " "))
	}
	if s.hungUp {
		s.obs.Children, s.obs.Marks = s.parseEvents()
		return
	}
	var fg int
	err := s.ioctl(func(fd int) (err error) { fg, err = unix.IoctlGetInt(fd, unix.TIOCGPGRP); return err })
	s.obs.Foreground = err == nil && fg == s.cmd.Process.Pid
	if !s.obs.Foreground {
		s.t.Logf("%s run: terminal foreground group %d (err %v), shell %d", s.mode(), fg, err, s.cmd.Process.Pid)
	}
	sttyFile := filepath.Join(s.dir, "stty")
	s.typeLine(`stty -a >"$D/stty"`)
	if !s.waitPrompt(diffWait) {
		s.t.Fatalf("%s run: no prompt after stty; terminal:\n%s", s.mode(), s.screen.String())
	}
	b, err := os.ReadFile(sttyFile)
	if err != nil {
		s.t.Fatalf("%s run: stty -a: %v", s.mode(), err)
	}
	s.obs.Stty = string(b)
	s.obs.Children, s.obs.Marks = s.parseEvents()
}

// diffEvent is one line of the events file.
type diffEvent struct {
	at    time.Time
	label string
	pid   int
	what  string // "sig INT", "exit 0", ...
}

func (s *diffShell) readEvents() []diffEvent {
	f, err := os.Open(s.events)
	if err != nil {
		return nil
	}
	defer f.Close()
	var evs []diffEvent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		if len(f) < 4 {
			continue
		}
		ns, _ := strconv.ParseInt(f[0], 10, 64)
		pid, _ := strconv.Atoi(f[2])
		evs = append(evs, diffEvent{at: time.Unix(0, ns), label: f[1], pid: pid, what: f[3]})
	}
	return evs
}

func (s *diffShell) eventsText() string {
	b, _ := os.ReadFile(s.events)
	return string(b)
}

// waitEvent waits for an event of the child labelled label whose text
// starts with prefix, the n-th such (1-based), and returns it.
func (s *diffShell) waitEvent(label, prefix string, n int, d time.Duration) (diffEvent, bool) {
	var found diffEvent
	ok := pollUntil(d, func() bool {
		k := 0
		for _, e := range s.readEvents() {
			if e.label == label && strings.HasPrefix(e.what, prefix) {
				k++
				if k == n {
					found = e
					return true
				}
			}
		}
		return false
	})
	return found, ok
}

// ready waits for the child labelled label to be ready (its handlers are
// installed), recording a hang otherwise.
func (s *diffShell) ready(label string) (diffEvent, bool) {
	s.t.Helper()
	e, ok := s.waitEvent(label, "ready", 1, diffWait)
	if !ok {
		s.fact("%s never ready", label)
		s.logTree(label + " never ready")
		s.recover()
	}
	return e, ok
}

// expectEvent waits for an event, recording a hang (and recovering) when it
// does not come.
func (s *diffShell) expectEvent(label, prefix string) bool {
	s.t.Helper()
	if _, ok := s.waitEvent(label, prefix, 1, diffWait); !ok {
		s.fact("no %q from %s", prefix, label)
		s.logTree(fmt.Sprintf("no %q from %s", prefix, label))
		s.recover()
		return false
	}
	return true
}

// expectEventN is expectEvent for the n-th such event.
func (s *diffShell) expectEventN(label, prefix string, n int) bool {
	s.t.Helper()
	if _, ok := s.waitEvent(label, prefix, n, diffWait); !ok {
		s.fact("no %q number %d from %s", prefix, n, label)
		s.logTree(fmt.Sprintf("no %q number %d from %s", prefix, n, label))
		s.recover()
		return false
	}
	return true
}

// childPid returns the pid of the child labelled label, from its start event.
func (s *diffShell) childPid(label string) int {
	for _, e := range s.readEvents() {
		if e.label == label && strings.HasPrefix(e.what, "start") {
			return e.pid
		}
	}
	return 0
}

func (s *diffShell) parseEvents() ([]childObs, []string) {
	var (
		children []childObs
		marks    []string
		index    = map[string]int{}
	)
	for _, e := range s.readEvents() {
		verb, rest, _ := strings.Cut(e.what, " ")
		if verb == "mark" {
			marks = append(marks, rest)
			continue
		}
		i, ok := index[e.label]
		if !ok {
			i = len(children)
			index[e.label] = i
			children = append(children, childObs{Label: e.label})
		}
		c := &children[i]
		switch verb {
		case "start":
			c.Starts++
		case "sig":
			c.Signals = append(c.Signals, rest)
		case "line", "key", "stdin":
			c.Lines = append(c.Lines, e.what)
		case "exit", "die":
			if c.End == "" {
				c.End = e.what
			}
		}
	}
	// Children of one pipeline start in any order.
	sort.SliceStable(children, func(i, j int) bool { return children[i].Label < children[j].Label })
	for i := range children {
		// Go's signal delivery merges and reorders signals that arrive
		// close together (it hands them over by number), so only the
		// multiset is meaningful.
		sort.Strings(children[i].Signals)
	}
	return children, marks
}

// signalPid sends sig to pid (a process group when negative), as kill(1)
// from another terminal would.
func (s *diffShell) signalPid(pid int, sig syscall.Signal) {
	s.t.Helper()
	if pid == 0 || pid == -1 {
		s.t.Fatalf("%s run: no process to send %v to", s.mode(), sig)
	}
	if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		s.t.Fatalf("kill %d %v: %v", pid, sig, err)
	}
}

// flushInput discards what was typed at the terminal and not read yet.
func (s *diffShell) flushInput() {
	var n int
	if err := s.ioctl(func(fd int) (err error) { n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN); return err }); err != nil {
		return
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return
	}
	defer tty.Close()
	unix.IoctlSetInt(int(tty.Fd()), unix.TCFLSH, unix.TCIFLUSH) //nolint:errcheck // best effort
}

// statesUntil waits at most d for the shell's other processes to be in
// state want ("all stopped", "none stopped", ...), then records their state
// as seen. The kernel gives no event for a process being continued by
// someone else, so this polls.
func (s *diffShell) statesUntil(when, want string, d time.Duration) {
	got := ""
	pollUntil(d, func() bool { got = s.stoppedness(); return got == want })
	s.fact("%s: %s", when, got)
}

// hangUp closes the terminal's master side, as closing a terminal window or
// losing an ssh connection does: the kernel hangs the terminal up.
func (s *diffShell) hangUp() {
	s.hungUp = true
	s.master.Close()
}

func (s *diffShell) pollableMaster() error {
	fd, err := unix.Dup(int(s.master.Fd()))
	if err != nil {
		return err
	}
	s.master.Close()
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	s.master = os.NewFile(uintptr(fd), "/dev/ptmx")
	return nil
}

// ioctl runs fn on the master's descriptor without making it blocking.
func (s *diffShell) ioctl(fn func(fd int) error) error {
	rc, err := s.master.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// resize sets the terminal's size, as a terminal window being resized does.
func (s *diffShell) resize(rows, cols uint16) {
	s.t.Helper()
	err := s.ioctl(func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	})
	if err != nil {
		s.t.Fatalf("resize the terminal: %v", err)
	}
}

// ttyRaw reports whether the terminal is in raw mode (canonical input off),
// as a pager or an editor sets it, read from the terminal's own side.
func (s *diffShell) ttyRaw() bool {
	var n int
	if err := s.ioctl(func(fd int) (err error) { n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN); return err }); err != nil {
		return false
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return false
	}
	defer tty.Close()
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	return err == nil && tio.Lflag&unix.ICANON == 0
}

// running reports whether a process named comm runs among the shell's.
func (s *diffShell) running(comm string) bool {
	for _, p := range s.tree() {
		if p.comm == comm && p.state != 'T' {
			return true
		}
	}
	return false
}

// childRunning reports whether the child labelled label is alive and not
// stopped.
func (s *diffShell) childRunning(label string) bool {
	p, ok := readDiffProc(s.childPid(label))
	return ok && p.state != 'T' && p.state != 'Z' && p.state != 'X'
}

// foreground is the terminal's foreground process group, or -1.
func (s *diffShell) foreground() int {
	fg := -1
	s.ioctl(func(fd int) (err error) { fg, err = unix.IoctlGetInt(fd, unix.TIOCGPGRP); return err }) //nolint:errcheck // -1 says it
	return fg
}
