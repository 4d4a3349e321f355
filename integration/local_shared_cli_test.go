package integration

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

// --shared and --max-holders with --local, through the real binary: what
// status, list, --no-wait, a waiter's progress and a mismatched N show.
func TestLocalSharedCLI(t *testing.T) {
	env := localEnv(t)
	var holders []*syncBuffer
	for range 2 {
		errb := &syncBuffer{}
		startBin(t, env, nil, errb, "--local", "-k", "app", "--max-holders", "3", "--", "sleep", "30")
		holders = append(holders, errb)
	}
	waitFor(t, 10*time.Second, "both shared holders to acquire", func() bool {
		for _, h := range holders {
			if !strings.Contains(h.String(), "acquired lock") {
				return false
			}
		}
		return true
	})

	t.Run("status lists both holders and the N in force", func(t *testing.T) {
		r := runBin(t, env, "--local", "status", "-k", "app")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "app: held shared by 2 holders, at most 3 at once (--max-holders 3)\n") ||
			countFields(r.stdout, "shared yes") != 2 || !strings.Contains(r.stdout, "\n  holder 2 of 2\n") {
			t.Fatalf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = runBin(t, env, "--local", "status", "-k", "app", "--json")
		var rec struct {
			Held       bool `json:"held"`
			Shared     bool `json:"shared"`
			MaxHolders int  `json:"max_holders"`
			Holders    []struct {
				Owner  string `json:"owner"`
				PID    int    `json:"pid"`
				Token  uint64 `json:"fencing_token"`
				Shared bool   `json:"shared"`
			} `json:"holders"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || !rec.Held || !rec.Shared || rec.MaxHolders != 3 || len(rec.Holders) != 2 {
			t.Fatalf("status --json: %s (%v)", r.stdout, err)
		}
		if rec.Holders[0].Token == rec.Holders[1].Token || rec.Holders[0].Owner == rec.Holders[1].Owner || !rec.Holders[1].Shared {
			t.Fatalf("holders not distinct: %s", r.stdout)
		}
		r = runBin(t, env, "--local", "list")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 || !strings.Contains(lines[0], "KIND") || !strings.HasPrefix(lines[1], "app ") || !strings.Contains(lines[2], " shared ") {
			t.Fatalf("list:\n%s", r.stdout)
		}
	})

	t.Run("a run with another N exits 125 naming the N in force", func(t *testing.T) {
		for _, args := range [][]string{{"--max-holders", "2"}, {"--shared"}, {"--max-holders", "1"}} {
			r := runBin(t, env, append(append([]string{"--local", "-k", "app"}, args...), "--", "true")...)
			if r.code != 125 {
				t.Fatalf("%v: exit %d, want 125\n%s", args, r.code, r.stderr)
			}
			oneErrorLine(t, r, `key "app" is in use with --max-holders 3`)
		}
	})

	t.Run("an exclusive run under --no-wait names the holders", func(t *testing.T) {
		r := runBin(t, env, "--local", "-k", "app", "-n", "--", "true")
		if r.code != 75 {
			t.Fatalf("exit %d, want 75\n%s", r.code, r.stderr)
		}
		oneErrorLine(t, r, "and 1 other shared holder; not waiting (--no-wait)")
	})

	t.Run("a third shared holder joins; a waiting exclusive run says whom it waits for", func(t *testing.T) {
		r := runBin(t, env, "--local", "-k", "app", "--max-holders", "3", "-n", "--", "true")
		if r.code != 0 {
			t.Fatalf("third holder of 3: exit %d\n%s", r.code, r.stderr)
		}
		errb := &syncBuffer{}
		cmd := startBin(t, env, nil, errb, "--local", "-k", "app", "--", "true")
		waitFor(t, 10*time.Second, "the waiter to report waiting", func() bool { return strings.Contains(errb.String(), "waiting for lock") })
		if !strings.Contains(errb.String(), "holders=2 kind=shared max_holders=3") {
			t.Fatalf("waiting line:\n%s", errb.String())
		}
		cmd.Process.Signal(syscall.SIGINT)
		if code := exitCode(t, cmd, 10*time.Second); code != 130 {
			t.Fatalf("interrupted waiter: exit %d, want 130\n%s", code, errb.String())
		}
	})
}

// countFields counts the lines of s whose words are those of want.
func countFields(s, want string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Join(strings.Fields(l), " ") == want {
			n++
		}
	}
	return n
}
