package integration

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/locked-run/locked-run/internal/ddblocal"
	"github.com/locked-run/locked-run/internal/faultproxy"
)

// Benchmarks that print the figures users care about, recorded in
// BENCHMARKS.md. They are measurements, not timed tests: each runs its own
// loop once, whatever b.N, prints its figures (lines starting "bench:") and
// reports the main ones as metrics. They fail only when a figure shows a
// broken promise (a request too many, a takeover before the lease), never
// because the machine is slow. Run them on the binary users get:
//
//	LOCKED_RUN_TEST_NORACE=1 go test -run '^$' -bench . -benchtime 1x -timeout 30m ./integration

// benchChildEnv, when set to "MS:PATH", turns this test binary into a
// child that appends "start MONO WALL" to PATH, sleeps MS milliseconds,
// appends "exit MONO WALL" and exits 0. MONO is CLOCK_MONOTONIC and WALL
// the Unix time, both in nanoseconds.
const benchChildEnv = "LOCKED_RUN_TEST_BENCH_CHILD"

func init() {
	if v := os.Getenv(benchChildEnv); v != "" {
		os.Exit(benchChild(v))
	}
}

func benchChild(v string) int {
	ms, path, ok := strings.Cut(v, ":")
	n, err := strconv.Atoi(ms)
	if !ok || err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: want MS:PATH\n", benchChildEnv, v)
		return 2
	}
	appendLine(path, fmt.Sprintf("start %d %d", monoNow(), time.Now().UnixNano()))
	time.Sleep(time.Duration(n) * time.Millisecond)
	appendLine(path, fmt.Sprintf("exit %d %d", monoNow(), time.Now().UnixNano()))
	return 0
}

// benchStamp is one line a bench child wrote.
type benchStamp struct{ mono, wall int64 }

// benchStamps reads the stamps of a bench child: start and, once it
// exited, exit.
func benchStamps(path string) (start, exit benchStamp, ok bool) {
	b, _ := os.ReadFile(path)
	for line := range strings.Lines(string(b)) {
		var what string
		var s benchStamp
		if _, err := fmt.Sscanf(line, "%s %d %d", &what, &s.mono, &s.wall); err != nil {
			continue
		}
		switch what {
		case "start":
			start = s
		case "exit":
			exit, ok = s, true
		}
	}
	return start, exit, ok
}

// waitStarted waits until the bench child stamping path has started.
func waitStarted(b *testing.B, path string, d time.Duration) benchStamp {
	b.Helper()
	var s benchStamp
	deadline := time.Now().Add(d)
	for {
		if s, _, _ = benchStamps(path); s.mono != 0 {
			return s
		}
		if time.Now().After(deadline) {
			b.Fatalf("bench child %s did not start within %s", path, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var benchMachineOnce sync.Once

// benchSetup checks that the binary is the one users get and prints the
// machine once.
func benchSetup(b *testing.B) {
	b.Helper()
	if os.Getenv("LOCKED_RUN_TEST_NORACE") == "" {
		b.Fatal("benchmarks measure the binary users get: run them with LOCKED_RUN_TEST_NORACE=1 (no race detector)")
	}
	if _, err := exec.LookPath("flock"); err != nil {
		b.Skip("flock(1) is needed for the comparisons: apt-get install util-linux")
	}
	benchMachineOnce.Do(func() {
		cpu := "unknown"
		if c, err := os.ReadFile("/proc/cpuinfo"); err == nil {
			for line := range strings.Lines(string(c)) {
				if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
					cpu = strings.TrimSpace(v)
					break
				}
			}
		}
		load, _ := os.ReadFile("/proc/loadavg")
		ddb := "unknown"
		if dir, err := ddblocal.JarDir(); err == nil {
			ddb = strings.TrimPrefix(filepath.Base(dir), "dynamodb_local_")
		}
		if os.Getenv(ddblocal.EnvEndpoint) != "" {
			ddb = "external at " + os.Getenv(ddblocal.EnvEndpoint)
		}
		benchFigure(b, "machine: %d CPUs (%s), %s %s/%s, DynamoDB Local %s, load average %s",
			runtime.NumCPU(), cpu, runtime.Version(), runtime.GOOS, runtime.GOARCH, ddb, strings.Join(strings.Fields(string(load))[:3], " "))
	})
}

// benchFigure logs one figure and prints it to stdout for BENCHMARKS.md.
func benchFigure(b *testing.B, format string, args ...any) {
	b.Helper()
	line := fmt.Sprintf(format, args...)
	b.Log(line)
	fmt.Println("bench: " + line)
}

// benchLocalEnv is localEnv with a lock directory of the caller's choosing.
func benchLocalEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "LOCKED_RUN_") {
			env = append(env, kv)
		}
	}
	return append(env, "LOCKED_RUN_LOCK_DIR="+dir)
}

// benchRun runs a command to completion and returns its wall time. A
// non-zero exit fails the benchmark.
func benchRun(b *testing.B, env []string, name string, args ...string) time.Duration {
	b.Helper()
	return measure(b, env, name, args...).wall
}

// benchStart starts a command in the background; it is killed when the
// benchmark ends if it still runs.
func benchStart(b *testing.B, env []string, name string, args ...string) *exec.Cmd {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// waitExit waits for cmd at most d and returns its exit status (-1 when a
// signal killed it).
func waitExit(b *testing.B, cmd *exec.Cmd, d time.Duration) int {
	b.Helper()
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		b.Fatalf("%q did not exit within %s", cmd.Args, d)
		return -1
	}
}

// quantile returns the q-quantile of ds (nearest rank; the median of an
// even count is the mean of the middle two).
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if q == 0.5 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkRequestsPerRun counts the DynamoDB requests of uncontended runs
// by operation, through the proxy's counters: exactly two UpdateItem (the
// acquiring write and the release) are promised.
func BenchmarkRequestsPerRun(b *testing.B) {
	benchSetup(b)
	table := ddblocal.NewTable(b)
	proxy, err := faultproxy.New(ddblocal.Endpoint(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { proxy.Close() })
	env := dynamoEnv(proxy.URL())
	const runs = 20
	total := map[string]int{}
	for i := range runs {
		proxy.ResetStats()
		benchRun(b, env, binPath, "-t", table, "-k", "requests", "--", "true")
		got := proxy.Stats().Requests
		for op, n := range got {
			total[op] += n
		}
		if len(got) != 1 || got["UpdateItem"] != 2 {
			b.Errorf("run %d made %v requests, want exactly UpdateItem x2", i+1, got)
		}
	}
	per := make([]string, 0, len(total))
	all := 0
	for op, n := range total {
		per = append(per, fmt.Sprintf("%s %.2f", op, float64(n)/runs))
		all += n
	}
	slices.Sort(per)
	benchFigure(b, "requests per uncontended run (%d runs): %.2f in all: %s", runs, float64(all)/runs, strings.Join(per, ", "))
	b.ReportMetric(float64(all)/runs, "requests/run")
}

// BenchmarkOverhead compares the wall time of `locked-run -- true` with
// `flock f true`, for DynamoDB Local and for --local: medians of 20 runs,
// interleaved so that drifts in load hit all alike.
func BenchmarkOverhead(b *testing.B) {
	benchSetup(b)
	table := ddblocal.NewTable(b)
	dir := b.TempDir()
	denv := dynamoEnv(ddblocal.Endpoint(b))
	lenv := benchLocalEnv(dir)
	// A first run of each, unmeasured: page cache, DynamoDB Local's JIT.
	benchRun(b, denv, binPath, "-t", table, "-k", "overhead", "--", "true")
	benchRun(b, lenv, binPath, "--local", "-k", "overhead", "--", "true")
	const runs = 20
	var tru, fl, dyn, loc []time.Duration
	for range runs {
		tru = append(tru, benchRun(b, os.Environ(), "true"))
		fl = append(fl, benchRun(b, os.Environ(), "flock", filepath.Join(dir, "flock"), "true"))
		dyn = append(dyn, benchRun(b, denv, binPath, "-t", table, "-k", "overhead", "--", "true"))
		loc = append(loc, benchRun(b, lenv, binPath, "--local", "-k", "overhead", "--", "true"))
	}
	// Where the time goes: the binary's own start, a run with one request
	// (status), and DynamoDB Local's answer time seen from a warm client.
	var version, status, rtt []time.Duration
	client := ddblocal.Client(ddblocal.Endpoint(b), nil)
	for range runs {
		version = append(version, benchRun(b, denv, binPath, "--version"))
		status = append(status, benchRun(b, denv, binPath, "status", "-t", table, "-k", "overhead"))
		rtt = append(rtt, updateRTT(b, client, table))
	}
	mt, mf, md, ml := quantile(tru, 0.5), quantile(fl, 0.5), quantile(dyn, 0.5), quantile(loc, 0.5)
	benchFigure(b, "wall time, median of %d: true %.2f ms, flock f true %.2f ms, locked-run -t (DynamoDB Local) -- true %.2f ms (%.2fx flock), locked-run --local -- true %.2f ms (%.2fx flock)",
		runs, ms(mt), ms(mf), ms(md), float64(md)/float64(mf), ms(ml), float64(ml)/float64(mf))
	benchFigure(b, "wall time, p95 of %d: flock %.2f ms, locked-run DynamoDB %.2f ms, locked-run --local %.2f ms",
		runs, ms(quantile(fl, 0.95)), ms(quantile(dyn, 0.95)), ms(quantile(loc, 0.95)))
	benchFigure(b, "overhead profile, median of %d: locked-run --version %.2f ms (process start), locked-run status (one GetItem) %.2f ms, one UpdateItem to DynamoDB Local from a warm client %.2f ms",
		runs, ms(quantile(version, 0.5)), ms(quantile(status, 0.5)), ms(quantile(rtt, 0.5)))
	b.ReportMetric(float64(md)/float64(mf), "dynamo/flock")
	b.ReportMetric(float64(ml)/float64(mf), "local/flock")
	b.ReportMetric(ms(md), "dynamo-ms")
	b.ReportMetric(ms(ml), "local-ms")
	b.ReportMetric(ms(mf), "flock-ms")
}

// updateRTT times one conditional UpdateItem like an acquiring write.
func updateRTT(b *testing.B, client *dynamodb.Client, table string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       map[string]types.AttributeValue{"LockID": &types.AttributeValueMemberS{Value: "rtt"}},
		UpdateExpression:          aws.String("SET #R = :r ADD #T :one"),
		ConditionExpression:       aws.String("attribute_not_exists(#O)"),
		ExpressionAttributeNames:  map[string]string{"#R": "RVN", "#T": "FencingToken", "#O": "Owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": &types.AttributeValueMemberS{Value: strconv.Itoa(rand.Int())}, ":one": &types.AttributeValueMemberN{Value: "1"}},
		ReturnValues:              types.ReturnValueAllNew,
	})
	d := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkHandoff measures, at the default --poll, the time from a
// holder's child exiting to the next waiter's child starting: the holder's
// child stamps its exit as its last act, the waiter's child stamps its
// start as its first (after the Go runtime's start, measured alone as
// "child start cost").
func BenchmarkHandoff(b *testing.B) {
	benchSetup(b)
	table := ddblocal.NewTable(b)
	dir := b.TempDir()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	env := dynamoEnv(ddblocal.Endpoint(b))

	// What starting the child costs by itself: fork, exec, runtime start.
	var startCost []time.Duration
	for i := range 10 {
		path := filepath.Join(dir, fmt.Sprintf("cost-%d", i))
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), benchChildEnv+"=0:"+path)
		t0 := monoNow()
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		s, _, _ := benchStamps(path)
		startCost = append(startCost, time.Duration(s.mono-t0))
	}

	const samples = 30
	var handoffs []time.Duration
	for i := range samples {
		hpath, wpath := filepath.Join(dir, fmt.Sprintf("h-%d", i)), filepath.Join(dir, fmt.Sprintf("w-%d", i))
		// The holder holds long enough for the waiter to be polling, and
		// for a random while after that, so the release falls anywhere in
		// the waiter's poll cycle.
		holdMs := 500 + rand.IntN(300)
		holder := benchStart(b, append(slices.Clone(env), fmt.Sprintf("%s=%d:%s", benchChildEnv, holdMs, hpath)),
			binPath, "-t", table, "-k", "handoff", "--", self)
		waitStarted(b, hpath, 10*time.Second)
		waiter := benchStart(b, append(slices.Clone(env), benchChildEnv+"=0:"+wpath),
			binPath, "-t", table, "-k", "handoff", "--", self)
		if code := waitExit(b, holder, 10*time.Second); code != 0 {
			b.Fatalf("holder exited %d", code)
		}
		if code := waitExit(b, waiter, 10*time.Second); code != 0 {
			b.Fatalf("waiter exited %d", code)
		}
		_, hexit, ok := benchStamps(hpath)
		wstart, _, _ := benchStamps(wpath)
		if !ok || wstart.mono == 0 {
			b.Fatalf("missing stamps in %s or %s", hpath, wpath)
		}
		handoffs = append(handoffs, time.Duration(wstart.mono-hexit.mono))
	}
	p50, p95 := quantile(handoffs, 0.5), quantile(handoffs, 0.95)
	benchFigure(b, "handoff at the default --poll 200ms, %d samples: p50 %.1f ms, p95 %.1f ms, min %.1f ms, max %.1f ms (child start cost alone: median %.1f ms)",
		samples, ms(p50), ms(p95), ms(slices.Min(handoffs)), ms(slices.Max(handoffs)), ms(quantile(startCost, 0.5)))
	b.ReportMetric(ms(p50), "handoff-p50-ms")
	b.ReportMetric(ms(p95), "handoff-p95-ms")
}

// BenchmarkTakeover SIGKILLs a holder (lease 3s, so heartbeat 1s) while a
// waiter watches, at a random point of the heartbeat cycle, and measures
// when the waiter's child starts: from the kill, and from the holder's last
// heartbeat (the send time it wrote into the item; one host, one wall
// clock). The waiter must never take over sooner than a lease after the
// last heartbeat.
func BenchmarkTakeover(b *testing.B) {
	benchSetup(b)
	table := ddblocal.NewTable(b)
	dir := b.TempDir()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	endpoint := ddblocal.Endpoint(b)
	env := dynamoEnv(endpoint)
	client := ddblocal.Client(endpoint, nil)
	const lease = 3 * time.Second
	const poll = 200 * time.Millisecond
	args := []string{"-t", table, "-k", "takeover", "--lease", "3s", "--kill-after", "1s", "--"}

	const trials = 12
	var fromKill, fromBeat []time.Duration
	early := 0
	for i := range trials {
		hpath, wpath := filepath.Join(dir, fmt.Sprintf("h-%d", i)), filepath.Join(dir, fmt.Sprintf("w-%d", i))
		holder := benchStart(b, append(slices.Clone(env), benchChildEnv+"=60000:"+hpath), binPath, append(slices.Clone(args), self)...)
		waitStarted(b, hpath, 10*time.Second)
		waiter := benchStart(b, append(slices.Clone(env), benchChildEnv+"=0:"+wpath), binPath, append(slices.Clone(args), self)...)
		// Let the waiter watch, then kill at a random point of the
		// holder's 1s heartbeat cycle.
		time.Sleep(1500*time.Millisecond + time.Duration(rand.IntN(1000))*time.Millisecond)
		killMono := monoNow()
		if err := holder.Process.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		_ = holder.Wait()
		beat := lastHeartbeat(b, client, table, "takeover")
		if code := waitExit(b, waiter, 2*lease); code != 0 {
			b.Fatalf("waiter exited %d", code)
		}
		ws, _, _ := benchStamps(wpath)
		if ws.mono == 0 {
			b.Fatalf("waiter's child did not stamp %s", wpath)
		}
		k := time.Duration(ws.mono - killMono)
		h := time.Duration(ws.wall - beat.UnixNano())
		fromKill, fromBeat = append(fromKill, k), append(fromBeat, h)
		if h < lease {
			b.Errorf("trial %d: the waiter's child started %s after the holder's last heartbeat, sooner than the lease %s", i+1, h, lease)
		}
		if k < lease {
			early++
		}
	}
	benchFigure(b, "takeover after SIGKILL, lease 3s (heartbeat 1s), poll 200ms, %d trials: from the kill min %.0f ms, median %.0f ms, max %.0f ms; from the last heartbeat min %.0f ms, median %.0f ms, max %.0f ms; %d of %d sooner than the lease after the kill; bound lease + one poll = %.0f ms",
		trials, ms(slices.Min(fromKill)), ms(quantile(fromKill, 0.5)), ms(slices.Max(fromKill)),
		ms(slices.Min(fromBeat)), ms(quantile(fromBeat, 0.5)), ms(slices.Max(fromBeat)), early, trials, ms(lease+poll))
	b.ReportMetric(ms(quantile(fromKill, 0.5)), "from-kill-ms")
	b.ReportMetric(ms(slices.Max(fromKill)), "from-kill-max-ms")
	b.ReportMetric(ms(slices.Min(fromBeat)), "from-heartbeat-min-ms")
}

// lastHeartbeat reads HeartbeatAt, the holder's send time of its last
// renewal, from the item.
func lastHeartbeat(b *testing.B, client *dynamodb.Client, table, key string) time.Time {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"LockID": &types.AttributeValueMemberS{Value: key}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		b.Fatal(err)
	}
	s, ok := out.Item["HeartbeatAt"].(*types.AttributeValueMemberS)
	if !ok {
		b.Fatalf("item has no HeartbeatAt: %v", out.Item)
	}
	t, err := time.Parse(time.RFC3339Nano, s.Value)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// BenchmarkSteadyState holds a key for a minute at the defaults (lease 30s,
// heartbeat 10s) while a waiter waits for it (poll 200ms), each through its
// own proxy, and counts their requests; it then reads the peak RSS
// (VmHWM) of both wrappers and of a --local holder, whose children sleep.
func BenchmarkSteadyState(b *testing.B) {
	benchSetup(b)
	table := ddblocal.NewTable(b)
	endpoint := ddblocal.Endpoint(b)
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
	window := time.Minute
	if s := os.Getenv("LOCKED_RUN_BENCH_WINDOW"); s != "" {
		if window, err = time.ParseDuration(s); err != nil {
			b.Fatal(err)
		}
	}

	holder := benchStart(b, dynamoEnv(hproxy.URL()), binPath, "-t", table, "-k", "steady", "--", "sleep", "3600")
	deadline := time.Now().Add(10 * time.Second)
	for hproxy.Stats().Requests["UpdateItem"] < 1 {
		if time.Now().After(deadline) {
			b.Fatal("holder made no request")
		}
		time.Sleep(5 * time.Millisecond)
	}
	waiter := benchStart(b, dynamoEnv(wproxy.URL()), binPath, "-t", table, "-k", "steady", "--", "true")
	local := benchStart(b, benchLocalEnv(b.TempDir()), binPath, "--local", "-k", "steady", "--", "sleep", "3600")
	for wproxy.Stats().Requests["GetItem"] < 2 {
		if time.Now().After(deadline) {
			b.Fatal("waiter is not polling")
		}
		time.Sleep(5 * time.Millisecond)
	}
	hproxy.ResetStats()
	wproxy.ResetStats()
	start := time.Now()
	time.Sleep(window)
	hs, ws := hproxy.Stats(), wproxy.Stats()
	elapsed := time.Since(start)
	perMin := func(n int) float64 { return float64(n) / elapsed.Minutes() }
	hrss, wrss, lrss := vmHWM(b, holder.Process.Pid), vmHWM(b, waiter.Process.Pid), vmHWM(b, local.Process.Pid)
	hanon, hfile := procStatusMiB(b, holder.Process.Pid, "RssAnon:"), procStatusMiB(b, holder.Process.Pid, "RssFile:")
	binInfo, err := os.Stat(binPath)
	if err != nil {
		b.Fatal(err)
	}

	for _, c := range []*exec.Cmd{holder, local} {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range []*exec.Cmd{holder, waiter, local} {
		waitExit(b, c, 20*time.Second)
	}
	benchFigure(b, "requests per minute over %s: holding %.1f (%v), waiting %.1f (%v)",
		elapsed.Round(time.Millisecond), perMin(total(hs.Requests)), hs.Requests, perMin(total(ws.Requests)), ws.Requests)
	benchFigure(b, "peak RSS (VmHWM) while the child sleeps: DynamoDB holder %.1f MiB, DynamoDB waiter %.1f MiB, --local holder %.1f MiB; the DynamoDB holder's RSS at the end: %.1f MiB anonymous + %.1f MiB file-backed (pages of its %.1f MiB binary, shared by every locked-run on the host)",
		hrss, wrss, lrss, hanon, hfile, float64(binInfo.Size())/(1<<20))
	b.ReportMetric(perMin(total(hs.Requests)), "holding-req/min")
	b.ReportMetric(perMin(total(ws.Requests)), "waiting-req/min")
	b.ReportMetric(hrss, "holder-MiB")
	b.ReportMetric(lrss, "local-holder-MiB")
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// vmHWM returns the peak resident set size of pid in MiB.
func vmHWM(b *testing.B, pid int) float64 { return procStatusMiB(b, pid, "VmHWM:") }

// procStatusMiB returns a "kB" field of /proc/PID/status in MiB.
func procStatusMiB(b *testing.B, pid int, field string) float64 {
	b.Helper()
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(s)) {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				b.Fatalf("%s %q", field, v)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// BenchmarkContended runs 8 processes that each run 5 critical sections in
// a row on one key, with locked-run (DynamoDB Local, and --local) and with
// flock(1), and compares the wall times of the whole batch. The section is
// `sleep S`; the figure depends on S, so several are measured. Each
// configuration runs three times; the median counts.
func BenchmarkContended(b *testing.B) {
	benchSetup(b)
	table := ddblocal.NewTable(b)
	dir := b.TempDir()
	denv := dynamoEnv(ddblocal.Endpoint(b))
	lenv := benchLocalEnv(dir)
	const procs, sections, reps = 8, 5, 3

	batch := func(env []string, name string, args ...string) time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		for range procs {
			wg.Go(func() {
				for range sections {
					benchRun(b, env, name, args...)
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	for _, section := range []string{"0", "0.1", "0.25"} {
		var fl, dyn, loc []time.Duration
		for range reps {
			fl = append(fl, batch(os.Environ(), "flock", filepath.Join(dir, "flock"), "sleep", section))
			dyn = append(dyn, batch(denv, binPath, "-t", table, "-k", "contended", "--", "sleep", section))
			loc = append(loc, batch(lenv, binPath, "--local", "-k", "contended", "--", "sleep", section))
		}
		mf, md, ml := quantile(fl, 0.5), quantile(dyn, 0.5), quantile(loc, 0.5)
		benchFigure(b, "%d processes x %d sections of `sleep %s`, median of %d: flock %.0f ms, locked-run DynamoDB %.0f ms (%.2fx), locked-run --local %.0f ms (%.2fx); floor %d x %ss = %.0f ms",
			procs, sections, section, reps, ms(mf), ms(md), float64(md)/float64(mf), ms(ml), float64(ml)/float64(mf),
			procs*sections, section, float64(procs*sections)*must(strconv.ParseFloat(section, 64))*1000)
		b.ReportMetric(float64(md)/float64(mf), "dynamo/flock-sleep"+section)
		b.ReportMetric(float64(ml)/float64(mf), "local/flock-sleep"+section)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
