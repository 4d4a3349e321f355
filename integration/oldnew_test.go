package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// oldCommit is the last commit before issue 12 changed the item layout
// (Schema "locked-run/2", the line, shared holders): its binary knows only
// "locked-run/1" items and refuses every other one (exit 125).
const oldCommit = "785530b"

// buildOldBinary builds locked-run as of oldCommit, from `git archive` of
// this clone, into a temporary directory. Without the commit in the
// history (a shallow clone) the test skips, or fails under CI=true.
func buildOldBinary(t testing.TB) string {
	t.Helper()
	rev, err := exec.Command("git", "rev-parse", "--verify", "--quiet", oldCommit+"^{commit}").Output()
	if err != nil {
		msg := fmt.Sprintf("commit %s (before issue 12) is not in this clone's history, a shallow clone? (`git fetch --unshallow` gets it): %v", oldCommit, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse --show-toplevel: %v", err)
	}
	dir := t.TempDir()
	archive := exec.Command("git", "archive", "--format=tar", strings.TrimSpace(string(rev)))
	archive.Dir = strings.TrimSpace(string(top)) // in a subdirectory it would archive only that
	untar := exec.Command("tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	var archErr, tarErr strings.Builder
	archive.Stderr, untar.Stderr = &archErr, &tarErr
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v: %s", oldCommit, err, archErr.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("tar -x: %v: %s", err, tarErr.String())
	}
	bin := filepath.Join(dir, "locked-run-old")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v0.0.0-old", "-o", bin, "./cmd/locked-run")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build locked-run at %s: %v\n%s", oldCommit, err, out)
	}
	return bin
}

// startWith is startLineRun with another binary.
func startWith(t *testing.T, bin string, env []string, log, label, hold string, args ...string) *lineRun {
	t.Helper()
	return startLineRunOf(t, bin, env, log, label, "exclusive", hold, args...)
}

// waitCode waits at most d for r and returns its exit status, or -1 after
// killing it when it did not exit in time.
func waitCode(r *lineRun, d time.Duration) int {
	done := make(chan struct{})
	go func() {
		_ = r.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		_ = r.cmd.Process.Kill()
		<-done
		return -1
	}
	return r.cmd.ProcessState.ExitCode()
}

// schemaOf returns the Schema attribute of the key's item.
func schemaOf(t *testing.T, item map[string]types.AttributeValue) string {
	t.Helper()
	if s, ok := item["Schema"].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// TestOldAndNewBinaries runs the binary of the commit before issue 12 and
// the new one on the same keys (issue 12, point 6): a key is never held by
// both at once; the new one waits for an old holder and takes over a
// SIGKILLed one; the old one gets exit 125, and runs nothing, once the
// key's item is in the new layout.
func TestOldAndNewBinaries(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	old := buildOldBinary(t)
	table := ddblocal.NewTable(t)
	env := dynamoEnv(endpoint)
	client := ddblocal.Client(endpoint, nil)
	dir := t.TempDir()
	const (
		lease     = 3 * time.Second
		heartbeat = time.Second
	)
	timing := []string{"--lease", lease.String(), "--kill-after", "1s"}
	args := func(key string) []string { return append([]string{"-t", table, "-k", key}, timing...) }

	// oldRefuses checks that an old run on key exits 125 at once, without
	// running its command, with one line that says why.
	oldRefuses := func(key, log, label string) {
		t.Helper()
		r := startWith(t, old, env, log, label, "0", args(key)...)
		code := waitCode(r, 15*time.Second)
		if code != 125 {
			t.Errorf("the old binary on %q (item Schema %q) exited %d, want 125; stderr:\n%s", key, schemaOf(t, lineItem(t, client, table, key)), code, r.stderr.String())
			return
		}
		if !strings.Contains(r.stderr.String(), "not a locked-run lock") {
			t.Errorf("the old binary's exit 125 on %q does not say the item is not its kind:\n%s", key, r.stderr.String())
		}
		secs, _ := readLineLog(t, log)
		if secs[label] != nil {
			t.Errorf("the old binary ran its command on %q and exited 125", key)
		}
	}

	t.Run("an old holder, a new waiter", func(t *testing.T) {
		const key = "old-holds"
		log, release := filepath.Join(dir, key), filepath.Join(dir, key+".release")
		holder := startWith(t, old, env, log, "old", "until="+release, args(key)...)
		waitBegun(t, log, "old", 30*time.Second)
		if s := schemaOf(t, lineItem(t, client, table, key)); s != "locked-run/1" {
			t.Errorf("the old holder's item has Schema %q, want locked-run/1", s)
		}
		waiter := startLineRun(t, env, log, "new", "exclusive", "100", args(key)...)
		if ok, pids := awaitInLine(t, client, table, key, waiter.cmd.Process.Pid, 1, 10*time.Second); !ok {
			t.Errorf("the new waiter (pid %d) is not in the line of the old holder's key after 10s: %v", waiter.cmd.Process.Pid, pids)
		}
		// The new waiter's entry put the item in the new layout: an old
		// run now refuses it, while the old holder keeps its lock.
		oldRefuses(key, log, "old-late")
		if err := os.WriteFile(release, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		checkExit(t, holder, 0, 30*time.Second)
		checkExit(t, waiter, 0, 30*time.Second)
		secs, order := readLineLog(t, log)
		checkNoOverlap(t, secs, order)
		if want := "old new"; strings.Join(order, " ") != want {
			t.Errorf("commands ran in the order %v, want %s", order, want)
		}
		if s := schemaOf(t, lineItem(t, client, table, key)); s != "locked-run/2" {
			t.Errorf("after the new run the item has Schema %q, want locked-run/2", s)
		}
		oldRefuses(key, log, "old-after")
	})

	t.Run("an old holder SIGKILLed, a new waiter takes over", func(t *testing.T) {
		const key = "old-dies"
		log := filepath.Join(dir, key)
		holder := startWith(t, old, env, log, "old", "until="+filepath.Join(dir, "never"), args(key)...)
		waitBegun(t, log, "old", 30*time.Second)
		waiter := startLineRun(t, env, log, "new", "exclusive", "100", args(key)...)
		time.Sleep(heartbeat + 500*time.Millisecond) // the waiter watches, the holder renews
		killed := monoNow()
		if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = holder.cmd.Wait()
		// The old holder's command dies with it (the parent-death
		// signal) and writes no end: its end is when its pid is gone.
		secs, _ := readLineLog(t, log)
		var oldEnd int64
		if s := secs["old"]; s != nil {
			waitFor(t, 5*time.Second, "the SIGKILLed holder's command to die", func() bool { return procStartTime(s.pid) == "" })
			oldEnd = monoNow()
		}
		checkExit(t, waiter, 0, 30*time.Second)
		secs, order := readLineLog(t, log)
		if s := secs["old"]; s != nil && !s.ended {
			s.end, s.ended = oldEnd, true
		}
		checkNoOverlap(t, secs, order)
		if s := secs["new"]; s == nil {
			t.Errorf("the new waiter never ran its command")
		} else {
			after := time.Duration(s.begin - killed)
			if early := lease - heartbeat - 700*time.Millisecond; after < early {
				t.Errorf("the new waiter took over %s after the old holder was SIGKILLed, before its record was unchanged for a lease (%s)", after, early)
			}
			if limit := lease + heartbeat + 5*time.Second; after > limit {
				t.Errorf("the new waiter took over %s after the old holder was SIGKILLed, want within about a lease (%s)", after, limit)
			}
			t.Logf("the new waiter took over the SIGKILLed old holder's lock %s after the kill", after.Round(10*time.Millisecond))
		}
		oldRefuses(key, log, "old-after")
	})

	t.Run("a new holder, an old run", func(t *testing.T) {
		const key = "new-holds"
		log, release := filepath.Join(dir, key), filepath.Join(dir, key+".release")
		holder := startLineRun(t, env, log, "new", "exclusive", "until="+release, args(key)...)
		waitBegun(t, log, "new", 30*time.Second)
		oldRefuses(key, log, "old")
		if err := os.WriteFile(release, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		checkExit(t, holder, 0, 30*time.Second)
		oldRefuses(key, log, "old-after")
	})

	// Old and new started together on fresh keys, in random order: one
	// of them first, never both; the new one always runs; the old one
	// runs only before the new one ever touched the key.
	t.Run("old and new started together", func(t *testing.T) {
		const rounds = 6
		oldRan := 0
		for i := range rounds {
			key := fmt.Sprintf("together-%d", i)
			log := filepath.Join(dir, key)
			var o, n *lineRun
			var wg sync.WaitGroup
			startOld := func() { o = startWith(t, old, env, log, "old", "300", args(key)...) }
			startNew := func() { n = startLineRun(t, env, log, "new", "exclusive", "300", args(key)...) }
			first, second := startOld, startNew
			if rand.IntN(2) == 0 {
				first, second = startNew, startOld
			}
			first()
			// The old binary (no race detector) starts faster than the new one
			// (built with it): a delay of up to 400 ms lets either win.
			time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
			second()
			var oc, nc int
			wg.Go(func() { oc = waitCode(o, 30*time.Second) })
			wg.Go(func() { nc = waitCode(n, 30*time.Second) })
			wg.Wait()
			secs, order := readLineLog(t, log)
			checkNoOverlap(t, secs, order)
			if nc != 0 {
				t.Errorf("round %d: the new binary exited %d, want 0; stderr:\n%s", i, nc, n.stderr.String())
			}
			switch oc {
			case 0:
				oldRan++
				if strings.Join(order, " ") != "old new" {
					t.Errorf("round %d: the old binary exited 0 but the commands ran in the order %v, want old then new", i, order)
				}
			case 125:
				if secs["old"] != nil {
					t.Errorf("round %d: the old binary ran its command and exited 125", i)
				}
			default:
				t.Errorf("round %d: the old binary exited %d, want 0 or 125; stderr:\n%s", i, oc, o.stderr.String())
			}
			oldRefuses(key, log, "old-after")
		}
		t.Logf("%d rounds of old and new started together: the old binary ran first in %d, refused the key (125) in %d", rounds, oldRan, rounds-oldRan)
	})
}
