package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// envTree switches the test binary into a program of the process-tree
// tests (a file of its own, so the shared child modes stay as they are).
const envTree = "LOCKED_RUN_IT_TREE"

func init() {
	mode := os.Getenv(envTree)
	if mode == "" {
		return
	}
	os.Exit(treeMain(mode))
}

// treeMain is a program of the tree tests. Modes:
//
//	child-exit: start the descendants (below), write their pids to $OUT,
//	            exit 0;
//	child-wait: the same, then wait for SIGTERM and exit 0 on it;
//	daemon:     start a setsid'd leaf, print its pid, exit at once (a
//	            double fork: the leaf is an orphan from the start);
//	leaf:       sleep until killed, ignoring SIGTERM when $IGNORE_TERM=1.
//
// The descendants are a background leaf (same session and group, as a
// script's `sleep &`), a leaf that called setsid, and a daemon's orphan.
func treeMain(mode string) int {
	self, _ := os.Executable()
	leaf := func(setsid bool) (int, error) {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), envTree+"=leaf")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	}
	switch mode {
	case "leaf":
		if os.Getenv("IGNORE_TERM") == "1" {
			signal.Ignore(syscall.SIGTERM)
		}
		select {}
	case "blip":
		time.Sleep(100 * time.Millisecond)
		return 0
	case "term-logger":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		<-term
		appendFile(os.Getenv("OUT")+".log", "orphan got SIGTERM")
		return 0
	case "orphan-blip", "orphan-term-logger":
		// A double fork: the program is re-parented to init at once.
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), envTree+"="+strings.TrimPrefix(mode, "orphan-"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return 1
		}
		return 0
	case "pid1":
		// Leaves six orphans that exit 100ms later (zombies, unless PID 1
		// reaps them) and one that logs SIGTERM; then waits for SIGTERM,
		// or exits after $EXIT_AFTER.
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		for i := 0; i < 7; i++ {
			m := "orphan-blip"
			if i == 6 {
				m = "orphan-term-logger"
			}
			cmd := exec.Command(self)
			cmd.Env = append(os.Environ(), envTree+"="+m)
			if err := cmd.Run(); err != nil {
				return 1
			}
		}
		appendFile(os.Getenv("OUT")+".log", "ready")
		var after <-chan time.Time
		if d, err := time.ParseDuration(os.Getenv("EXIT_AFTER")); err == nil {
			after = time.After(d)
		}
		select {
		case <-term:
			appendFile(os.Getenv("OUT")+".log", "child got SIGTERM")
			// Linger to catch a second SIGTERM.
			select {
			case <-term:
				appendFile(os.Getenv("OUT")+".log", "child got SIGTERM")
			case <-time.After(300 * time.Millisecond):
			}
		case <-after:
		}
		return 0
	case "daemon":
		pid, err := leaf(true)
		if err != nil {
			return 1
		}
		fmt.Println(pid)
		return 0
	case "child-exit", "child-wait":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		var pids []string
		for _, setsid := range []bool{false, true} {
			pid, err := leaf(setsid)
			if err != nil {
				return 1
			}
			pids = append(pids, strconv.Itoa(pid))
		}
		d := exec.Command(self)
		d.Env = append(os.Environ(), envTree+"=daemon")
		out, err := d.Output()
		if err != nil {
			return 1
		}
		pids = append(pids, strings.TrimSpace(string(out)), strconv.Itoa(os.Getpid()))
		if err := os.WriteFile(os.Getenv("OUT")+".tmp", []byte(strings.Join(pids, " ")), 0o644); err != nil {
			return 1
		}
		os.Rename(os.Getenv("OUT")+".tmp", os.Getenv("OUT"))
		if mode == "child-wait" {
			<-term
		}
		return 0
	}
	return 2
}

func appendFile(path, line string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, line)
	f.Close()
}

// treeRun is one locked-run running a tree program.
type treeRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	pids   []int // the descendants, then the child
}

// startTree starts locked-run with args (backend, key, timing) running
// the tree program in mode, and waits until every descendant runs.
func startTree(t *testing.T, env []string, mode string, ignoreTerm bool, args ...string) *treeRun {
	t.Helper()
	out := filepath.Join(t.TempDir(), "pids")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env = append(env[:len(env):len(env)], envTree+"="+mode, "OUT="+out)
	if ignoreTerm {
		env = append(env, "IGNORE_TERM=1")
	}
	r := &treeRun{t: t, stderr: &syncBuffer{}}
	r.cmd = startBin(t, env, nil, r.stderr, append(args, "--", self)...)
	deadline := time.Now().Add(30 * time.Second)
	for _, err := os.Stat(out); err != nil; _, err = os.Stat(out) {
		if time.Now().After(deadline) || !alive(r.cmd.Process.Pid) {
			t.Fatalf("the tree did not start; stderr:\n%s", r.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		r.pids = append(r.pids, pid)
	}
	if len(r.pids) != 4 {
		t.Fatalf("tree pids %q", b)
	}
	t.Cleanup(func() {
		for _, pid := range r.pids {
			if alive(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return r
}

// alive reports whether pid runs: it is in /proc and not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

func (r *treeRun) descendantsAlive() []int {
	var out []int
	for _, pid := range r.pids[:3] {
		if alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// noneSurvive fails the test if any process of the tree still runs.
func (r *treeRun) noneSurvive() {
	r.t.Helper()
	for _, pid := range r.pids {
		if alive(pid) {
			r.t.Errorf("pid %d of the tree survives locked-run; stderr:\n%s", pid, r.stderr.String())
		}
	}
}

// backends runs f once on each lock backend, with a fresh key.
func backends(t *testing.T, f func(t *testing.T, env []string, lock []string, held func() bool)) {
	t.Run("local", func(t *testing.T) {
		env := localEnv(t)
		key := "tree-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		held := func() bool {
			r := runBin(t, env, "--local", "-k", key, "-n", "-q", "--", "true")
			return r.code == 75
		}
		f(t, env, []string{"--local", "-k", key}, held)
	})
	t.Run("dynamodb", func(t *testing.T) {
		env := dynamoEnv(ddblocal.Endpoint(t))
		table := "tree-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		if r := runBin(t, env, "create-table", "-t", table); r.code != 0 {
			t.Fatalf("create-table: %d %s", r.code, r.stderr)
		}
		held := func() bool {
			r := runBin(t, env, "status", "-t", table, "-k", "tree", "--json")
			var rec map[string]any
			json.Unmarshal([]byte(r.stdout), &rec)
			return rec["held"] == true
		}
		f(t, env, []string{"-t", table, "-k", "tree", "--lease", "6s", "--heartbeat", "1s"}, held)
	})
}

func TestProcessTree(t *testing.T) {
	t.Run("a normal exit leaves a background job and setsid'd processes: they are stopped before the lock is released", func(t *testing.T) {
		backends(t, func(t *testing.T, env, lock []string, held func() bool) {
			r := startTree(t, env, "child-exit", true, append(lock, "--kill-after", "2s")...)
			// The child has exited; what it left ignores SIGTERM, so
			// they live on until SIGKILL, kill-after later, and the lock
			// must be held all that time.
			waitFor(t, 10*time.Second, "the child to exit", func() bool { return !alive(r.pids[3]) })
			if len(r.descendantsAlive()) == 0 {
				t.Fatalf("the descendants are gone already; the test shows nothing")
			}
			if !held() {
				t.Errorf("the lock is free while %v still run", r.descendantsAlive())
			}
			if code := exitCode(t, r.cmd, 30*time.Second); code != 0 {
				t.Errorf("exit %d, want the child's 0; stderr:\n%s", code, r.stderr.String())
			}
			r.noneSurvive()
			if held() {
				t.Errorf("the lock is still held after locked-run exited")
			}
		})
	})

	t.Run("a forwarded SIGTERM ends the child; a helper that ignores SIGTERM is killed kill-after later", func(t *testing.T) {
		backends(t, func(t *testing.T, env, lock []string, held func() bool) {
			r := startTree(t, env, "child-wait", true, append(lock, "--kill-after", "1s")...)
			start := time.Now()
			r.cmd.Process.Signal(syscall.SIGTERM)
			code := exitCode(t, r.cmd, 30*time.Second)
			took := time.Since(start)
			if code != 0 {
				t.Errorf("exit %d, want the child's 0; stderr:\n%s", code, r.stderr.String())
			}
			if took < time.Second {
				t.Errorf("exited after %s, before kill-after: the helpers that ignore SIGTERM cannot be gone", took)
			}
			r.noneSurvive()
			if held() {
				t.Errorf("the lock is still held after locked-run exited")
			}
		})
	})

	t.Run("SIGKILL of locked-run kills every descendant within a second", func(t *testing.T) {
		backends(t, func(t *testing.T, env, lock []string, held func() bool) {
			r := startTree(t, env, "child-wait", true, append(lock, "--kill-after", "1s")...)
			start := time.Now()
			r.cmd.Process.Kill()
			r.cmd.Wait()
			for _, pid := range r.pids {
				waitFor(t, 5*time.Second, fmt.Sprintf("pid %d to die", pid), func() bool { return !alive(pid) })
			}
			took := time.Since(start)
			t.Logf("every descendant gone %s after SIGKILL of locked-run", took)
			if took > time.Second {
				t.Errorf("descendants died %s after locked-run, want within a second", took)
			}
		})
	})
}

func TestProcessTreeLockLost(t *testing.T) {
	env := dynamoEnv(ddblocal.Endpoint(t))
	table := "tree-lost-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if r := runBin(t, env, "create-table", "-t", table); r.code != 0 {
		t.Fatalf("create-table: %d %s", r.code, r.stderr)
	}
	r := startTree(t, env, "child-wait", true, "-t", table, "-k", "tree", "--lease", "6s", "--heartbeat", "500ms", "--kill-after", "1s")
	if rel := runBin(t, env, "release", "-t", table, "-k", "tree", "--force"); rel.code != 0 {
		t.Fatalf("release --force: %d %s", rel.code, rel.stderr)
	}
	if code := exitCode(t, r.cmd, 30*time.Second); code != 76 {
		t.Errorf("exit %d, want 76 (lock lost); stderr:\n%s", code, r.stderr.String())
	}
	r.noneSurvive()
}

// TestPID1 runs locked-run as PID 1 of a new PID namespace, as a container
// entrypoint, with `unshare --pid --fork --mount-proc` (root only; CI runs
// as root).
func TestPID1(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root, and this test needs it")
		}
		t.Skip("unshare --pid needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("unshare (util-linux) is missing")
	}
	self, _ := os.Executable()
	start := func(t *testing.T, exitAfter string) (cmd *exec.Cmd, lr int, logPath string, stderr *syncBuffer) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "pid1")
		logPath = out + ".log"
		env := append(localEnv(t), envTree+"=pid1", "OUT="+out, "EXIT_AFTER="+exitAfter)
		stderr = &syncBuffer{}
		cmd = exec.Command(unshare, "--pid", "--fork", "--mount-proc", binPath, "--local", "-k", "pid1", "--kill-after", "5s", "--", self)
		cmd.Env = env
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		waitFor(t, 30*time.Second, "the child to be ready", func() bool {
			b, _ := os.ReadFile(logPath)
			return strings.Contains(string(b), "ready")
		})
		// locked-run is unshare's only child, PID 1 inside.
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		lr, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if lr == 0 {
			t.Fatalf("no locked-run under unshare (%q)", b)
		}
		return cmd, lr, logPath, stderr
	}
	zombiesOf := func(ppid int) []int {
		var zs []int
		names, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				continue
			}
			i := strings.LastIndexByte(string(b), ')')
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(ppid) {
				pid, _ := strconv.Atoi(strings.Split(n, "/")[2])
				zs = append(zs, pid)
			}
		}
		return zs
	}

	t.Run("orphans are reaped, and what is left when the child exits gets SIGTERM", func(t *testing.T) {
		cmd, lr, logPath, stderr := start(t, "1500ms")
		// The six orphans exit 100ms after they start; give PID 1 time
		// to reap them, then look for zombies while the child still runs.
		time.Sleep(700 * time.Millisecond)
		if zs := zombiesOf(lr); len(zs) != 0 {
			t.Errorf("zombies with parent locked-run (PID 1): %v", zs)
		}
		startExit := time.Now()
		if code := exitCode(t, cmd, 30*time.Second); code != 0 {
			t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr.String())
		}
		b, _ := os.ReadFile(logPath)
		if !strings.Contains(string(b), "orphan got SIGTERM") {
			t.Errorf("the orphan left running did not get SIGTERM; log:\n%s\nstderr:\n%s", b, stderr.String())
		}
		if took := time.Since(startExit); took > 4*time.Second {
			t.Errorf("exited %s after the child, want well before kill-after (5s): the orphan exits on SIGTERM", took)
		}
	})

	t.Run("SIGTERM to PID 1 reaches the child once, and locked-run exits with its status", func(t *testing.T) {
		cmd, lr, logPath, stderr := start(t, "")
		if err := syscall.Kill(lr, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := exitCode(t, cmd, 30*time.Second); code != 0 {
			t.Errorf("exit %d, want the child's 0; stderr:\n%s", code, stderr.String())
		}
		b, _ := os.ReadFile(logPath)
		if n := strings.Count(string(b), "child got SIGTERM"); n != 1 {
			t.Errorf("the child got SIGTERM %d times, want once; log:\n%s", n, b)
		}
	})

	t.Run("a child that dies of a signal makes PID 1 exit 128+N", func(t *testing.T) {
		cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", binPath, "--local", "-k", "pid1-sig", "--", "sh", "-c", "kill -INT $$")
		cmd.Env = localEnv(t)
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("unshare ended with %v, want exit 130", err)
		}
	})
}

// TestDeathBySignal checks that a child that dies of signal N takes
// locked-run with it, by the same signal, after the lock is released: a
// shell sees death by N (and shows 128+N), as without the wrapper.
func TestDeathBySignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			env := localEnv(t)
			cmd := exec.Command(binPath, "--local", "-k", "die", "--", "sh", "-c", fmt.Sprintf("kill -%d $$", sig))
			cmd.Env = env
			var stderr syncBuffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("locked-run ended with %v, want death by %v", err, sig)
			}
			ws := ee.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != sig {
				t.Errorf("locked-run ended with %v, want death by %v; stderr:\n%s", ws, sig, stderr.String())
			}
			if !strings.Contains(stderr.String(), "released lock") {
				t.Errorf("the lock was not released before locked-run died; stderr:\n%s", stderr.String())
			}
			if strings.Contains(stderr.String(), "goroutine ") {
				t.Errorf("a goroutine dump:\n%s", stderr.String())
			}
			if r := runBin(t, env, "--local", "-k", "die", "-n", "--", "true"); r.code != 0 {
				t.Errorf("the lock is still held after locked-run died: %d %s", r.code, r.stderr)
			}
		})
	}
}
