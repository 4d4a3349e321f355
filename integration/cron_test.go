package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// TestCronRecipeAfterCrash is the README's cron recipe end to end (issue 9,
// point 1): a holder SIGKILLed, then `-n --conflict-exit-code 0 --quiet`
// started once a second, as cron would on several hosts. The command must
// run within about one lease of the kill, and never before the lease minus
// one heartbeat (the holder may have renewed up to a heartbeat before it
// died, and nobody may take over before its last renewal plus the lease).
// LOCKED_RUN_TEST_CRON_ROUNDS repeats the scenario to measure it.
func TestCronRecipeAfterCrash(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	const (
		lease     = 6 * time.Second
		heartbeat = 2 * time.Second
	)
	rounds := 1
	if n, err := strconv.Atoi(os.Getenv("LOCKED_RUN_TEST_CRON_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	var took []time.Duration
	for round := range rounds {
		table := ddblocal.NewTable(t)
		env := dynamoEnv(endpoint)
		timing := []string{"-t", table, "-k", "nightly", "--lease", lease.String(), "--heartbeat", heartbeat.String(), "--kill-after", "1s"}

		var holderErr syncBuffer
		holder := startBin(t, env, nil, &holderErr, append(timing, "--", "sleep", "300")...)
		waitFor(t, 30*time.Second, "the holder to start its command", func() bool {
			return strings.Contains(holderErr.String(), "started command")
		})
		// Let it renew at least once, so that the item carries a
		// heartbeat time of a live holder.
		time.Sleep(heartbeat + 500*time.Millisecond)
		killedAt := time.Now()
		if err := holder.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = holder.Wait()

		marker := filepath.Join(t.TempDir(), "ran")
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			failures []string
		)
		stop := time.After(4 * lease)
	loop:
		for {
			if _, err := os.Stat(marker); err == nil {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				args := append(append([]string{"-n", "--conflict-exit-code", "0", "--quiet"}, timing...),
					"--", "sh", "-c", `date +%s.%N >> "$1"`, "sh", marker)
				cmd := exec.Command(binPath, args...)
				cmd.Env = env
				// Every run exits 0: it ran the command, or the lock
				// was held (--conflict-exit-code 0). What --quiet
				// prints is the CLI's business, tested elsewhere.
				out, err := cmd.CombinedOutput()
				if err != nil {
					mu.Lock()
					failures = append(failures, string(out)+" "+errString(err))
					mu.Unlock()
				}
			}()
			select {
			case <-stop:
				break loop
			case <-time.After(time.Second):
			}
		}
		wg.Wait()
		for _, f := range failures {
			t.Errorf("a cron run failed: %s", f)
		}
		data, err := os.ReadFile(marker)
		if err != nil {
			t.Fatalf("round %d: the command never ran within %s of the kill", round, 4*lease)
		}
		first, err := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
		if err != nil {
			t.Fatal(err)
		}
		ranAt := time.Unix(0, int64(first*1e9))
		after := ranAt.Sub(killedAt)
		took = append(took, after)
		if after < lease-heartbeat {
			t.Errorf("round %d: the command ran %s after the kill, before the lease minus one heartbeat (%s)", round, after, lease-heartbeat)
		}
		// About one lease: the holder's stamp can look fresh for up to a
		// heartbeat and a second after the kill, cron starts once a
		// second, and a loaded machine gets a few seconds more.
		if limit := lease + heartbeat + 5*time.Second; after > limit {
			t.Errorf("round %d: the command ran %s after the kill, want within about one lease (%s)", round, after, limit)
		}
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("command ran after the kill (lease %s, heartbeat %s, cron every 1s): min %s median %s max %s over %d rounds",
		lease, heartbeat, took[0].Round(10*time.Millisecond), took[len(took)/2].Round(10*time.Millisecond),
		took[len(took)-1].Round(10*time.Millisecond), len(took))
}

func errString(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// TestShortTimeoutAfterCrash: a --timeout shorter than the lease on a
// SIGKILLed holder waits past it, watches the holder for its lease and runs
// the command; on a live holder it gives up at the timeout (issue 9,
// point 1).
func TestShortTimeoutAfterCrash(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	table := ddblocal.NewTable(t)
	env := dynamoEnv(endpoint)
	timing := []string{"-t", table, "-k", "report", "--lease", "6s", "--heartbeat", "2s", "--kill-after", "1s"}

	var holderErr syncBuffer
	holder := startBin(t, env, nil, &holderErr, append(timing, "--", "sleep", "300")...)
	waitFor(t, 30*time.Second, "the holder to start its command", func() bool {
		return strings.Contains(holderErr.String(), "started command")
	})

	start := time.Now()
	if r := runBin(t, env, append(append([]string{"-w", "1s"}, timing...), "--", "true")...); r.code != 75 {
		t.Fatalf("-w 1s on a live holder exited %d, want 75: %s", r.code, r.stderr)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("-w 1s on a live holder took %s, want about 1s", took)
	}

	if err := holder.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = holder.Wait()
	// Let the holder's heartbeat time age past its interval, so that it
	// looks stopped.
	time.Sleep(3500 * time.Millisecond)
	start = time.Now()
	r := runBin(t, env, append(append([]string{"-w", "1s"}, timing...), "--", "true")...)
	took := time.Since(start)
	if r.code != 0 {
		t.Fatalf("-w 1s on a SIGKILLed holder exited %d, want 0 (taken over): %s", r.code, r.stderr)
	}
	if took < 5*time.Second || took > 12*time.Second {
		t.Errorf("-w 1s on a SIGKILLed holder ran the command after %s, want about one lease (6s)", took)
	}
	t.Logf("-w 1s took a SIGKILLed holder's lock over after %s", took.Round(10*time.Millisecond))
}
