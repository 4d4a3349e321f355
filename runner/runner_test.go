//go:build linux

package runner_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/locked-run/locked-run/runner"
)

// childConfig returns a Config that runs the test binary as the child helper
// args, with no terminal: stdin, stdout and stderr are /dev/null.
func childConfig(t *testing.T, e *events, args ...string) runner.Config {
	t.Helper()
	cmd := helperCmd(t, e, append([]string{"child"}, args...)...)
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { null.Close() })
	argv := append([]string{cmd.Path}, cmd.Args[1:]...)
	return runner.Config{Args: argv, Env: cmd.Env, Stdin: null, Stdout: null, Stderr: null}
}

func startChild(t *testing.T, ctx context.Context, cfg runner.Config) *runner.Process {
	t.Helper()
	p, err := runner.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Signal(syscall.SIGKILL)
		p.Wait()
	})
	return p
}

// waitDone waits for p to be done and returns the result and how long it
// took from since.
func waitDone(t *testing.T, p *runner.Process, since time.Time) (runner.Result, time.Duration) {
	t.Helper()
	select {
	case <-p.Done():
		return p.Wait(), time.Since(since)
	case <-time.After(wait):
		t.Fatalf("child %d still running after %v", p.Pid(), wait)
		return runner.Result{}, 0
	}
}

func TestStartReportsHowTheChildEnded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		args   []string
		want   runner.Result
		status int
	}{
		{"exit 0 is status 0", []string{"exit", "0"}, runner.Result{ExitCode: 0}, 0},
		{"exit 3 is status 3", []string{"exit", "3"}, runner.Result{ExitCode: 3}, 3},
		{"exit 42 is status 42", []string{"exit", "42"}, runner.Result{ExitCode: 42}, 42},
		{"death by SIGKILL is status 137", []string{"kill-self", "SIGKILL"}, runner.Result{Signal: syscall.SIGKILL}, 137},
		{"death by SIGTERM is status 143", []string{"kill-self", "SIGTERM"}, runner.Result{Signal: syscall.SIGTERM}, 143},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEvents(t)
			p := startChild(t, context.Background(), childConfig(t, e, tc.args...))
			res, _ := waitDone(t, p, time.Now())
			if res != tc.want || res.Status() != tc.status {
				t.Errorf("result %+v status %d, want %+v status %d", res, res.Status(), tc.want, tc.status)
			}
		})
	}
}

func TestStartRefusesCommandsThatCannotRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noX := write("no-x-bit", "#!/bin/sh\nexit 0\n", 0o644)
	badInterp := write("bad-interpreter", "#!/nonexistent/interpreter\n", 0o755)
	sub := filepath.Join(dir, "a-directory")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	pathDir := filepath.Join(dir, "bin")
	if err := os.Mkdir(pathDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pathDir, "not-executable-on-path"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", pathDir+":/usr/bin:/bin")

	for _, tc := range []struct {
		name string
		arg0 string
		want error
	}{
		{"a name on no PATH directory is not found", "locked-run-no-such-command", runner.ErrNotFound},
		{"a path that does not exist is not found", filepath.Join(dir, "missing"), runner.ErrNotFound},
		{"an empty name is not found", "", runner.ErrNotFound},
		{"a file without the execute bit is not executable", noX, runner.ErrNotExecutable},
		{"a directory is not executable", sub, runner.ErrNotExecutable},
		{"a script whose interpreter is missing is not executable", badInterp, runner.ErrNotExecutable},
		{"a non-executable file found on PATH is not executable", "not-executable-on-path", runner.ErrNotExecutable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer null.Close()
			p, err := runner.Start(context.Background(), runner.Config{Args: []string{tc.arg0}, Stdin: null, Stdout: null, Stderr: null})
			if err == nil {
				p.Wait()
				t.Fatalf("Start succeeded, want %v", tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Start: %v, want errors.Is %v", err, tc.want)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestStopWhenTheContextEnds(t *testing.T) {
	t.Parallel()

	t.Run("a child that ignores SIGTERM is killed kill-after later", func(t *testing.T) {
		t.Parallel()
		const killAfter = 500 * time.Millisecond
		e := newEvents(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := childConfig(t, e, "ignore-term")
		cfg.KillAfter = killAfter
		p := startChild(t, ctx, cfg)
		e.waitFor("child ready")
		cancelled := time.Now()
		cancel()
		res, took := waitDone(t, p, cancelled)
		want := runner.Result{Signal: syscall.SIGKILL, Stopped: true}
		if res != want {
			t.Errorf("result %+v, want %+v", res, want)
		}
		if took < killAfter || took > killAfter+time.Second {
			t.Errorf("stopped %v after the context ended, want between kill-after %v and kill-after + 1s", took, killAfter)
		}
		t.Logf("stopped %v after the context ended (kill-after %v)", took, killAfter)
	})

	t.Run("a child that handles SIGTERM gets it exactly once, then SIGKILL", func(t *testing.T) {
		t.Parallel()
		const killAfter = 500 * time.Millisecond
		e := newEvents(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := childConfig(t, e, "log-term")
		cfg.KillAfter = killAfter
		p := startChild(t, ctx, cfg)
		e.waitFor("child ready")
		cancel()
		e.waitFor("child got SIGTERM")
		res, _ := waitDone(t, p, time.Now())
		if want := (runner.Result{Signal: syscall.SIGKILL, Stopped: true}); res != want {
			t.Errorf("result %+v, want %+v", res, want)
		}
		if n := e.count("child got SIGTERM"); n != 1 {
			t.Errorf("child got SIGTERM %d times, want once", n)
		}
	})

	t.Run("a well-behaved child exits on SIGTERM without waiting for kill-after", func(t *testing.T) {
		t.Parallel()
		const killAfter = 5 * time.Second
		e := newEvents(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := childConfig(t, e, "trap-term")
		cfg.KillAfter = killAfter
		p := startChild(t, ctx, cfg)
		e.waitFor("child ready")
		cancelled := time.Now()
		cancel()
		res, took := waitDone(t, p, cancelled)
		if want := (runner.Result{ExitCode: 0, Stopped: true}); res != want {
			t.Errorf("result %+v, want %+v", res, want)
		}
		if took >= killAfter {
			t.Errorf("took %v, want well under kill-after %v", took, killAfter)
		}
		if n := e.count("child got SIGTERM"); n != 1 {
			t.Errorf("child got SIGTERM %d times, want once", n)
		}
	})

	t.Run("a child that does not handle SIGTERM dies of it", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := startChild(t, ctx, childConfig(t, e, "sleep"))
		e.waitFor("child ready")
		cancel()
		res, _ := waitDone(t, p, time.Now())
		if want := (runner.Result{Signal: syscall.SIGTERM, Stopped: true}); res != want || res.Status() != 143 {
			t.Errorf("result %+v status %d, want %+v status 143", res, res.Status(), want)
		}
	})

	t.Run("a stopped child is continued so that SIGTERM reaches it", func(t *testing.T) {
		t.Parallel()
		const killAfter = 5 * time.Second
		e := newEvents(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := childConfig(t, e, "trap-term")
		cfg.KillAfter = killAfter
		p := startChild(t, ctx, cfg)
		e.waitFor("child ready")
		if err := unix.Kill(p.Pid(), unix.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		if _, ok := eventually(wait, func() bool { return procState(p.Pid()) == 'T' }); !ok {
			t.Fatalf("child not stopped: state %c", procState(p.Pid()))
		}
		cancelled := time.Now()
		cancel()
		res, took := waitDone(t, p, cancelled)
		if want := (runner.Result{ExitCode: 0, Stopped: true}); res != want || took >= killAfter {
			t.Errorf("result %+v after %v, want %+v well before kill-after %v", res, took, want, killAfter)
		}
	})

	t.Run("what the child left running in its group is killed at kill-after", func(t *testing.T) {
		t.Parallel()
		const killAfter = 500 * time.Millisecond
		e := newEvents(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := childConfig(t, e, "leave-in-group")
		cfg.KillAfter = killAfter
		p := startChild(t, ctx, cfg)
		left := field(t, e.waitFor("child left"), "pid")
		e.waitFor("child ready") // the child, then what it left: both ignore or handle SIGTERM now
		e.waitFor("child ready")
		cancelled := time.Now()
		cancel()
		res, took := waitDone(t, p, cancelled)
		if want := (runner.Result{ExitCode: 0, Stopped: true}); res != want {
			t.Errorf("result %+v, want %+v", res, want)
		}
		if took < killAfter || took > killAfter+time.Second {
			t.Errorf("done %v after the context ended, want between kill-after %v and kill-after + 1s", took, killAfter)
		}
		if _, ok := eventually(time.Second, func() bool { return gone(left) }); !ok {
			t.Errorf("process %d left in the child's group still runs", left)
		}
	})

	t.Run("a child that exits by itself is not stopped when the context ends later", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		ctx, cancel := context.WithCancel(context.Background())
		p := startChild(t, ctx, childConfig(t, e, "exit", "7"))
		res, _ := waitDone(t, p, time.Now())
		cancel()
		if want := (runner.Result{ExitCode: 7}); res != want {
			t.Errorf("result %+v, want %+v", res, want)
		}
	})

	t.Run("a context that has already ended starts nothing", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		p, err := runner.Start(ctx, childConfig(t, e, "exit", "0"))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Start: %v, %v; want context.Canceled", p, err)
		}
	})
}

func TestStartRunsAFileWithoutInterpreterLineWithSh(t *testing.T) {
	t.Parallel()
	// execvp(3) runs an executable file the kernel does not recognise
	// (ENOEXEC) with /bin/sh; so do env, flock and timeout, and so must we.
	script := filepath.Join(t.TempDir(), "no-shebang")
	if err := os.WriteFile(script, []byte("test \"$1\" = arg || exit 1\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := runner.Start(context.Background(), runner.Config{Args: []string{script, "arg"}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	res, _ := waitDone(t, p, time.Now())
	if res.Status() != 7 {
		t.Errorf("status %d, want the script's 7", res.Status())
	}
}

func TestSignal(t *testing.T) {
	t.Parallel()

	t.Run("the child stays in our process group (the caller's job) and Signal reaches it", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		p := startChild(t, context.Background(), childConfig(t, e, "signals", "SIGUSR2"))
		ready := e.waitFor("child ready")
		if pgid := field(t, ready, "pgid"); pgid != unix.Getpgrp() {
			t.Errorf("child's process group %d, want ours (%d)", pgid, unix.Getpgrp())
		}
		if err := p.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		e.waitFor("child got SIGUSR1")
		if err := p.Signal(syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		res, _ := waitDone(t, p, time.Now())
		if res.Status() != 3 {
			t.Errorf("status %d, want 3", res.Status())
		}
		if n := e.count("child got SIGUSR1"); n != 1 {
			t.Errorf("child got SIGUSR1 %d times, want once", n)
		}
	})

	t.Run("signalling a child that has exited is not an error", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		p := startChild(t, context.Background(), childConfig(t, e, "exit", "0"))
		waitDone(t, p, time.Now())
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("Signal after exit: %v", err)
		}
	})
}

func TestChildSignalDispositions(t *testing.T) {
	t.Parallel()
	// What the test process ignores was inherited from whoever started the
	// tests, and the child may rightly inherit it too; anything else
	// ignored or blocked in the child came from the runner.
	inherited, _ := sigmask(strconv.Itoa(os.Getpid()))
	e := newEvents(t)
	p := startChild(t, context.Background(), childConfig(t, e, "sigmask"))
	line := e.waitFor("child sigmask")
	waitDone(t, p, time.Now())
	ign, blk := uint64(field(t, line, "ign")), uint64(field(t, line, "blk"))
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGTTOU, syscall.SIGTTIN, syscall.SIGTSTP} {
		if ign&bit(sig) != 0 && inherited&bit(sig) == 0 {
			t.Errorf("child starts with %s ignored", name(sig))
		}
		if blk&bit(sig) != 0 {
			t.Errorf("child starts with %s blocked", name(sig))
		}
	}
}
