package integration

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sys/unix"

	"github.com/locked-run/locked-run/internal/ddblocal"
	"github.com/locked-run/locked-run/internal/faultproxy"
)

// TestChaosHolders is the chaos test's sibling for issue 12's kinds of
// holder: wrappers on one key through fault-injecting proxies, SIGKILLed
// and SIGTERMed (holders above all) while the store is throttled, slowed,
// held and failing, in two modes:
//
//   - max-holders: every run gives --max-holders 3; at no moment do more
//     than 3 commands run.
//   - shared+exclusive: runs are --shared or exclusive at random; a shared
//     and an exclusive command never run at the same time, nor two
//     exclusive ones.
//
// Each command is a line child (line_test.go) that registers with a
// monitor over a Unix socket, then writes its begin record, holds a random
// while and writes its end record. A command SIGKILLed with its wrapper
// (the parent-death signal) or stopped by a forwarded SIGTERM writes no
// end; the monitor's stamp of its socket's EOF, an upper bound of its
// death, is its end then. Overlaps are decided on CLOCK_MONOTONIC.
//
// It also checks that fencing tokens are unique and ordered with the
// sections (of an exclusive and another section, the one that ended
// before the other began has the smaller token),
// that the wrappers exit as what happened to them says, that a plain
// exclusive run gets the key within about a lease once the faults stop
// (the SIGKILLed holders' and waiters' entries removed), and that more
// than one command held the key at once (the modes are not mutexes).
func TestChaosHolders(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	for _, mode := range []chaosHoldersMode{
		{name: "max-holders 3", limit: 3},
		{name: "shared and exclusive", mixed: true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			runChaosHolders(t, endpoint, mode)
		})
	}
}

type chaosHoldersMode struct {
	name  string
	limit int  // --max-holders given to every run; 0: none
	mixed bool // runs are --shared or exclusive at random
}

const (
	// chaosHoldersPhase is how long faults are injected in each mode.
	chaosHoldersPhase = 15 * time.Second
	chaosHoldersProcs = 6
	// chaosHoldersDrain is how long the wrappers get to finish once the
	// faults stop: a few sections each, and a lease or two for the
	// entries of SIGKILLed holders and waiters to be removed.
	chaosHoldersDrain = 45 * time.Second
)

type chaosHoldersRun struct {
	t     *testing.T
	mode  chaosHoldersMode
	dir   string
	log   string
	table string
	key   string
	// endpoint is DynamoDB Local's, without a proxy.
	endpoint string
	proxies  []*faultproxy.Proxy
	rng      *rand.Rand // the driver's
	listen   net.Listener
	started  int64

	slots    sync.WaitGroup
	monitors sync.WaitGroup
	accepted chan struct{}

	mu       sync.Mutex
	wrappers []*chaosHoldersWrapper
	deaths   map[string]int64 // label -> CLOCK_MONOTONIC of its socket's EOF
	faults   map[string]int
	holders  int // SIGKILLs that hit a wrapper whose command was running
	stopping bool
	errs     []string
}

type chaosHoldersWrapper struct {
	label, kind string
	slot        int
	cmd         *exec.Cmd
	errPath     string
	exited      bool
	code        int
	sig         syscall.Signal
	sent        []syscall.Signal
}

func runChaosHolders(t *testing.T, endpoint string, mode chaosHoldersMode) {
	table := ddblocal.NewTable(t)
	// A short directory: Unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "chaosh-")
	if err != nil {
		t.Fatal(err)
	}
	r := &chaosHoldersRun{
		t: t, mode: mode, dir: dir, log: filepath.Join(dir, "log"), table: table, key: "chaos-holders", endpoint: endpoint,
		rng:      rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 12)),
		accepted: make(chan struct{}),
		deaths:   map[string]int64{},
		faults:   map[string]int{},
	}
	for range chaosHoldersProcs {
		p, err := faultproxy.New(endpoint)
		if err != nil {
			t.Fatal(err)
		}
		r.proxies = append(r.proxies, p)
	}
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
		for _, p := range r.proxies {
			p.Close()
		}
		if t.Failed() {
			t.Logf("chaos files kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	})

	r.started = monoNow()
	for i := range chaosHoldersProcs {
		r.slots.Add(1)
		go r.slot(i)
	}
	r.drive(chaosHoldersPhase)
	r.drain()
	r.checkFree(endpoint)
	r.verify()
}

// args returns the wrapper's options for a run of kind.
func (r *chaosHoldersRun) args(kind string) []string {
	a := []string{"-t", r.table, "-k", r.key, "--log-level", "debug",
		"--lease", chaosLease.String(), "--heartbeat", chaosHeartbeat.String(), "--kill-after", chaosKillAfter.String()}
	if r.mode.limit > 0 {
		a = append(a, "--max-holders", fmt.Sprint(r.mode.limit))
	}
	if kind == "shared" && r.mode.limit == 0 {
		a = append(a, "--shared")
	}
	return a
}

// slot keeps one wrapper running until the run stops.
func (r *chaosHoldersRun) slot(i int) {
	defer r.slots.Done()
	self, err := os.Executable()
	if err != nil {
		r.fail(err.Error())
		return
	}
	for n := 0; ; n++ {
		r.mu.Lock()
		if r.stopping {
			r.mu.Unlock()
			return
		}
		kind := "shared"
		if r.mode.mixed && rand.IntN(3) == 0 {
			kind = "exclusive"
		}
		hold := 50 + rand.IntN(400)
		if rand.IntN(6) == 0 {
			hold = 800 + rand.IntN(700)
		}
		w := &chaosHoldersWrapper{label: fmt.Sprintf("s%d-%d", i, n), kind: kind, slot: i}
		w.errPath = filepath.Join(r.dir, "stderr", w.label)
		errFile, err := os.Create(w.errPath)
		if err != nil {
			r.errs = append(r.errs, err.Error())
			r.mu.Unlock()
			return
		}
		w.cmd = exec.Command(binPath, append(r.args(kind), "--", self)...)
		w.cmd.Env = append(quickRaceExit(dynamoEnv(r.proxies[i].URL())),
			fmt.Sprintf("%s=%s|%s|%s|%d", lineChildEnv, r.log, w.label, kind, hold),
			lineSockEnv+"="+filepath.Join(r.dir, "sock"))
		// A file, not a pipe: Wait returns when the wrapper exits.
		w.cmd.Stderr = errFile
		err = w.cmd.Start()
		errFile.Close()
		if err != nil {
			r.errs = append(r.errs, fmt.Sprintf("start locked-run: %v", err))
			r.mu.Unlock()
			return
		}
		r.wrappers = append(r.wrappers, w)
		r.mu.Unlock()

		err = w.cmd.Wait()
		r.mu.Lock()
		w.exited = true
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			w.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				w.sig = ws.Signal()
			}
		default:
			r.errs = append(r.errs, fmt.Sprintf("wait for locked-run %s: %v", w.label, err))
		}
		r.mu.Unlock()
	}
}

func (r *chaosHoldersRun) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, msg)
}

// monitor stamps the death of each command: the EOF of its connection.
func (r *chaosHoldersRun) monitor() {
	defer close(r.accepted)
	for {
		c, err := r.listen.Accept()
		if err != nil {
			return
		}
		r.monitors.Add(1)
		go func() {
			defer r.monitors.Done()
			defer c.Close()
			rd := bufio.NewReader(c)
			label, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = rd.ReadString('\n') // nothing more comes: EOF is its death
			died := monoNow()
			r.mu.Lock()
			r.deaths[strings.TrimSpace(label)] = died
			r.mu.Unlock()
		}()
	}
}

// running returns the wrappers whose command has begun and not ended.
func (r *chaosHoldersRun) running() []*chaosHoldersWrapper {
	b, _ := os.ReadFile(r.log)
	begun := map[string]bool{}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 3 {
			begun[f[2]] = f[0] == "begin"
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var ws []*chaosHoldersWrapper
	for _, w := range r.wrappers {
		if !w.exited && begun[w.label] {
			ws = append(ws, w)
		}
	}
	return ws
}

// signal sends sig to w, or to a random running wrapper when w is nil.
func (r *chaosHoldersRun) signal(w *chaosHoldersWrapper, sig syscall.Signal) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w == nil {
		var live []*chaosHoldersWrapper
		for _, x := range r.wrappers {
			if !x.exited {
				live = append(live, x)
			}
		}
		if len(live) == 0 {
			return false
		}
		w = live[rand.IntN(len(live))]
	}
	if w.exited || w.cmd.Process.Signal(sig) != nil {
		return false
	}
	w.sent = append(w.sent, sig)
	return true
}

// drive injects faults for phase: holders and waiters SIGKILLed and
// SIGTERMed, the store throttled, slowed, held, failing and answers lost,
// for every proxy or one slot's.
func (r *chaosHoldersRun) drive(phase time.Duration) {
	deadline := time.Now().Add(phase)
	kinds := []string{faultSIGKILL, faultSIGKILL, faultSIGTERM, faultThrottleRate, faultThrottleNext,
		faultLatency, faultHold, faultFail5xxNext, faultDropAnswerNext, faultResetNext}
	// Every kind once, in random order, then at random.
	queue := slices.Clone(kinds)
	r.rng.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(200+r.rng.IntN(600)) * time.Millisecond)
		var kind string
		if len(queue) > 0 {
			kind, queue = queue[0], queue[1:]
		} else {
			kind = kinds[r.rng.IntN(len(kinds))]
		}
		r.inject(kind)
	}
}

func (r *chaosHoldersRun) inject(kind string) {
	ps := r.proxies
	scope := "all proxies"
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
	count := func() {
		r.mu.Lock()
		r.faults[kind]++
		r.mu.Unlock()
		appendLine(filepath.Join(r.dir, "faults"), fmt.Sprintf("+%s %s %s", time.Duration(monoNow()-r.started).Round(time.Millisecond), kind, scope))
	}
	burst := func(arm func(p *faultproxy.Proxy, n int), n int) {
		count()
		each(func(p *faultproxy.Proxy) { arm(p, n) })
		time.Sleep(time.Duration(500+r.rng.IntN(1000)) * time.Millisecond)
		each(func(p *faultproxy.Proxy) { arm(p, 0) })
	}
	switch kind {
	case faultSIGKILL, faultSIGTERM:
		sig := syscall.SIGKILL
		if kind == faultSIGTERM {
			sig = syscall.SIGTERM
		}
		// Mostly a holder whose command runs; else any wrapper, waiters
		// included (a dead entry in the line).
		var target *chaosHoldersWrapper
		if r.rng.IntN(3) > 0 {
			// Wait a little for a command to be running.
			for end := time.Now().Add(2 * time.Second); target == nil && time.Now().Before(end); {
				if hs := r.running(); len(hs) > 0 {
					target = hs[r.rng.IntN(len(hs))]
				} else {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
		if target != nil {
			scope = "holder " + target.label
		} else {
			scope = "a random wrapper"
		}
		if r.signal(target, sig) {
			count()
			if target != nil && sig == syscall.SIGKILL {
				r.mu.Lock()
				r.holders++
				r.mu.Unlock()
			}
		}
	case faultThrottleRate:
		count()
		f := 0.2 + 0.4*r.rng.Float64()
		each(func(p *faultproxy.Proxy) { p.SetThrottleRate(f) })
		time.Sleep(time.Duration(1000+r.rng.IntN(1500)) * time.Millisecond)
		each(func(p *faultproxy.Proxy) { p.SetThrottleRate(0) })
	case faultLatency:
		count()
		d := time.Duration(30+r.rng.IntN(250)) * time.Millisecond
		each(func(p *faultproxy.Proxy) { p.SetLatency(d) })
		time.Sleep(time.Duration(1000+r.rng.IntN(1500)) * time.Millisecond)
		each(func(p *faultproxy.Proxy) { p.SetLatency(0) })
	case faultHold:
		count()
		d := time.Duration(300+r.rng.IntN(1200)) * time.Millisecond
		each(func(p *faultproxy.Proxy) { p.Hold(d) })
		time.Sleep(d)
	case faultThrottleNext:
		burst((*faultproxy.Proxy).ThrottleNext, 1+r.rng.IntN(5))
	case faultFail5xxNext:
		burst((*faultproxy.Proxy).Fail5xxNext, 1+r.rng.IntN(4))
	case faultDropAnswerNext:
		burst((*faultproxy.Proxy).DropAnswerNext, 1+r.rng.IntN(3))
	case faultResetNext:
		burst((*faultproxy.Proxy).ResetNext, 1+r.rng.IntN(4))
	default:
		r.t.Fatalf("unknown fault %q", kind)
	}
}

// drain stops starting wrappers, heals the proxies and waits for the
// wrappers to finish, then for their commands' deaths to be stamped.
func (r *chaosHoldersRun) drain() {
	r.t.Helper()
	r.mu.Lock()
	r.stopping = true
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
	case <-time.After(chaosHoldersDrain):
		r.t.Errorf("wrappers still running %s after the fault phase ended; the key's item:\n%s", chaosHoldersDrain, r.describeItem())
		r.killAll()
		<-done
	}
	deadline := time.Now().Add(chaosDeathBound + 500*time.Millisecond)
	for time.Now().Before(deadline) && len(r.undead()) > 0 {
		time.Sleep(10 * time.Millisecond)
	}
}

// undead returns the labels of commands that began, did not write their
// end, and whose death the monitor has not stamped.
func (r *chaosHoldersRun) undead() []string {
	b, _ := os.ReadFile(r.log)
	open := map[string]bool{}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 3 {
			open[f[2]] = f[0] == "begin"
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var labels []string
	for l, o := range open {
		if _, dead := r.deaths[l]; o && !dead {
			labels = append(labels, l)
		}
	}
	return labels
}

func (r *chaosHoldersRun) killAll() {
	r.mu.Lock()
	r.stopping = true
	for _, w := range r.wrappers {
		if !w.exited {
			_ = w.cmd.Process.Kill()
		}
	}
	r.mu.Unlock()
	r.slots.Wait()
}

// checkFree runs one plain exclusive run once the faults are over: it must
// get the key within about a lease (the shared holders and waiters that
// were SIGKILLed removed), and leave no holder and no line behind.
func (r *chaosHoldersRun) checkFree(endpoint string) {
	t := r.t
	// Exclusive without --max-holders: never compared with the N in
	// force (DESIGN12), so it may run on a semaphore's key too.
	args := []string{"-t", r.table, "-k", r.key, "-w", (4 * chaosLease).String()}
	start := time.Now()
	res := runBin(t, dynamoEnv(endpoint), append(args, "--", "true")...)
	if res.code != 0 {
		t.Errorf("a run after the faults exited %d, want 0: %s", res.code, res.stderr)
	}
	if took := time.Since(start); took > 2*chaosLease+5*time.Second {
		t.Errorf("a run after the faults waited %s for the key, want about a lease at most", took)
	}
	item := lineItem(t, ddblocal.Client(endpoint, nil), r.table, r.key)
	if _, held := item["Owner"]; held {
		t.Errorf("after the run the item still names an exclusive holder: %v", item["Owner"])
	}
	if n := sharedHolderCount(item); n != 0 {
		t.Errorf("after the run the item still has %d shared holders", n)
	}
	if pids := linePIDs(t, ddblocal.Client(endpoint, nil), r.table, r.key); len(pids) != 0 {
		t.Errorf("after the run the line still holds pids %v", pids)
	}
}

// verify checks the invariants and prints the figures.
func (r *chaosHoldersRun) verify() {
	t := r.t
	secs, order := readLineLog(t, r.log)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
	completed, killed := 0, 0
	for _, l := range order {
		s := secs[l]
		if s.ended {
			completed++
			continue
		}
		killed++
		died, ok := r.deaths[l]
		if !ok {
			t.Errorf("command %s began, wrote no end, and its death was never seen", l)
			died = monoNow()
		}
		s.end = died
	}

	list := make([]*lineSection, 0, len(order))
	for _, l := range order {
		list = append(list, secs[l])
	}
	maxAll, maxShared, overlaps := sweepHolders(list, r.mode.limit)
	violations := len(overlaps)
	for _, o := range overlaps {
		var who []string
		for _, s := range o.running {
			who = append(who, fmt.Sprintf("%s (%s, token %d, %s..%s)", s.label, s.kind, s.token, r.rel(s.begin), r.rel(s.end)))
		}
		t.Errorf("%s at %s: %s\nstderr of %s:\n%s", o.what, r.rel(o.at), strings.Join(who, ", "), o.started.label, r.stderrTail(o.started.label))
	}

	// Fencing tokens: one per acquisition, and when one of two sections
	// is exclusive and it ended before the other began, it was acquired
	// before it (the lock kept them apart). Two shared ones prove no
	// order: a holder whose command is slow to start can acquire first
	// and begin after a later one ended.
	byToken := map[uint64]string{}
	for _, l := range order {
		s := secs[l]
		if s.token == 0 {
			t.Errorf("command %s got no fencing token", l)
			continue
		}
		if other, dup := byToken[s.token]; dup {
			t.Errorf("commands %s and %s got the same fencing token %d", other, l, s.token)
		}
		byToken[s.token] = l
	}
	for _, a := range order {
		for _, b := range order {
			sa, sb := secs[a], secs[b]
			if (sa.kind == "exclusive" || sb.kind == "exclusive") && sa.end < sb.begin && sa.token >= sb.token {
				t.Errorf("command %s (token %d) ended before %s (token %d) began, but its token is not smaller", a, sa.token, b, sb.token)
			}
		}
	}

	// Exit statuses.
	ran := map[string]bool{}
	for _, l := range order {
		ran[l] = secs[l].ended
	}
	codes := map[string]int{}
	var sigkilled, sigtermed, lost, ok int
	for _, w := range r.wrappers {
		label := fmt.Sprint(w.code)
		if w.sig != 0 {
			label = "signal " + unix.SignalName(w.sig)
		}
		codes[label]++
		switch {
		case w.sig == syscall.SIGKILL && slices.Contains(w.sent, syscall.SIGKILL):
			sigkilled++
		case (w.code == 128+int(syscall.SIGTERM) || w.sig == syscall.SIGTERM) && slices.Contains(w.sent, syscall.SIGTERM):
			sigtermed++
		case w.code == 76:
			// The lock lost to the faults: the command was stopped in
			// time (the sweep above says whether it was).
			lost++
		case w.code == 0 && ran[w.label]:
			ok++
		default:
			t.Errorf("locked-run %s (%s) exited %s (signals sent: %v); stderr:\n%s", w.label, w.kind, label, w.sent, r.stderrTail(w.label))
		}
	}

	// The modes hold more than one at a time: otherwise they would prove
	// nothing beyond the mutex.
	if maxShared < 2 {
		t.Errorf("at most %d command held the key at a time: shared holders (%s) never held it together", maxShared, r.mode.name)
	}

	stats := faultproxy.Stats{Requests: map[string]int{}}
	for _, p := range r.proxies {
		st := p.Stats()
		for op, n := range st.Requests {
			stats.Requests[op] += n
		}
		stats.Throttled += st.Throttled
		stats.Failed += st.Failed
		stats.Reset += st.Reset
		stats.AnswersDropped += st.AnswersDropped
		stats.Held += st.Held
	}
	var kinds []string
	total := 0
	for k, n := range maps.All(r.faults) {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		total += n
	}
	sort.Strings(kinds)
	name := strings.ReplaceAll(r.mode.name, " ", "-")
	fig := []string{
		fmt.Sprintf("chaos-holders %s: %d wrappers at a time on one key, lease %s, heartbeat %s, kill-after %s, ran %s",
			name, chaosHoldersProcs, chaosLease, chaosHeartbeat, chaosKillAfter, time.Duration(monoNow()-r.started).Round(time.Second)),
		fmt.Sprintf("chaos-holders %s: commands started %d: completed %d, ended by a signal %d", name, len(order), completed, killed),
		fmt.Sprintf("chaos-holders %s: wrappers started %d: ok %d, SIGKILLed %d (%d holding), SIGTERMed %d, lock-lost exits (76) %d; exit statuses %v",
			name, len(r.wrappers), ok, sigkilled, r.holders, sigtermed, lost, codes),
		fmt.Sprintf("chaos-holders %s: faults injected %d: %s", name, total, strings.Join(kinds, " ")),
		fmt.Sprintf("chaos-holders %s: proxy requests %v; throttled %d, 5xx %d, connections reset %d, answers dropped %d, held %d",
			name, stats.Requests, stats.Throttled, stats.Failed, stats.Reset, stats.AnswersDropped, stats.Held),
		fmt.Sprintf("chaos-holders %s: max concurrent commands %d (shared %d), violations %d", name, maxAll, maxShared, violations),
	}
	for _, l := range fig {
		t.Log(l)
		fmt.Println(l)
	}
}

func (r *chaosHoldersRun) rel(at int64) string {
	return "+" + time.Duration(at-r.started).Round(time.Millisecond).String()
}

// stderrTail returns the last lines the wrapper of label wrote.
func (r *chaosHoldersRun) stderrTail(label string) string {
	b, err := os.ReadFile(filepath.Join(r.dir, "stderr", label))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// A holdersOverlap is a moment when the commands running broke the rules.
type holdersOverlap struct {
	what    string
	at      int64
	started *lineSection   // the command whose start broke them
	running []*lineSection // every command running then, by label
}

// sweepHolders goes through the sections' begin and end events in time
// order (at equal times an end first: it happened no later) and returns the
// most commands running at once, the most shared ones at once, and every
// start that made two exclusive commands, an exclusive and a shared one,
// or more than limit shared ones (limit > 0) run together. A section's end
// must be set.
func sweepHolders(list []*lineSection, limit int) (maxAll, maxShared int, overlaps []holdersOverlap) {
	type event struct {
		at    int64
		begin bool
		s     *lineSection
	}
	var evs []event
	for _, s := range list {
		evs = append(evs, event{s.begin, true, s}, event{s.end, false, s})
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].at != evs[j].at {
			return evs[i].at < evs[j].at
		}
		return !evs[i].begin && evs[j].begin
	})
	running := map[string]*lineSection{}
	for _, e := range evs {
		if !e.begin {
			delete(running, e.s.label)
			continue
		}
		running[e.s.label] = e.s
		shared, excl := 0, 0
		for _, s := range running {
			if s.kind == "exclusive" {
				excl++
			} else {
				shared++
			}
		}
		maxShared, maxAll = max(maxShared, shared), max(maxAll, len(running))
		what := ""
		switch {
		case excl > 1:
			what = "two exclusive commands at once"
		case excl > 0 && shared > 0:
			what = "a shared and an exclusive command at once"
		case limit > 0 && shared > limit:
			what = fmt.Sprintf("%d commands at once with --max-holders %d", shared, limit)
		}
		if what != "" {
			o := holdersOverlap{what: what, at: e.at, started: e.s}
			for _, l := range slices.Sorted(maps.Keys(running)) {
				o.running = append(o.running, running[l])
			}
			overlaps = append(overlaps, o)
		}
	}
	return maxAll, maxShared, overlaps
}

// TestSweepHoldersFindsOverlaps: the checker of TestChaosHolders reports
// what it must, and only that.
func TestSweepHoldersFindsOverlaps(t *testing.T) {
	sec := func(label, kind string, begin, end int64) *lineSection {
		return &lineSection{label: label, kind: kind, begin: begin, end: end, ended: true}
	}
	for _, c := range []struct {
		name      string
		limit     int
		list      []*lineSection
		maxShared int
		want      []string // what of each overlap, in order
	}{
		{"shared ones together and an exclusive one after them are fine", 3,
			[]*lineSection{sec("a", "shared", 0, 10), sec("b", "shared", 5, 20), sec("c", "shared", 6, 20), sec("x", "exclusive", 20, 30)}, 3, nil},
		{"a fourth shared one with --max-holders 3", 3,
			[]*lineSection{sec("a", "shared", 0, 10), sec("b", "shared", 1, 10), sec("c", "shared", 2, 10), sec("d", "shared", 9, 12)}, 4,
			[]string{"4 commands at once with --max-holders 3"}},
		{"any number of shared ones without --max-holders", 0,
			[]*lineSection{sec("a", "shared", 0, 10), sec("b", "shared", 1, 10), sec("c", "shared", 2, 10), sec("d", "shared", 9, 12)}, 4, nil},
		{"an exclusive one starting while a shared one runs", 0,
			[]*lineSection{sec("a", "shared", 0, 10), sec("x", "exclusive", 9, 12)}, 1,
			[]string{"a shared and an exclusive command at once"}},
		{"a shared one starting while an exclusive one runs", 0,
			[]*lineSection{sec("x", "exclusive", 0, 10), sec("a", "shared", 3, 4)}, 1,
			[]string{"a shared and an exclusive command at once"}},
		{"two exclusive ones", 0,
			[]*lineSection{sec("x", "exclusive", 0, 10), sec("y", "exclusive", 10, 20), sec("z", "exclusive", 19, 25)}, 0,
			[]string{"two exclusive commands at once"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, maxShared, overlaps := sweepHolders(c.list, c.limit)
			var got []string
			for _, o := range overlaps {
				got = append(got, o.what)
			}
			if !slices.Equal(got, c.want) || maxShared != c.maxShared {
				t.Errorf("sweep found %q, at most %d shared; want %q, %d", got, maxShared, c.want, c.maxShared)
			}
		})
	}
}

// describeItem returns the key's item as DynamoDB holds it now, one
// attribute a line, for a report.
func (r *chaosHoldersRun) describeItem() string {
	return describeItem(r.t, ddblocal.Client(r.endpoint, nil), r.table, r.key)
}

// describeItem returns the item of key, one attribute a line.
func describeItem(t testing.TB, client *dynamodb.Client, table, key string) string {
	item := lineItem(t, client, table, key)
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(item)) {
		lines = append(lines, fmt.Sprintf("  %s: %s", k, describeAV(item[k])))
	}
	return strings.Join(lines, "\n")
}

// describeAV formats an attribute value compactly.
func describeAV(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return strconv.Quote(v.Value)
	case *types.AttributeValueMemberN:
		return v.Value
	case *types.AttributeValueMemberBOOL:
		return strconv.FormatBool(v.Value)
	case *types.AttributeValueMemberL:
		var parts []string
		for _, e := range v.Value {
			parts = append(parts, describeAV(e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *types.AttributeValueMemberM:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(v.Value)) {
			parts = append(parts, k+"="+describeAV(v.Value[k]))
		}
		return "{" + strings.Join(parts, " ") + "}"
	default:
		return fmt.Sprintf("%T", v)
	}
}
