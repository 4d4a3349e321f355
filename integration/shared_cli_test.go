package integration

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// --shared, --max-holders and the line on DynamoDB, through the binary: what
// status, list, their --json, a waiter's progress lines and a mismatched N
// show.
func TestSharedCLI(t *testing.T) {
	env := dynamoEnv(ddblocal.Endpoint(t))
	table := ddblocal.NewTable(t)
	base := []string{"-t", table, "-k", "app"}
	var holders []*syncBuffer
	for range 2 {
		errb := &syncBuffer{}
		// A short heartbeat: a shared holder's token reaches the item with
		// its first heartbeat.
		startBin(t, env, nil, errb, append(base, "--max-holders", "3", "--lease", "6s", "--heartbeat", "1s", "--kill-after", "2s", "--", "sleep", "60")...)
		holders = append(holders, errb)
		waitFor(t, 20*time.Second, "the shared holder to acquire", func() bool { return strings.Contains(errb.String(), "acquired lock") })
	}
	// Two exclusive waiters, one after the other: positions 1 and 2.
	var waiters []*syncBuffer
	for range 2 {
		errb := &syncBuffer{}
		cmd := startBin(t, env, nil, errb, append(base, "--progress", "1s", "--", "true")...)
		waitFor(t, 20*time.Second, "the waiter to report waiting", func() bool { return strings.Contains(errb.String(), "position=") })
		waiters = append(waiters, errb)
		t.Cleanup(func() { cmd.Process.Signal(syscall.SIGINT) })
	}
	waitFor(t, 20*time.Second, "the second waiter to say who is ahead", func() bool {
		return strings.Contains(waiters[1].String(), "position=2 of=2 ahead=")
	})
	if !strings.Contains(waiters[0].String(), "holders=2 kind=shared max_holders=3") || !strings.Contains(waiters[0].String(), "position=1 of=") {
		t.Fatalf("first waiter's lines:\n%s", waiters[0].String())
	}

	var r result
	waitFor(t, 20*time.Second, "both holders' tokens in status", func() bool {
		r = runBin(t, env, "status", "-t", table, "-k", "app")
		return !strings.Contains(r.stdout, "not recorded yet")
	})
	t.Logf("status:\n%s", r.stdout)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "app: held shared by 2 holders, at most 3 at once (--max-holders 3)\n") ||
		!strings.Contains(r.stdout, "  line: 2 waiters, in the order they acquire\n") {
		t.Fatalf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBin(t, env, "status", "-t", table, "-k", "app", "--json")
	var rec struct {
		Shared     bool `json:"shared"`
		MaxHolders int  `json:"max_holders"`
		Holders    []struct {
			Token uint64 `json:"fencing_token"`
		} `json:"holders"`
		Line []struct {
			Position int  `json:"position"`
			Shared   bool `json:"shared"`
		} `json:"line"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || !rec.Shared || rec.MaxHolders != 3 || len(rec.Holders) != 2 ||
		len(rec.Line) != 2 || rec.Line[1].Position != 2 ||
		rec.Holders[0].Token == 0 || rec.Holders[1].Token == 0 || rec.Holders[0].Token == rec.Holders[1].Token {
		t.Fatalf("status --json: %s (%v)", r.stdout, err)
	}
	r = runBin(t, env, "list", "-t", table)
	t.Logf("list:\n%s", r.stdout)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 3 || !strings.Contains(lines[0], "KIND") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	r = runBin(t, env, append(base, "--max-holders", "2", "--", "true")...)
	if r.code != 125 {
		t.Fatalf("--max-holders 2: exit %d\n%s", r.code, r.stderr)
	}
	oneErrorLine(t, r, `key "app" is in use with --max-holders 3`)
}
