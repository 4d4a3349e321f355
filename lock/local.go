//go:build linux || darwin

package lock

import (
	"bytes"
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
	// DefaultLocalDir(), which is created if missing and must be private:
	// a directory (not a symlink) owned by this user, mode 0700. A Dir
	// given here may be shared: see Local.
	Dir string
	// Identity is written into the lock file for waiters and status.
	Identity Identity
	// Clock times progress reports while waiting; nil means SystemClock().
	Clock Clock
	// Logger receives debug logs; nil means a null logger.
	Logger hclog.Logger
}

// Local is the host-local backend: a flock(2) on a file per key, LOCK_EX
// for an exclusive holder and LOCK_SH for a shared one (AcquireOptions.
// IsShared), which also holds one of N slot files with --max-holders N; see
// local_shared.go for the files of shared holders and how N is agreed.
// Waiters poll with LOCK_NB: whoever tries first after a release gets the
// key, so there is no line and no FIFO order (Wait.Position stays zero and
// Record.Line empty), and an exclusive waiter can be overtaken by shared
// runs while shared holders keep overlapping.
// The kernel releases the lock when the holder's file descriptor closes, so
// a crashed holder frees its key at once. The file also keeps the key's
// fencing counter and a description of the holder. Lock descriptors are
// close-on-exec: children never inherit them.
//
// Who can take a key is who can open its file, as with flock(1): a lock
// is held on the open file, and the kernel does not ask for write access.
// The default directory is therefore private (owned by the user, mode
// 0700, files 0600): another user can neither hold nor block a key. Users
// who want to share keys say so with a directory they share, such as one
// of a common group with the setgid bit and mode 2770; files created there
// are 0660, so every member can take them, and nobody else.
//
// A lock file is used only if it is a regular file with one link (and, in
// the private directory, owned by the user); after the flock is taken the
// file must still be the one at its path, and a holder checks that again
// every localCheck, closing Lost if the file was removed or replaced (a
// file unlinked while held would let a newcomer lock a new one).
type Local struct {
	dir     string
	private bool // the default directory: files must be ours
	id      Identity
	clock   Clock
	logger  hclog.Logger
}

// localCheck is how often a holder checks that its lock file is still the
// one at its path. Removing it is a mistake (a tmp cleaner, a person) that
// lets a second process lock a new file: a second is short next to any
// --kill-after, and costs one fstat and one lstat.
const localCheck = time.Second

// DefaultLocalDir returns this user's lock directory: the same path in
// every context of the user on this host (login shell, cron, sudo -u, a
// systemd service with PrivateTmp), whatever the environment says. See
// defaultLocalDir for the choice per platform.
func DefaultLocalDir() string { return defaultLocalDir(os.Geteuid()) }

// NewLocal returns a Local backend keeping its files in cfg.Dir. The
// default directory is created if missing and checked to be private; a
// given one must exist.
func NewLocal(cfg LocalConfig) (*Local, error) {
	private := cfg.Dir == ""
	if private {
		cfg.Dir = DefaultLocalDir()
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if private {
		if err := ensurePrivateDir(cfg.Dir); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	} else {
		fi, err := os.Stat(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("%w: lock directory: %w", ErrInvalidConfig, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%w: lock directory %s is not a directory", ErrInvalidConfig, cfg.Dir)
		}
	}
	cfg.Identity.Command = truncateCommand(cfg.Identity.Command)
	return &Local{dir: cfg.Dir, private: private, id: cfg.Identity, clock: cfg.Clock, logger: cfg.Logger}, nil
}

// ensurePrivateDir creates dir (mode 0700) if it is missing, and checks
// that it is a directory, not a symlink, owned by this user, and not open
// to anyone else. A private directory we own with a wider mode is narrowed.
func ensurePrivateDir(dir string) error {
	uid := os.Geteuid()
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create lock directory %s: %w (pass --lock-dir)", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("lock directory %s: %w", dir, err)
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("lock directory %s is a symlink; remove it (someone may have planted it)", dir)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("lock directory %s is not a directory; remove it", dir)
	case int(st.Uid) != uid:
		return fmt.Errorf("lock directory %s belongs to uid %d, not to you (uid %d), so it could be used against you: have root remove it, or pass --lock-dir", dir, st.Uid, uid)
	case st.Mode&0o777 != 0o700:
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("lock directory %s: mode %o, and cannot make it 0700: %w", dir, st.Mode&0o777, err)
		}
	}
	return nil
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
	// Shared and MaxHolders describe a shared holder; they are set only
	// in a holder file (see local_shared.go).
	Shared     bool `json:"shared,omitempty"`
	MaxHolders int  `json:"max_holders,omitempty"`
}

func (f localFile) record() Record {
	return Record{Key: f.Key, Owner: f.Owner, Host: f.Host, PID: f.PID, User: f.User,
		Command: f.Command, Acquired: f.Acquired, Token: f.Token, Shared: f.Shared, MaxHolders: f.MaxHolders}
}

// open opens (creating if needed) the lock file of key for reading and
// writing, refusing to follow a symlink or to block on a FIFO planted in a
// shared directory, and checks what it opened (checkFile).
func (l *Local) open(key string) (*os.File, error) { return l.openPath(l.Path(key)) }

// openPath opens (creating if needed) the file at path with the checks of
// open: a lock file, a slot file, the tokens file or a holder file.
func (l *Local) openPath(path string) (*os.File, error) {
	const flags = os.O_RDWR | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	f, err := os.OpenFile(path, flags|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		// Created: 0600 in the private directory; in a shared one, open
		// to the directory's group when it is group-writable, whatever
		// the umask.
		if mode := l.fileMode(); mode != 0o600 {
			if err := f.Chmod(mode); err != nil {
				f.Close()
				return nil, fmt.Errorf("open lock file: %w", err)
			}
		}
	case errors.Is(err, os.ErrExist):
		f, err = os.OpenFile(path, flags, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := l.checkFile(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// fileMode is the mode of new lock files: 0660 in a group-writable shared
// directory, 0600 otherwise.
func (l *Local) fileMode() os.FileMode {
	if l.private {
		return 0o600
	}
	fi, err := os.Stat(l.dir)
	if err == nil && fi.Mode().Perm()&0o020 != 0 {
		return 0o660
	}
	return 0o600
}

// checkFile refuses a lock file that is not a regular file, has more than
// one link (a hard link to a file elsewhere) or none (removed), or, in the
// private directory, belongs to someone else.
func (l *Local) checkFile(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("lock file %s: %w", f.Name(), err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("lock file %s is not a regular file; remove it", f.Name())
	case st.Nlink != 1:
		return fmt.Errorf("lock file %s has %d links, want 1; remove it", f.Name(), st.Nlink)
	case l.private && int(st.Uid) != os.Geteuid():
		return fmt.Errorf("lock file %s belongs to uid %d, not to you; remove it", f.Name(), st.Uid)
	}
	return nil
}

// Acquire takes the flock of key, exclusive or shared as opts say. See
// Locker. While the key is held it tries again with LOCK_NB, at intervals
// growing from 5 ms to localPollMax, so that a wait ends the moment ctx
// does and leaves no thread behind. A shared run, or one that gives
// MaxHolders, whose N differs from that of the key's live shared holders
// gets a *MaxHoldersError, unwrapped.
func (l *Local) Acquire(ctx context.Context, key string, opts AcquireOptions) (*Lease, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("acquire %q: %w", key, err)
	}
	var (
		start        time.Time
		waiting      bool
		nextProgress time.Time
		pause        = localPollMin
		unknownSince time.Time
	)
	for {
		var (
			lease *Lease
			busy  Record
			err   error
		)
		if opts.IsShared() {
			lease, busy, err = l.tryShared(ctx, key, opts)
		} else {
			lease, busy, err = l.tryExclusive(key, opts)
		}
		if err != nil {
			var mh *MaxHoldersError
			if errors.As(err, &mh) {
				return nil, err
			}
			return nil, fmt.Errorf("acquire %q: %w", key, err)
		}
		if lease != nil {
			return lease, nil
		}
		if !busy.Held() {
			// The file changed under us (removed, replaced): at once again.
			continue
		}
		busy.Key = key
		now := l.clock.Now()
		if busy.Owner == unknownOwner || l.holderGone(busy) {
			// Held by nobody we can name yet (or by a holder whose
			// process is gone: its record outlives it when it is
			// killed): a run between its flock and its record or
			// registration, or a reader (status, list, another run's
			// look at the holders) holding LOCK_SH for the few system
			// calls of its look. Each lasts a moment; a --no-wait run
			// must not fail on one, nor a waiter's first line name
			// nobody. Look again first.
			if unknownSince.IsZero() {
				unknownSince = now
			}
			if now.Sub(unknownSince) < unknownPatience {
				if err := sleep(ctx, l.clock, time.Millisecond); err != nil {
					return nil, fmt.Errorf("acquire %q: %w", key, err)
				}
				continue
			}
		} else {
			unknownSince = time.Time{}
		}
		if opts.NoWait {
			return nil, &HeldError{Key: key, Holder: busy}
		}
		if !waiting {
			start = now
		}
		if opts.OnWait != nil && (!waiting || opts.Progress > 0 && !now.Before(nextProgress)) {
			// Local waiters have no line: Position stays zero.
			opts.OnWait(Wait{Record: busy, Waited: now.Sub(start)})
			nextProgress = now.Add(opts.Progress)
		}
		waiting = true
		if err := sleep(ctx, l.clock, pause); err != nil {
			return nil, fmt.Errorf("acquire %q: %w", key, err)
		}
		pause = min(pause*3/2, localPollMax)
	}
}

// tryExclusive tries once to take the flock of key exclusively. It returns
// the lease, or the record of who holds the key (not Held when the file
// was replaced meanwhile and the caller should try again at once).
func (l *Local) tryExclusive(key string, opts AcquireOptions) (*Lease, Record, error) {
	f, err := l.open(key)
	if err != nil {
		return nil, Record{}, err
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		// A file unlinked or replaced between our open and our
		// flock would let a newcomer lock the new file while we
		// hold the old one: only a lock on the file now at the path
		// counts.
		same, err := l.isCurrent(f, key)
		if err != nil {
			f.Close()
			return nil, Record{}, err
		}
		if !same {
			f.Close()
			return nil, Record{}, nil
		}
		lease, err := l.take(f, key)
		return lease, Record{}, err
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, Record{}, err
	}
	holder, _ := readLocalFile(f)
	f.Close()
	holder.Key = key
	if holder.Owner != "" {
		rec := holder.record()
		rec.Holders = []Record{rec}
		return nil, rec, nil
	}
	// Shared holders (or an exclusive one that has not written its
	// record yet).
	rec := sharedRecordOf(key, l.liveHolders(key))
	if err := checkMaxHolders(key, rec, opts); err != nil {
		return nil, Record{}, err
	}
	if !rec.Held() {
		rec = Record{Key: key, Owner: unknownOwner, Token: holder.Token}
	}
	return nil, rec, nil
}

// holderGone reports whether rec names an exclusive holder on this host
// whose process no longer exists: its record stayed in the lock file
// because it was killed, and the flock that made the key look held is
// someone else's, for a moment. A holder in another PID namespace also
// looks gone; after unknownPatience it is reported as it is.
func (l *Local) holderGone(rec Record) bool {
	if rec.Shared || rec.PID <= 0 || rec.Host == "" || rec.Host != l.id.Host {
		return false
	}
	return errors.Is(unix.Kill(rec.PID, 0), unix.ESRCH)
}

// unknownOwner is the owner of a record of a key whose flock is held by
// nobody we can name: see unknownPatience.
const unknownOwner = "unknown"

// unknownPatience is how long Acquire looks again, every millisecond,
// while the key is held by nobody it can name, before it reports the key
// held (by "unknown") or starts waiting. Those moments last microseconds;
// one that lasts this long is a holder of its own (another program's
// flock, or a run stopped in that moment).
const unknownPatience = 100 * time.Millisecond

// localPollMin and localPollMax bound the pause between two tries of a
// waiter. A released key is taken within localPollMax; a waiter costs at
// most 20 open+flock+close a second, a few microseconds of CPU each.
const (
	localPollMin = 5 * time.Millisecond
	localPollMax = 50 * time.Millisecond
)

// isCurrent reports whether f is still the file at the path of key, with
// one link.
func (l *Local) isCurrent(f *os.File, key string) (bool, error) {
	return isCurrentPath(f, l.Path(key))
}

// isCurrentPath reports whether f is still the file at path, with one link.
func isCurrentPath(f *os.File, path string) (bool, error) {
	var held, now unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &held); err != nil {
		return false, err
	}
	if held.Nlink != 1 {
		return false, nil
	}
	if err := unix.Lstat(path, &now); err != nil {
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
	if prev.Token >= MaxToken {
		f.Close()
		return nil, fmt.Errorf("acquire %q: %w", key, ErrTokenExhausted)
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
	stop := make(chan struct{})
	done := make(chan struct{})
	var lease *Lease
	held := rec.record()
	held.Holders = []Record{rec.record()}
	lease = newLease(held, func(ctx context.Context) error {
		close(stop)
		<-done
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
	})
	lease.file = f
	go l.watch(lease, []watched{{f, l.Path(key)}}, key, stop, done)
	return lease, nil
}

// A watched file is a locked file and the path it must stay at.
type watched struct {
	f    *os.File
	path string
}

// watch closes the lease's Lost when one of its locked files is no longer
// the one at its path, checking every localCheck until stop is closed. It
// closes done when it returns.
func (l *Local) watch(lease *Lease, files []watched, key string, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := l.clock.NewTimer(localCheck)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C():
		}
		for _, w := range files {
			if same, err := isCurrentPath(w.f, w.path); err == nil && !same {
				lease.markLost(fmt.Errorf("hold %q: %w: the lock file %s was removed or replaced", key, ErrLost, w.path))
				return
			}
		}
		t.Reset(localCheck)
	}
}

// maxLocalFile bounds what is read of a lock file. Records written now are
// a few KiB (the command is cut to MaxCommandBytes); versions before that
// stored any command line, and a record over the old 1 MiB reading limit
// made the key unusable until the file was removed by hand.
const maxLocalFile = 64 << 20

// readLocalFile reads the record in f. An empty file is a key never held.
func readLocalFile(f *os.File) (localFile, error) {
	data, err := io.ReadAll(io.NewSectionReader(f, 0, maxLocalFile))
	if err != nil {
		return localFile{}, fmt.Errorf("read lock file %s: %w", f.Name(), err)
	}
	var lf localFile
	if len(data) == 0 {
		return lf, nil
	}
	// The first JSON value is the record: a release writes the shorter
	// free record over the held one and then truncates, and a holder
	// killed between the two leaves the held record's tail after it.
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&lf); err != nil || lf.Schema != localSchema {
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

// Status returns the record of key: held when some process has the flock,
// with every shared holder in Holders.
func (l *Local) Status(ctx context.Context, key string) (Record, error) {
	if err := ValidateKey(key); err != nil {
		return Record{}, err
	}
	names, err := l.names()
	if err != nil {
		return Record{}, fmt.Errorf("status %q: %w", key, err)
	}
	rec, err := l.status(l.Path(key), names)
	if err != nil {
		return Record{}, fmt.Errorf("status %q: %w", key, err)
	}
	rec.Key = key
	for i := range rec.Holders {
		rec.Holders[i].Key = key
	}
	return rec, nil
}

// names returns the names of the files in the lock directory. It reads the
// directory rather than glob: --lock-dir may contain [, * or ?.
func (l *Local) names() ([]string, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// status returns the record of the lock file at path; names are the files
// of the directory, among which its shared holders' files.
func (l *Local) status(path string, names []string) (Record, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, nil
	}
	if err != nil {
		return Record{}, err
	}
	defer f.Close()
	if err := l.checkFile(f); err != nil {
		return Record{}, err
	}
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
		if holders := l.liveHoldersIn(path, names, false); len(holders) > 0 {
			return sharedRecordOf(rec.Key, holders), nil
		}
		free := Record{Key: rec.Key, Token: rec.Token}
		return free, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		if rec.Owner == "" {
			// Taken a moment ago; the holder has not written its record yet.
			rec.Owner = unknownOwner
		}
		rec.Holders = []Record{rec}
		return rec, nil
	default:
		return Record{}, err
	}
}

// List returns the records of every held key in the directory.
func (l *Local) List(ctx context.Context) ([]Record, error) {
	names, err := l.names()
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	var out []Record
	for _, name := range names {
		if !strings.HasPrefix(name, localPrefix) || !strings.HasSuffix(name, localSuffix) {
			continue
		}
		p := filepath.Join(l.dir, name)
		rec, err := l.status(p, names)
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
