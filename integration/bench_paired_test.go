package integration

import (
	"bufio"
	"cmp"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// BenchmarkPaired compares whole processes with `flock f true`, pair by
// pair: each locked-run run is paired with a flock run right before or
// right after it (the order alternates), and the figure is the median of
// the pairs' ratios. A burst of load from elsewhere on the machine then
// hits both runs of a pair alike and cancels out of the ratio, which is
// what makes the figure usable on a shared machine.
//
// DynamoDB Local is warmed up first (warmDynamoDBLocal), so that its JIT's
// progress does not favour whichever build or scenario comes last.
//
// It measures two builds of the current tree: the one `make build` makes
// (static, urfave_cli_no_docs, -s -w) and the one plain `go build` (what
// `go install` gives) makes, plus any binaries named in
// LOCKED_RUN_BENCH_BINARIES ("name=path,name=path", such as a build of
// an older commit), so a before and an after are measured under the same
// load. For each it prints, per scenario, the median wall-time ratio to
// flock, the median CPU time (user+system, which load changes far less
// than wall time) and the median page faults (where faults are dear, as
// under a paravirtualised MMU, they are much of the time); then, for
// --local and -t, the median time from the start to each of the run's
// milestones (timeline); then the peak RSS of a holder and a waiter. The
// pairs of a build take turns among pairCopies copies of its file
// (fileCopies says why). Other lock tools, built by whoever
// measures, are paired in the same way with LOCKED_RUN_BENCH_PEERS
// (peerPairs).
//
//	LOCKED_RUN_TEST_NORACE=1 go test -count=1 -run '^$' -bench Paired -benchtime 1x ./integration
func BenchmarkPaired(b *testing.B) {
	benchSetup(b)
	table := ddblocal.NewTable(b)
	dir := b.TempDir()
	bins := []binary{
		{"make build", buildVariant(b, dir, "make-build", []string{"CGO_ENABLED=0"},
			"-tags", "urfave_cli_no_docs", "-ldflags", "-s -w")},
		{"go build", buildVariant(b, dir, "go-build", nil)},
	}
	if v := os.Getenv("LOCKED_RUN_BENCH_BINARIES"); v != "" {
		for _, nb := range strings.Split(v, ",") {
			name, path, ok := strings.Cut(nb, "=")
			if !ok {
				b.Fatalf("LOCKED_RUN_BENCH_BINARIES: %q is not name=path", nb)
			}
			bins = append(bins, binary{name, path})
		}
	}
	// Each build runs its pairs from several copies of its file, in turn:
	// on a machine where page table updates are expensive, where a file's
	// pages sit in the page cache moves a run by a few per cent, and two
	// copies of one binary differ as much as two builds often do.
	copies := make([][]string, len(bins))
	for j, bin := range bins {
		dropPageCache(b, bin.path)
		copies[j] = fileCopies(b, bin.path, filepath.Join(dir, fmt.Sprintf("copy-%d", j)), pairCopies)
	}
	denv := dynamoEnv(ddblocal.Endpoint(b))
	lenv := benchLocalEnv(filepath.Join(dir, "locks"))
	if err := os.Mkdir(filepath.Join(dir, "locks"), 0o700); err != nil {
		b.Fatal(err)
	}
	caenv := denv
	if _, err := os.Stat(caBundle); err == nil {
		caenv = append(slices.Clone(denv), "AWS_CA_BUNDLE="+caBundle)
	}
	scenarios := []struct {
		name string
		env  []string
		args []string
	}{
		{"--version", denv, []string{"--version"}},
		{"--local -- true", lenv, []string{"--local", "-k", "paired", "--", "true"}},
		{"-t T -- true", denv, []string{"-t", table, "-k", "paired", "--", "true"}},
		{"-t T -- true, AWS_CA_BUNDLE set", caenv, []string{"-t", table, "-k", "paired", "--", "true"}},
	}
	flockArgs := []string{filepath.Join(dir, "flock"), "true"}
	const warm = 1
	// LOCKED_RUN_BENCH_PAIRS: more pairs for an A/B whose difference is
	// smaller than 30 pairs' spread (about ±0.1× flock on a quiet machine).
	pairs := 30
	if v := os.Getenv("LOCKED_RUN_BENCH_PAIRS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("LOCKED_RUN_BENCH_PAIRS=%q: want a number of pairs", v)
		}
		pairs = n
	}
	load, _ := os.ReadFile("/proc/loadavg")
	benchFigure(b, "paired: %d pairs after %d warm-ups, each build run from %d copies of its file in turn, load average %s at the start", pairs, warm*pairCopies, pairCopies, strings.Join(strings.Fields(string(load))[:3], " "))
	for _, bin := range bins {
		initProfile(b, bin.name, bin.path)
	}
	firstConnection(b, bins)
	warmDynamoDBLocal(b, bins[0].path, denv, table)
	// Binaries are interleaved pair by pair, so that a before and an after
	// see the same load and the same DynamoDB Local warmth.
	for _, sc := range scenarios {
		for j := range bins {
			for _, path := range copies[j] {
				for range warm {
					measure(b, os.Environ(), "flock", flockArgs...)
					measure(b, sc.env, path, keyOf(sc.args, j)...)
				}
			}
		}
		ratios := make([][]float64, len(bins))
		cpus := make([][]float64, len(bins))
		faults := make([][]float64, len(bins))
		var flockCPUs, flockFaults []float64
		for i := range pairs {
			for j := range bins {
				path := copies[j][i%len(copies[j])]
				f, l := measurePair(b, (i+j)%2 == 0, flockArgs, sc.env, path, keyOf(sc.args, j)...)
				ratios[j] = append(ratios[j], float64(l.wall)/float64(f.wall))
				cpus[j] = append(cpus[j], ms(l.cpu))
				faults[j] = append(faults[j], float64(l.faults))
				flockCPUs = append(flockCPUs, ms(f.cpu))
				flockFaults = append(flockFaults, float64(f.faults))
			}
		}
		load, _ := os.ReadFile("/proc/loadavg")
		for j, bin := range bins {
			benchFigure(b, "paired %-10s %-34s %.2fx flock (pair ratios p25 %.2f, p75 %.2f); CPU %.2f ms (flock %.2f); page faults %.0f (flock %.0f); load %s",
				bin.name, "`"+sc.name+"`:", median(ratios[j]), quantileF(ratios[j], 0.25), quantileF(ratios[j], 0.75),
				median(cpus[j]), median(flockCPUs), median(faults[j]), median(flockFaults), strings.Fields(string(load))[0])
			b.ReportMetric(median(ratios[j]), strings.ReplaceAll(bin.name+" "+sc.name, " ", "_")+"/flock")
		}
	}
	for _, sc := range scenarios[1:3] {
		timeline(b, bins, sc.name, sc.env, sc.args)
	}
	for _, bin := range bins {
		holdWaitRSS(b, bin.name, bin.path, denv, table)
	}
	peerPairs(b, dir, bins[0].name, copies[0], table, denv, caenv)
}

// timeline prints where the time of a run goes: each binary runs args
// with --log-level debug, 50 times after 3 warm-ups, interleaved with the
// others; each line it writes to stderr is time-stamped as it arrives, and
// the figure is the median time from the start to each of the run's
// milestones, and to its exit (wait4).
func timeline(b *testing.B, bins []binary, name string, env, args []string) {
	b.Helper()
	milestones := []string{"acquiring lock", "acquired lock", "started command", "command exited", "released lock"}
	const warm, runs = 3, 50
	at := make([]map[string][]float64, len(bins))
	for j := range bins {
		at[j] = map[string][]float64{}
	}
	for i := range warm + runs {
		for j, bin := range bins {
			cmd := exec.Command(bin.path, append([]string{"--log-level", "debug"}, keyOf(args, j)...)...)
			cmd.Env = env
			pr, err := cmd.StderrPipe()
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			seen := map[string]float64{}
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				d := ms(time.Since(start))
				for _, m := range milestones {
					if _, ok := seen[m]; !ok && strings.Contains(sc.Text(), "locked-run: "+m+":") {
						seen[m] = d
					}
				}
			}
			if err := cmd.Wait(); err != nil {
				b.Fatalf("%s %v: %v", bin.path, args, err)
			}
			seen["exit"] = ms(time.Since(start))
			if i >= warm {
				for m, d := range seen {
					at[j][m] = append(at[j][m], d)
				}
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	for j, bin := range bins {
		var parts []string
		for _, m := range append(milestones, "exit") {
			if len(at[j][m]) > 0 {
				parts = append(parts, fmt.Sprintf("%s %.2f", m, median(at[j][m])))
			}
		}
		benchFigure(b, "timeline %-10s %-18s ms from the start (median of %d): %s; load %s",
			bin.name, "`"+name+"`:", runs, strings.Join(parts, ", "), strings.Fields(string(load))[0])
	}
}

// dynamoWarmRuns is how many runs warmDynamoDBLocal makes.
const dynamoWarmRuns = 300

// warmDynamoDBLocal runs bin -t table -- true dynamoWarmRuns times on a
// key of its own before anything is measured against DynamoDB Local. The
// emulator is a Java program started for the benchmark: until its JIT has
// compiled the paths a lock's writes take, each answer comes slower, by
// more than a millisecond at first, and whichever scenario runs first pays
// for it. DynamoDB itself is never cold; the figures are meant to be the
// client's. Every build measured afterwards meets the same warm server.
func warmDynamoDBLocal(b *testing.B, bin string, env []string, table string) {
	b.Helper()
	start := time.Now()
	for range dynamoWarmRuns {
		cmd := exec.Command(bin, "-t", table, "-k", "warm-up", "--", "true")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("warming DynamoDB Local: %v\n%s", err, out)
		}
	}
	benchFigure(b, "DynamoDB Local warmed up by %d runs of `-t T -- true` (%s)", dynamoWarmRuns, time.Since(start).Round(time.Millisecond))
}

// keyOf returns args with the key ("-k paired") made the j-th binary's
// own: builds of different item layouts (an older commit's) cannot share a
// key, and none of them should wait for another's.
func keyOf(args []string, j int) []string {
	out := slices.Clone(args)
	for i := range out {
		if i > 0 && out[i-1] == "-k" {
			out[i] = fmt.Sprintf("%s-%d", out[i], j)
		}
	}
	return out
}

// holdWaitRSS prints the peak RSS (VmHWM) of a DynamoDB holder and of a
// waiter polling it at the default --poll for rssWatch, and of a --local
// holder. (ru_maxrss cannot be used: a child started by vfork inherits the
// parent's high-water mark until it execs.)
func holdWaitRSS(b *testing.B, name, path string, env []string, table string) {
	b.Helper()
	const rssWatch = 10 * time.Second
	key := fmt.Sprintf("rss-%s-%d", strings.ReplaceAll(name, " ", "-"), time.Now().UnixNano())
	holder := benchStart(b, env, path, "-t", table, "-k", key, "--", "sleep", "3600")
	// The waiter starts once the holder's child runs.
	deadline := time.Now().Add(10 * time.Second)
	for !hasChild(holder.Process.Pid) {
		if time.Now().After(deadline) {
			b.Fatalf("%s: the holder's child did not start", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waiter := benchStart(b, env, path, "-t", table, "-k", key, "--", "true")
	local := benchStart(b, benchLocalEnv(b.TempDir()), path, "--local", "-k", key, "--", "sleep", "3600")
	time.Sleep(rssWatch)
	h, w, l := holder.Process.Pid, waiter.Process.Pid, local.Process.Pid
	benchFigure(b, "peak RSS %-10s after %s: DynamoDB holder %.1f MiB (anon %.1f, file %.1f), waiter %.1f MiB (anon %.1f, file %.1f), --local holder %.1f MiB",
		name, rssWatch, vmHWM(b, h), procStatusMiB(b, h, "RssAnon:"), procStatusMiB(b, h, "RssFile:"),
		vmHWM(b, w), procStatusMiB(b, w, "RssAnon:"), procStatusMiB(b, w, "RssFile:"), vmHWM(b, l))
	for _, c := range []*exec.Cmd{waiter, holder, local} {
		_ = c.Process.Signal(syscall.SIGTERM)
		waitExit(b, c, 15*time.Second)
	}
}

// initProfile prints the package initialisation of `locked-run --version`
// as GODEBUG=inittrace=1 reports it: total clock (median of 15 runs),
// bytes and allocations (the same every run), and the five packages that
// take longest.
func initProfile(b *testing.B, name, path string) {
	b.Helper()
	const runs = 15
	var totals []float64
	var bytes, allocs int
	perPkg := map[string][]float64{}
	for range runs {
		cmd := exec.Command(path, "--version")
		cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s --version: %v\n%s", path, err, stderr.String())
		}
		var total float64
		bytes, allocs = 0, 0
		for line := range strings.Lines(stderr.String()) {
			// init PKG @T ms, C ms clock, B bytes, A allocs
			f := strings.Fields(line)
			if len(f) < 10 || f[0] != "init" {
				continue
			}
			var c float64
			var nb, na int
			fmt.Sscan(f[4], &c)
			fmt.Sscan(f[7], &nb)
			fmt.Sscan(f[9], &na)
			total += c
			bytes += nb
			allocs += na
			perPkg[f[1]] = append(perPkg[f[1]], c)
		}
		totals = append(totals, total)
	}
	type pkg struct {
		name string
		ms   float64
	}
	var pkgs []pkg
	for n, cs := range perPkg {
		pkgs = append(pkgs, pkg{n, median(cs)})
	}
	slices.SortFunc(pkgs, func(x, y pkg) int { return cmp.Compare(y.ms, x.ms) })
	var top []string
	for _, p := range pkgs[:min(5, len(pkgs))] {
		top = append(top, fmt.Sprintf("%s %.2f", p.name, p.ms))
	}
	benchFigure(b, "init %-10s package initialisation %.2f ms (median of %d), %d bytes, %d allocs; longest (ms): %s",
		name, median(totals), runs, bytes, allocs, strings.Join(top, ", "))
}

// hasChild reports whether process pid has a child (started by any of
// its threads).
func hasChild(pid int) bool {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		if c, err := os.ReadFile(t); err == nil && len(strings.TrimSpace(string(c))) > 0 {
			return true
		}
	}
	return false
}

// A binary is one build of locked-run that BenchmarkPaired measures.
type binary struct{ name, path string }

// pairCopies is how many copies of each build's file the paired runs take
// turns with. Each copy's pages are read back into the page cache by its
// first runs, and where they land moves every later run of that copy: six
// copies of one binary, 40 pairs each, gave medians from 2.67x to 2.84x
// flock for `--local -- true` (BENCHMARKS.md, ninth pass). With three, a
// build of the same code as the one beside it measured 3.15x against 2.87x.
const pairCopies = 6

// fileCopies writes n copies of the file at path into dir, each dropped
// from the page cache, and returns their paths.
func fileCopies(b *testing.B, path, dir string, n int) []string {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	var out []string
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("%s.%d", filepath.Base(path), i))
		if err := os.WriteFile(p, data, 0o755); err != nil {
			b.Fatal(err)
		}
		dropPageCache(b, p)
		out = append(out, p)
	}
	return out
}

// dropPageCache writes path out and drops its pages from the page cache,
// so that every binary is measured as it runs after being read from disk.
// The same bytes start about 0.5 ms faster when their page cache was filled
// by write(2) (cp, tar) than when it was filled by the linker's mmap or by
// reading (measured here, kernel 6.18): without this, the binary the
// benchmark builds and one copied in would differ by that much.
func dropPageCache(b *testing.B, path string) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
}

// firstConnection prints, for each binary, the time from starting
// `locked-run -t T -- true` to its first connection to the DynamoDB
// endpoint (a listener of this test, which then hangs up): process start,
// package initialisation, options, the AWS configuration and the first
// request's preparation, without DynamoDB Local's answer time. Binaries
// are interleaved run by run; 3 warm-ups, then 100 runs each.
func firstConnection(b *testing.B, bins []binary) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	env := dynamoEnv("http://" + ln.Addr().String())
	const warm, runs = 3, 100
	times := make([][]float64, len(bins))
	for i := range warm + runs {
		for j, bin := range bins {
			cmd := exec.Command(bin.path, "-t", "first-connection", "-k", "first", "--", "true")
			cmd.Env = env
			var stderr strings.Builder
			cmd.Stderr = &stderr
			start := time.Now()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			_ = ln.(*net.TCPListener).SetDeadline(start.Add(10 * time.Second))
			c, err := ln.Accept()
			d := time.Since(start)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if err != nil {
				b.Fatalf("%s made no connection: %v\n%s", bin.name, err, stderr.String())
			}
			c.Close()
			if i >= warm {
				times[j] = append(times[j], ms(d))
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	for j, bin := range bins {
		benchFigure(b, "first connection %-10s start to first connection to DynamoDB: p25 %.2f, median %.2f, p75 %.2f ms (%d runs); load %s",
			bin.name, quantileF(times[j], 0.25), median(times[j]), quantileF(times[j], 0.75), runs, strings.Fields(string(load))[0])
	}
}

// caBundle is a PEM bundle of the size corporate proxies hand out: the
// system's.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// buildVariant builds ../cmd/locked-run with extra environment and flags
// into dir/name.
func buildVariant(b *testing.B, dir, name string, env []string, flags ...string) string {
	b.Helper()
	out := filepath.Join(dir, name)
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, "../cmd/locked-run")...)
	cmd.Env = append(os.Environ(), env...)
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build %s: %v\n%s", name, err, o)
	}
	return out
}

// run is what measure saw of one process.
type run struct {
	wall, cpu time.Duration
	faults    int64 // page faults, minor and major, of it and the children it reaped
}

// measure runs a command to completion (a non-zero exit fails the
// benchmark) and returns its wall time and CPU time.
func measure(b *testing.B, env []string, name string, args ...string) run {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("%s %q: %v\n%s", name, args, err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return run{
		wall:   wall,
		cpu:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		faults: int64(ru.Minflt + ru.Majflt),
	}
}

// measurePair runs `flock` with flockArgs and the command, flock first
// when flockFirst, and returns both runs: alternating the order keeps
// whichever runs second from always finding the caches warm.
func measurePair(b *testing.B, flockFirst bool, flockArgs, env []string, name string, args ...string) (f, l run) {
	b.Helper()
	if flockFirst {
		f = measure(b, os.Environ(), "flock", flockArgs...)
		l = measure(b, env, name, args...)
	} else {
		l = measure(b, env, name, args...)
		f = measure(b, os.Environ(), "flock", flockArgs...)
	}
	return f, l
}

func median(xs []float64) float64 { return quantileF(xs, 0.5) }

// quantileF is quantile for float64s.
func quantileF(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if q == 0.5 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(float64(len(s))*q+0.999999) - 1
	return s[max(i, 0)]
}
