package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/locked-run/locked-run/lock"
	"github.com/locked-run/locked-run/signals/early"
)

// requestTimeout bounds a subcommand's whole conversation with DynamoDB.
const requestTimeout = 30 * time.Second

// subcommandSetup parses what every subcommand needs: logger, backend,
// and (when needKey) the key.
func subcommandSetup(c *cli.Context, needKey bool) (lock.Locker, string, hclog.Logger, error) {
	// What a subcommand prints is read by pipelines that may stop
	// reading early; only the run, whose command must survive our own
	// broken pipe, keeps SIGPIPE caught.
	early.DefaultPipe()
	logger, err := newLogger(c)
	if err != nil {
		return nil, "", nil, err
	}
	b, err := backendOf(c)
	if err != nil {
		return nil, "", nil, err
	}
	key := str(c, flagKey)
	if needKey {
		if key == "" {
			return nil, "", nil, usagef("%s: no key: pass --key KEY (or LOCKED_RUN_KEY)", c.Command.Name)
		}
		if err := lock.ValidateKey(key); err != nil {
			return nil, "", nil, usagef("--key: %s", detail(err, lock.ErrInvalidKey))
		}
	}
	locker, err := newLocker(c.Context, c, b, lock.Timing{}, identity(""), logger)
	if err != nil {
		return nil, "", nil, err
	}
	return locker, key, logger, nil
}

// recordJSON is the JSON form of a lock record printed by status and list.
// Field names are part of the interface scripts rely on.
type recordJSON struct {
	Key          string     `json:"key"`
	Held         bool       `json:"held"`
	Foreign      bool       `json:"foreign,omitempty"`
	Owner        string     `json:"owner,omitempty"`
	Host         string     `json:"host,omitempty"`
	PID          int        `json:"pid,omitempty"`
	User         string     `json:"user,omitempty"`
	Command      string     `json:"command,omitempty"`
	AcquiredAt   *time.Time `json:"acquired_at,omitempty"`
	HeartbeatAt  *time.Time `json:"heartbeat_at,omitempty"`
	LeaseSeconds float64    `json:"lease_seconds,omitempty"`
	FencingToken uint64     `json:"fencing_token"`
	// LooksDead and SilentSeconds are this host's view: see health.
	LooksDead     bool     `json:"looks_dead,omitempty"`
	SilentSeconds *float64 `json:"silent_seconds,omitempty"`
}

func toJSON(r lock.Record, now time.Time) recordJSON {
	j := recordJSON{Key: r.Key, Held: r.Held(), Owner: r.Owner, Host: r.Host, PID: r.PID, User: r.User,
		Command: r.Command, LeaseSeconds: r.Lease.Seconds(), FencingToken: r.Token}
	if !r.Acquired.IsZero() {
		t := r.Acquired.UTC()
		j.AcquiredAt = &t
	}
	if !r.Heartbeat.IsZero() {
		t := r.Heartbeat.UTC()
		j.HeartbeatAt = &t
	}
	if h := healthOf(r, now); h.known {
		secs := h.silent.Round(time.Millisecond).Seconds()
		j.SilentSeconds = &secs
		j.LooksDead = h.looksDead
	}
	return j
}

// health is what this host can tell of a holder from its item: how long it
// has been silent by this host's clock, against the holder's clock's
// timestamp. It is shown, never acted on: only a waiter's own watch of the
// record version decides a takeover.
type health struct {
	known     bool          // the item has a lease and a timestamp to judge by
	silent    time.Duration // since the last heartbeat (or acquisition)
	looksDead bool          // silent for longer than its lease
}

func healthOf(r lock.Record, now time.Time) health {
	last := r.Heartbeat
	if last.IsZero() {
		last = r.Acquired
	}
	if !r.Held() || r.Lease <= 0 || last.IsZero() {
		return health{}
	}
	silent := now.Sub(last)
	return health{known: true, silent: silent, looksDead: silent > r.Lease}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ago says how long ago t was, by this host's clock (display only).
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := now.Sub(t)
	if d < 0 {
		return t.UTC().Format(time.RFC3339) + " (in the future by this host's clock)"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), describeDuration(d))
}

func runStatus(c *cli.Context) error {
	locker, key, _, err := subcommandSetup(c, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, requestTimeout)
	defer cancel()
	rec, err := locker.Status(ctx, key)
	w := c.App.Writer
	if errors.Is(err, lock.ErrForeignItem) {
		// Not an error: status answers "who has it", and the answer is
		// another tool (a Terraform state lock sharing the table, say).
		if boolean(c, flagJSON) {
			return printJSON(w, recordJSON{Key: key, Foreign: true})
		}
		_, err := fmt.Fprintf(w, "%s: an item of another tool (no locked-run Schema), not a locked-run lock; locked-run never modifies it: use another --key\n", key)
		return err
	}
	if err != nil {
		return err
	}
	rec.Key = key
	now := time.Now()
	if boolean(c, flagJSON) {
		return printJSON(w, toJSON(rec, now))
	}
	if !rec.Held() {
		_, err := fmt.Fprintf(w, "%s: free (last fencing token %d)\n", key, rec.Token)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s: held by %s\n", key, rec.Owner)
	fmt.Fprintf(tw, "  owner\t%s\n", rec.Owner)
	fmt.Fprintf(tw, "  host\t%s\n", rec.Host)
	fmt.Fprintf(tw, "  pid\t%d\n", rec.PID)
	fmt.Fprintf(tw, "  user\t%s\n", rec.User)
	fmt.Fprintf(tw, "  command\t%s\n", rec.Command)
	fmt.Fprintf(tw, "  acquired\t%s\n", ago(rec.Acquired, now))
	if rec.Lease > 0 {
		fmt.Fprintf(tw, "  last heartbeat\t%s\n", ago(rec.Heartbeat, now))
		fmt.Fprintf(tw, "  lease\t%s\n", describeDuration(rec.Lease))
	}
	fmt.Fprintf(tw, "  fencing token\t%d\n", rec.Token)
	if h := healthOf(rec, now); h.looksDead {
		fmt.Fprintf(tw, "  looks dead\tno heartbeat for %s, longer than its %s lease, by this host's clock\n",
			describeDuration(h.silent), describeDuration(rec.Lease))
		fmt.Fprintf(tw, "  takeover\tthe next run of this key takes it over after watching it unchanged for %s (one lease) on its own clock\n",
			describeDuration(rec.Lease))
		fmt.Fprintf(tw, "  break it now\tlocked-run release %s -k %s --owner %s\n", tableArgs(c), quoteWord(key), rec.Owner)
	}
	return tw.Flush()
}

// tableArgs is the backend option of a command line to copy.
func tableArgs(c *cli.Context) string {
	if t := str(c, flagTable); t != "" {
		return "-t " + quoteWord(t)
	}
	return "--local"
}

func runList(c *cli.Context) error {
	locker, _, _, err := subcommandSetup(c, false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, requestTimeout)
	defer cancel()
	var listing lock.Listing
	if d, ok := locker.(*lock.Dynamo); ok {
		listing, err = d.ListAll(ctx)
	} else {
		listing.Held, err = locker.List(ctx)
	}
	if err != nil {
		return err
	}
	all := boolean(c, flagAll)
	now := time.Now()
	w := c.App.Writer
	if boolean(c, flagJSON) {
		out := make([]recordJSON, 0, len(listing.Held))
		for _, r := range listing.Held {
			out = append(out, toJSON(r, now))
		}
		if all {
			for _, k := range listing.Foreign {
				out = append(out, recordJSON{Key: k, Foreign: true})
			}
		}
		if err := printJSON(w, out); err != nil {
			return err
		}
	} else if len(listing.Held) > 0 || (all && len(listing.Foreign) > 0) {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tOWNER\tHOST\tPID\tACQUIRED\tHEARTBEAT\tTOKEN\tCOMMAND")
		for _, r := range listing.Held {
			acquired := "unknown"
			if !r.Acquired.IsZero() {
				acquired = r.Acquired.UTC().Format(time.RFC3339)
			}
			heartbeat := "-"
			if h := healthOf(r, now); h.known {
				heartbeat = describeDuration(h.silent) + " ago"
				if h.silent < 0 {
					heartbeat = "in the future"
				}
				if h.looksDead {
					heartbeat += " (looks dead)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", r.Key, r.Owner, r.Host, r.PID, acquired, heartbeat, r.Token, r.Command)
		}
		if all {
			for _, k := range listing.Foreign {
				fmt.Fprintf(tw, "%s\t(another tool's item)\t\t\t\t\t\t\n", k)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if boolean(c, flagQuiet) {
		return nil
	}
	// Said on stderr, so that stdout stays the table (or the JSON).
	skipped := ""
	if n := len(listing.Foreign); n > 0 && !all {
		skipped = fmt.Sprintf("%d %s of other tools skipped; --all lists them", n, plural(n, "item", "items"))
	}
	switch {
	case len(listing.Held) == 0 && !boolean(c, flagJSON) && !(all && len(listing.Foreign) > 0):
		if skipped != "" {
			skipped = " (" + skipped + ")"
		}
		note(c, "no locks held"+skipped)
	case skipped != "":
		note(c, skipped)
	}
	return nil
}

// note writes a remark for people to stderr: a plain line, or a log line
// when logs are JSON, so that stderr stays one JSON object a line.
func note(c *cli.Context, msg string) {
	if logger, ok := c.App.Metadata[metaJSONLogger].(hclog.Logger); ok {
		logger.Info(msg)
		return
	}
	fmt.Fprintln(c.App.ErrWriter, msg)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func runRelease(c *cli.Context) error {
	locker, key, logger, err := subcommandSetup(c, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, requestTimeout)
	defer cancel()
	owner, force := str(c, flagOwner), boolean(c, flagForce)
	var rec lock.Record
	switch {
	case owner != "" && force:
		return usagef("release: give --owner ID or --force, not both")
	case owner != "":
		byOwner, ok := locker.(interface {
			ReleaseOwner(ctx context.Context, key, owner string) (lock.Record, error)
		})
		if !ok {
			return usagef("release --owner: not supported by this backend")
		}
		rec, err = byOwner.ReleaseOwner(ctx, key, owner)
	case force:
		rec, err = locker.ForceRelease(ctx, key)
	default:
		rec, err := locker.Status(ctx, key)
		if err != nil {
			return err
		}
		if !rec.Held() {
			logger.Info("lock is not held; nothing to release", "key", key)
			return nil
		}
		return usagef("release: refusing to break lock %q held by %s without --owner %s (that holder only) or --force (whoever holds it)", key, rec.Describe(), rec.Owner)
	}
	if errors.Is(err, lock.ErrNotHeld) {
		logger.Info("lock is not held; nothing to release", "key", key)
		return nil
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.App.Writer, "released lock %q held by %s (fencing token %d)\n", key, rec.Describe(), rec.Token)
	return err
}

func runCreateTable(c *cli.Context) error {
	locker, _, logger, err := subcommandSetup(c, false)
	if err != nil {
		return err
	}
	if _, isLocal := locker.(*lock.Local); isLocal {
		return usagef("create-table: --local needs no table; pass --table NAME")
	}
	return createTable(c.Context, locker, str(c, flagTable), logger)
}

// createTableTimeout bounds creating a table and waiting for it to become
// ACTIVE; on-demand tables usually take seconds.
const createTableTimeout = 5 * time.Minute

func createTable(ctx context.Context, locker lock.Locker, table string, logger hclog.Logger) error {
	d, ok := locker.(*lock.Dynamo)
	if !ok {
		return usagef("create-table needs --table")
	}
	ctx, cancel := context.WithTimeout(ctx, createTableTimeout)
	defer cancel()
	if err := d.CreateTable(ctx); err != nil {
		return err
	}
	logger.Info("table is ACTIVE", "table", table)
	return nil
}
