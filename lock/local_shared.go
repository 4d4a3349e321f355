//go:build linux || darwin

package lock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Shared holders of a host-local key (--shared, --max-holders N).
//
// Every file of a key is named after its lock file, KEYFILE below, and only
// the lock file itself ends in ".lock", so List never mistakes the others
// for keys:
//
//   - KEYFILE: flock LOCK_EX by an exclusive holder, LOCK_SH by each shared
//     one, so the kernel keeps the two kinds apart. It keeps the fencing
//     counter, and an exclusive holder's record as before.
//   - KEYFILE.maxN-I (I from 1 to N): the slots of a semaphore of N. A
//     holder with --max-holders N holds one of them LOCK_EX besides its
//     LOCK_SH on KEYFILE, so at most N hold at once. The name carries N:
//     runs that disagree on N use other files, and the check below stops
//     them.
//   - KEYFILE.holder-HASH: one per shared holder, locked LOCK_EX by it for
//     as long as it holds, with its record (owner, host, pid, command,
//     acquired, token, N). Removed at release; one that is not locked is a
//     dead holder's and is ignored (and removed by the next shared run).
//   - KEYFILE.tokens: a short mutex (LOCK_EX, taken with LOCK_NB and polled)
//     under which a shared run reads the live holders, checks their N,
//     counts the fencing counter up in KEYFILE and creates its holder
//     file. Two runs with different N both register under it, one after
//     the other, so the later one always sees the earlier one and gives
//     back: they can never both hold.
//
// Every one of them is opened with the checks of a lock file (O_NOFOLLOW,
// regular, one link, owned by the user in the private directory), and a
// holder checks every localCheck that KEYFILE and its slot are still the
// files at their paths.

// holderPrefix is the start of the names of the holder files of the lock
// file at path.
func holderPrefix(path string) string { return filepath.Base(path) + ".holder-" }

// holderPath returns the path of the holder file of owner.
func holderPath(path, owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return path + ".holder-" + hex.EncodeToString(sum[:8])
}

// slotPath returns the path of slot i of a semaphore of n on the lock file
// at path.
func slotPath(path string, n, i int) string { return fmt.Sprintf("%s.max%d-%d", path, n, i) }

// tokensPath returns the path of the mutex file of the lock file at path.
func tokensPath(path string) string { return path + ".tokens" }

// liveHolders returns the records of the live shared holders of key.
func (l *Local) liveHolders(key string) []localFile {
	names, err := l.names()
	if err != nil {
		return nil
	}
	return l.liveHoldersIn(l.Path(key), names, false)
}

// liveHoldersIn returns the records in the holder files of the lock file at
// path that a live holder has locked; names are the directory's files. With
// clean, which the caller may ask only while it holds the tokens mutex, the
// files of dead holders are removed.
func (l *Local) liveHoldersIn(path string, names []string, clean bool) []localFile {
	prefix := holderPrefix(path)
	var out []localFile
	for _, name := range names {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		p := filepath.Join(filepath.Dir(path), name)
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if err := l.checkFile(f); err != nil {
			l.logger.Debug("skipping holder file", "path", p, "error", err)
			f.Close()
			continue
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		switch {
		case err == nil:
			// Nobody holds it: its holder is gone.
			if clean {
				if same, _ := isCurrentPath(f, p); same {
					_ = os.Remove(p)
				}
			}
			_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		case errors.Is(err, unix.EWOULDBLOCK):
			if lf, err := readLocalFile(f); err == nil && lf.Owner != "" {
				lf.Shared = true
				out = append(out, lf)
			}
		}
		f.Close()
	}
	return out
}

// sharedRecordOf returns the record of key held by the shared holders in
// holders: the earliest first, all of them in Holders. Not Held when
// holders is empty.
func sharedRecordOf(key string, holders []localFile) Record {
	if len(holders) == 0 {
		return Record{Key: key}
	}
	recs := make([]Record, len(holders))
	for i, h := range holders {
		recs[i] = h.record()
		recs[i].Key = key
		recs[i].Shared = true
	}
	sort.SliceStable(recs, func(i, j int) bool {
		if !recs[i].Acquired.Equal(recs[j].Acquired) {
			return recs[i].Acquired.Before(recs[j].Acquired)
		}
		return recs[i].Token < recs[j].Token
	})
	top := recs[0]
	top.Holders = recs
	return top
}

// checkMaxHolders returns a *MaxHoldersError when a run with opts may not
// join the shared holders in rec: it is shared or gave --max-holders, and
// a holder uses another N. An exclusive run without --max-holders is never
// compared.
func checkMaxHolders(key string, rec Record, opts AcquireOptions) error {
	if !opts.IsShared() && opts.MaxHolders == 0 {
		return nil
	}
	for _, h := range rec.Holders {
		if h.Shared && h.MaxHolders != opts.MaxHolders {
			return &MaxHoldersError{Key: key, InForce: h.MaxHolders, Asked: opts.MaxHolders}
		}
	}
	return nil
}

// lockedFiles closes a set of locked files, last first, unlocking each.
type lockedFiles []*os.File

func (fs lockedFiles) giveBack() {
	for i := len(fs) - 1; i >= 0; i-- {
		_ = unix.Flock(int(fs[i].Fd()), unix.LOCK_UN)
		fs[i].Close()
	}
}

// tryShared tries once to take key as a shared holder: LOCK_SH on its lock
// file, a slot when opts.MaxHolders is given, then registration under the
// tokens mutex. It returns the lease, or the record of who holds the key
// (not Held when the file was replaced meanwhile and the caller should try
// again at once). Nothing is left locked unless a lease is returned.
func (l *Local) tryShared(ctx context.Context, key string, opts AcquireOptions) (*Lease, Record, error) {
	path := l.Path(key)
	f, err := l.openPath(path)
	if err != nil {
		return nil, Record{}, err
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		// An exclusive holder.
		holder, _ := readLocalFile(f)
		f.Close()
		rec := holder.record()
		rec.Key = key
		if rec.Owner == "" {
			rec.Owner = unknownOwner
		}
		rec.Holders = []Record{rec}
		return nil, rec, nil
	}
	if err != nil {
		f.Close()
		return nil, Record{}, err
	}
	held := lockedFiles{f}
	if same, err := isCurrentPath(f, path); err != nil || !same {
		held.giveBack()
		return nil, Record{}, err
	}
	names, err := l.names()
	if err != nil {
		held.giveBack()
		return nil, Record{}, err
	}
	// Another N in force: say so now rather than wait for a slot.
	others := sharedRecordOf(key, l.liveHoldersIn(path, names, false))
	if err := checkMaxHolders(key, others, opts); err != nil {
		held.giveBack()
		return nil, Record{}, err
	}
	var slot watched
	if n := opts.MaxHolders; n > 0 {
		for i := 1; i <= n && slot.f == nil; i++ {
			sp := slotPath(path, n, i)
			sf, err := l.openPath(sp)
			if err != nil {
				held.giveBack()
				return nil, Record{}, err
			}
			if unix.Flock(int(sf.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
				if same, _ := isCurrentPath(sf, sp); same {
					slot = watched{sf, sp}
					continue
				}
				_ = unix.Flock(int(sf.Fd()), unix.LOCK_UN)
			}
			sf.Close()
		}
		if slot.f == nil {
			held.giveBack()
			if !others.Held() {
				// Slots taken by holders not registered yet.
				others = Record{Key: key, Owner: unknownOwner, Shared: true, MaxHolders: n}
				others.Holders = []Record{others}
			}
			return nil, others, nil
		}
		held = append(held, slot.f)
	}

	if localBeforeRegister != nil {
		localBeforeRegister(key)
	}
	mu, err := l.lockTokens(ctx, path)
	if err != nil {
		held.giveBack()
		return nil, Record{}, err
	}
	lease, err := l.register(ctx, key, path, f, slot, held, opts)
	lockedFiles{mu}.giveBack()
	if err != nil {
		held.giveBack()
		return nil, Record{}, err
	}
	return lease, Record{}, nil
}

// localBeforeRegister, when not nil, is called by a shared run between
// taking its locks and registering: tests use it to let another run of
// another N register in that window.
var localBeforeRegister func(key string)

// lockTokens takes the tokens mutex of the lock file at path, polling with
// LOCK_NB so that a cancelled wait leaves nothing behind. It is held for
// the few system calls of register.
func (l *Local) lockTokens(ctx context.Context, path string) (*os.File, error) {
	mp := tokensPath(path)
	pause := time.Millisecond
	for {
		mf, err := l.openPath(mp)
		if err != nil {
			return nil, err
		}
		err = unix.Flock(int(mf.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			if same, err := isCurrentPath(mf, mp); err != nil || same {
				if err != nil {
					lockedFiles{mf}.giveBack()
					return nil, err
				}
				return mf, nil
			}
			lockedFiles{mf}.giveBack()
			continue
		}
		mf.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, err
		}
		if err := sleep(ctx, l.clock, pause); err != nil {
			return nil, err
		}
		pause = min(pause*2, 10*time.Millisecond)
	}
}

// localHolderCreated, when not nil, is called by register between creating
// the holder file at path and locking it: tests use it to read the file
// in that moment, as another run or `status` may.
var localHolderCreated func(path string)

// holderLockPatience bounds how long register waits for the lock on the
// holder file it has just created.
const holderLockPatience = 2 * time.Second

// lockNewHolderFile takes LOCK_EX on the holder file register has just
// created. Nobody else holds a lock on it for long: every run and `status`
// that reads the holders (liveHoldersIn) takes LOCK_SH on each holder file
// for the few system calls of reading it, and may have found this one
// between its creation and this lock. So a lock held by someone else is
// tried again, for up to holderLockPatience, before it is an error.
func (l *Local) lockNewHolderFile(ctx context.Context, hf *os.File) error {
	pause := 100 * time.Microsecond
	deadline := l.clock.Now().Add(holderLockPatience)
	for {
		err := unix.Flock(int(hf.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) || !l.clock.Now().Before(deadline) {
			return err
		}
		if err := sleep(ctx, l.clock, pause); err != nil {
			return err
		}
		pause = min(pause*2, 10*time.Millisecond)
	}
}

// register makes this run a shared holder of key, under the tokens mutex:
// it checks the N of the live holders again (a run of another N may have
// registered since), counts the fencing counter in f up and creates this
// holder's file. On error the caller gives back what it holds.
func (l *Local) register(ctx context.Context, key, path string, f *os.File, slot watched, held lockedFiles, opts AcquireOptions) (*Lease, error) {
	names, err := l.names()
	if err != nil {
		return nil, err
	}
	others := sharedRecordOf(key, l.liveHoldersIn(path, names, true))
	if err := checkMaxHolders(key, others, opts); err != nil {
		return nil, err
	}
	prev, err := readLocalFile(f)
	if err != nil {
		return nil, err
	}
	if prev.Token >= MaxToken {
		return nil, ErrTokenExhausted
	}
	// The counter only: shared holders' records are in their own files,
	// and an exclusive holder's leftover record (one that crashed) goes.
	if err := writeLocalFile(f, localFile{Schema: localSchema, Key: key, Token: prev.Token + 1}); err != nil {
		return nil, err
	}
	rec := localFile{
		Schema: localSchema, Key: key, Owner: NewOwnerID(l.id),
		Host: l.id.Host, PID: l.id.PID, User: l.id.User, Command: l.id.Command,
		Acquired: l.clock.Now().UTC().Round(0), Token: prev.Token + 1,
		Shared: true, MaxHolders: opts.MaxHolders,
	}
	hp := holderPath(path, rec.Owner)
	hf, err := os.OpenFile(hp, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create holder file: %w", err)
	}
	fail := func(err error) (*Lease, error) {
		_ = os.Remove(hp)
		hf.Close()
		return nil, err
	}
	if mode := l.fileMode(); mode != 0o600 {
		if err := hf.Chmod(mode); err != nil {
			return fail(fmt.Errorf("create holder file: %w", err))
		}
	}
	if localHolderCreated != nil {
		localHolderCreated(hp)
	}
	if err := l.lockNewHolderFile(ctx, hf); err != nil {
		return fail(fmt.Errorf("lock holder file: %w", err))
	}
	if err := writeLocalFile(hf, rec); err != nil {
		return fail(err)
	}
	held = append(held, hf)
	l.logger.Debug("acquired shared local lock", "key", key, "owner", rec.Owner, "token", rec.Token,
		"max_holders", opts.MaxHolders, "holders", len(others.Holders)+1)

	watch := []watched{{f, path}}
	if slot.f != nil {
		watch = append(watch, slot)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	mine := rec.record()
	mine.Holders = []Record{rec.record()}
	lease := newLease(mine, func(ctx context.Context) error {
		close(stop)
		<-done
		// Out of status first, then unlocked: the slot and the lock file
		// last, so that nothing counts this holder once it lets go.
		if same, _ := isCurrentPath(hf, hp); same {
			_ = os.Remove(hp)
		}
		held.giveBack()
		return nil
	})
	lease.file = f
	lease.files = held
	go l.watch(lease, watch, key, stop, done)
	return lease, nil
}
