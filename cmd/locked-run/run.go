package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/locked-run/locked-run/lock"
	"github.com/locked-run/locked-run/runner"
	"github.com/locked-run/locked-run/signals"
	"github.com/locked-run/locked-run/signals/early"
)

// mainOptions are the validated options of running a command.
type mainOptions struct {
	backend  backend
	key      string
	command  string // the child's command line, shell-quoted
	timing   lock.Timing
	noWait   bool
	timeout  time.Duration // zero: wait forever
	progress time.Duration
	conflict int
	create   bool
	shared   bool
	// maxHolders is --max-holders, zero when not given.
	maxHolders int
}

// parseMain validates every option before any AWS call.
func parseMain(c *cli.Context, child []string) (mainOptions, error) {
	var o mainOptions
	var err error
	if len(child) == 0 {
		return o, usagef("no command given: locked-run [options] -- COMMAND [ARG...]")
	}
	if o.backend, err = backendOf(c); err != nil {
		return o, err
	}
	o.command = shellQuote(child)
	o.key = str(c, flagKey)
	if !c.IsSet(flagKey) && o.key == "" {
		o.key = o.command
	}
	if err := lock.ValidateKey(o.key); err != nil {
		if c.IsSet(flagKey) || os.Getenv("LOCKED_RUN_KEY") != "" {
			return o, usagef("--key: %s", detail(err, lock.ErrInvalidKey))
		}
		return o, usagef("the default key (the command line) is unusable: %s; pass --key", detail(err, lock.ErrInvalidKey))
	}
	if err := nestedOnOwnKey(o); err != nil {
		return o, err
	}
	durations := []struct {
		flag string
		dst  *time.Duration
	}{
		{flagLease, &o.timing.Lease}, {flagHeartbeat, &o.timing.Heartbeat}, {flagKillAfter, &o.timing.KillAfter},
		{flagPoll, &o.timing.Poll}, {flagTimeout, &o.timeout}, {flagProgress, &o.progress},
	}
	for _, d := range durations {
		if s := c.String(d.flag); s != "" {
			if *d.dst, err = parseDuration("--"+d.flag, s); err != nil {
				// Said again as the user gave it (typedName looks
				// through every option: only for the message).
				_, err = parseDuration(typedName(c, d.flag), s)
				return o, err
			}
		}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{flagLease, o.timing.Lease}, {flagPoll, o.timing.Poll}} {
		if d.v == 0 {
			return o, usagef("--%s must be greater than zero", d.flag)
		}
	}
	if c.IsSet(flagHeartbeat) && o.timing.Heartbeat == 0 {
		return o, usagef("--heartbeat must be greater than zero")
	}
	if c.IsSet(flagKillAfter) && o.timing.KillAfter == 0 {
		// Zero means "SIGKILL at once"; the lock package reads zero as
		// "default", so pass the smallest positive grace instead.
		o.timing.KillAfter = time.Nanosecond
	}
	if o.timing, err = validTiming(o.timing); err != nil {
		return o, err
	}
	o.noWait = c.Bool(flagNoWait)
	o.conflict = c.Int(flagConflict)
	if o.conflict < 0 || o.conflict > 255 {
		return o, usagef("--conflict-exit-code %d: an exit status is 0 to 255", o.conflict)
	}
	if c.IsSet(flagTimeout) && o.timeout == 0 {
		o.noWait = true // --timeout 0: do not wait at all, like flock -w 0
	}
	o.shared = c.Bool(flagShared)
	if c.IsSet(flagMaxHolders) {
		o.maxHolders = c.Int(flagMaxHolders)
		if o.maxHolders < 1 || o.maxHolders > lock.MaxHoldersLimit {
			return o, usagef("--max-holders %d: give a number of holders from 1 to %d", o.maxHolders, lock.MaxHoldersLimit)
		}
	}
	o.create = c.Bool(flagCreate)
	if o.create && o.backend.local {
		return o, usagef("--create-table needs --table, not --local")
	}
	return o, nil
}

// maxShortLeases is how many leases in a row may run short between being
// granted and the command's start before the run gives up: each is given
// back and taken again, and a machine that keeps starving us that long will
// not start the command safely.
const maxShortLeases = 3

// nestedOnOwnKey refuses a run started under another locked-run that would
// wait for its parent's own lock. The parent hands its command LOCKED_RUN_KEY
// and LOCKED_RUN_TABLE, which are also the variables of --key and --table,
// so a locked-run in that command with no --key of its own asks for the same
// key in the same place, and would wait for it forever.
func nestedOnOwnKey(o mainOptions) error {
	outer := os.Getenv("LOCKED_RUN_OWNER")
	if outer == "" || o.key != os.Getenv("LOCKED_RUN_KEY") {
		return nil
	}
	table := os.Getenv("LOCKED_RUN_TABLE")
	if (o.backend.local && table == "") || (!o.backend.local && o.backend.table == table) {
		return usagef("key %q is held by the locked-run that started this one (owner %s): this run would wait for it forever; give it a --key of its own", o.key, outer)
	}
	return nil
}

// runMain acquires the lock, runs the child under it and releases it.
func runMain(c *cli.Context, child []string) error {
	logger, err := newLogger(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	// The AWS configuration loads in the background while the options are
	// checked and the command, user and host looked up: on two cores, the
	// run starts as soon as the slower of the two is done, not after both.
	var pending *pendingClient
	if b, err := backendOf(c); err == nil && !b.local {
		loadCtx, cancelLoad := context.WithCancel(ctx)
		pending = loadClient(loadCtx, awsOptionsOf(c), logger)
		defer func() {
			cancelLoad()
			_, _ = pending.wait()
		}()
	}
	o, err := parseMain(c, child)
	if err != nil {
		return err
	}
	// A command that cannot run is refused before waiting for its lock:
	// nobody wants to queue behind a deploy only to learn of a typo.
	if _, err := runner.LookPath(child[0]); err != nil {
		return err
	}
	id := identity(o.command)
	locker, err := makeLocker(c, o.backend, o.timing, id, pending, logger)
	if err != nil {
		return err
	}
	if o.create {
		if err := createTable(ctx, locker, o.backend.table, logger); err != nil {
			return err
		}
	}

	// One relay for the whole run: while waiting, a signal cancels the
	// wait; once the child runs, it is forwarded to the child.
	sup := &supervisor{logger: logger}
	var stopRelay func()
	// Registered first, so it runs last: after the lock is released, a
	// child that died of a signal takes us with it, once the relay has
	// stopped catching that signal. Otherwise the relay is left running
	// to the exit, a few microseconds away: stopping it (giving each
	// signal back to the kernel, then the relay's goroutine its last
	// turn) took a fifth of a millisecond, and a signal that comes in
	// between is one the command, already gone, would not have seen either.
	defer func() {
		if sig := sup.diedOf(); sig != 0 {
			stopRelay()
			signals.Die(sig)
		}
	}()
	if caught, release := early.Caught(); caught != nil {
		// Go on from what has been caught since the program started.
		stopRelay = signals.RelayFrom(caught, release, sup.signal)
	} else {
		stopRelay = signals.Relay(sup.signal)
	}

	lease, err := sup.acquire(ctx, locker, o, logger)
	if err != nil {
		return err
	}
	logger = logger.With("key", o.key)
	logger.Info("acquired lock", "owner", lease.Owner(), "token", lease.Token())
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := lease.Release(rctx); err != nil {
			if errors.Is(err, lock.ErrLost) {
				logger.Warn("lock was no longer ours at release; left it alone", "error", err)
			} else {
				logger.Warn("could not release lock; it frees itself after the lease", "error", err)
			}
			return
		}
		logger.Info("released lock")
	}()

	env := append(os.Environ(),
		"LOCKED_RUN_KEY="+o.key,
		"LOCKED_RUN_OWNER="+lease.Owner(),
		fmt.Sprintf("LOCKED_RUN_FENCING_TOKEN=%d", lease.Token()),
	)
	if !o.backend.local {
		env = append(env, "LOCKED_RUN_TABLE="+o.backend.table)
	}
	// The runner's guardian, a second start of this program, was started
	// with the run (runWith), beside the option checks, the AWS
	// configuration and the wait for the lock, rather than after them; it
	// learns the tree only now. Without one, Start starts its own.
	guardian, _ := c.App.Metadata[metaGuardian].(*runner.Guardian)
	cfg := runner.Config{
		Args: child, Env: env, KillAfter: o.timing.KillAfter, Logger: logger.Named("runner"),
		// The owner id is unique to this run: what carries it in its
		// environment belongs to this run's tree.
		Marker:   "LOCKED_RUN_OWNER=" + lease.Owner(),
		Guardian: guardian,
	}
	if fs := lease.Files(); fs != nil {
		// A host-local lock is freed by the kernel the moment this process
		// dies; held by the guardian too, it lasts until the guardian has
		// killed what the command left running after a SIGKILL of ours.
		cfg.Hold = fs
	}
	return sup.runChild(ctx, lease, cfg)
}

// supervisor routes the signals locked-run receives: to the wait while the
// lock is awaited, to the child once it runs.
type supervisor struct {
	logger hclog.Logger

	mu         sync.Mutex
	cancelWait context.CancelFunc // non-nil while waiting
	proc       *runner.Process    // non-nil once the child runs
	caught     syscall.Signal     // first signal before the child started
	died       syscall.Signal     // the signal that killed the child
}

// diedOf returns the signal the child died of, or zero.
func (s *supervisor) diedOf() syscall.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.died
}

func (s *supervisor) signal(sig syscall.Signal) {
	s.mu.Lock()
	proc := s.proc
	switch {
	case proc != nil:
	case sig == syscall.SIGTSTP:
		// Ctrl-Z or kill -TSTP while waiting for the lock: stop, as the
		// command would have. The wait goes on once we are continued.
		s.mu.Unlock()
		s.logger.Debug("stopping until continued", "signal", sig.String())
		signals.Stop(sig)
		return
	case s.caught == 0:
		s.caught = sig
		if s.cancelWait != nil {
			s.cancelWait()
		}
	}
	s.mu.Unlock()
	if proc != nil {
		// Not under the mutex: deciding whether the child got the signal
		// already may take a moment.
		if err := proc.Signal(sig); err != nil {
			s.logger.Warn("could not forward signal", "signal", sig.String(), "error", err)
		}
	}
}

// interrupted returns the signal caught before the child started, if any.
func (s *supervisor) interrupted() syscall.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.caught
}

// acquire waits for the lock, giving up on a signal or --timeout.
func (s *supervisor) acquire(ctx context.Context, locker lock.Locker, o mainOptions, logger hclog.Logger) (*lock.Lease, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.cancelWait = cancel
	already := s.caught
	s.mu.Unlock()
	if already != 0 {
		cancel()
	}
	// --timeout goes to the lock, not to ctx: a holder that looks
	// stopped is watched past it (see lock.AcquireOptions.Timeout).
	waitCtx := ctx
	logger.Info("acquiring lock", "key", o.key)
	var lastHolder lock.Record
	opts := lock.AcquireOptions{
		NoWait:     o.noWait,
		Timeout:    o.timeout,
		Progress:   o.progress,
		Shared:     o.shared,
		MaxHolders: o.maxHolders,
		OnWait: func(w lock.Wait) {
			settleMemory()
			lastHolder = normalized(w.Record)
			logger.Info("waiting for lock", waitingFields(o.key, w)...)
		},
	}
	start := time.Now()
	lease, err := locker.Acquire(waitCtx, o.key, opts)
	for tries := 1; err == nil && lease.Remaining() < o.timing.Heartbeat && s.interrupted() == 0; tries++ {
		// Never start the child on a lease about to run out (we were
		// stopped or starved since it was granted): give it back and
		// take it again, a few times at most, as lock does.
		left := lease.Remaining()
		rctx, rcancel := context.WithTimeout(context.Background(), cleanupTimeout)
		_ = lease.Release(rctx)
		rcancel()
		if tries == maxShortLeases {
			lease, err = nil, fmt.Errorf("acquire %q: %w", o.key, &lock.SlowStoreError{Left: left, Heartbeat: o.timing.Heartbeat, Tries: tries})
			break
		}
		logger.Debug("lease ran short before the command started; acquiring again")
		lease, err = locker.Acquire(waitCtx, o.key, opts)
	}
	if err == nil {
		if sig := s.interrupted(); sig != 0 {
			// A signal arrived as the lock was granted: honour it, and
			// never start the child.
			rctx, rcancel := context.WithTimeout(context.Background(), cleanupTimeout)
			defer rcancel()
			_ = lease.Release(rctx)
			logger.Info("interrupted; command not started", "signal", sig.String())
			return nil, signalExit{128 + int(sig)}
		}
		s.mu.Lock()
		s.cancelWait = nil
		s.mu.Unlock()
		return lease, nil
	}
	if sig := s.interrupted(); sig != 0 {
		logger.Info("interrupted while waiting; command not started", "signal", sig.String())
		return nil, signalExit{128 + int(sig)}
	}
	var held *lock.HeldError
	switch {
	case errors.As(err, &held):
		return nil, conflictError{fmt.Errorf("lock %q is held by %s; not waiting (--no-wait)", o.key, describeHolders(normalized(held.Holder))), o.conflict}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && o.timeout > 0:
		return nil, conflictError{fmt.Errorf("gave up after waiting %s (--timeout) for lock %q held by %s",
			describeDuration(time.Since(start)), o.key, describeHolders(lastHolder)), o.conflict}
	}
	return nil, err
}

// runChild starts the child and supervises it until it exits, stopping it
// if the lease is lost. It returns childExit with the child's status, or
// an error wrapping lock.ErrLost.
func (s *supervisor) runChild(ctx context.Context, lease *lock.Lease, cfg runner.Config) error {
	childCtx, stop := context.WithCancel(ctx)
	defer stop()
	// After a Ctrl-Z, nothing renewed the lease while we were stopped:
	// the child resumes only if the lease has not run out meanwhile.
	var expired atomic.Bool
	cfg.MayContinue = func() bool {
		if lease.Valid() {
			return true
		}
		expired.Store(true)
		s.logger.Warn("lease ran out while stopped; stopping command", "kill_after", cfg.KillAfter.String())
		stop()
		return false
	}
	// Start under the mutex: a signal either arrived before (the child is
	// never started) or is forwarded to the child; none falls in between.
	s.mu.Lock()
	if sig := s.caught; sig != 0 {
		s.mu.Unlock()
		s.logger.Info("interrupted; command not started", "signal", sig.String())
		return signalExit{128 + int(sig)}
	}
	proc, err := runner.Start(childCtx, cfg)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.proc = proc
	s.mu.Unlock()
	s.logger.Info("started command", "pid", proc.Pid())
	settle := time.AfterFunc(settleAfter, settleMemory)
	defer settle.Stop()

	select {
	case <-proc.Done():
	case <-lease.Lost():
		// Stop the child now: the lease is declared lost early enough that
		// SIGTERM, --kill-after and SIGKILL all happen before any other
		// holder could take the lock.
		s.logger.Warn("lock lost; stopping command", "kill_after", cfg.KillAfter.String())
		stop()
		<-proc.Done()
	}
	res := proc.Wait()
	if res.Stopped {
		if lerr := lease.Err(); lerr != nil {
			return lerr
		}
		if expired.Load() {
			return fmt.Errorf("hold %q: %w: the lease ran out while locked-run was stopped", lease.Key(), lock.ErrLost)
		}
	}
	s.logger.Info("command exited", "status", res.Status())
	if res.Signal != 0 {
		s.mu.Lock()
		s.died = res.Signal
		s.mu.Unlock()
	}
	return childExit{res.Status()}
}

// settleAfter is how long the command runs before the wrapper lowers
// its garbage collector's target (settleMemory): long enough that a
// command that ends at once never pays for a collection, short next to
// the heartbeat, which is what allocates while holding.
const settleAfter = time.Second

// waitingFields are the fields of a "waiting for lock" line: the holder
// (the first of several, with their count), then this run's place in the
// line and who is just ahead of it, then how long it has waited. A key
// with one exclusive holder and no line gives the fields it always has.
func waitingFields(key string, w lock.Wait) []any {
	h := normalized(w.Record)
	f := []any{"key", key, "owner", h.Owner, "host", h.Host, "pid", h.PID,
		"command", h.Command, "since", since(h.Acquired)}
	if n := len(holdersOf(h)); n > 1 || h.Shared {
		f = append(f, "holders", n, "kind", "shared")
		if h.MaxHolders > 0 {
			f = append(f, "max_holders", h.MaxHolders)
		}
	}
	if w.Position > 0 {
		f = append(f, "position", w.Position, "of", max(len(h.Line), w.Position))
		if p := w.Position; p >= 2 && p-2 < len(h.Line) {
			a := h.Line[p-2]
			f = append(f, "ahead", fmt.Sprintf("%s (host %s, pid %d, %s)", a.Owner, a.Host, a.PID, kindOf(a.Shared, a.MaxHolders)))
		}
	}
	return append(f, "waited", describeDuration(w.Waited))
}

// since formats a holder's acquisition time for the log; the holder's wall
// clock, shown and never trusted.
func since(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}
