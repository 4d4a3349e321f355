//go:build linux

package runner_test

// These tests run the whole of locked-run's child handling in real
// processes: the "wrapper" helper is locked-run reduced to runner.Start,
// signals.Relay and the exit status, and the "shell" helper is the user's
// interactive shell on a pseudo-terminal.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/locked-run/locked-run/signals"
)

// startWrapper starts the wrapper with no terminal at all: a new session,
// stdin /dev/null, output to a buffer. It returns once the child runs and the
// wrapper forwards signals to it.
func startWrapper(t *testing.T, e *events, args ...string) *started {
	t.Helper()
	cmd := helperCmd(t, e, append([]string{"wrapper"}, args...)...)
	cmd.SysProcAttr.Setsid = true
	w := start(t, cmd)
	return w
}

// childArgs is the argument list that makes the wrapper run the child
// helper args.
func childArgs(args ...string) []string {
	self, _ := os.Executable()
	return append([]string{"--", self, "child"}, args...)
}

func TestWrapperForwardsSignals(t *testing.T) {
	t.Parallel()
	for _, s := range signals.Forwarded {
		sig := s.(syscall.Signal)
		// The marker is a second forwarded signal, sent once the test
		// has seen the first arrive: it travels the same path behind any
		// duplicate of the first, and tells the child to exit 3.
		marker := syscall.SIGUSR1
		if sig == syscall.SIGUSR1 {
			marker = syscall.SIGUSR2
		}
		t.Run(name(sig)+" sent to the wrapper reaches the child exactly once and the wrapper exits with the child's status", func(t *testing.T) {
			t.Parallel()
			e := newEvents(t)
			w := startWrapper(t, e, childArgs("signals", name(marker))...)
			e.waitFor("child ready")
			e.waitFor("wrapper started")
			if err := unix.Kill(w.cmd.Process.Pid, sig); err != nil {
				t.Fatal(err)
			}
			e.waitFor("child got " + name(sig))
			if err := unix.Kill(w.cmd.Process.Pid, marker); err != nil {
				t.Fatal(err)
			}
			e.waitFor("child got " + name(marker))
			if st := w.status(t); st != 3 {
				t.Errorf("wrapper exited %d, want the child's 3", st)
			}
			if n := e.count("child got " + name(sig)); n != 1 {
				t.Errorf("child got %s %d times, want exactly once", name(sig), n)
			}
			if n := e.count("wrapper got " + name(sig)); n != 1 {
				t.Errorf("wrapper got %s %d times, want once", name(sig), n)
			}
		})
	}

	t.Run("a forwarded signal the child does not handle kills it and the wrapper exits 128+N", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		w := startWrapper(t, e, childArgs("sleep")...)
		e.waitFor("child ready")
		e.waitFor("wrapper started")
		unix.Kill(w.cmd.Process.Pid, unix.SIGTERM)
		if st := w.status(t); st != 128+int(syscall.SIGTERM) {
			t.Errorf("wrapper exited %d, want %d", st, 128+int(syscall.SIGTERM))
		}
	})
}

func TestWrapperExitStatus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noX := filepath.Join(dir, "no-x-bit")
	if err := os.WriteFile(noX, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"a child that exits 0 makes the wrapper exit 0", childArgs("exit", "0"), 0},
		{"a child that exits 42 makes the wrapper exit 42", childArgs("exit", "42"), 42},
		{"a child killed by SIGKILL makes the wrapper exit 137", childArgs("kill-self", "SIGKILL"), 137},
		{"a command that is not found makes the wrapper exit 127", []string{"--", "locked-run-no-such-command"}, 127},
		{"a command that is not executable makes the wrapper exit 126", []string{"--", noX}, 126},
		{"a directory makes the wrapper exit 126", []string{"--", dir}, 126},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEvents(t)
			w := startWrapper(t, e, tc.args...)
			if st := w.status(t); st != tc.want {
				t.Errorf("wrapper exited %d, want %d", st, tc.want)
			}
		})
	}
}

func TestWrapperWithoutTerminal(t *testing.T) {
	t.Parallel()

	t.Run("with no controlling terminal the terminal is left alone and the child runs", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		w := startWrapper(t, e, childArgs("sigmask")...)
		e.waitFor("child sigmask")
		if l := e.waitFor("wrapper terminal"); l != "wrapper terminal none" {
			t.Errorf("wrapper reports %q, want no terminal", l)
		}
		if st := w.status(t); st != 0 {
			t.Errorf("wrapper exited %d, want 0", st)
		}
	})

	t.Run("a terminal that is not the controlling terminal is left alone", func(t *testing.T) {
		t.Parallel()
		term := newTerminal(t)
		before, beforeErr := unix.IoctlGetInt(int(term.master.Fd()), unix.TIOCGPGRP)
		e := newEvents(t)
		cmd := helperCmd(t, e, append([]string{"wrapper"}, childArgs("readline")...)...)
		// A new session without a controlling terminal, and the terminal
		// on stdin and stdout: as under a CI runner that allocates one.
		cmd.SysProcAttr.Setsid = true
		cmd.Stdin, cmd.Stdout = term.slave, term.slave
		w := start(t, cmd)
		e.waitFor("child ready")
		e.waitFor("wrapper started")
		term.typ(t, "typed line\n")
		e.waitFor("child read typed line")
		if st := w.status(t); st != 0 {
			t.Errorf("wrapper exited %d, want 0", st)
		}
		after, afterErr := unix.IoctlGetInt(int(term.master.Fd()), unix.TIOCGPGRP)
		if before != after || (beforeErr == nil) != (afterErr == nil) {
			t.Errorf("terminal's foreground group changed from %d (%v) to %d (%v)", before, beforeErr, after, afterErr)
		}
	})
}

func TestWrapperDeath(t *testing.T) {
	t.Parallel()

	t.Run("a wrapper killed with SIGKILL takes its child with it within a second", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		w := startWrapper(t, e, childArgs("sleep")...)
		child := field(t, e.waitFor("child ready"), "pid")
		e.waitFor("wrapper started")
		killed := time.Now()
		if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		took, ok := eventually(time.Second, func() bool { return gone(child) })
		if !ok {
			t.Fatalf("child %d still running %v after the wrapper was killed", child, time.Since(killed))
		}
		t.Logf("child gone %v after the wrapper was killed", took)
		if st := w.status(t); st != 137 {
			t.Errorf("wrapper exited %d, want 137", st)
		}
	})

	t.Run("the child outlives the thread of the goroutine that called Start", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		w := startWrapper(t, e, append([]string{"-start-from-dying-thread"}, childArgs("signals", "SIGUSR1")...)...)
		if l := e.waitFor("wrapper thread"); !strings.HasPrefix(l, "wrapper thread gone") {
			t.Fatalf("wrapper: %s", l)
		}
		child := field(t, e.waitFor("wrapper started"), "child")
		if gone(child) {
			t.Fatal("the child died with the thread that called Start")
		}
		e.waitFor("child ready")
		unix.Kill(w.cmd.Process.Pid, unix.SIGUSR1)
		if st := w.status(t); st != 3 {
			t.Errorf("wrapper exited %d, want the child's 3", st)
		}
	})
}

// startShell starts the shell helper on a new terminal, as the terminal's
// session leader, running the wrapper (with wrapperArgs) as its job.
func startShell(t *testing.T, e *events, shellFlags []string, wrapperArgs ...string) (*terminal, *started) {
	t.Helper()
	term := newTerminal(t)
	self, _ := os.Executable()
	args := append([]string{"shell"}, shellFlags...)
	args = append(args, "--", self, "wrapper")
	args = append(args, wrapperArgs...)
	s := startInTerminal(t, term, helperCmd(t, e, args...))
	return term, s
}

// checkTerminalBack waits for the wrapper's report after the child is done
// and checks that the wrapper's group has the terminal again.
func checkTerminalBack(t *testing.T, e *events) {
	t.Helper()
	l := e.waitFor("wrapper terminal")
	if l == "wrapper terminal none" {
		t.Fatal("wrapper has no terminal")
	}
	if fg, own := field(t, l, "fg"), field(t, l, "own"); fg != own {
		t.Errorf("after the child exited the terminal's foreground group is %d, want the wrapper's %d", fg, own)
	}
}

func TestWrapperInTerminal(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		what string
		do   func(t *testing.T, term *terminal)
		sig  syscall.Signal
	}{
		{"a Ctrl-C", func(t *testing.T, term *terminal) { term.typ(t, "\x03") }, syscall.SIGINT},
		{"a Ctrl-\\", func(t *testing.T, term *terminal) { term.typ(t, "\x1c") }, syscall.SIGQUIT},
		{"a window resize", func(t *testing.T, term *terminal) {
			if err := pty.Setsize(term.master, &pty.Winsize{Rows: 41, Cols: 101}); err != nil {
				t.Fatal(err)
			}
		}, syscall.SIGWINCH},
	} {
		t.Run(tc.what+" at the terminal reaches the child exactly once", func(t *testing.T) {
			t.Parallel()
			e := newEvents(t)
			term, sh := startShell(t, e, nil, childArgs("signals", "SIGUSR1")...)
			e.waitFor("child ready")
			wrapper := field(t, e.waitFor("wrapper started"), "pid")
			tc.do(t, term)
			e.waitFor("child got " + name(tc.sig))
			// Marker: forwarded by the wrapper behind anything it might
			// have forwarded of the first signal.
			unix.Kill(wrapper, unix.SIGUSR1)
			e.waitFor("child got SIGUSR1")
			checkTerminalBack(t, e)
			if st := sh.status(t); st != 3 {
				t.Errorf("shell's job exited %d, want the child's 3", st)
			}
			if n := e.count("child got " + name(tc.sig)); n != 1 {
				t.Errorf("child got %s %d times, want exactly once", name(tc.sig), n)
			}
			// The wrapper is in the same job, so the kernel sends it the
			// signal too; it must not pass it on.
			if n := e.count("wrapper got " + name(tc.sig)); tc.sig != syscall.SIGWINCH && n != 1 {
				t.Errorf("wrapper got %s %d times, want once, from the kernel", name(tc.sig), n)
			}
		})
	}
}

func TestWrapperInTerminalHandsTheTerminalOver(t *testing.T) {
	t.Parallel()

	t.Run("the child reads a line typed at the terminal", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		term, sh := startShell(t, e, nil, childArgs("readline")...)
		e.waitFor("child ready")
		e.waitFor("wrapper started")
		term.typ(t, "yes\n")
		e.waitFor("child read yes")
		checkTerminalBack(t, e)
		if st := sh.status(t); st != 0 {
			t.Errorf("shell's job exited %d, want 0", st)
		}
	})

	t.Run("the child starts with no signal ignored or blocked that the shell did not ignore", func(t *testing.T) {
		t.Parallel()
		inherited, _ := sigmask(strconv.Itoa(os.Getpid()))
		e := newEvents(t)
		_, sh := startShell(t, e, nil, childArgs("sigmask")...)
		line := e.waitFor("child sigmask")
		checkTerminalBack(t, e)
		if st := sh.status(t); st != 0 {
			t.Errorf("shell's job exited %d, want 0", st)
		}
		ign, blk := uint64(field(t, line, "ign")), uint64(field(t, line, "blk"))
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGTTOU, syscall.SIGTTIN, syscall.SIGTSTP} {
			if ign&bit(sig) != 0 && inherited&bit(sig) == 0 {
				t.Errorf("child starts with %s ignored", name(sig))
			}
			if blk&bit(sig) != 0 {
				t.Errorf("child starts with %s blocked", name(sig))
			}
		}
	})

	t.Run("a wrapper in the background leaves the terminal to the shell", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		_, sh := startShell(t, e, []string{"-bg"}, childArgs("exit", "0")...)
		own := field(t, e.waitFor("shell job"), "own")
		l := e.waitFor("wrapper terminal")
		if fg := field(t, l, "fg"); fg != own {
			t.Errorf("after the child exited the terminal's foreground group is %d, want the shell's %d", fg, own)
		}
		if st := sh.status(t); st != 0 {
			t.Errorf("shell's job exited %d, want 0", st)
		}
	})
}

func TestWrapperJobControl(t *testing.T) {
	t.Parallel()

	t.Run("Ctrl-Z stops the job for the shell, and fg resumes the child in the foreground", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		term, sh := startShell(t, e, []string{"-job-control"}, childArgs("readline")...)
		e.waitFor("child ready")
		wrapperPgrp := field(t, e.waitFor("wrapper started"), "pgrp")
		term.typ(t, "\x1a")
		l := e.waitFor("shell job stopped")
		if l != "shell job stopped SIGTSTP fg="+strconv.Itoa(wrapperPgrp) {
			t.Errorf("shell saw %q, want its job stopped by SIGTSTP with the terminal back with the job's group %d", l, wrapperPgrp)
		}
		e.waitFor("shell job continued")
		term.typ(t, "after fg\n")
		e.waitFor("child read after fg")
		checkTerminalBack(t, e)
		if st := sh.status(t); st != 0 {
			t.Errorf("shell's job exited %d, want 0", st)
		}
	})

	t.Run("a caller that refuses to continue gets the stopped child stopped for good instead of resumed", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		term, sh := startShell(t, e, []string{"-job-control"}, append([]string{"-refuse-continue", "-kill-after=500ms"}, childArgs("readline")...)...)
		e.waitFor("child ready")
		term.typ(t, "\x1a")
		e.waitFor("shell job stopped")
		e.waitFor("shell job continued")
		e.waitFor("wrapper refused to continue")
		if st := sh.status(t); st != 128+int(syscall.SIGTERM) {
			t.Errorf("shell's job exited %d, want %d: the child stopped with SIGTERM, never resumed", st, 128+int(syscall.SIGTERM))
		}
	})

	t.Run("a child that reads the terminal in the background stops the job, and fg lets it read", func(t *testing.T) {
		t.Parallel()
		e := newEvents(t)
		term, sh := startShell(t, e, []string{"-bg", "-job-control"}, childArgs("readline")...)
		own := field(t, e.waitFor("shell job"), "own")
		l := e.waitFor("shell job stopped")
		if l != "shell job stopped SIGTTIN fg="+strconv.Itoa(own) {
			t.Errorf("shell saw %q, want its job stopped by SIGTTIN with the terminal still its own (%d)", l, own)
		}
		e.waitFor("shell job continued")
		term.typ(t, "typed after fg\n")
		e.waitFor("child read typed after fg")
		checkTerminalBack(t, e)
		if st := sh.status(t); st != 0 {
			t.Errorf("shell's job exited %d, want 0", st)
		}
	})
}
