package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/locked-run/locked-run/lock"
)

var showNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func exclusiveRecord() lock.Record {
	r := lock.Record{Key: "skewed", Owner: "far-host-4412-0badf00d", Host: "far-host", PID: 4412, User: "deploy",
		Command: "make deploy", Acquired: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		Heartbeat: time.Date(2099, 1, 1, 0, 0, 10, 0, time.UTC), Lease: 30 * time.Second, Token: 7}
	return r
}

func sharedRecord() lock.Record {
	h1 := lock.Record{Key: "app", Owner: "ci-1-aaaa", Host: "ci-1", PID: 11, User: "ci", Command: "deploy a",
		Acquired: showNow.Add(-time.Minute), Heartbeat: showNow.Add(-5 * time.Second), Lease: 30 * time.Second,
		Token: 8, Shared: true, MaxHolders: 3}
	h2 := h1
	h2.Owner, h2.Host, h2.PID, h2.Command, h2.Token = "ci-2-bbbb", "ci-2", 22, "deploy b", 9
	h2.Heartbeat = showNow.Add(-2 * time.Minute) // silent for longer than its lease
	r := h1
	r.Holders = []lock.Record{h1, h2}
	r.Line = []lock.Waiter{
		{Owner: "db-3-cccc", Host: "db-3", PID: 33, Command: "migrate", Joined: showNow.Add(-20 * time.Second),
			Heartbeat: showNow.Add(-15 * time.Second), Lease: 10 * time.Second},
		{Owner: "ci-4-dddd", Host: "ci-4", PID: 44, Command: "deploy c", Shared: true, MaxHolders: 3, Joined: showNow.Add(-10 * time.Second)},
	}
	return r
}

func TestStatusText(t *testing.T) {
	t.Run("one exclusive holder prints as before shared holders existed", func(t *testing.T) {
		var b strings.Builder
		rec := exclusiveRecord()
		rec.Holders = []lock.Record{rec}
		if err := writeStatus(&b, rec, showNow, "-t deploy-locks"); err != nil {
			t.Fatal(err)
		}
		// The README's block (Troubleshooting, clock skew), character for character.
		want := `skewed: held by far-host-4412-0badf00d
  owner           far-host-4412-0badf00d
  host            far-host
  pid             4412
  user            deploy
  command         make deploy
  acquired        2099-01-01T00:00:00Z (in the future by this host's clock)
  last heartbeat  2099-01-01T00:00:10Z (in the future by this host's clock)
  lease           30s
  fencing token   7
`
		if b.String() != want {
			t.Fatalf("status =\n%s\nwant\n%s", b.String(), want)
		}
	})

	t.Run("shared holders, the N in force and the line are all shown", func(t *testing.T) {
		var b strings.Builder
		if err := writeStatus(&b, sharedRecord(), showNow, "-t deploy-locks"); err != nil {
			t.Fatal(err)
		}
		want := `app: held shared by 2 holders, at most 3 at once (--max-holders 3)
  holder 1 of 2
    owner           ci-1-aaaa
    host            ci-1
    pid             11
    user            ci
    command         deploy a
    acquired        2026-12-01T11:59:00Z (1m0s ago)
    last heartbeat  2026-12-01T11:59:55Z (5s ago)
    lease           30s
    fencing token   8
    shared          yes
  holder 2 of 2
    owner           ci-2-bbbb
    host            ci-2
    pid             22
    user            ci
    command         deploy b
    acquired        2026-12-01T11:59:00Z (1m0s ago)
    last heartbeat  2026-12-01T11:58:00Z (2m0s ago)
    lease           30s
    fencing token   9
    shared          yes
    looks dead      no heartbeat for 2m0s, longer than its 30s lease, by this host's clock
    takeover        the next run of this key removes it after watching it unchanged for 30s (one lease) on its own clock
    break it now    locked-run release -t deploy-locks -k app --owner ci-2-bbbb
  line: 2 waiters, in the order they acquire
    POSITION  OWNER      HOST  PID  KIND               WAITING SINCE                               COMMAND
    1         db-3-cccc  db-3  33   exclusive          2026-12-01T11:59:40Z (20s ago), looks dead  migrate
    2         ci-4-dddd  ci-4  44   shared, at most 3  2026-12-01T11:59:50Z (10s ago)              deploy c
`
		if b.String() != want {
			t.Fatalf("status =\n%s\nwant\n%s", b.String(), want)
		}
	})

	t.Run("a holder whose token is not recorded yet says so", func(t *testing.T) {
		rec := sharedRecord()
		rec.Holders[1].Token = 0
		var b strings.Builder
		if err := writeStatus(&b, rec, showNow, "-t x"); err != nil {
			t.Fatal(err)
		}
		if countLines(b.String(), "fencing token not recorded yet") != 1 || countLines(b.String(), "fencing token 8") != 1 {
			t.Fatalf("status =\n%s", b.String())
		}
		b.Reset()
		writeList(&b, []lock.Record{rec}, nil, showNow)
		if !strings.Contains(b.String(), "  -      shared") {
			t.Fatalf("list =\n%s", b.String())
		}
	})

	t.Run("a free key with waiters shows its line", func(t *testing.T) {
		var b strings.Builder
		rec := lock.Record{Key: "k", Token: 4, Line: sharedRecord().Line[:1]}
		if err := writeStatus(&b, rec, showNow, "--local"); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(b.String(), "k: free (last fencing token 4)\n  line: 1 waiter,") || !strings.Contains(b.String(), "db-3-cccc") {
			t.Fatalf("status =\n%s", b.String())
		}
	})
}

func TestListText(t *testing.T) {
	t.Run("exclusive holders only: the columns of before", func(t *testing.T) {
		var b strings.Builder
		rec := exclusiveRecord()
		rec.Holders = []lock.Record{rec}
		if err := writeList(&b, []lock.Record{rec}, nil, showNow); err != nil {
			t.Fatal(err)
		}
		want := "KEY     OWNER                   HOST      PID   ACQUIRED              HEARTBEAT      TOKEN  COMMAND\n" +
			"skewed  far-host-4412-0badf00d  far-host  4412  2099-01-01T00:00:00Z  in the future  7      make deploy\n"
		if b.String() != want {
			t.Fatalf("list =\n%s\nwant\n%s", b.String(), want)
		}
	})

	t.Run("shared holders: one row each, with kind, N and line", func(t *testing.T) {
		var b strings.Builder
		ex := exclusiveRecord()
		if err := writeList(&b, []lock.Record{sharedRecord(), ex}, []string{"tf"}, showNow); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		if len(lines) != 5 {
			t.Fatalf("list has %d lines, want header, 2 holders, 1 exclusive, 1 foreign:\n%s", len(lines), b.String())
		}
		for i, wantFields := range [][]string{
			{"KEY", "OWNER", "HOST", "PID", "ACQUIRED", "HEARTBEAT", "TOKEN", "KIND", "MAX", "LINE", "COMMAND"},
			{"app", "ci-1-aaaa", "ci-1", "11", "2026-12-01T11:59:00Z", "5s", "ago", "8", "shared", "3", "2", "deploy", "a"},
			{"app", "ci-2-bbbb", "ci-2", "22", "2026-12-01T11:59:00Z", "2m0s", "ago", "(looks", "dead)", "9", "shared", "3", "2", "deploy", "b"},
			{"skewed", "far-host-4412-0badf00d", "far-host", "4412", "2099-01-01T00:00:00Z", "in", "the", "future", "7", "exclusive", "-", "0", "make", "deploy"},
			{"tf", "(another", "tool's", "item)"},
		} {
			if got := strings.Fields(lines[i]); fmt.Sprint(got) != fmt.Sprint(wantFields) {
				t.Fatalf("line %d = %q, want fields %q", i, lines[i], wantFields)
			}
		}
	})
}

func TestStatusJSON(t *testing.T) {
	t.Run("every holder and the line", func(t *testing.T) {
		data, err := json.Marshal(toJSON(sharedRecord(), showNow))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Owner      string `json:"owner"`
			Shared     bool   `json:"shared"`
			MaxHolders int    `json:"max_holders"`
			Holders    []struct {
				Key       string `json:"key"`
				Owner     string `json:"owner"`
				PID       int    `json:"pid"`
				Token     uint64 `json:"fencing_token"`
				Shared    bool   `json:"shared"`
				LooksDead bool   `json:"looks_dead"`
				Holders   []any  `json:"holders"`
			} `json:"holders"`
			Line []struct {
				Position int       `json:"position"`
				Owner    string    `json:"owner"`
				Shared   bool      `json:"shared"`
				Max      int       `json:"max_holders"`
				Joined   time.Time `json:"joined_at"`
				Command  string    `json:"command"`
				Dead     bool      `json:"looks_dead"`
			} `json:"line"`
		}
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if got.Owner != "ci-1-aaaa" || !got.Shared || got.MaxHolders != 3 || len(got.Holders) != 2 || len(got.Line) != 2 {
			t.Fatalf("json = %s", data)
		}
		h := got.Holders[1]
		if h.Key != "app" || h.Owner != "ci-2-bbbb" || h.PID != 22 || h.Token != 9 || !h.Shared || !h.LooksDead || h.Holders != nil {
			t.Fatalf("second holder = %+v in %s", h, data)
		}
		l := got.Line[1]
		if l.Position != 2 || l.Owner != "ci-4-dddd" || !l.Shared || l.Max != 3 || !l.Joined.Equal(showNow.Add(-10*time.Second)) || l.Command != "deploy c" {
			t.Fatalf("second waiter = %+v in %s", l, data)
		}
		if got.Line[0].Shared || got.Line[0].Position != 1 || !got.Line[0].Dead || got.Line[1].Dead {
			t.Fatalf("first waiter = %+v", got.Line[0])
		}
	})

	t.Run("one exclusive holder keeps its fields and lists itself as the only holder", func(t *testing.T) {
		data, _ := json.Marshal(toJSON(exclusiveRecord(), showNow))
		s := string(data)
		for _, absent := range []string{`"shared"`, `"max_holders"`, `"line"`} {
			if strings.Contains(s, absent) {
				t.Fatalf("json of an exclusive holder has %s: %s", absent, s)
			}
		}
		if !strings.Contains(s, `"owner":"far-host-4412-0badf00d"`) || strings.Count(s, `"owner":"far-host-4412-0badf00d"`) != 2 {
			t.Fatalf("json = %s, want the owner at the top and in holders", s)
		}
	})

	t.Run("a free key has no holders", func(t *testing.T) {
		data, _ := json.Marshal(toJSON(lock.Record{Key: "k", Token: 3}, showNow))
		if strings.Contains(string(data), "holders") {
			t.Fatalf("json = %s", data)
		}
	})
}

func TestMaxHoldersErrorExits125WithItsLine(t *testing.T) {
	err := fmt.Errorf("acquire %q: %w", "deploy", &lock.MaxHoldersError{Key: "deploy", InForce: 2, Asked: 3})
	code, line := exitStatus(err)
	want := `key "deploy" is in use with --max-holders 2 (this run asked for --max-holders 3); every run on a key must give the same N`
	if code != exitError || line != want {
		t.Fatalf("exitStatus = %d %q, want 125 %q", code, line, want)
	}
}

func TestWaitingFields(t *testing.T) {
	t.Run("one exclusive holder: the fields of before", func(t *testing.T) {
		rec := exclusiveRecord()
		got := fmt.Sprint(waitingFields("k", lock.Wait{Record: rec, Waited: 3 * time.Second}))
		want := fmt.Sprint([]any{"key", "k", "owner", rec.Owner, "host", "far-host", "pid", 4412, "command", "make deploy",
			"since", "2099-01-01T00:00:00Z", "waited", "3s"})
		if got != want {
			t.Fatalf("fields = %s, want %s", got, want)
		}
	})
	t.Run("several holders and a place in line", func(t *testing.T) {
		got := fmt.Sprint(waitingFields("k", lock.Wait{Record: sharedRecord(), Position: 2, Waited: time.Second}))
		for _, want := range []string{"owner ci-1-aaaa", "holders 2 kind shared max_holders 3", "position 2 of 2",
			"ahead db-3-cccc (host db-3, pid 33, exclusive)", "waited 1s"} {
			if !strings.Contains(got, want) {
				t.Fatalf("fields = %s, want %q in them", got, want)
			}
		}
	})
	t.Run("first in line has nobody ahead", func(t *testing.T) {
		got := fmt.Sprint(waitingFields("k", lock.Wait{Record: sharedRecord(), Position: 1}))
		if !strings.Contains(got, "position 1 of 2") || strings.Contains(got, "ahead") {
			t.Fatalf("fields = %s", got)
		}
	})
}

func TestNormalizedFillsTheTopFromTheFirstHolder(t *testing.T) {
	r := sharedRecord()
	bare := lock.Record{Key: r.Key, Holders: r.Holders, Line: r.Line, MaxHolders: 3, Token: 12}
	var a, b strings.Builder
	writeStatus(&a, r, showNow, "-t x")
	writeStatus(&b, bare, showNow, "-t x")
	if a.String() != b.String() {
		t.Fatalf("a record with only Holders prints\n%s\nwant\n%s", b.String(), a.String())
	}
	if j := toJSON(bare, showNow); !j.Held || j.Owner != "ci-1-aaaa" || len(j.Holders) != 2 {
		t.Fatalf("json of a record with only Holders: %+v", j)
	}
}

// countLines counts the lines of s whose words are those of want.
func countLines(s, want string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Join(strings.Fields(l), " ") == want {
			n++
		}
	}
	return n
}
