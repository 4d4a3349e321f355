package integration

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/locked-run/locked-run/internal/ddblocal"
	"github.com/locked-run/locked-run/internal/faultproxy"
)

// The chaos test runs several locked-run processes on one key against
// DynamoDB Local, each slot of wrappers through its own fault-injecting
// proxy, while a driver kills them, partitions them (the holder alone, so
// that waiters can take over while it is cut off, or everyone) and
// throttles them, and then checks from what the
// critical sections wrote that the lock held: no two sections overlapped,
// fencing tokens grew, no increment was lost, nothing stays held, and no
// child outlived its wrapper.
//
// Each wrapper's command is this test binary again, switched by
// chaosDirEnv into a critical section (chaosSection), so that no shell and
// no grandchild is involved: the section is the child's whole process.
//
// # When did a section end?
//
// Overlap is decided on one clock, CLOCK_MONOTONIC, which every process on
// the host shares (unlike Go's monotonic readings, which are per process),
// so stamps of different processes compare directly and a wall-clock step
// cannot fake or hide an overlap.
//
// A section ends in one of three ways, and each gives its end time:
//   - It completes: it stamps an "end" line, and then only exits.
//   - It is asked to stop (SIGTERM forwarded by a wrapper we SIGTERMed, or
//     sent by a wrapper that lost its lock): a handler takes the section's
//     mutex, so no step of the section is half done, stamps an "abort" line
//     saying whether the section's increment happened, and exits while
//     still holding the mutex. Nothing touches the shared files after it.
//   - It is SIGKILLed: by the kernel when its wrapper was SIGKILLed (the
//     parent-death signal), or by its wrapper after --kill-after. It can
//     stamp nothing. Before it starts, each section connects to the test's
//     monitor over a Unix socket and keeps that connection open; the kernel
//     closes it when the process exits, and the monitor stamps the moment
//     it reads EOF. That stamp is an upper bound of the death: the
//     interval [start, EOF] contains everything the section did, so using
//     it can only make the check stricter. It is also how the test knows,
//     without trusting a pid that may have been reused, that every child
//     died within a second of its wrapper.
//
// Each section also leaves two processes behind, a background job and a
// daemon that called setsid and ignores SIGTERM. They register with the
// monitor the same way, naming the section's wrapper, and the same bound
// holds for them: the lock covers the child's whole tree.
//
// # Counting increments
//
// The section reads the counter file, sleeps a little, and replaces it
// (write to a temporary file, rename) with the value plus one: a
// read-modify-write that loses an update whenever two sections overlap.
// It then sleeps a random time before it stamps "end". A section killed in
// that sleep has incremented without completing, so the counter cannot
// simply equal the number of completed sections. The file therefore also
// names the token of its last writer, and each section logs what it read,
// and from whom, before it writes. A section wrote if it says so ("end",
// or "abort" after the write), or, when it was SIGKILLed, if a later
// section read its token from the file or the file still names it: the
// value a writer leaves is read by the next writer unless a lost update
// erased it, and that takes an overlap, which is checked on its own. The
// counter must equal the number of writers, and no two writers may have
// read the same value.

const (
	// chaosDirEnv, when set, turns this test binary into a chaos critical
	// section working in that directory.
	chaosDirEnv = "LOCKED_RUN_TEST_CHAOS_DIR"
	// chaosDurationEnv sets the length of the fault phase for a long run,
	// e.g. LOCKED_RUN_CHAOS_DURATION=10m. Unset: the CI size.
	chaosDurationEnv = "LOCKED_RUN_CHAOS_DURATION"
	// chaosProcsEnv overrides the number of concurrent wrappers.
	chaosProcsEnv = "LOCKED_RUN_CHAOS_PROCS"
)

// Timing of the wrappers. The lease is short so that losses and takeovers
// happen many times a minute; it passes validation with room to spare:
// 3s > 500ms + 500ms + margin 300ms. The renew deadline is therefore
// 3s - 500ms - 300ms = 2.2s after the last renewal was sent.
const (
	chaosLease     = 3 * time.Second
	chaosHeartbeat = 500 * time.Millisecond
	chaosKillAfter = 500 * time.Millisecond

	// chaosDeathBound is how soon after its wrapper exited a child must be
	// gone: the parent-death signal is delivered as the wrapper exits, and
	// a normal exit waits for the child, so a second is generous.
	chaosDeathBound = time.Second
)

// Sizes of the default (CI) run: enough sections and every fault kind,
// within a fault phase that cannot run away.
const (
	chaosDefaultProcs    = 6
	chaosMinSections     = 60
	chaosMaxDefaultPhase = 180 * time.Second
	chaosDrainTimeout    = 90 * time.Second
)

// chaosDescendantEnv, when set, turns this test binary into one of the
// processes a section leaves behind: "background" (a script's `cmd &`,
// which exits on SIGTERM) or "setsid" (a daemon in a session of its own,
// which ignores SIGTERM and needs SIGKILL).
const chaosDescendantEnv = "LOCKED_RUN_TEST_CHAOS_DESCENDANT"

func init() {
	if kind := os.Getenv(chaosDescendantEnv); kind != "" {
		os.Exit(chaosDescendant(os.Getenv(chaosDirEnv), kind))
	}
	if dir := os.Getenv(chaosDirEnv); dir != "" {
		os.Exit(chaosSection(dir))
	}
}

// chaosDescendant registers with the monitor as a descendant of the
// wrapper in $LOCKED_RUN_TEST_CHAOS_WRAPPER and then runs until it is
// killed. The monitor stamps its death like a section's, and the run
// checks that it died within chaosDeathBound of that wrapper.
func chaosDescendant(dir, kind string) int {
	if kind == "setsid" {
		signal.Ignore(syscall.SIGTERM)
	}
	conn, err := net.Dial("unix", filepath.Join(dir, "sock"))
	if err != nil {
		return 1
	}
	fmt.Fprintf(conn, "D %d %s %s %s\n", os.Getpid(), os.Getenv("LOCKED_RUN_TEST_CHAOS_WRAPPER"),
		os.Getenv("LOCKED_RUN_FENCING_TOKEN"), os.Getenv("LOCKED_RUN_OWNER"))
	bufio.NewReader(conn).ReadString('\n')
	select {}
}

// monoNow returns CLOCK_MONOTONIC in nanoseconds: one clock for every
// process on the host, which never steps.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// chaosSection is the child: one critical section. It returns its exit
// status. See the comment at the top of the file for what each step
// proves.
func chaosSection(dir string) int {
	token := os.Getenv("LOCKED_RUN_FENCING_TOKEN")
	owner := os.Getenv("LOCKED_RUN_OWNER")
	fail := func(err error) int {
		appendLine(filepath.Join(dir, "errors"), fmt.Sprintf("pid=%d token=%s: %v", os.Getpid(), token, err))
		return 3
	}
	if _, err := strconv.ParseUint(token, 10, 64); err != nil || owner == "" {
		return fail(fmt.Errorf("no fencing token or owner in the environment (%q, %q)", token, owner))
	}

	// Catch the stop signals before anything else, so that once the
	// section has started every SIGTERM ends in an "abort" line.
	var (
		mu      sync.Mutex
		started bool
		wrote   = int64(-1)
		logPath = filepath.Join(dir, "log")
	)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		mu.Lock() // never unlocked: the section does nothing more
		if started {
			appendLine(logPath, fmt.Sprintf("abort t=%d token=%s pid=%d wrote=%d sig=%d",
				monoNow(), token, os.Getpid(), wrote, sig))
		}
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()

	// Register with the monitor, which answers how long to sleep, and keep
	// the connection open until we die: its EOF is our death stamp.
	conn, err := net.Dial("unix", filepath.Join(dir, "sock"))
	if err != nil {
		return fail(err)
	}
	if _, err := fmt.Fprintf(conn, "%d %d %s %s\n", os.Getpid(), os.Getppid(), token, owner); err != nil {
		return fail(err)
	}
	answer, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fail(fmt.Errorf("monitor: %w", err))
	}
	sleepMs, err := strconv.Atoi(strings.TrimSpace(answer))
	if err != nil {
		return fail(fmt.Errorf("monitor answered %q", answer))
	}

	// Leave two processes behind, as scripts do: a background job and a
	// daemon that called setsid. The lock covers them too: they must be
	// gone before the wrapper exits, or within a second of it when the
	// wrapper is SIGKILLed. Not waited for: they outlive the section.
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	for _, kind := range []string{"background", "setsid"} {
		d := exec.Command(self)
		d.Env = append(os.Environ(), chaosDescendantEnv+"="+kind,
			fmt.Sprintf("LOCKED_RUN_TEST_CHAOS_WRAPPER=%d", os.Getppid()))
		d.SysProcAttr = &syscall.SysProcAttr{Setsid: kind == "setsid"}
		if err := d.Start(); err != nil {
			return fail(err)
		}
	}

	mu.Lock()
	started = true
	appendLine(logPath, fmt.Sprintf("start t=%d token=%s owner=%s pid=%d ppid=%d", monoNow(), token, owner, os.Getpid(), os.Getppid()))
	mu.Unlock()

	// The read is logged before the write, so that every section that
	// wrote has its read on record, even if it is SIGKILLed afterwards.
	mu.Lock()
	value, from, rerr := readCounter(filepath.Join(dir, "counter"))
	if rerr != nil {
		// Torn or garbage: only an overlapping writer could do that, since
		// every write is a rename. The test reports it.
		appendLine(logPath, fmt.Sprintf("read t=%d token=%s value=-1 from=corrupt", monoNow(), token))
		appendLine(logPath, fmt.Sprintf("end t=%d token=%s pid=%d wrote=-1", monoNow(), token, os.Getpid()))
		return 4
	}
	appendLine(logPath, fmt.Sprintf("read t=%d token=%s value=%d from=%s", monoNow(), token, value, from))
	mu.Unlock()

	time.Sleep(time.Duration(2+rand.IntN(13)) * time.Millisecond)
	mu.Lock()
	if err := writeCounter(dir, value+1, token); err != nil {
		return fail(err)
	}
	wrote = value + 1
	mu.Unlock()

	time.Sleep(time.Duration(sleepMs) * time.Millisecond)

	mu.Lock()
	appendLine(logPath, fmt.Sprintf("end t=%d token=%s pid=%d wrote=%d", monoNow(), token, os.Getpid(), wrote))
	return 0
}

// appendLine appends line and a newline to path in a single write on an
// O_APPEND descriptor, so that lines of different processes never mix.
func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(line + "\n")); err != nil {
		panic(err)
	}
}

// readCounter returns the counter and the token of the section that wrote
// it ("none" before the first write).
func readCounter(path string) (int64, string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, "none", nil
	}
	if err != nil {
		return 0, "", err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, "", fmt.Errorf("counter file holds %q", b)
	}
	v, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("counter file holds %q", b)
	}
	return v, f[1], nil
}

// writeCounter replaces the counter file at once (a rename), so that a
// section killed while writing leaves the old value rather than a torn one.
func writeCounter(dir string, v int64, token string) error {
	tmp := filepath.Join(dir, fmt.Sprintf("counter.%d", os.Getpid()))
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %s\n", v, token), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "counter"))
}

// A chaosChild is a section as the monitor saw it register.
type chaosChild struct {
	pid, ppid  int
	token      uint64
	owner      string
	procStart  string // field 22 of /proc/PID/stat: tells a reused pid apart
	registered int64  // CLOCK_MONOTONIC
	died       int64  // CLOCK_MONOTONIC when its connection closed; 0 while alive
	plannedMs  int
	// descendant is set for a process a section left behind; its ppid is
	// then the section's wrapper, not its parent.
	descendant bool
}

// A chaosWrapper is one locked-run process started by the driver.
type chaosWrapper struct {
	slot    int // which slot, and so which proxy
	cmd     *exec.Cmd
	pid     int
	errPath string // its stderr
	started int64
	exited  int64 // CLOCK_MONOTONIC after Wait returned; 0 while running
	code    int   // exit status, or -1 when a signal killed it
	sig     syscall.Signal
	sent    []syscall.Signal // signals the driver sent it
}

// Fault kinds. Every one is injected at least once in every run.
const (
	faultSIGKILL        = "sigkill-wrapper"
	faultSIGTERM        = "sigterm-wrapper"
	faultBlackhole      = "blackhole"
	faultThrottleNext   = "throttle-next"
	faultThrottleRate   = "throttle-rate"
	faultResetConns     = "reset-connections"
	faultResetNext      = "reset-next"
	faultLatency        = "latency"
	faultHold           = "hold"
	faultDropAnswerNext = "drop-answer-next"
	faultFail5xxNext    = "fail-5xx-next"
)

var chaosFaultKinds = []string{
	faultSIGKILL, faultSIGTERM, faultBlackhole, faultThrottleNext, faultThrottleRate, faultResetConns,
	faultResetNext, faultLatency, faultHold, faultDropAnswerNext, faultFail5xxNext,
}

// chaosCheapFaults are the kinds that do not stop the lock for a lease.
var chaosCheapFaults = []string{
	faultSIGTERM, faultThrottleNext, faultThrottleRate, faultResetConns,
	faultResetNext, faultLatency, faultHold, faultDropAnswerNext, faultFail5xxNext,
}

// chaosRun is the state of one chaos test.
type chaosRun struct {
	t     *testing.T
	dir   string
	table string
	key   string
	// proxies has one proxy per wrapper slot: a fault can hit the
	// holder alone (a partition of one host), one waiter, or everyone.
	proxies []*faultproxy.Proxy
	env     []string
	args    []string
	rng     *rand.Rand // the driver's; the monitor uses the global one
	listen  net.Listener

	slots    sync.WaitGroup // wrapper slots
	monitors sync.WaitGroup // monitor connection handlers
	accepted chan struct{}  // closed when the monitor's accept loop has ended
	planned  chan *chaosChild
	started  int64 // CLOCK_MONOTONIC at the start of the run

	mu       sync.Mutex
	wrappers []*chaosWrapper
	children []*chaosChild
	plan     []int          // sleeps (ms) planned for the next sections, in order
	faults   map[string]int // injected, by kind
	holders  map[string]int // signals that hit a holder mid-section, by fault kind
	lastKill map[int]int64  // wrapper pid -> when it was SIGKILLed
	stopping bool           // no more wrappers are started
	errs     []string       // problems met while running
}

func TestChaos(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	table := ddblocal.NewTable(t)

	phase := chaosMaxDefaultPhase
	long := false
	if s := os.Getenv(chaosDurationEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a duration such as 10m", chaosDurationEnv, s)
		}
		phase, long = d, true
	}
	procs := chaosDefaultProcs
	if s := os.Getenv(chaosProcsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			t.Fatalf("%s=%q: want a number of processes, at least 2", chaosProcsEnv, s)
		}
		procs = n
	}

	var proxies []*faultproxy.Proxy
	t.Cleanup(func() {
		for _, p := range proxies {
			p.Close()
		}
	})
	for range procs {
		p, err := faultproxy.New(endpoint)
		if err != nil {
			t.Fatal(err)
		}
		proxies = append(proxies, p)
	}
	// A short directory: Unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "chaos-")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r := &chaosRun{
		t:        t,
		dir:      dir,
		table:    table,
		key:      "chaos",
		proxies:  proxies,
		rng:      rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5)),
		planned:  make(chan *chaosChild, 1),
		accepted: make(chan struct{}),
		faults:   make(map[string]int),
		holders:  make(map[string]int),
		lastKill: make(map[int]int64),
	}
	r.env = append(dynamoEnv("ENDPOINT"), chaosDirEnv+"="+dir)
	r.args = []string{"-t", table, "-k", r.key, "--log-level", "debug",
		"--lease", chaosLease.String(), "--heartbeat", chaosHeartbeat.String(), "--kill-after", chaosKillAfter.String(),
		"--", self}
	if err := os.MkdirAll(filepath.Join(dir, "stderr"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.listen, err = net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	go r.monitor()
	t.Cleanup(func() {
		r.killAll()
		r.listen.Close()
		<-r.accepted
		r.monitors.Wait()
		if t.Failed() {
			t.Logf("chaos files kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	})

	r.started = monoNow()
	for i := range procs {
		r.slots.Add(1)
		go r.slot(i)
	}
	r.drive(phase, long)
	r.drain()
	r.checkFree(endpoint)
	r.verify(procs, long)
}

// slot keeps one wrapper running: it starts one, waits for it, and starts
// the next, until the run is stopping.
func (r *chaosRun) slot(i int) {
	defer r.slots.Done()
	for n := 0; ; n++ {
		r.mu.Lock()
		if r.stopping {
			r.mu.Unlock()
			return
		}
		w := &chaosWrapper{slot: i, errPath: filepath.Join(r.dir, "stderr", fmt.Sprintf("%d-%d", i, n))}
		errFile, err := os.Create(w.errPath)
		if err != nil {
			r.errs = append(r.errs, err.Error())
			r.mu.Unlock()
			return
		}
		w.cmd = exec.Command(binPath, r.args...)
		w.cmd.Env = slices.Clone(r.env)
		for j, kv := range w.cmd.Env {
			if kv == "AWS_ENDPOINT_URL_DYNAMODB=ENDPOINT" {
				w.cmd.Env[j] = "AWS_ENDPOINT_URL_DYNAMODB=" + r.proxies[i].URL()
			}
		}
		// A file, not a pipe: Wait returns when the wrapper exits, not
		// when whatever inherited its stderr closes it.
		w.cmd.Stderr = errFile
		err = w.cmd.Start()
		errFile.Close()
		if err != nil {
			r.errs = append(r.errs, fmt.Sprintf("start locked-run: %v", err))
			r.mu.Unlock()
			return
		}
		w.pid = w.cmd.Process.Pid
		w.started = monoNow()
		r.wrappers = append(r.wrappers, w)
		r.mu.Unlock()

		err = w.cmd.Wait()
		exited := monoNow()
		r.mu.Lock()
		w.exited = exited
		var ee *exec.ExitError
		switch {
		case err == nil:
			w.code = 0
		case errors.As(err, &ee):
			w.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				w.sig = ws.Signal()
			}
		default:
			r.errs = append(r.errs, fmt.Sprintf("wait for locked-run pid %d: %v", w.pid, err))
		}
		r.mu.Unlock()
	}
}

// monitor accepts the sections' registrations.
func (r *chaosRun) monitor() {
	defer close(r.accepted)
	for {
		c, err := r.listen.Accept()
		if err != nil {
			return
		}
		r.monitors.Add(1)
		go r.serveChild(c)
	}
}

// serveChild registers one section, answers its planned sleep, and stamps
// its death when the connection closes.
func (r *chaosRun) serveChild(c net.Conn) {
	defer r.monitors.Done()
	defer c.Close()
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	if err != nil {
		return // died before registering: it did nothing
	}
	ch := &chaosChild{registered: monoNow()}
	var tok string
	if rest, ok := strings.CutPrefix(line, "D "); ok {
		// A descendant: ppid names the wrapper of the section that
		// started it.
		ch.descendant = true
		line = rest
	}
	if _, err := fmt.Sscanf(line, "%d %d %s %s", &ch.pid, &ch.ppid, &tok, &ch.owner); err != nil {
		r.mu.Lock()
		r.errs = append(r.errs, fmt.Sprintf("bad registration %q: %v", line, err))
		r.mu.Unlock()
		return
	}
	ch.token, _ = strconv.ParseUint(tok, 10, 64)
	// The child waits for our answer, so its pid cannot have been reused
	// yet.
	ch.procStart = procStartTime(ch.pid)

	r.mu.Lock()
	var took bool
	if ch.descendant {
		r.children = append(r.children, ch)
		r.mu.Unlock()
		fmt.Fprintln(c, "0")
		_, _ = rd.ReadString('\n')
		died := monoNow()
		r.mu.Lock()
		ch.died = died
		r.mu.Unlock()
		return
	}
	if len(r.plan) > 0 {
		ch.plannedMs, r.plan = r.plan[0], r.plan[1:]
		took = true
	} else {
		ch.plannedMs = r.shortSleepMs()
	}
	r.children = append(r.children, ch)
	r.mu.Unlock()
	if took {
		select {
		case r.planned <- ch:
		default:
		}
	}
	fmt.Fprintf(c, "%d\n", ch.plannedMs)

	// Nothing more comes; EOF (or a reset) means the process is gone.
	_, _ = rd.ReadString('\n')
	died := monoNow()
	r.mu.Lock()
	ch.died = died
	r.mu.Unlock()
}

// shortSleepMs is the sleep of an ordinary section: mostly short, so that
// many sections run, sometimes long enough that a kill lands inside one.
// Called with r.mu held; uses its own randomness, as the monitor runs
// beside the driver.
func (r *chaosRun) shortSleepMs() int {
	if r.stopping {
		return rand.IntN(50)
	}
	if rand.IntN(8) == 0 {
		return 300 + rand.IntN(1200)
	}
	return rand.IntN(120)
}

// procStartTime returns field 22 (starttime) of /proc/PID/stat, or "" when
// the process is gone.
func procStartTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces; fields after it do not.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19] // field 22 overall: fields here start at field 3
}

// sectionsCompleted counts the "end" lines so far.
func (r *chaosRun) sectionsCompleted() int {
	b, _ := os.ReadFile(filepath.Join(r.dir, "log"))
	n := 0
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "end ") {
			n++
		}
	}
	return n
}

// drive injects faults until the phase is over: in the default run, until
// every kind was injected and enough sections completed (failing if that
// takes longer than phase); in a long run, for phase.
func (r *chaosRun) drive(phase time.Duration, long bool) {
	deadline := time.Now().Add(phase)
	queue := slices.Clone(chaosFaultKinds)
	r.rng.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
	for {
		if time.Now().After(deadline) {
			if !long {
				r.t.Errorf("fault phase ran out after %s: %d sections completed (want %d), faults %v",
					phase, r.sectionsCompleted(), chaosMinSections, r.faultCounts())
			}
			return
		}
		if !long && len(queue) == 0 && r.sectionsCompleted() >= chaosMinSections {
			return
		}
		time.Sleep(time.Duration(300+r.rng.IntN(1200)) * time.Millisecond)
		var kind string
		switch {
		case len(queue) > 0:
			kind, queue = queue[0], queue[1:]
		case r.rng.IntN(3) == 0:
			kind = chaosFaultKinds[r.rng.IntN(len(chaosFaultKinds))]
		default:
			// Mostly the faults that leave the lock running: a blackhole
			// or a holder's SIGKILL stalls every wrapper for a lease.
			kind = chaosCheapFaults[r.rng.IntN(len(chaosCheapFaults))]
		}
		if !r.inject(kind) {
			queue = append(queue, kind) // try again: every kind must happen
		}
	}
}

func (r *chaosRun) faultCounts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.faults)
}

// inject injects one fault of kind and returns when it is over. It reports
// whether it could: a signal needs a running wrapper, a partition of the
// holder needs a holder.
func (r *chaosRun) inject(kind string) bool {
	var scope string
	count := func() {
		r.mu.Lock()
		r.faults[kind]++
		r.mu.Unlock()
		appendLine(filepath.Join(r.dir, "faults"), fmt.Sprintf("%s %s %s", r.rel(monoNow()), kind, scope))
	}
	// Network faults hit every proxy or the proxy of one slot.
	ps := r.proxies
	scope = "all proxies"
	if r.rng.IntN(2) == 0 {
		i := r.rng.IntN(len(ps))
		ps = []*faultproxy.Proxy{ps[i]}
		scope = fmt.Sprintf("proxy of slot %d", i)
	}
	each := func(f func(p *faultproxy.Proxy)) {
		for _, p := range ps {
			f(p)
		}
	}
	// A "next n requests" fault is a burst: what a proxy has not used up
	// after a second or two is cancelled. Left armed, it would wait for
	// the next request however late: a waiter backed off to seconds
	// between requests, alone on its proxy, would meet a new armed fault
	// at each request and fail for a minute on end, which is an outage,
	// not the burst meant here (locked-run gives up after a minute of
	// failures, by design).
	burst := func(arm func(p *faultproxy.Proxy, n int), n int) {
		each(func(p *faultproxy.Proxy) { arm(p, n) })
		time.Sleep(time.Duration(1000+r.rng.IntN(1000)) * time.Millisecond)
		each(func(p *faultproxy.Proxy) { arm(p, 0) })
	}
	switch kind {
	case faultSIGKILL, faultSIGTERM:
		sig := syscall.SIGKILL
		if kind == faultSIGTERM {
			sig = syscall.SIGTERM
		}
		if r.rng.IntN(2) == 0 {
			// A holder in the middle of its section.
			ch := r.awaitPlanned(800 + r.rng.IntN(1500))
			if ch == nil {
				return false
			}
			time.Sleep(time.Duration(r.rng.IntN(400)) * time.Millisecond)
			scope = fmt.Sprintf("holder pid %d", ch.ppid)
			if !r.signalWrapper(ch.ppid, sig) {
				return false
			}
			count()
			r.mu.Lock()
			r.holders[kind]++
			r.mu.Unlock()
			return true
		}
		scope = "a random wrapper"
		if !r.signalWrapper(0, sig) {
			return false
		}
		count()
	case faultBlackhole:
		// A partition longer than the lease while a section runs that
		// would outlast it. Mostly of the holder alone: the waiters go on
		// and take over one lease after the holder's last renewal, so the
		// holder must have lost the lock, stopped its child and given up
		// by then (exit 76). Otherwise of everyone, an outage.
		ch := r.awaitPlanned(int((chaosLease * 3).Milliseconds()))
		if ch == nil {
			return false
		}
		if r.rng.IntN(3) > 0 {
			w := r.liveWrapper(ch.ppid)
			if w == nil {
				return false // gone already
			}
			ps = []*faultproxy.Proxy{r.proxies[w.slot]}
			scope = fmt.Sprintf("proxy of slot %d, the holder's (pid %d)", w.slot, w.pid)
			r.mu.Lock()
			r.holders[kind]++
			r.mu.Unlock()
		} else {
			ps = r.proxies
			scope = "all proxies"
		}
		time.Sleep(time.Duration(100+r.rng.IntN(300)) * time.Millisecond)
		count()
		each(func(p *faultproxy.Proxy) { p.Blackhole(true) })
		time.Sleep(chaosLease + time.Duration(500+r.rng.IntN(2000))*time.Millisecond)
		each(func(p *faultproxy.Proxy) { p.Blackhole(false) })
	case faultThrottleNext:
		count()
		burst((*faultproxy.Proxy).ThrottleNext, 1+r.rng.IntN(5))
	case faultThrottleRate:
		count()
		f := 0.2 + 0.4*r.rng.Float64()
		each(func(p *faultproxy.Proxy) { p.SetThrottleRate(f) })
		time.Sleep(time.Duration(1000+r.rng.IntN(2000)) * time.Millisecond)
		each(func(p *faultproxy.Proxy) { p.SetThrottleRate(0) })
	case faultResetConns:
		count()
		each(func(p *faultproxy.Proxy) { p.ResetConnections() })
	case faultResetNext:
		count()
		burst((*faultproxy.Proxy).ResetNext, 1+r.rng.IntN(4))
	case faultLatency:
		count()
		d := time.Duration(30+r.rng.IntN(250)) * time.Millisecond
		each(func(p *faultproxy.Proxy) { p.SetLatency(d) })
		time.Sleep(time.Duration(1000+r.rng.IntN(2000)) * time.Millisecond)
		each(func(p *faultproxy.Proxy) { p.SetLatency(0) })
	case faultHold:
		count()
		d := time.Duration(300+r.rng.IntN(1500)) * time.Millisecond
		each(func(p *faultproxy.Proxy) { p.Hold(d) })
		time.Sleep(d)
	case faultDropAnswerNext:
		count()
		burst((*faultproxy.Proxy).DropAnswerNext, 1+r.rng.IntN(3))
	case faultFail5xxNext:
		count()
		burst((*faultproxy.Proxy).Fail5xxNext, 1+r.rng.IntN(4))
	default:
		r.t.Fatalf("unknown fault %q", kind)
	}
	return true
}

// liveWrapper returns the running wrapper with pid, or nil.
func (r *chaosRun) liveWrapper(pid int) *chaosWrapper {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.wrappers {
		if w.pid == pid && w.exited == 0 {
			return w
		}
	}
	return nil
}

// awaitPlanned makes the next section to start sleep ms, and returns it
// once it has registered, or nil after a while if none did (every wrapper
// waiting out a dead holder's lease, say).
func (r *chaosRun) awaitPlanned(ms int) *chaosChild {
	select {
	case <-r.planned: // left over from an earlier plan that timed out
	default:
	}
	r.mu.Lock()
	r.plan = append(r.plan, ms)
	r.mu.Unlock()
	select {
	case ch := <-r.planned:
		return ch
	case <-time.After(3 * chaosLease):
		r.mu.Lock()
		r.plan = nil
		r.mu.Unlock()
		// A child may have taken the plan just now.
		select {
		case ch := <-r.planned:
			return ch
		default:
			return nil
		}
	}
}

// signalWrapper sends sig to the running wrapper with pid, or to a random
// running wrapper when pid is 0. It reports whether it sent one.
func (r *chaosRun) signalWrapper(pid int, sig syscall.Signal) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	var live []*chaosWrapper
	for _, w := range r.wrappers {
		if w.exited == 0 && (pid == 0 || w.pid == pid) {
			live = append(live, w)
		}
	}
	if len(live) == 0 {
		return false
	}
	w := live[rand.IntN(len(live))]
	// os.Process.Signal goes through a pidfd: it cannot hit a reused pid.
	if err := w.cmd.Process.Signal(sig); err != nil {
		return false
	}
	w.sent = append(w.sent, sig)
	if sig == syscall.SIGKILL {
		r.lastKill[w.pid] = monoNow()
	}
	return true
}

// drain stops starting wrappers, heals the network, and waits for the
// running ones to finish.
func (r *chaosRun) drain() {
	r.mu.Lock()
	r.stopping = true
	r.plan = nil
	r.mu.Unlock()
	for _, p := range r.proxies {
		p.Calm()
	}

	done := make(chan struct{})
	go func() {
		r.slots.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(chaosDrainTimeout):
		r.t.Errorf("wrappers still running %s after the fault phase ended", chaosDrainTimeout)
		r.killAll()
		<-done
	}
	// Every child's connection must close within the bound after its
	// wrapper: wait that long for the last ones.
	waitUntil := time.Now().Add(chaosDeathBound + 200*time.Millisecond)
	for time.Now().Before(waitUntil) {
		r.mu.Lock()
		alive := 0
		for _, c := range r.children {
			if c.died == 0 {
				alive++
			}
		}
		r.mu.Unlock()
		if alive == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killAll SIGKILLs every wrapper still running.
func (r *chaosRun) killAll() {
	r.mu.Lock()
	r.stopping = true
	for _, w := range r.wrappers {
		if w.exited == 0 {
			_ = w.cmd.Process.Kill()
		}
	}
	r.mu.Unlock()
	r.slots.Wait()
}

// statusJSON is what `locked-run status --json` prints.
type statusJSON struct {
	Key   string `json:"key"`
	Held  bool   `json:"held"`
	Owner string `json:"owner"`
	PID   int    `json:"pid"`
	Token uint64 `json:"fencing_token"`
}

// checkFree checks that nothing is left held. A holder SIGKILLed near the
// end leaves its lock behind when no waiter remained to take it over; that
// lock must free itself: a new locked-run gets it within a lease and a poll.
func (r *chaosRun) checkFree(endpoint string) {
	t := r.t
	env := dynamoEnv(endpoint)
	st := r.status(env)
	if st.Held {
		r.mu.Lock()
		killedAt, killed := r.lastKill[st.PID]
		r.mu.Unlock()
		if !killed {
			t.Errorf("after the run %q is held by %s (pid %d), which was not SIGKILLed", r.key, st.Owner, st.PID)
			return
		}
		since := time.Duration(monoNow() - killedAt)
		t.Logf("after the run %q is held by SIGKILLed holder %s (killed %s ago); it must free itself", r.key, st.Owner, since.Round(time.Millisecond))
		start := time.Now()
		res := runBin(t, env, "-t", r.table, "-k", r.key, "--timeout", (3 * chaosLease).String(), "--", "true")
		if res.code != 0 {
			t.Errorf("taking over the lock of the SIGKILLed holder: exit %d: %s", res.code, res.stderr)
		}
		if waited := time.Since(start); waited > chaosLease+time.Second+since {
			t.Errorf("taking over a lock left by a SIGKILL took %s", waited)
		}
		st = r.status(env)
	}
	if st.Held {
		t.Errorf("after the run %q is still held: %+v", r.key, st)
	}
	res := runBin(t, env, "list", "-t", r.table, "--json")
	var held []statusJSON
	if err := json.Unmarshal([]byte(res.stdout), &held); res.code != 0 || err != nil || len(held) != 0 {
		t.Errorf("after the run, list: exit %d, %v, %q %s", res.code, err, res.stdout, res.stderr)
	}
}

func (r *chaosRun) status(env []string) statusJSON {
	r.t.Helper()
	res := runBin(r.t, env, "status", "-t", r.table, "-k", r.key, "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(res.stdout), &st); res.code != 0 || err != nil {
		r.t.Fatalf("status: exit %d, %v: %q %s", res.code, err, res.stdout, res.stderr)
	}
	return st
}

// A chaosSectionRec is one section as rebuilt from the log.
type chaosSectionRec struct {
	token      uint64
	owner      string
	pid, ppid  int
	start, end int64
	how        string // "end", "abort", or "killed" (no line after start)
	read       int64  // the counter value it read; -1 if it did not read
	from       string // the token that wrote what it read
	wrote      int64  // the value it wrote; -1 when not known to have written
	child      *chaosChild
	wrapper    *chaosWrapper
}

// verify checks the invariants and prints the figures.
func (r *chaosRun) verify(procs int, long bool) {
	t := r.t
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
	if b, err := os.ReadFile(filepath.Join(r.dir, "errors")); err == nil {
		t.Errorf("sections reported errors:\n%s", b)
	}
	byPid := map[int][]*chaosWrapper{}
	for _, w := range r.wrappers {
		byPid[w.pid] = append(byPid[w.pid], w)
	}

	list, problems := r.parseLog(byPid)
	for _, p := range problems {
		t.Error(p)
	}
	var completed, aborted, killed int
	for _, s := range list {
		switch s.how {
		case "end":
			completed++
		case "abort":
			aborted++
		default:
			killed++
		}
	}

	// No two sections overlap: each starts after every earlier one ended.
	overlaps := 0
	var last *chaosSectionRec
	for _, s := range list {
		if last != nil && s.start <= last.end {
			overlaps++
			t.Errorf("overlap: section token %d (%s, pid %d) ran until %s, section token %d (%s, pid %d) started at %s, %s earlier\nstderr of the first wrapper:\n%s\nstderr of the second:\n%s",
				last.token, last.how, last.pid, r.rel(last.end), s.token, s.how, s.pid, r.rel(s.start),
				time.Duration(last.end-s.start), stderrTail(last.wrapper), stderrTail(s.wrapper))
		}
		if last == nil || s.end > last.end {
			last = s
		}
	}

	// Fencing tokens strictly increase in start order.
	for i := 1; i < len(list); i++ {
		if list[i].token <= list[i-1].token {
			t.Errorf("fencing token %d (started %s) is not greater than token %d (started %s)",
				list[i].token, r.rel(list[i].start), list[i-1].token, r.rel(list[i-1].start))
		}
	}

	// The counter equals the number of increments (see the top of the file).
	final, lastWriter, err := readCounter(filepath.Join(r.dir, "counter"))
	if err != nil {
		t.Errorf("counter: %v", err)
	}
	readFrom := map[string]bool{lastWriter: true}
	for _, s := range list {
		readFrom[s.from] = true
	}
	writers := 0
	readBy := map[int64]uint64{}
	for _, s := range list {
		if s.wrote < 0 && !(s.how == "killed" && readFrom[strconv.FormatUint(s.token, 10)]) {
			continue
		}
		writers++
		if other, dup := readBy[s.read]; dup {
			t.Errorf("lost update: sections with tokens %d and %d both read counter value %d and wrote", other, s.token, s.read)
		}
		readBy[s.read] = s.token
	}
	if int(final) != writers {
		t.Errorf("counter is %d, but %d sections incremented it (%d completed)", final, writers, completed)
	}

	// Every child, and everything it left behind, died with or before its
	// wrapper (within chaosDeathBound), and its pid is gone.
	outlived := 0
	descendants := 0
	for _, c := range r.children {
		if c.descendant {
			descendants++
		}
		w := wrapperAt(byPid[c.ppid], c.registered)
		switch {
		case w == nil:
			t.Errorf("child pid %d (token %d) has no known wrapper (ppid %d)", c.pid, c.token, c.ppid)
		case c.died == 0:
			outlived++
			t.Errorf("child pid %d (token %d) still has its connection open after its wrapper pid %d exited", c.pid, c.token, w.pid)
		case time.Duration(c.died-w.exited) > chaosDeathBound:
			outlived++
			t.Errorf("child pid %d (token %d) died %s after its wrapper pid %d", c.pid, c.token, time.Duration(c.died-w.exited), w.pid)
		}
		if c.procStart != "" && procStartTime(c.pid) == c.procStart {
			outlived++
			t.Errorf("child pid %d (token %d) is still running", c.pid, c.token)
		}
	}

	// Exit statuses: each wrapper ends as what happened to it says.
	ran := map[*chaosWrapper]*chaosSectionRec{}
	for _, s := range list {
		if s.wrapper == nil {
			continue
		}
		if other := ran[s.wrapper]; other != nil {
			t.Errorf("locked-run pid %d ran two sections, tokens %d and %d", s.wrapper.pid, other.token, s.token)
		}
		ran[s.wrapper] = s
	}
	codes := map[string]int{}
	var sigkilled, sigtermed, lost int
	for _, w := range r.wrappers {
		label := strconv.Itoa(w.code)
		if w.sig != 0 {
			label = "signal " + unix.SignalName(w.sig)
		}
		codes[label]++
		switch {
		case w.sig == syscall.SIGKILL && slices.Contains(w.sent, syscall.SIGKILL):
			sigkilled++
		case w.code == 76:
			lost++
		case (w.code == 128+int(syscall.SIGTERM) || w.sig == syscall.SIGTERM) && slices.Contains(w.sent, syscall.SIGTERM):
			// 143 as it forwarded the signal or gave up waiting; or killed
			// by it when it came as locked-run was exiting, its lock
			// released and its signal handling done.
			sigtermed++
		case w.code == 0 && ran[w] != nil && ran[w].how == "end":
		case w.code == 0:
			t.Errorf("locked-run pid %d exited 0 without a completed section; stderr:\n%s", w.pid, stderrTail(w))
		default:
			t.Errorf("locked-run pid %d exited %s (signals sent: %v); stderr:\n%s", w.pid, label, w.sent, stderrTail(w))
		}
	}

	counts := maps.Clone(r.faults)
	for _, k := range chaosFaultKinds {
		if counts[k] == 0 {
			t.Errorf("fault %s was never injected", k)
		}
	}
	if counts[faultBlackhole] > 0 && lost == 0 {
		t.Errorf("%d blackholes longer than the lease, but no wrapper exited 76 (lock lost)", counts[faultBlackhole])
	}
	if !long && completed < chaosMinSections {
		t.Errorf("only %d sections completed, want at least %d", completed, chaosMinSections)
	}

	var stats faultproxy.Stats
	stats.Requests = map[string]int{}
	for _, p := range r.proxies {
		st := p.Stats()
		for op, n := range st.Requests {
			stats.Requests[op] += n
		}
		stats.Throttled += st.Throttled
		stats.Failed += st.Failed
		stats.Reset += st.Reset
		stats.AnswersDropped += st.AnswersDropped
		stats.Blackholed += st.Blackholed
		stats.Held += st.Held
	}
	kinds := make([]string, 0, len(counts))
	total := 0
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		total += n
	}
	sort.Strings(kinds)
	fig := []string{
		fmt.Sprintf("chaos: %d wrappers at a time on one key, lease %s, heartbeat %s, kill-after %s, ran %s",
			procs, chaosLease, chaosHeartbeat, chaosKillAfter, time.Duration(monoNow()-r.started).Round(time.Second)),
		fmt.Sprintf("chaos: sections started %d: completed %d, stopped by SIGTERM %d, killed by SIGKILL %d",
			len(list), completed, aborted, killed),
		fmt.Sprintf("chaos: wrappers started %d: SIGKILLed %d (%d mid-section), SIGTERMed %d (%d mid-section), lock-lost exits (76) %d",
			len(r.wrappers), sigkilled, r.holders[faultSIGKILL], sigtermed, r.holders[faultSIGTERM], lost),
		fmt.Sprintf("chaos: wrapper exit statuses %v", codes),
		fmt.Sprintf("chaos: faults injected %d: %s; blackholes of the holder alone %d", total, strings.Join(kinds, " "), r.holders[faultBlackhole]),
		fmt.Sprintf("chaos: proxy requests %v; throttled %d, 5xx %d, connections reset %d, answers dropped %d, blackholed %d, held %d",
			stats.Requests, stats.Throttled, stats.Failed, stats.Reset, stats.AnswersDropped, stats.Blackholed, stats.Held),
		fmt.Sprintf("chaos: counter %d, increments %d; overlaps %d; descendants left by sections %d; children or descendants outliving their wrapper %d",
			final, writers, overlaps, descendants, outlived),
	}
	for _, l := range fig {
		t.Log(l)
		fmt.Println(l)
	}
}

// wrapperAt returns, among the wrappers that had one pid, the one whose
// tree a child registering at the CLOCK_MONOTONIC time at belongs to: the
// one running then, or one that exited less than chaosDeathBound before.
// A registration is stamped when the monitor reads it, and a wrapper's
// exit when Wait returns: a descendant forked just before its wrapper's
// SIGKILL may be read after that exit was stamped, and may even start in
// the moment the guardian takes to sweep the tree (CI met it once). Such
// a child is held to dying within chaosDeathBound of the exit like any
// other.
func wrapperAt(ws []*chaosWrapper, at int64) *chaosWrapper {
	for _, w := range ws {
		if w.started <= at && (w.exited == 0 || at <= w.exited+int64(chaosDeathBound)) {
			return w
		}
	}
	return nil
}

// parseLog rebuilds the sections, in start order, from the log and the
// monitor's registrations. Called with r.mu held.
func (r *chaosRun) parseLog(byPid map[int][]*chaosWrapper) ([]*chaosSectionRec, []string) {
	var problems []string
	secs := map[uint64]*chaosSectionRec{}
	b, err := os.ReadFile(filepath.Join(r.dir, "log"))
	if err != nil {
		return nil, []string{fmt.Sprintf("no section ever started: %v", err)}
	}
	for line := range strings.Lines(string(b)) {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			problems = append(problems, fmt.Sprintf("log line %q", line))
			continue
		}
		kv := map[string]string{}
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(f, "=")
			kv[k] = v
		}
		num := func(k string) int64 {
			n, err := strconv.ParseInt(kv[k], 10, 64)
			if err != nil {
				problems = append(problems, fmt.Sprintf("log line %q: %s", line, k))
			}
			return n
		}
		tok, err := strconv.ParseUint(kv["token"], 10, 64)
		if err != nil {
			problems = append(problems, fmt.Sprintf("log line %q: token", line))
			continue
		}
		s := secs[tok]
		if fields[0] != "start" && (s == nil || s.how != "killed") {
			problems = append(problems, fmt.Sprintf("log line %q: no open section", line))
			continue
		}
		switch fields[0] {
		case "start":
			if s != nil {
				problems = append(problems, fmt.Sprintf("fencing token %d started twice", tok))
				continue
			}
			secs[tok] = &chaosSectionRec{token: tok, owner: kv["owner"], pid: int(num("pid")), ppid: int(num("ppid")),
				start: num("t"), how: "killed", read: -1, wrote: -1}
		case "read":
			s.read, s.from = num("value"), kv["from"]
			if s.from == "corrupt" {
				problems = append(problems, fmt.Sprintf("section token %d read a torn counter file", tok))
			}
		case "end", "abort":
			s.how, s.end, s.wrote = fields[0], num("t"), num("wrote")
		default:
			problems = append(problems, fmt.Sprintf("log line %q", line))
		}
	}
	for _, c := range r.children {
		if s := secs[c.token]; s != nil && s.pid == c.pid {
			s.child = c
		}
	}
	list := make([]*chaosSectionRec, 0, len(secs))
	for _, s := range secs {
		s.wrapper = wrapperAt(byPid[s.ppid], s.start)
		if s.how == "killed" {
			if s.child == nil || s.child.died == 0 {
				problems = append(problems, fmt.Sprintf("section token %d (pid %d) has no end and no known death", s.token, s.pid))
				s.end = monoNow()
			} else {
				s.end = s.child.died
			}
		}
		list = append(list, s)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].start < list[j].start })
	return list, problems
}

// rel formats a CLOCK_MONOTONIC stamp relative to the start of the run.
func (r *chaosRun) rel(t int64) string {
	return "+" + time.Duration(t-r.started).Round(time.Millisecond).String()
}

// stderrTail returns the last lines a wrapper wrote to stderr.
func stderrTail(w *chaosWrapper) string {
	if w == nil {
		return "(unknown wrapper)"
	}
	b, err := os.ReadFile(w.errPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
