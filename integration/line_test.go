package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// Tests of issue 12 against DynamoDB Local and the real binary: waiters
// acquire in the order they joined the line (FIFO), a waiter SIGKILLed in
// the line is skipped within about one lease, and an exclusive waiter is
// not starved by shared runs that came after it.
//
// Each locked-run's command is this test binary again, switched by
// lineChildEnv into a child that appends "begin" and "end" records, with
// CLOCK_MONOTONIC stamps (one clock for every process on the host), to a
// log shared by every child of a test.

const (
	// lineChildEnv, when set to "LOG|LABEL|KIND|HOLD", turns this test
	// binary into a child that appends
	//	begin MONO LABEL KIND TOKEN PID
	// to LOG, holds (HOLD milliseconds, or "until=FILE": until FILE
	// exists), appends
	//	end MONO LABEL KIND
	// and exits 0.
	lineChildEnv = "LOCKED_RUN_TEST_LINE_CHILD"
	// lineSockEnv, when set too, names a Unix socket the child connects to
	// before its begin record and keeps open until it dies, so that a
	// monitor can stamp the death of a child that was SIGKILLed.
	lineSockEnv = "LOCKED_RUN_TEST_LINE_SOCK"
)

func init() {
	if v := os.Getenv(lineChildEnv); v != "" {
		os.Exit(lineChild(v))
	}
}

func lineChild(v string) int {
	f := strings.Split(v, "|")
	if len(f) != 4 {
		fmt.Fprintf(os.Stderr, "%s=%q: want LOG|LABEL|KIND|HOLD\n", lineChildEnv, v)
		return 2
	}
	path, label, kind, hold := f[0], f[1], f[2], f[3]
	var conn net.Conn
	if sock := os.Getenv(lineSockEnv); sock != "" {
		c, err := net.Dial("unix", sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, "line child:", err)
			return 3
		}
		if _, err := fmt.Fprintf(c, "%s\n", label); err != nil {
			fmt.Fprintln(os.Stderr, "line child:", err)
			return 3
		}
		conn = c
	}
	appendLine(path, fmt.Sprintf("begin %d %s %s %s %d", monoNow(), label, kind, os.Getenv("LOCKED_RUN_FENCING_TOKEN"), os.Getpid()))
	if file, ok := strings.CutPrefix(hold, "until="); ok {
		for {
			if _, err := os.Stat(file); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	} else {
		ms, err := strconv.Atoi(hold)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: hold %q\n", lineChildEnv, hold)
			return 2
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	appendLine(path, fmt.Sprintf("end %d %s %s", monoNow(), label, kind))
	runtime.KeepAlive(conn) // open until the process exits
	return 0
}

// quickRaceExit returns env with the race detector's sleep at exit (a
// second, GORACE atexit_sleep_ms) turned off, for the race-built locked-run
// and test binary it starts: the tests of the line start dozens of both.
// The release of the lock comes before that sleep, so it changes no
// outcome, only the tests' time.
func quickRaceExit(env []string) []string {
	return append(slices.Clone(env), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// A lineSection is one child's run as its records (and, for a child that
// could not write its end, the monitor) tell it.
type lineSection struct {
	label, kind string
	token       uint64
	pid         int
	begin, end  int64 // CLOCK_MONOTONIC; end is 0 when not known
	ended       bool  // it wrote its end record
}

// readLineLog returns the sections of the log at path by label, and their
// labels in the order they began.
func readLineLog(t *testing.T, path string) (map[string]*lineSection, []string) {
	t.Helper()
	secs := map[string]*lineSection{}
	var order []string
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		switch {
		case len(f) == 6 && f[0] == "begin":
			s := &lineSection{label: f[2], kind: f[3]}
			s.begin, _ = strconv.ParseInt(f[1], 10, 64)
			s.token, _ = strconv.ParseUint(f[4], 10, 64)
			s.pid, _ = strconv.Atoi(f[5])
			if secs[s.label] != nil {
				t.Errorf("child %s began twice", s.label)
				continue
			}
			secs[s.label] = s
			order = append(order, s.label)
		case len(f) == 4 && f[0] == "end":
			s := secs[f[2]]
			if s == nil {
				t.Errorf("log: end of %s, which never began", f[2])
				continue
			}
			s.end, _ = strconv.ParseInt(f[1], 10, 64)
			s.ended = true
		default:
			t.Errorf("log line %q", line)
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return secs[order[i]].begin < secs[order[j]].begin })
	return secs, order
}

// lineRun is one locked-run started by a test of the line.
type lineRun struct {
	label  string
	cmd    *exec.Cmd
	stderr *syncBuffer
	start  time.Time
}

// startLineRun starts locked-run with args and, after "--", this test
// binary as a line child labelled label that appends to log and holds for
// hold ("MS" or "until=FILE"). kind is only written to the log.
func startLineRun(t *testing.T, env []string, log, label, kind, hold string, args ...string) *lineRun {
	t.Helper()
	return startLineRunOf(t, binPath, env, log, label, kind, hold, args...)
}

// startLineRunOf is startLineRun with the locked-run binary at bin.
func startLineRunOf(t *testing.T, bin string, env []string, log, label, kind, hold string, args ...string) *lineRun {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env = append(quickRaceExit(env), fmt.Sprintf("%s=%s|%s|%s|%s", lineChildEnv, log, label, kind, hold))
	r := &lineRun{label: label, stderr: &syncBuffer{}, start: time.Now()}
	r.cmd = exec.Command(bin, append(append(slices.Clone(args), "--"), self)...)
	r.cmd.Env = env
	r.cmd.Stderr = r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			_ = r.cmd.Process.Kill()
			_ = r.cmd.Wait()
		}
	})
	return r
}

// waitBegun waits until the child labelled label has written its begin
// record.
func waitBegun(t *testing.T, log, label string, d time.Duration) {
	t.Helper()
	waitFor(t, d, label+"'s command to start", func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), " "+label+" ")
	})
}

// lineItem reads the key's item (nil when there is none).
func lineItem(t testing.TB, client *dynamodb.Client, table, key string) map[string]types.AttributeValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"LockID": &types.AttributeValueMemberS{Value: key}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("read the item of %q: %v", key, err)
	}
	return out.Item
}

// linePIDs returns the pids of the waiters in the key's line (the item's
// Line attribute, DESIGN of issue 12), in line order.
func linePIDs(t testing.TB, client *dynamodb.Client, table, key string) []int {
	t.Helper()
	l, ok := lineItem(t, client, table, key)["Line"].(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	var pids []int
	for _, e := range l.Value {
		m, ok := e.(*types.AttributeValueMemberM)
		if !ok {
			t.Fatalf("Line entry %T, want a map", e)
		}
		n, _ := m.Value["Pid"].(*types.AttributeValueMemberN)
		if n == nil {
			t.Fatalf("Line entry without Pid: %v", m.Value)
		}
		pid, err := strconv.Atoi(n.Value)
		if err != nil {
			t.Fatalf("Line entry Pid %q", n.Value)
		}
		pids = append(pids, pid)
	}
	return pids
}

// sharedHolderCount returns how many shared holders the item names.
func sharedHolderCount(item map[string]types.AttributeValue) int {
	m, ok := item["SharedHolders"].(*types.AttributeValueMemberM)
	if !ok {
		return 0
	}
	return len(m.Value)
}

// awaitInLine waits (at most d) until pid is the last of exactly want
// waiters in the key's line. It reports whether it is, and the line last
// seen.
func awaitInLine(t *testing.T, client *dynamodb.Client, table, key string, pid, want int, d time.Duration) (bool, []int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		pids := linePIDs(t, client, table, key)
		if len(pids) == want && pids[want-1] == pid {
			return true, pids
		}
		if time.Now().After(deadline) {
			return false, pids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// queueWaiters starts n exclusive waiters labelled prefix0..prefixN-1 on
// key, at least 100 ms apart and each once the one before is in the line
// (so the order they started waiting is beyond doubt), each running a
// child that holds for hold. Once a waiter does not show up in the line
// within a few seconds (the line not implemented), it says so and starts
// the rest 100 ms apart.
func queueWaiters(t *testing.T, env []string, client *dynamodb.Client, table, key, log, prefix string, n int, hold string, args ...string) []*lineRun {
	t.Helper()
	var runs []*lineRun
	inLine := true
	for i := range n {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		r := startLineRun(t, env, log, fmt.Sprintf("%s%d", prefix, i), "exclusive", hold, args...)
		runs = append(runs, r)
		if !inLine {
			continue
		}
		if ok, pids := awaitInLine(t, client, table, key, r.cmd.Process.Pid, i+1, 10*time.Second); !ok {
			t.Errorf("waiter %s (pid %d) is not number %d of the line after 10s: the line holds pids %v", r.label, r.cmd.Process.Pid, i+1, pids)
			inLine = false
		}
	}
	return runs
}

// checkExit waits for r and checks it exits want.
func checkExit(t *testing.T, r *lineRun, want int, d time.Duration) {
	t.Helper()
	if code := exitCode(t, r.cmd, d); code != want {
		t.Errorf("%s exited %d, want %d; stderr:\n%s", r.label, code, want, r.stderr.String())
	}
}

// checkNoOverlap checks that no two of the sections ran at the same time
// (every one of them exclusive).
func checkNoOverlap(t *testing.T, secs map[string]*lineSection, order []string) {
	t.Helper()
	for i := 1; i < len(order); i++ {
		a, b := secs[order[i-1]], secs[order[i]]
		if !a.ended || a.end > b.begin {
			t.Errorf("%s began while %s still ran (ended=%v)", b.label, a.label, a.ended)
		}
	}
}

// TestLineFIFO: ten waiters that joined the line of a held key 100 ms
// apart acquire in that order once the holder releases (issue 12, "What
// it must show").
func TestLineFIFO(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	table := ddblocal.NewTable(t)
	env := dynamoEnv(endpoint)
	client := ddblocal.Client(endpoint, nil)
	dir := t.TempDir()
	log, release := filepath.Join(dir, "log"), filepath.Join(dir, "release")
	const key = "fifo"
	args := []string{"-t", table, "-k", key}

	holder := startLineRun(t, env, log, "holder", "exclusive", "until="+release, args...)
	waitBegun(t, log, "holder", 30*time.Second)
	waiters := queueWaiters(t, env, client, table, key, log, "w", 10, "20", args...)
	var pids []int
	for _, w := range waiters {
		pids = append(pids, w.cmd.Process.Pid)
	}
	if got := linePIDs(t, client, table, key); !slices.Equal(got, pids) {
		t.Errorf("before the release the line holds pids %v, want the waiters' %v in the order they started", got, pids)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	checkExit(t, holder, 0, 30*time.Second)
	for _, w := range waiters {
		checkExit(t, w, 0, 60*time.Second)
	}

	secs, order := readLineLog(t, log)
	want := []string{"holder"}
	for _, w := range waiters {
		want = append(want, w.label)
	}
	if !slices.Equal(order, want) {
		t.Errorf("commands ran in the order %v, want %v", order, want)
	}
	checkNoOverlap(t, secs, order)
	if got := linePIDs(t, client, table, key); len(got) != 0 {
		t.Errorf("after every waiter ran the line still holds pids %v", got)
	}
}

// TestLineDeadWaiter: a waiter SIGKILLed in the middle of the line is
// skipped within about one lease (the others watch its entry unchanged for
// a full lease on their own clock, then remove it), and those behind it
// keep their order.
func TestLineDeadWaiter(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	table := ddblocal.NewTable(t)
	env := dynamoEnv(endpoint)
	client := ddblocal.Client(endpoint, nil)
	dir := t.TempDir()
	log, release := filepath.Join(dir, "log"), filepath.Join(dir, "release")
	const (
		key       = "dead-waiter"
		lease     = 3 * time.Second
		heartbeat = time.Second // lease/3, the default
	)
	args := []string{"-t", table, "-k", key, "--lease", lease.String(), "--kill-after", "1s"}

	holder := startLineRun(t, env, log, "holder", "exclusive", "until="+release, args...)
	waitBegun(t, log, "holder", 30*time.Second)
	waiters := queueWaiters(t, env, client, table, key, log, "w", 5, "20", args...)
	// Let every waiter refresh its entry at least once, so that the one
	// killed is known to have been alive in the line.
	time.Sleep(heartbeat + 300*time.Millisecond)
	dead := waiters[2]
	killedAt := monoNow()
	if err := dead.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = dead.cmd.Wait()
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	checkExit(t, holder, 0, 30*time.Second)
	for i, w := range waiters {
		if i != 2 {
			checkExit(t, w, 0, 60*time.Second)
		}
	}

	secs, order := readLineLog(t, log)
	want := []string{"holder", "w0", "w1", "w3", "w4"}
	if !slices.Equal(order, want) {
		t.Errorf("commands ran in the order %v, want %v (w2 SIGKILLed in the line)", order, want)
	}
	checkNoOverlap(t, secs, order)
	if s := secs["w3"]; s != nil {
		after := time.Duration(s.begin - killedAt)
		// Its entry may have been refreshed up to a heartbeat before the
		// kill; from then on it stays unchanged, and a waiter removes it
		// after watching it so for a lease on its own clock: lease minus
		// a heartbeat at the earliest (less a little for when the
		// watcher first saw that version), lease plus a poll or two at
		// the latest, plus a wide margin for a loaded machine.
		if early := lease - heartbeat - 700*time.Millisecond; after < early {
			t.Errorf("the waiter behind the SIGKILLed one ran %s after the kill, before its entry was unchanged for a lease (%s at the earliest)", after, early)
		}
		if limit := lease + heartbeat + 5*time.Second; after > limit {
			t.Errorf("the waiter behind the SIGKILLed one ran %s after the kill, want within about one lease (%s)", after, limit)
		}
		t.Logf("the waiter behind the SIGKILLed one ran %s after the kill (lease %s)", after.Round(10*time.Millisecond), lease)
	}
	if got := linePIDs(t, client, table, key); len(got) != 0 {
		t.Errorf("after the run the line still holds pids %v (the SIGKILLed waiter was pid %d)", got, dead.cmd.Process.Pid)
	}
}

// TestLineExclusiveNotStarvedByShared: an exclusive waiter queued behind a
// running shared holder, with new shared runs arriving after it all the
// time, acquires once the shared holder ahead of it is done, and before
// every shared run that came after it (issue 12, point 3).
func TestLineExclusiveNotStarvedByShared(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	table := ddblocal.NewTable(t)
	env := dynamoEnv(endpoint)
	client := ddblocal.Client(endpoint, nil)
	dir := t.TempDir()
	log, release := filepath.Join(dir, "log"), filepath.Join(dir, "release")
	const key = "starve"
	args := []string{"-t", table, "-k", key}
	shared := append(slices.Clone(args), "--shared")

	first := startLineRun(t, env, log, "shared-first", "shared", "until="+release, shared...)
	waitBegun(t, log, "shared-first", 30*time.Second)
	excl := startLineRun(t, env, log, "exclusive", "exclusive", "300", args...)
	if ok, pids := awaitInLine(t, client, table, key, excl.cmd.Process.Pid, 1, 10*time.Second); !ok {
		t.Errorf("the exclusive waiter (pid %d) is not alone in the line after 10s: the line holds %v", excl.cmd.Process.Pid, pids)
	}

	// A stream of shared runs, one every 200 ms for 4 s, each holding
	// 600 ms: were they let in beside the shared holder, there would be a
	// shared holder at every moment until the stream ends.
	const streamRuns = 20
	var stream []*lineRun
	var released int64
	for i := range streamRuns {
		stream = append(stream, startLineRun(t, env, log, fmt.Sprintf("stream%d", i), "shared", "600", shared...))
		if i == 6 {
			released = monoNow()
			if err := os.WriteFile(release, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	streamEnd := monoNow()
	checkExit(t, first, 0, 30*time.Second)
	checkExit(t, excl, 0, 60*time.Second)
	for _, r := range stream {
		checkExit(t, r, 0, 60*time.Second)
	}

	secs, _ := readLineLog(t, log)
	e, f := secs["exclusive"], secs["shared-first"]
	if e == nil || f == nil {
		t.Fatalf("the exclusive command or the first shared one never ran: %v", secs)
	}
	if e.begin < f.end {
		t.Errorf("the exclusive command began %s before the shared holder ahead of it ended", time.Duration(f.end-e.begin))
	}
	after := time.Duration(e.begin - f.end)
	if e.begin > streamEnd {
		t.Errorf("the exclusive command began %s after the first shared holder ended, after the stream of shared runs ended: starved", after)
	} else if limit := 5 * time.Second; after > limit {
		t.Errorf("the exclusive command began %s after the shared holder ahead of it ended, want within %s", after, limit)
	}
	maxShared := 0
	for i := range streamRuns {
		s := secs[fmt.Sprintf("stream%d", i)]
		if s == nil {
			continue
		}
		if s.begin < e.end {
			t.Errorf("shared run %s, which started after the exclusive waiter joined the line, ran before it ended (%s before)", s.label, time.Duration(e.end-s.begin))
		}
		n := 0
		for j := range streamRuns {
			if o := secs[fmt.Sprintf("stream%d", j)]; o != nil && o.begin <= s.begin && s.begin < o.end {
				n++
			}
		}
		maxShared = max(maxShared, n)
	}
	t.Logf("the exclusive command began %s after the shared holder ahead of it ended (its command ended %s after the test let it end); at most %d shared runs of the stream ran at once",
		after.Round(time.Millisecond), time.Duration(f.end-released).Round(time.Millisecond), maxShared)
}

// tokenPattern finds the fencing token in the "acquired lock" line.
var tokenPattern = regexp.MustCompile(`acquired lock:.* token=(\d+)`)

// TestLineLeaversLeaveAtOnce: a waiter that gives up (--timeout) or is
// interrupted (SIGINT) has left the line by the time it exits, wherever it
// stood in it, and the waiter behind it moves up (issue 12, point 1).
func TestLineLeaversLeaveAtOnce(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	table := ddblocal.NewTable(t)
	env := dynamoEnv(endpoint)
	client := ddblocal.Client(endpoint, nil)
	dir := t.TempDir()
	log, release := filepath.Join(dir, "log"), filepath.Join(dir, "release")
	const key = "leavers"
	args := []string{"-t", table, "-k", key}

	holder := startLineRun(t, env, log, "holder", "exclusive", "until="+release, args...)
	waitBegun(t, log, "holder", 30*time.Second)
	var runs []*lineRun
	for i, extra := range [][]string{nil, {"-w", "3s"}, nil, nil} {
		r := startLineRun(t, env, log, fmt.Sprintf("w%d", i), "exclusive", "20", append(slices.Clone(args), extra...)...)
		runs = append(runs, r)
		if ok, pids := awaitInLine(t, client, table, key, r.cmd.Process.Pid, i+1, 10*time.Second); !ok {
			t.Fatalf("waiter %s (pid %d) is not number %d of the line after 10s: %v", r.label, r.cmd.Process.Pid, i+1, pids)
		}
	}
	pid := func(i int) int { return runs[i].cmd.Process.Pid }

	// w1 gives up after 3s: exit 75, and its entry is gone as it exits.
	checkExit(t, runs[1], 75, 30*time.Second)
	if got, want := linePIDs(t, client, table, key), []int{pid(0), pid(2), pid(3)}; !slices.Equal(got, want) {
		t.Errorf("after the waiter with --timeout gave up the line holds %v, want %v", got, want)
	}
	// w2 is interrupted: exit 130, and its entry is gone as it exits.
	if err := runs[2].cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	checkExit(t, runs[2], 130, 30*time.Second)
	if got, want := linePIDs(t, client, table, key), []int{pid(0), pid(3)}; !slices.Equal(got, want) {
		t.Errorf("after the interrupted waiter exited the line holds %v, want %v", got, want)
	}

	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	checkExit(t, holder, 0, 30*time.Second)
	checkExit(t, runs[0], 0, 30*time.Second)
	checkExit(t, runs[3], 0, 30*time.Second)
	secs, order := readLineLog(t, log)
	if want := []string{"holder", "w0", "w3"}; !slices.Equal(order, want) {
		t.Errorf("commands ran in the order %v, want %v", order, want)
	}
	checkNoOverlap(t, secs, order)
	if got := linePIDs(t, client, table, key); len(got) != 0 {
		t.Errorf("after the run the line still holds %v", got)
	}
}

// TestLineSharedWaitersTakeOverDeadExclusiveHolder: an exclusive holder
// SIGKILLed while shared waiters stand in the line is taken over by them
// within about one lease, and they then hold the key together (found by
// TestChaosHolders: a key stuck for minutes behind a dead exclusive holder
// while the head of the line was shared).
func TestLineSharedWaitersTakeOverDeadExclusiveHolder(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	table := ddblocal.NewTable(t)
	env := dynamoEnv(endpoint)
	client := ddblocal.Client(endpoint, nil)
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	const (
		key       = "dead-exclusive"
		lease     = 3 * time.Second
		heartbeat = time.Second
	)
	args := []string{"-t", table, "-k", key, "--lease", lease.String(), "--kill-after", "1s"}

	holder := startLineRun(t, env, log, "holder", "exclusive", "until="+filepath.Join(dir, "never"), args...)
	waitBegun(t, log, "holder", 30*time.Second)
	var waiters []*lineRun
	for i := range 3 {
		w := startLineRun(t, env, log, fmt.Sprintf("s%d", i), "shared", "1500", append(slices.Clone(args), "--shared", "--log-level", "trace")...)
		waiters = append(waiters, w)
		if ok, pids := awaitInLine(t, client, table, key, w.cmd.Process.Pid, i+1, 10*time.Second); !ok {
			t.Fatalf("shared waiter %s (pid %d) is not number %d of the line after 10s: %v", w.label, w.cmd.Process.Pid, i+1, pids)
		}
	}
	time.Sleep(heartbeat + 300*time.Millisecond) // the holder renews, the waiters watch
	killedAt := monoNow()
	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = holder.cmd.Wait()
	deadline := time.Now().Add(lease + heartbeat + 15*time.Second)
	for _, w := range waiters {
		if code := waitCode(w, max(time.Until(deadline), time.Second)); code != 0 {
			t.Errorf("shared waiter %s exited %d, want 0 (-1: still waiting %s after the kill, killed); the key's item:\n%s\nits stderr (the end):\n%s",
				w.label, code, time.Duration(monoNow()-killedAt).Round(time.Second), describeItem(t, client, table, key), tail(w.stderr.String(), 40))
		}
	}
	secs, _ := readLineLog(t, log)
	if h := secs["holder"]; h != nil && !h.ended {
		h.end = killedAt // its command died with it, within a second; it ran before the kill
	}
	var first int64
	for i := range waiters {
		s := secs[fmt.Sprintf("s%d", i)]
		if s == nil {
			t.Errorf("shared waiter s%d never ran", i)
			continue
		}
		if first == 0 || s.begin < first {
			first = s.begin
		}
	}
	if first != 0 {
		after := time.Duration(first - killedAt)
		if early := lease - heartbeat - 700*time.Millisecond; after < early {
			t.Errorf("a shared waiter ran %s after the exclusive holder was SIGKILLed, before its record was unchanged for a lease (%s)", after, early)
		}
		if limit := lease + heartbeat + 5*time.Second; after > limit {
			t.Errorf("the first shared waiter ran %s after the exclusive holder was SIGKILLed, want within about a lease (%s)", after, limit)
		}
		t.Logf("the first shared waiter ran %s after the exclusive holder was SIGKILLed", after.Round(10*time.Millisecond))
	}
	list := []*lineSection{}
	for _, s := range secs {
		list = append(list, s)
	}
	if _, maxShared, overlaps := sweepHolders(list, 0); len(overlaps) > 0 || maxShared < 2 {
		t.Errorf("after the takeover: %d overlaps, at most %d shared waiters ran together (want all 3 or at least 2)", len(overlaps), maxShared)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
