//go:build linux

package runner_test

import (
	"bytes"
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

// guardians returns the pids of this process's children that are
// guardians. The tests below are not parallel, so while they run every
// guardian of ours is theirs.
func guardians(t *testing.T) []int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, task := range tasks {
		b, _ := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "children"))
		for _, f := range bytes.Fields(b) {
			pid, _ := strconv.Atoi(string(f))
			cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			if bytes.HasPrefix(cmdline, []byte("lockedrun-guardian\x00")) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// oneGuardian waits until exactly one guardian of ours runs and returns
// its pid.
func oneGuardian(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		g := guardians(t)
		if len(g) == 1 {
			return g[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("guardians %v, want exactly one", g)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noGuardian waits until no guardian of ours runs (exited and reaped).
func noGuardian(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for len(guardians(t)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("guardians %v still there", guardians(t))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lockedElsewhere reports whether another open of path cannot take an
// exclusive flock.
func lockedElsewhere(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatal(err)
	}
	return true
}

// A guardian started ahead of the child (while locked-run waits for its
// lock) is the one Start uses: no second one is started, it gets the files
// to hold at Start, not at its own start, and holds them until the tree is
// gone.
func TestGuardianStartedAheadIsTakenOverAndHoldsTheFiles(t *testing.T) {
	g := runner.StartGuardian()
	defer g.Close()
	ahead := oneGuardian(t)

	path := filepath.Join(t.TempDir(), "lock")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	e := newEvents(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := childConfig(t, e, "sleep")
	cfg.Guardian = g
	cfg.Hold = []*os.File{f}
	cfg.Marker = "LOCKED_RUN_TEST_TREE=ahead"
	cfg.Env = append(cfg.Env, cfg.Marker)
	cfg.KillAfter = 200 * time.Millisecond
	p := startChild(t, ctx, cfg)
	e.waitFor("child ready")
	if now := oneGuardian(t); now != ahead {
		t.Fatalf("the tree's guardian is %d, want %d, the one started ahead", now, ahead)
	}
	// Only the guardian's copy of the open file keeps the flock now.
	f.Close()
	if !lockedElsewhere(t, path) {
		t.Fatal("the file is not locked once our copy is closed: the guardian does not hold it")
	}
	cancel()
	waitDone(t, p, time.Now())
	// The guardian is killed once the tree is gone, not waited for: its
	// copy of the file closes as it exits, a moment later.
	deadline := time.Now().Add(wait)
	for lockedElsewhere(t, path) {
		if time.Now().After(deadline) {
			t.Fatalf("the file is still locked %v after the tree is gone", wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
	noGuardian(t)
	g.Close() // a no-op once Start took it over
}

// A guardian started ahead that died before Start (a signal sent to the
// group while the lock was awaited) is replaced by a new one, which holds
// the files.
func TestGuardianStartedAheadThatDiedIsReplaced(t *testing.T) {
	g := runner.StartGuardian()
	defer g.Close()
	ahead := oneGuardian(t)
	if err := syscall.Kill(ahead, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	noGuardian(t)

	path := filepath.Join(t.TempDir(), "lock")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	e := newEvents(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := childConfig(t, e, "sleep")
	cfg.Guardian = g
	cfg.Hold = []*os.File{f}
	cfg.KillAfter = 200 * time.Millisecond
	p := startChild(t, ctx, cfg)
	e.waitFor("child ready")
	if now := oneGuardian(t); now == ahead {
		t.Fatalf("the tree's guardian is the dead one, %d", now)
	}
	f.Close()
	if !lockedElsewhere(t, path) {
		t.Fatal("the file is not locked once our copy is closed: the new guardian does not hold it")
	}
	cancel()
	waitDone(t, p, time.Now())
	noGuardian(t)
}

// Close ends a guardian started ahead that no child needed (the lock was
// not acquired, or a signal came first).
func TestGuardianStartedAheadIsEndedByClose(t *testing.T) {
	g := runner.StartGuardian()
	oneGuardian(t)
	g.Close()
	noGuardian(t)
	g.Close()
}
