package runner_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locked-run/locked-run/runner"
)

// A process that forks its successor and exits at once, over and over,
// ignoring SIGTERM, is missed by a walk of the tree that reads our children
// just before one generation forks and exits: the successor, re-parented to
// us, is not in the list read a moment earlier, and the walk finds only a
// zombie. Done must not be closed while it runs.
func TestTreeIsNotGoneWhileAProcessHopsFromPidToPid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hop := filepath.Join(dir, "hop")
	count := filepath.Join(dir, "count")
	// Each generation appends a byte to count, starts the next and exits.
	if err := os.WriteFile(hop, []byte("printf . >>\"$1\"; sh \"$0\" \"$1\" &\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Whatever happens, the next generation exits: kill(2) cannot catch it.
	t.Cleanup(func() { os.WriteFile(hop, []byte("exit 0\n"), 0o644) })
	size := func() int64 {
		fi, err := os.Stat(count)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	p, err := runner.Start(context.Background(), runner.Config{
		// The child starts the hopper, which ignores SIGTERM, and exits.
		Args:      []string{"/bin/sh", "-c", `trap '' TERM; sh "$0" "$1" & exit 0`, hop, count},
		Env:       []string{"PATH=/usr/bin:/bin", "RUNNER_TEST_TREE=hopper"},
		Marker:    "RUNNER_TEST_TREE=hopper",
		KillAfter: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
		before := size()
		time.Sleep(300 * time.Millisecond)
		if after := size(); after > before {
			t.Fatalf("Done closed while the tree still runs: %d generations since", after-before)
		}
	case <-time.After(2 * time.Second):
		// Still waiting for it, as it should.
		t.Logf("still waiting after 2s; %d generations", size())
	}
	// A hopper outruns kill(2) by pid (kill-after is an hour anyway); it
	// stops when its script tells the next generation to, and then the
	// runner is done.
	if err := os.WriteFile(hop, []byte("exit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(wait):
		t.Errorf("not done %v after the tree ended", wait)
	}
}

// A background process started with a scrubbed environment carries no
// marker; it is still the tree's, found through the subreaper, and stopped
// before Done.
func TestTreeHoldsAProcessWithAScrubbedEnvironment(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "pid")
	p, err := runner.Start(context.Background(), runner.Config{
		Args:      []string{"/bin/sh", "-c", `env -i /bin/sleep 300 & while grep -q RUNNER_TEST /proc/$!/environ; do sleep 0.01; done; echo $! >"$0"; exit 0`, out},
		Env:       []string{"PATH=/usr/bin:/bin", "RUNNER_TEST_TREE=scrubbed"},
		Marker:    "RUNNER_TEST_TREE=scrubbed",
		KillAfter: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(wait):
		t.Fatalf("not done within %v", wait)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("pid %d, started with env -i, runs after Done", pid)
	}
}
