package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/locked-run/locked-run/internal/ddblocal"
	"github.com/locked-run/locked-run/internal/faultproxy"
)

// Benchmarks of issue 12's line (make bench-line). Like the others in
// bench_test.go they run their loop once, print "bench:" lines for
// BENCHMARKS.md and fail only on a broken promise, never on a slow
// machine.

// A contendedRun is one locked-run of a contended batch.
type contendedRun struct {
	worker      int
	start, exit int64 // CLOCK_MONOTONIC, taken by the benchmark around the process
	token       uint64
}

// BenchmarkLineContended is issue 12's figure: 8 processes each running 5
// sections of `sleep 0.05` in a row on one key, the batch's wall time
// against the same batch under flock(1), paired round by round (flock and
// locked-run alternate which goes first) so that load from elsewhere hits
// both; the figure is the median of the rounds' ratios. For each handoff
// (one section to the next, in fencing-token order) it counts whether the
// next holder was the one waiting longest (started first among those
// already started and not yet served when the holder before it exited:
// served in order), and whether it went back to the worker that had just
// released. The binary of the commit before the line (oldCommit, built
// from this clone's history as TestOldAndNewBinaries does) runs the same
// batch in the same rounds, so that before and after meet the same load;
// LOCKED_RUN_BENCH_LINE_BEFORE=0 leaves it out.
func BenchmarkLineContended(b *testing.B) {
	benchSetup(b)
	table := ddblocal.NewTable(b)
	dir := b.TempDir()
	env := dynamoEnv(ddblocal.Endpoint(b))
	const procs, sections = 8, 5
	rounds := 5
	if n, err := strconv.Atoi(os.Getenv("LOCKED_RUN_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}

	// The binary of the commit before the line, measured in the same
	// rounds, so that before and after meet the same load.
	before := ""
	if os.Getenv("LOCKED_RUN_BENCH_LINE_BEFORE") != "0" {
		before = buildOldBinary(b)
	}

	// batch runs the batch with the locked-run at bin (flock when bin is
	// "") and returns its wall time and, for locked-run, its runs.
	batch := func(key, bin string) (time.Duration, []contendedRun) {
		fl := bin == ""
		var mu sync.Mutex
		var runs []contendedRun
		var wg sync.WaitGroup
		start := time.Now()
		for w := range procs {
			wg.Go(func() {
				for range sections {
					var cmd *exec.Cmd
					if fl {
						cmd = exec.Command("flock", filepath.Join(dir, "flock"), "sleep", "0.05")
						cmd.Env = os.Environ()
					} else {
						cmd = exec.Command(bin, "-t", table, "-k", key, "--", "sleep", "0.05")
						cmd.Env = env
					}
					var stderr bytes.Buffer
					cmd.Stderr = &stderr
					r := contendedRun{worker: w, start: monoNow()}
					err := cmd.Run()
					r.exit = monoNow()
					if err != nil {
						b.Errorf("%q: %v\n%s", cmd.Args, err, stderr.String())
						continue
					}
					if !fl {
						m := tokenPattern.FindStringSubmatch(stderr.String())
						if m == nil {
							b.Errorf("no fencing token in the output of a run:\n%s", stderr.String())
							continue
						}
						r.token, _ = strconv.ParseUint(m[1], 10, 64)
					}
					mu.Lock()
					runs = append(runs, r)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return time.Since(start), runs
	}

	// One unmeasured batch of each: page cache, DynamoDB Local's JIT.
	batch("warm-up", binPath)
	if before != "" {
		batch("warm-up-before", before)
	}
	var ratios, beforeRatios []float64
	var fls, lrs, bfs []time.Duration
	var inOrder, backToSame, handoffs, noneWaiting int
	var bInOrder, bBackToSame, bHandoffs int
	for round := range rounds {
		key := fmt.Sprintf("contended-%d", round)
		var fl, lr, bf time.Duration
		var runs, bruns []contendedRun
		// Which goes first turns round by round.
		steps := []func(){
			func() { fl, _ = batch("", "") },
			func() { lr, runs = batch(key, binPath) },
		}
		if before != "" {
			steps = append(steps, func() { bf, bruns = batch(key+"-before", before) })
		}
		for i := range steps {
			steps[(i+round)%len(steps)]()
		}
		fls, lrs = append(fls, fl), append(lrs, lr)
		ratios = append(ratios, float64(lr)/float64(fl))
		o, s, h, n := countHandoffs(runs)
		inOrder, backToSame, handoffs, noneWaiting = inOrder+o, backToSame+s, handoffs+h, noneWaiting+n
		line := fmt.Sprintf("round %d: flock %.0f ms, locked-run %.0f ms (%.2fx); handoffs %d: served in order %d, back to the worker that released %d, none waiting %d",
			round+1, ms(fl), ms(lr), float64(lr)/float64(fl), h, o, s, n)
		if before != "" {
			bfs = append(bfs, bf)
			beforeRatios = append(beforeRatios, float64(bf)/float64(fl))
			bo, bs, bh, _ := countHandoffs(bruns)
			bInOrder, bBackToSame, bHandoffs = bInOrder+bo, bBackToSame+bs, bHandoffs+bh
			line += fmt.Sprintf("; before the line (%s) %.0f ms (%.2fx), in order %d, back to the same worker %d", oldCommit, ms(bf), float64(bf)/float64(fl), bo, bs)
		}
		benchFigure(b, "%s", line)
	}
	median := medianOf(ratios)
	sort.Float64s(ratios)
	benchFigure(b, "%d processes x %d sections of `sleep 0.05` on one key (DynamoDB Local), %d paired rounds: flock median %.0f ms, locked-run median %.0f ms; ratio locked-run/flock median %.2fx (min %.2fx, max %.2fx); floor %d x 50 ms = %d ms",
		procs, sections, rounds, ms(quantile(fls, 0.5)), ms(quantile(lrs, 0.5)), median, ratios[0], ratios[len(ratios)-1], procs*sections, procs*sections*50)
	benchFigure(b, "handoffs over %d rounds: %d, served in order (the longest-waiting run next) %d, handed back to the worker that had just released %d, nobody else waiting %d",
		rounds, handoffs, inOrder, backToSame, noneWaiting)
	if before != "" {
		benchFigure(b, "before the line (%s), same rounds: locked-run median %.0f ms, ratio to flock median %.2fx; handoffs %d, served in order %d, back to the worker that had just released %d",
			oldCommit, ms(quantile(bfs, 0.5)), medianOf(beforeRatios), bHandoffs, bInOrder, bBackToSame)
		b.ReportMetric(medianOf(beforeRatios), "before/flock")
	}
	b.ReportMetric(median, "lockedrun/flock")
	b.ReportMetric(float64(inOrder)/float64(max(handoffs, 1)), "in-order-fraction")
	b.ReportMetric(float64(backToSame)/float64(max(handoffs, 1)), "back-to-same-fraction")
}

// countHandoffs goes through the runs of one batch in token order and
// counts, for each handoff from a run to the next: the next one was the
// longest waiting (in order), the next one's worker is the one that had
// just released, or no other run was waiting at the release (the next one
// started later; counted in neither).
func countHandoffs(runs []contendedRun) (inOrder, backToSame, handoffs, noneWaiting int) {
	sorted := slices.Clone(runs)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].token < sorted[j].token })
	for k := 0; k+1 < len(sorted); k++ {
		prev, next := sorted[k], sorted[k+1]
		handoffs++
		if next.worker == prev.worker {
			backToSame++
		}
		// Waiting when prev released: started before prev exited (its
		// release comes before its exit) and not served before it.
		var first *contendedRun
		for i := k + 1; i < len(sorted); i++ {
			r := &sorted[i]
			if r.start < prev.exit && (first == nil || r.start < first.start) {
				first = r
			}
		}
		switch {
		case first == nil:
			noneWaiting++
		case first.token == next.token:
			inOrder++
		}
	}
	return inOrder, backToSame, handoffs, noneWaiting
}

// BenchmarkLineWaitCost measures what waiting costs the store and how fast
// the line moves, for 1, 10 and 50 waiters on one held key, at the
// defaults (--poll 200ms, lease 30s, heartbeat 10s): the waiters' requests
// per minute, counted by the proxy they all go through (the holder has a
// proxy of its own), over LOCKED_RUN_BENCH_WINDOW (default 30s) once every
// waiter is in the line; then the holder releases and each waiter in turn
// runs a 100 ms command, and the time from one command's end to the next
// one's start (the head's time to acquire after a release, commands'
// start and exit included) is measured at every handoff.
func BenchmarkLineWaitCost(b *testing.B) {
	benchSetup(b)
	endpoint := ddblocal.Endpoint(b)
	table := ddblocal.NewTable(b)
	client := ddblocal.Client(endpoint, nil)
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	window := 30 * time.Second
	if s := os.Getenv("LOCKED_RUN_BENCH_WINDOW"); s != "" {
		if window, err = time.ParseDuration(s); err != nil {
			b.Fatal(err)
		}
	}
	hproxy, err := faultproxy.New(endpoint)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { hproxy.Close() })
	wproxy, err := faultproxy.New(endpoint)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { wproxy.Close() })

	for _, n := range []int{1, 10, 50} {
		dir := b.TempDir()
		log, release := filepath.Join(dir, "log"), filepath.Join(dir, "release")
		key := fmt.Sprintf("wait-cost-%d", n)
		start := func(proxy *faultproxy.Proxy, label, hold string) *exec.Cmd {
			return benchStart(b, append(dynamoEnv(proxy.URL()), fmt.Sprintf("%s=%s|%s|exclusive|%s", lineChildEnv, log, label, hold)),
				binPath, "-t", table, "-k", key, "--", self)
		}
		holder := start(hproxy, "holder", "until="+release)
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(readFile(log), " holder ") {
			if time.Now().After(deadline) {
				b.Fatal("the holder's command did not start")
			}
			time.Sleep(10 * time.Millisecond)
		}
		var waiters []*exec.Cmd
		labelOf := map[int]string{}
		for i := range n {
			w := start(wproxy, fmt.Sprintf("w%d", i), "100")
			waiters = append(waiters, w)
			labelOf[w.Process.Pid] = fmt.Sprintf("w%d", i)
			time.Sleep(20 * time.Millisecond)
		}
		// Every waiter in the line (or, without a line, a few seconds).
		var line []int
		deadline = time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if line = linePIDs(b, client, table, key); len(line) == n {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(line) != n {
			b.Errorf("%d waiters started, %d in the line after 30s", n, len(line))
		}
		wproxy.ResetStats()
		t0 := time.Now()
		time.Sleep(window)
		st := wproxy.Stats()
		elapsed := time.Since(t0)
		perMin := float64(total(st.Requests)) / elapsed.Minutes()
		ops := make([]string, 0, len(st.Requests))
		for op, c := range st.Requests {
			ops = append(ops, fmt.Sprintf("%s %.0f", op, float64(c)/elapsed.Minutes()))
		}
		sort.Strings(ops)

		if err := os.WriteFile(release, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		waitExit(b, holder, 30*time.Second)
		for _, w := range waiters {
			if code := waitExit(b, w, time.Duration(n)*time.Second+60*time.Second); code != 0 {
				b.Errorf("a waiter exited %d", code)
			}
		}
		gaps, order := handoffGaps(b, log)
		// In order: the i-th command after the holder's is that of the
		// i-th waiter of the line as the store held it.
		inOrder := 0
		for i, l := range order[1:] {
			if i < len(line) && l == labelOf[line[i]] {
				inOrder++
			}
		}
		benchFigure(b, "%d waiters on a held key (defaults: poll 200ms, lease 30s, heartbeat 10s), over %s: %.0f requests per minute from all waiters (%.1f per waiter): %s",
			n, elapsed.Round(time.Second), perMin, perMin/float64(n), strings.Join(ops, ", "))
		benchFigure(b, "%d waiters: handoffs %d, from one command's end to the next one's start median %.0f ms, p95 %.0f ms, max %.0f ms; served in the line's order %d of %d",
			n, len(gaps), ms(quantile(gaps, 0.5)), ms(quantile(gaps, 0.95)), ms(slices.Max(gaps)), inOrder, n)
		b.ReportMetric(perMin, fmt.Sprintf("req/min-%d-waiters", n))
		b.ReportMetric(ms(quantile(gaps, 0.5)), fmt.Sprintf("handoff-p50-ms-%d-waiters", n))
	}
}

// handoffGaps returns the time from each command's end to the next one's
// start, in the order they ran, and the labels in that order.
func handoffGaps(b *testing.B, log string) ([]time.Duration, []string) {
	b.Helper()
	type sec struct {
		label      string
		begin, end int64
	}
	var secs []*sec
	byLabel := map[string]*sec{}
	for line := range strings.Lines(readFile(log)) {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		at, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "begin":
			s := &sec{label: f[2], begin: at}
			secs = append(secs, s)
			byLabel[s.label] = s
		case "end":
			if s := byLabel[f[2]]; s != nil {
				s.end = at
			}
		}
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i].begin < secs[j].begin })
	var gaps []time.Duration
	var order []string
	for i, s := range secs {
		order = append(order, s.label)
		if i > 0 {
			gaps = append(gaps, time.Duration(s.begin-secs[i-1].end))
		}
	}
	if len(gaps) == 0 {
		b.Fatal("no handoff happened")
	}
	return gaps, order
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// medianOf returns the median of xs.
func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}
