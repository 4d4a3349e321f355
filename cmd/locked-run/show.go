package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/locked-run/locked-run/lock"
)

// What status and list print about a key's holders and its line. A key
// with a single exclusive holder and nobody waiting prints as it always
// has; shared holders, the N in force and the line are added after it.

// normalized returns r with its top-level holder fields describing its
// first holder, as lock.Record promises, even from a backend that filled
// in only Holders.
func normalized(r lock.Record) lock.Record {
	if r.Held() || len(r.Holders) == 0 {
		return r
	}
	first := r.Holders[0]
	first.Key, first.Holders, first.Line = r.Key, r.Holders, r.Line
	if first.MaxHolders == 0 {
		first.MaxHolders = r.MaxHolders
	}
	return first
}

// holdersOf returns every holder of r: r.Holders, or r itself when a
// backend filled in only the top-level holder.
func holdersOf(r lock.Record) []lock.Record {
	if !r.Held() {
		return nil
	}
	if len(r.Holders) > 0 {
		return r.Holders
	}
	return []lock.Record{r}
}

// simple reports whether r is a key held by one exclusive holder (or free)
// with nobody in line: the form status and list printed before shared
// holders existed.
func simple(r lock.Record) bool {
	return !r.Shared && len(holdersOf(r)) <= 1 && len(r.Line) == 0
}

// kindOf names the kind of a holder or waiter: "exclusive", "shared" (any
// number), or "shared, at most N".
func kindOf(shared bool, n int) string {
	switch {
	case !shared:
		return "exclusive"
	case n > 0:
		return fmt.Sprintf("shared, at most %d", n)
	}
	return "shared"
}

// inForce says which N is in force on a key held shared.
func inForce(n int) string {
	if n > 0 {
		return fmt.Sprintf("at most %d at once (--max-holders %d)", n, n)
	}
	return "any number at once (--shared)"
}

// describeHolders is Record.Describe for a key that may have several
// holders: the first, and how many others hold it with it.
func describeHolders(r lock.Record) string {
	s := r.Describe()
	// Record.Describe may count the other holders itself.
	if n := len(holdersOf(r)); n > 1 && !strings.Contains(s, "other shared holder") {
		s += fmt.Sprintf(" and %d other shared %s", n-1, plural(n-1, "holder", "holders"))
	} else if n == 1 && r.Shared {
		s += " (shared)"
	}
	return s
}

// writeStatus prints the text form of status for rec. release is the
// backend option of a command line to copy (-t T or --local).
func writeStatus(w io.Writer, rec lock.Record, now time.Time, release string) error {
	rec = normalized(rec)
	key := rec.Key
	if !rec.Held() {
		if _, err := fmt.Fprintf(w, "%s: free (last fencing token %d)\n", key, rec.Token); err != nil {
			return err
		}
		return writeLine(w, rec.Line, now)
	}
	holders := holdersOf(rec)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if simple(rec) || !rec.Shared {
		fmt.Fprintf(tw, "%s: held by %s\n", key, rec.Owner)
		writeHolder(tw, rec, now, release, "  ")
	} else {
		fmt.Fprintf(tw, "%s: held shared by %d %s, %s\n", key, len(holders), plural(len(holders), "holder", "holders"), inForce(rec.MaxHolders))
		for i, h := range holders {
			h.Key = key
			fmt.Fprintf(tw, "  holder %d of %d\n", i+1, len(holders))
			writeHolder(tw, h, now, release, "    ")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeLine(w, rec.Line, now)
}

// writeHolder prints the fields of one holder, each line indented by in.
func writeHolder(tw io.Writer, h lock.Record, now time.Time, release, in string) {
	fmt.Fprintf(tw, "%sowner\t%s\n", in, h.Owner)
	fmt.Fprintf(tw, "%shost\t%s\n", in, h.Host)
	fmt.Fprintf(tw, "%spid\t%d\n", in, h.PID)
	fmt.Fprintf(tw, "%suser\t%s\n", in, h.User)
	fmt.Fprintf(tw, "%scommand\t%s\n", in, h.Command)
	fmt.Fprintf(tw, "%sacquired\t%s\n", in, ago(h.Acquired, now))
	if h.Lease > 0 {
		fmt.Fprintf(tw, "%slast heartbeat\t%s\n", in, ago(h.Heartbeat, now))
		fmt.Fprintf(tw, "%slease\t%s\n", in, describeDuration(h.Lease))
	}
	if h.Token == 0 {
		// A shared holder's token reaches the store with its first
		// heartbeat; tokens start at 1.
		fmt.Fprintf(tw, "%sfencing token\tnot recorded yet\n", in)
	} else {
		fmt.Fprintf(tw, "%sfencing token\t%d\n", in, h.Token)
	}
	if h.Shared {
		fmt.Fprintf(tw, "%sshared\tyes\n", in)
	}
	if hl := healthOf(h, now); hl.looksDead {
		fmt.Fprintf(tw, "%slooks dead\tno heartbeat for %s, longer than its %s lease, by this host's clock\n",
			in, describeDuration(hl.silent), describeDuration(h.Lease))
		if h.Shared {
			fmt.Fprintf(tw, "%stakeover\tthe next run of this key removes it after watching it unchanged for %s (one lease) on its own clock\n",
				in, describeDuration(h.Lease))
		} else {
			fmt.Fprintf(tw, "%stakeover\tthe next run of this key takes it over after watching it unchanged for %s (one lease) on its own clock\n",
				in, describeDuration(h.Lease))
		}
		fmt.Fprintf(tw, "%sbreak it now\tlocked-run release %s -k %s --owner %s\n", in, release, quoteWord(h.Key), h.Owner)
	}
}

// writeLine prints the key's line of waiters, if any, in the order they
// acquire.
func writeLine(w io.Writer, line []lock.Waiter, now time.Time) error {
	if len(line) == 0 {
		return nil
	}
	fmt.Fprintf(w, "  line: %d %s, in the order they acquire\n", len(line), plural(len(line), "waiter", "waiters"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "    POSITION\tOWNER\tHOST\tPID\tKIND\tWAITING SINCE\tCOMMAND")
	for i, wt := range line {
		since := ago(wt.Joined, now)
		if waiterLooksDead(wt, now) {
			since += ", looks dead"
		}
		fmt.Fprintf(tw, "    %d\t%s\t%s\t%d\t%s\t%s\t%s\n", i+1, wt.Owner, wt.Host, wt.PID,
			kindOf(wt.Shared, wt.MaxHolders), since, wt.Command)
	}
	return tw.Flush()
}

// waiterLooksDead reports whether a waiter's entry has not been refreshed
// for longer than its lease by this host's clock, as healthOf judges a
// holder: shown, never acted on (waiters behind it remove it only after
// watching it unchanged for that lease on their own clock).
func waiterLooksDead(w lock.Waiter, now time.Time) bool {
	return healthOf(lock.Record{Owner: w.Owner, Acquired: w.Joined, Heartbeat: w.Heartbeat, Lease: w.Lease}, now).looksDead
}

// writeList prints the text form of list: one row per holder. The columns
// KIND, MAX and LINE are added (before COMMAND) only when a key has shared
// holders or waiters, so that a table of exclusive locks reads as before.
func writeList(w io.Writer, held []lock.Record, foreign []string, now time.Time) error {
	held = append([]lock.Record(nil), held...)
	for i := range held {
		held[i] = normalized(held[i])
	}
	extra := false
	for _, r := range held {
		if !simple(r) {
			extra = true
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if extra {
		fmt.Fprintln(tw, "KEY\tOWNER\tHOST\tPID\tACQUIRED\tHEARTBEAT\tTOKEN\tKIND\tMAX\tLINE\tCOMMAND")
	} else {
		fmt.Fprintln(tw, "KEY\tOWNER\tHOST\tPID\tACQUIRED\tHEARTBEAT\tTOKEN\tCOMMAND")
	}
	for _, r := range held {
		for _, h := range holdersOf(r) {
			acquired := "unknown"
			if !h.Acquired.IsZero() {
				acquired = h.Acquired.UTC().Format(time.RFC3339)
			}
			heartbeat := "-"
			if hl := healthOf(h, now); hl.known {
				heartbeat = describeDuration(hl.silent) + " ago"
				if hl.silent < 0 {
					heartbeat = "in the future"
				}
				if hl.looksDead {
					heartbeat += " (looks dead)"
				}
			}
			token := "-"
			if h.Token > 0 {
				token = fmt.Sprint(h.Token)
			}
			if !extra {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Key, h.Owner, h.Host, h.PID, acquired, heartbeat, token, h.Command)
				continue
			}
			kind, max := "exclusive", "-"
			if h.Shared {
				kind = "shared"
				if r.MaxHolders > 0 {
					max = fmt.Sprint(r.MaxHolders)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Key, h.Owner, h.Host, h.PID, acquired, heartbeat, token,
				kind, max, len(r.Line), h.Command)
		}
	}
	for _, k := range foreign {
		fmt.Fprintf(tw, "%s\t(another tool's item)%s\n", k, strings.Repeat("\t", 6+boolInt(extra)*3))
	}
	return tw.Flush()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// waiterJSON is the JSON form of one waiter in a key's line.
type waiterJSON struct {
	Position     int        `json:"position"`
	Owner        string     `json:"owner"`
	Host         string     `json:"host,omitempty"`
	PID          int        `json:"pid,omitempty"`
	User         string     `json:"user,omitempty"`
	Command      string     `json:"command,omitempty"`
	Shared       bool       `json:"shared"`
	MaxHolders   int        `json:"max_holders,omitempty"`
	JoinedAt     *time.Time `json:"joined_at,omitempty"`
	HeartbeatAt  *time.Time `json:"heartbeat_at,omitempty"`
	LeaseSeconds float64    `json:"lease_seconds,omitempty"`
	LooksDead    bool       `json:"looks_dead,omitempty"`
}

func lineJSON(line []lock.Waiter, now time.Time) []waiterJSON {
	if len(line) == 0 {
		return nil
	}
	out := make([]waiterJSON, len(line))
	for i, w := range line {
		out[i] = waiterJSON{Position: i + 1, Owner: w.Owner, Host: w.Host, PID: w.PID, User: w.User, Command: w.Command,
			Shared: w.Shared, MaxHolders: w.MaxHolders, JoinedAt: timePtr(w.Joined), HeartbeatAt: timePtr(w.Heartbeat),
			LeaseSeconds: w.Lease.Seconds(), LooksDead: waiterLooksDead(w, now)}
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
