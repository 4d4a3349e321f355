//go:build linux || darwin

package lock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// localSchema marks the files written by this backend.
const localSchema = "locked-run/1"

// localPrefix and localSuffix frame every lock file name, so List can find
// them among other files in a shared directory such as /tmp.
const (
	localPrefix = "locked-run."
	localSuffix = ".lock"
)

// LocalConfig configures a Local backend.
type LocalConfig struct {
	// Dir is the directory holding one lock file per key. Empty means
	// DefaultLocalDir().
	Dir string
	// Identity is written into the lock file for waiters and status.
	Identity Identity
	// Clock times progress reports while waiting; nil means SystemClock().
	Clock Clock
	// Logger receives debug logs; nil means a null logger.
	Logger hclog.Logger
}

// Local is the host-local backend: an exclusive flock(2) on a file per key.
// The kernel releases the lock when the holder's file descriptor closes, so
// a crashed holder frees its key at once and a Lease from Local is never
// lost. The file also keeps the key's fencing counter and a description of
// the holder. Lock descriptors are close-on-exec: children never inherit them.
type Local struct {
	dir    string
	id     Identity
	clock  Clock
	logger hclog.Logger
}

// DefaultLocalDir returns $XDG_RUNTIME_DIR when set, and the temp directory
// otherwise.
func DefaultLocalDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return d
	}
	return os.TempDir()
}

// NewLocal returns a Local backend keeping its files in cfg.Dir, which must
// exist.
func NewLocal(cfg LocalConfig) (*Local, error) {
	if cfg.Dir == "" {
		cfg.Dir = DefaultLocalDir()
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	fi, err := os.Stat(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("%w: lock directory: %w", ErrInvalidConfig, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: lock directory %s is not a directory", ErrInvalidConfig, cfg.Dir)
	}
	return &Local{dir: cfg.Dir, id: cfg.Identity, clock: cfg.Clock, logger: cfg.Logger}, nil
}

// LocalFileName returns the name of the lock file of key: a readable part
// made of the key's safe characters, then a hash of the whole key, so that
// two keys never share a file and any key fits in a file name.
func LocalFileName(key string) string {
	var b strings.Builder
	for _, r := range key {
		if b.Len() >= 64 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(key))
	return localPrefix + b.String() + "." + hex.EncodeToString(sum[:8]) + localSuffix
}

// Path returns the path of the lock file of key.
func (l *Local) Path(key string) string { return filepath.Join(l.dir, LocalFileName(key)) }

// localFile is the JSON content of a lock file.
type localFile struct {
	Schema   string    `json:"schema"`
	Key      string    `json:"key"`
	Owner    string    `json:"owner,omitempty"`
	Host     string    `json:"host,omitempty"`
	PID      int       `json:"pid,omitempty"`
	User     string    `json:"user,omitempty"`
	Command  string    `json:"command,omitempty"`
	Acquired time.Time `json:"acquired_at,omitzero"`
	Token    uint64    `json:"fencing_token"`
}

func (f localFile) record() Record {
	return Record{Key: f.Key, Owner: f.Owner, Host: f.Host, PID: f.PID, User: f.User,
		Command: f.Command, Acquired: f.Acquired, Token: f.Token}
}

// open opens (creating if needed) the lock file of key, refusing to follow
// a symlink planted in a shared directory.
func (l *Local) open(key string, flag int) (*os.File, error) {
	f, err := os.OpenFile(l.Path(key), flag|unix.O_NOFOLLOW|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	return f, nil
}

// Acquire takes the flock of key. See Locker.
func (l *Local) Acquire(ctx context.Context, key string, opts AcquireOptions) (*Lease, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("acquire %q: %w", key, err)
	}
	for {
		f, err := l.open(key, os.O_RDWR)
		if err != nil {
			return nil, fmt.Errorf("acquire %q: %w", key, err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder, _ := readLocalFile(f)
			holder.Key = key
			if opts.NoWait {
				f.Close()
				return nil, &HeldError{Key: key, Holder: holder.record()}
			}
			var abandoned bool
			if abandoned, err = l.wait(ctx, f, holder.record(), opts); abandoned {
				return nil, fmt.Errorf("acquire %q: %w", key, err)
			}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("acquire %q: %w", key, err)
		}
		// A file unlinked and recreated while we waited (a tmp cleaner, a
		// user) would let a newcomer lock the new file while we hold the
		// old one: only a lock on the file now at the path counts.
		if same, err := l.isCurrent(f, key); err != nil || !same {
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("acquire %q: %w", key, err)
			}
			continue
		}
		return l.take(f, key)
	}
}

// wait blocks in flock(LOCK_EX) until the lock is ours or ctx ends,
// calling opts.OnWait at the start and every opts.Progress. When ctx ends
// first, f is closed (now or later) and must not be used by the caller.
func (l *Local) wait(ctx context.Context, f *os.File, holder Record, opts AcquireOptions) (abandoned bool, err error) {
	start := l.clock.Now()
	if opts.OnWait != nil {
		opts.OnWait(holder, 0)
	}
	// flock(2) cannot be cancelled, so it runs in its own goroutine. If ctx
	// ends first, that goroutine is left to finish and then closes the file,
	// which drops the lock if it got it: nothing is left held.
	locked := make(chan error)
	abandon := make(chan struct{})
	go func() {
		err := flockRetry(int(f.Fd()))
		select {
		case locked <- err:
		case <-abandon:
			f.Close()
		}
	}()
	var tick <-chan time.Time // nil, never ready, without progress reports
	var timer Timer
	if opts.Progress > 0 && opts.OnWait != nil {
		timer = l.clock.NewTimer(opts.Progress)
		defer timer.Stop()
		tick = timer.C()
	}
	for {
		select {
		case err := <-locked:
			return false, err
		case <-ctx.Done():
			close(abandon)
			return true, ctx.Err()
		case <-tick:
			cur, _ := readLocalFile(f)
			cur.Key = holder.Key
			opts.OnWait(cur.record(), l.clock.Now().Sub(start))
			timer.Reset(opts.Progress)
		}
	}
}

// flockRetry takes an exclusive flock, retrying on EINTR (the Go runtime's
// own signals interrupt blocking system calls).
func flockRetry(fd int) error {
	for {
		err := unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// isCurrent reports whether f is still the file at the path of key.
func (l *Local) isCurrent(f *os.File, key string) (bool, error) {
	var held, now unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &held); err != nil {
		return false, err
	}
	if err := unix.Lstat(l.Path(key), &now); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	return held.Dev == now.Dev && held.Ino == now.Ino, nil
}

// take writes this holder's record with the next fencing token into the
// locked file f and returns the lease.
func (l *Local) take(f *os.File, key string) (*Lease, error) {
	prev, err := readLocalFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("acquire %q: %w", key, err)
	}
	rec := localFile{
		Schema: localSchema, Key: key, Owner: NewOwnerID(l.id),
		Host: l.id.Host, PID: l.id.PID, User: l.id.User, Command: l.id.Command,
		Acquired: l.clock.Now().UTC().Round(0), Token: prev.Token + 1,
	}
	if err := writeLocalFile(f, rec); err != nil {
		f.Close()
		return nil, fmt.Errorf("acquire %q: %w", key, err)
	}
	l.logger.Debug("acquired local lock", "key", key, "owner", rec.Owner, "token", rec.Token, "path", f.Name())
	return newLease(rec.record(), func(ctx context.Context) error {
		defer f.Close()
		// Clear the holder but keep the counter, so tokens never go back.
		free := localFile{Schema: localSchema, Key: key, Token: rec.Token}
		if err := writeLocalFile(f, free); err != nil {
			return fmt.Errorf("release %q: %w", key, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
			return fmt.Errorf("release %q: %w", key, err)
		}
		return nil
	}), nil
}

// readLocalFile reads the record in f. An empty file is a key never held.
func readLocalFile(f *os.File) (localFile, error) {
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	if err != nil {
		return localFile{}, fmt.Errorf("read lock file %s: %w", f.Name(), err)
	}
	var lf localFile
	if len(data) == 0 {
		return lf, nil
	}
	if err := json.Unmarshal(data, &lf); err != nil || lf.Schema != localSchema {
		return localFile{}, fmt.Errorf("lock file %s is not a locked-run lock file (remove it if nothing holds it)", f.Name())
	}
	return lf, nil
}

// writeLocalFile replaces the content of f with rec in one write, so a
// reader sees the old record or the new one.
func writeLocalFile(f *os.File, rec localFile) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if _, err := f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("write lock file: %w", err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		return fmt.Errorf("write lock file: %w", err)
	}
	return nil
}

// Status returns the record of key: held when some process has the flock.
func (l *Local) Status(ctx context.Context, key string) (Record, error) {
	if err := ValidateKey(key); err != nil {
		return Record{}, err
	}
	rec, err := l.status(l.Path(key))
	if err != nil {
		return Record{}, fmt.Errorf("status %q: %w", key, err)
	}
	rec.Key = key
	return rec, nil
}

func (l *Local) status(path string) (Record, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, nil
	}
	if err != nil {
		return Record{}, err
	}
	defer f.Close()
	lf, err := readLocalFile(f)
	if err != nil {
		return Record{}, err
	}
	rec := lf.record()
	// A shared lock succeeds only when nobody holds the exclusive one.
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	switch {
	case err == nil:
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		free := Record{Key: rec.Key, Token: rec.Token}
		return free, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		if rec.Owner == "" {
			// Taken a moment ago; the holder has not written its record yet.
			rec.Owner = "unknown"
		}
		return rec, nil
	default:
		return Record{}, err
	}
}

// List returns the records of every held key in the directory.
func (l *Local) List(ctx context.Context) ([]Record, error) {
	paths, err := filepath.Glob(filepath.Join(l.dir, localPrefix+"*"+localSuffix))
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	var out []Record
	for _, p := range paths {
		rec, err := l.status(p)
		if err != nil {
			// One unreadable or foreign file must not hide the others.
			l.logger.Debug("skipping lock file", "path", p, "error", err)
			continue
		}
		if rec.Held() {
			out = append(out, rec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ErrCannotBreak means a host-local lock cannot be broken from outside: the
// kernel holds it for as long as the holding process lives.
var ErrCannotBreak = errors.New("a host-local lock cannot be broken; it is freed when its holder exits")

// ForceRelease cannot break a flock held by another process; it returns
// ErrCannotBreak naming the holder, or ErrNotHeld when the key is free.
func (l *Local) ForceRelease(ctx context.Context, key string) (Record, error) {
	rec, err := l.Status(ctx, key)
	if err != nil {
		return Record{}, err
	}
	if !rec.Held() {
		return rec, fmt.Errorf("release %q: %w", key, ErrNotHeld)
	}
	return rec, fmt.Errorf("release %q: held by %s: %w (stop that process)", key, rec.Describe(), ErrCannotBreak)
}
