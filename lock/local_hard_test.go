package lock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tests of issue 9, points 8 to 10: the host-local lock is private, stable
// and safe.

func init() {
	// Runs before TestMain, in the re-executed child only.
	if os.Getenv(envLocalChild) == "grab" {
		os.Exit(localGrabChild())
	}
}

// localGrabChild opens the file LOCK_TEST_LOCAL_KEY names read-only, as
// any user who can read a file may, and tries LOCK_EX on it: exit 0 when it
// got it (it could block the key), 4 when it could not even open it.
func localGrabChild() int {
	f, err := os.OpenFile(os.Getenv(envLocalKey), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return 4
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return 3
	}
	return 0
}

// asUser returns a command running the test binary (copied where another
// user can run it) as uid:gid with the given child mode and variables.
func asUser(t *testing.T, exe string, uid, gid int, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", gid), "--clear-groups", exe)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// publicCopy copies the test binary into a directory every user can read,
// for running it as another user.
func publicCopy(t *testing.T) (exe, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run processes as other users (CI runs as root)")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	dir, err := os.MkdirTemp("", "locked-run-users-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	exe = filepath.Join(dir, "locktest")
	out, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return exe, dir
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

func TestLocalDefaultDir(t *testing.T) {
	t.Run("the default directory is the same whatever the environment says", func(t *testing.T) {
		t.Setenv("XDG_RUNTIME_DIR", "")
		t.Setenv("TMPDIR", "")
		plain := DefaultLocalDir()
		t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
		t.Setenv("TMPDIR", t.TempDir())
		if got := DefaultLocalDir(); got != plain {
			t.Errorf("DefaultLocalDir = %s with XDG_RUNTIME_DIR and TMPDIR set, %s without", got, plain)
		}
		if want := fmt.Sprintf("locked-run-%d", os.Geteuid()); filepath.Base(plain) != want {
			t.Errorf("DefaultLocalDir = %s, want a directory named %s", plain, want)
		}
	})

	t.Run("the default directory is created private and its files are 0600", func(t *testing.T) {
		l, err := NewLocal(LocalConfig{})
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(DefaultLocalDir(), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o777 != 0o700 || int(st.Uid) != os.Geteuid() {
			t.Errorf("default directory mode %o owner %d, want a directory 0700 owned by %d", st.Mode, st.Uid, os.Geteuid())
		}
		key := fmt.Sprintf("default-dir-test-%d", os.Getpid())
		lease := acquire(t, l, key, AcquireOptions{})
		t.Cleanup(func() { os.Remove(l.Path(key)) })
		fi, err := os.Stat(l.Path(key))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("lock file mode %o, want 0600", fi.Mode().Perm())
		}
		_ = lease
	})

	for _, tt := range []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    string // in the error; empty: accepted
		mode    os.FileMode
	}{
		{name: "a missing private directory is created", prepare: func(*testing.T, string) {}, mode: 0o700},
		{name: "a private directory open to others is narrowed to 0700",
			prepare: func(t *testing.T, dir string) { mkdir(t, dir, 0o777) }, mode: 0o700},
		{name: "a symlink in place of the private directory is refused",
			prepare: func(t *testing.T, dir string) { must(t, os.Symlink(t.TempDir(), dir)) }, want: "symlink"},
		{name: "a private directory owned by someone else is refused",
			prepare: func(t *testing.T, dir string) {
				if os.Geteuid() != 0 {
					t.Skip("needs root to make a directory of another user")
				}
				mkdir(t, dir, 0o700)
				must(t, os.Chown(dir, 65534, 65534))
			}, want: "belongs to uid 65534"},
		{name: "a file in place of the private directory is refused",
			prepare: func(t *testing.T, dir string) { must(t, os.WriteFile(dir, nil, 0o600)) }, want: "not a directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "locked-run-x")
			tt.prepare(t, dir)
			err := ensurePrivateDir(dir)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("ensurePrivateDir = %v, want an error saying %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(dir)
			if err != nil || fi.Mode().Perm() != tt.mode || !fi.IsDir() {
				t.Fatalf("directory %v mode %v, want %o", err, fi.Mode(), tt.mode)
			}
		})
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	must(t, os.Mkdir(dir, mode))
	must(t, os.Chmod(dir, mode))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocalFiles(t *testing.T) {
	t.Run("a FIFO at the lock path neither hangs status and list nor is taken", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLocal(t, dir)
		must(t, unix.Mkfifo(l.Path("k"), 0o600))
		done := make(chan error, 3)
		go func() { _, err := l.Status(context.Background(), "k"); done <- err }()
		go func() { _, err := l.List(context.Background()); done <- err }()
		go func() {
			_, err := l.Acquire(context.Background(), "k", AcquireOptions{NoWait: true})
			done <- err
		}()
		var errs []error
		for range 3 {
			select {
			case err := <-done:
				errs = append(errs, err)
			case <-time.After(5 * time.Second):
				t.Fatal("status, list or acquire hung on a FIFO")
			}
		}
		refused := 0
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), "not a regular file") {
				refused++
			}
		}
		if refused != 2 {
			t.Errorf("errors %v, want status and acquire to refuse a file that is not regular", errs)
		}
	})

	t.Run("a lock file with a second link is refused", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLocal(t, dir)
		must(t, os.WriteFile(filepath.Join(dir, "elsewhere"), nil, 0o600))
		must(t, os.Link(filepath.Join(dir, "elsewhere"), l.Path("k")))
		_, err := l.Acquire(context.Background(), "k", AcquireOptions{NoWait: true})
		if err == nil || !strings.Contains(err.Error(), "2 links") {
			t.Fatalf("Acquire = %v, want a refusal naming the links", err)
		}
	})

	t.Run("a lock file removed while held closes Lost", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLocal(t, dir)
		lease := acquire(t, l, "k", AcquireOptions{})
		must(t, os.Remove(l.Path("k")))
		// A newcomer locks a new file: the first holder must know.
		other := acquire(t, newTestLocal(t, dir), "k", AcquireOptions{NoWait: true})
		select {
		case <-lease.Lost():
		case <-time.After(5 * time.Second):
			t.Fatal("Lost not closed after the lock file was removed")
		}
		if lease.Valid() || !errors.Is(lease.Err(), ErrLost) || !strings.Contains(lease.Err().Error(), "removed or replaced") {
			t.Errorf("Valid %v, Err %v", lease.Valid(), lease.Err())
		}
		if !other.Valid() {
			t.Error("the newcomer's lease is not valid")
		}
	})

	t.Run("list finds locks in a directory whose name has glob characters", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a[b]*?c")
		must(t, os.Mkdir(dir, 0o700))
		l := newTestLocal(t, dir)
		acquire(t, l, "k", AcquireOptions{})
		recs, err := l.List(context.Background())
		if err != nil || len(recs) != 1 || recs[0].Key != "k" {
			t.Fatalf("List = %v, %v, want the one held key", recs, err)
		}
	})

	t.Run("a fencing counter at its maximum is refused, not wrapped", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLocal(t, dir)
		data := fmt.Sprintf(`{"schema":%q,"key":"k","fencing_token":%d}`, localSchema, uint64(MaxToken))
		must(t, os.WriteFile(l.Path("k"), []byte(data), 0o600))
		_, err := l.Acquire(context.Background(), "k", AcquireOptions{})
		if !errors.Is(err, ErrTokenExhausted) {
			t.Fatalf("Acquire = %v, want ErrTokenExhausted", err)
		}
	})

	t.Run("a huge command is stored truncated", func(t *testing.T) {
		l, err := NewLocal(LocalConfig{Dir: t.TempDir(), Identity: Identity{Command: strings.Repeat("é", 1<<20)}})
		if err != nil {
			t.Fatal(err)
		}
		acquire(t, l, "k", AcquireOptions{})
		rec, err := l.Status(context.Background(), "k")
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Command) > MaxCommandBytes || !strings.HasSuffix(rec.Command, "...") {
			t.Errorf("stored command of %d bytes, want at most %d ending in ...", len(rec.Command), MaxCommandBytes)
		}
	})
}

func TestLocalCancelledWaits(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l := newTestLocal(t, dir)
	holder, err := l.Acquire(context.Background(), "k", AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for range 20 {
		_, err := l.Acquire(context.Background(), "k", AcquireOptions{Timeout: 20 * time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire = %v, want a timeout", err)
		}
	}
	// A timeout's own goroutine (context.WithTimeout cancels from a
	// time.AfterFunc) may still be finishing as Acquire returns: give the
	// count a moment to settle. A wait that outlived its cancellation
	// polls forever and never leaves.
	after := runtime.NumGoroutine()
	for settle := time.Now().Add(2 * time.Second); after > before && time.Now().Before(settle); after = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	if after > before {
		t.Errorf("%d goroutines after 20 timed-out waits, %d before: a wait outlived its cancellation", after, before)
	}
	must(t, holder.Release(context.Background()))
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envLocalChild+"=trylock", envLocalDir+"="+dir, envLocalKey+"=k")
	if code := exitCode(t, cmd.Run()); code != 0 {
		t.Fatalf("--no-wait from another process after the release exited %d, want 0 (lock free)", code)
	}
}

func TestLocalOtherUsers(t *testing.T) {
	exe, pub := publicCopy(t)

	t.Run("another user can neither hold nor block a key of the default directory", func(t *testing.T) {
		l, err := NewLocal(LocalConfig{})
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("other-users-test-%d", os.Getpid())
		acquire(t, l, key, AcquireOptions{}).Release(context.Background())
		t.Cleanup(func() { os.Remove(l.Path(key)) })
		cmd := asUser(t, exe, 65534, 65534, envLocalChild+"=grab", envLocalKey+"="+l.Path(key))
		if code := exitCode(t, cmd.Run()); code != 4 {
			t.Fatalf("another user's LOCK_EX on the lock file exited %d, want 4 (cannot open it)", code)
		}
		acquire(t, l, key, AcquireOptions{NoWait: true})
	})

	t.Run("users sharing a setgid group directory exclude each other", func(t *testing.T) {
		shared := filepath.Join(pub, "shared")
		must(t, os.Mkdir(shared, 0o770))
		must(t, os.Chown(shared, 0, 65534))
		must(t, os.Chmod(shared, 0o2770|os.ModeSetgid))
		try := func(uid int) int {
			cmd := asUser(t, exe, uid, 65534, envLocalChild+"=trylock", envLocalDir+"="+shared, envLocalKey+"=k")
			cmd.Stderr = os.Stderr
			return exitCode(t, cmd.Run())
		}
		if code := try(65534); code != 0 {
			t.Fatalf("first user's --no-wait on a free key exited %d, want 0", code)
		}
		if code := try(65533); code != 0 {
			t.Fatalf("second user of the group could not take the key the first created: exit %d", code)
		}
		l := newTestLocal(t, shared)
		acquire(t, l, "k", AcquireOptions{})
		if code := try(65533); code != 3 {
			t.Fatalf("a group member's --no-wait while the key is held exited %d, want 3 (held)", code)
		}
	})
}

// TestLocalHandoff measures how soon a waiter takes a released key now that
// waits poll (at most localPollMax apart), and checks the bound loosely.
func TestLocalHandoff(t *testing.T) {
	dir := t.TempDir()
	l := newTestLocal(t, dir)
	var lat []time.Duration
	for range 20 {
		held, err := l.Acquire(context.Background(), "k", AcquireOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan time.Time, 1)
		go func() {
			w, err := l.Acquire(context.Background(), "k", AcquireOptions{})
			if err != nil {
				t.Error(err)
				got <- time.Time{}
				return
			}
			got <- time.Now()
			_ = w.Release(context.Background())
		}()
		time.Sleep(300 * time.Millisecond) // let the waiter's pause grow to its longest
		released := time.Now()
		must(t, held.Release(context.Background()))
		at := <-got
		lat = append(lat, at.Sub(released))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("a waiter took a released key after: min %s median %s max %s (20 handoffs)", lat[0], lat[len(lat)/2], lat[len(lat)-1])
	if lat[len(lat)/2] > localPollMax+200*time.Millisecond {
		t.Errorf("median handoff %s, want within about %s", lat[len(lat)/2], localPollMax)
	}
}

func TestLocalOldHugeRecord(t *testing.T) {
	// A record written before commands were cut, by a holder SIGKILLed
	// while running a 2 MiB command line.
	dir := t.TempDir()
	l := newTestLocal(t, dir)
	data := fmt.Sprintf(`{"schema":%q,"key":"k","owner":"old-1-00000000","command":%q,"fencing_token":5}`,
		localSchema, strings.Repeat("x", 2<<20))
	must(t, os.WriteFile(l.Path("k"), []byte(data), 0o600))
	lease := acquire(t, l, "k", AcquireOptions{NoWait: true})
	if lease.Token() != 6 {
		t.Errorf("token %d, want 6: the counter of the old record plus one", lease.Token())
	}
}
