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
)

// requestTimeout bounds a subcommand's whole conversation with DynamoDB.
const requestTimeout = 30 * time.Second

// subcommandSetup parses what every subcommand needs: logger, backend,
// and (when needKey) the key.
func subcommandSetup(c *cli.Context, needKey bool) (lock.Locker, string, hclog.Logger, error) {
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
	Owner        string     `json:"owner,omitempty"`
	Host         string     `json:"host,omitempty"`
	PID          int        `json:"pid,omitempty"`
	User         string     `json:"user,omitempty"`
	Command      string     `json:"command,omitempty"`
	AcquiredAt   *time.Time `json:"acquired_at,omitempty"`
	HeartbeatAt  *time.Time `json:"heartbeat_at,omitempty"`
	LeaseSeconds float64    `json:"lease_seconds,omitempty"`
	FencingToken uint64     `json:"fencing_token"`
}

func toJSON(r lock.Record) recordJSON {
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
	return j
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ago says how long ago t was, by this host's clock (display only).
func ago(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := time.Since(t)
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
	if err != nil {
		return err
	}
	rec.Key = key
	w := c.App.Writer
	if boolean(c, flagJSON) {
		return printJSON(w, toJSON(rec))
	}
	if !rec.Held() {
		_, err := fmt.Fprintf(w, "%s: free (last fencing token %d)\n", key, rec.Token)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s: held by %s\n", key, rec.Owner)
	fmt.Fprintf(tw, "  host\t%s\n", rec.Host)
	fmt.Fprintf(tw, "  pid\t%d\n", rec.PID)
	fmt.Fprintf(tw, "  user\t%s\n", rec.User)
	fmt.Fprintf(tw, "  command\t%s\n", rec.Command)
	fmt.Fprintf(tw, "  acquired\t%s\n", ago(rec.Acquired))
	if rec.Lease > 0 {
		fmt.Fprintf(tw, "  last heartbeat\t%s\n", ago(rec.Heartbeat))
		fmt.Fprintf(tw, "  lease\t%s\n", rec.Lease)
	}
	fmt.Fprintf(tw, "  fencing token\t%d\n", rec.Token)
	return tw.Flush()
}

func runList(c *cli.Context) error {
	locker, _, _, err := subcommandSetup(c, false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, requestTimeout)
	defer cancel()
	recs, err := locker.List(ctx)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if boolean(c, flagJSON) {
		out := make([]recordJSON, 0, len(recs))
		for _, r := range recs {
			out = append(out, toJSON(r))
		}
		return printJSON(w, out)
	}
	if len(recs) == 0 {
		_, err := fmt.Fprintln(c.App.ErrWriter, "no locks held")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tOWNER\tHOST\tPID\tACQUIRED\tTOKEN\tCOMMAND")
	for _, r := range recs {
		acquired := "unknown"
		if !r.Acquired.IsZero() {
			acquired = r.Acquired.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\n", r.Key, r.Owner, r.Host, r.PID, acquired, r.Token, r.Command)
	}
	return tw.Flush()
}

func runRelease(c *cli.Context) error {
	locker, key, logger, err := subcommandSetup(c, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, requestTimeout)
	defer cancel()
	if !boolean(c, flagForce) {
		rec, err := locker.Status(ctx, key)
		if err != nil {
			return err
		}
		if !rec.Held() {
			logger.Info("lock is not held; nothing to release", "key", key)
			return nil
		}
		return usagef("release: refusing to break lock %q held by %s without --force", key, rec.Describe())
	}
	rec, err := locker.ForceRelease(ctx, key)
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
