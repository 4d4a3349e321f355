package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as a child process for the cross-process tests,
// switched by these variables.
const (
	envLocalChild = "LOCK_TEST_LOCAL_CHILD" // "contend", "trylock" or "fds"
	envLocalDir   = "LOCK_TEST_LOCAL_DIR"
	envLocalKey   = "LOCK_TEST_LOCAL_KEY"
	envLocalOut   = "LOCK_TEST_LOCAL_OUT"
	envLocalIters = "LOCK_TEST_LOCAL_ITERS"
)

func init() {
	// Runs before TestMain, in the re-executed child only.
	switch os.Getenv(envLocalChild) {
	case "":
		return
	case "contend":
		os.Exit(localContendChild())
	case "trylock":
		os.Exit(localTryLockChild())
	case "fds":
		entries, _ := os.ReadDir("/proc/self/fd")
		for _, e := range entries {
			target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
			fmt.Println(target)
		}
		os.Exit(0)
	}
}

// localContendChild takes the lock ITERS times; inside, it does a
// non-atomic read-modify-write of a counter file and appends its token.
func localContendChild() int {
	l, err := NewLocal(LocalConfig{Dir: os.Getenv(envLocalDir), Identity: Identity{Host: "h", PID: os.Getpid()}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	n, _ := strconv.Atoi(os.Getenv(envLocalIters))
	out := os.Getenv(envLocalOut)
	for range n {
		lease, err := l.Acquire(context.Background(), os.Getenv(envLocalKey), AcquireOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		data, _ := os.ReadFile(out + ".counter")
		c, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		time.Sleep(time.Millisecond) // widen the window a broken lock would show
		os.WriteFile(out+".counter", []byte(strconv.Itoa(c+1)), 0o644)
		f, _ := os.OpenFile(out+".tokens", os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		fmt.Fprintln(f, lease.Token())
		f.Close()
		if err := lease.Release(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	return 0
}

// localTryLockChild exits 0 when it could take the lock at once, 3 when
// the lock is held.
func localTryLockChild() int {
	l, err := NewLocal(LocalConfig{Dir: os.Getenv(envLocalDir)})
	if err != nil {
		return 2
	}
	lease, err := l.Acquire(context.Background(), os.Getenv(envLocalKey), AcquireOptions{NoWait: true})
	if errors.Is(err, ErrHeld) {
		return 3
	}
	if err != nil {
		return 2
	}
	lease.Release(context.Background())
	return 0
}

func newTestLocal(t *testing.T, dir string) *Local {
	t.Helper()
	l, err := NewLocal(LocalConfig{Dir: dir, Identity: Identity{Host: "testhost", PID: os.Getpid(), User: "tester", Command: "make deploy"}})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func acquire(t *testing.T, l Locker, key string, opts AcquireOptions) *Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lease, err := l.Acquire(ctx, key, opts)
	if err != nil {
		t.Fatalf("acquire %q: %v", key, err)
	}
	t.Cleanup(func() { lease.Release(context.Background()) })
	return lease
}

// mustBlock starts Acquire of key in the background and checks it is still
// blocked after a while; it returns a channel delivering the lease later.
func mustBlock(t *testing.T, l Locker, key string) <-chan *Lease {
	t.Helper()
	got := make(chan *Lease, 1)
	go func() {
		lease, err := l.Acquire(context.Background(), key, AcquireOptions{})
		if err != nil {
			t.Errorf("blocked acquire: %v", err)
			close(got)
			return
		}
		got <- lease
	}()
	select {
	case <-got:
		t.Fatalf("acquire %q did not block while the lock was held", key)
	case <-time.After(200 * time.Millisecond):
	}
	return got
}

func receive(t *testing.T, ch <-chan *Lease) *Lease {
	t.Helper()
	select {
	case lease := <-ch:
		if lease == nil {
			t.Fatal("waiter failed")
		}
		t.Cleanup(func() { lease.Release(context.Background()) })
		return lease
	case <-time.After(5 * time.Second):
		t.Fatal("waiter did not get the lock within 5s of its release")
	}
	return nil
}

func TestLocal(t *testing.T) {
	t.Run("a waiter blocks while the lock is held and gets it when released", func(t *testing.T) {
		l := newTestLocal(t, t.TempDir())
		first := acquire(t, l, "deploy", AcquireOptions{})
		waiter := mustBlock(t, l, "deploy")
		if err := first.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		second := receive(t, waiter)
		if second.Token() != first.Token()+1 {
			t.Fatalf("tokens %d then %d, want consecutive", first.Token(), second.Token())
		}
	})

	t.Run("no-wait on a held key reports the holder", func(t *testing.T) {
		l := newTestLocal(t, t.TempDir())
		held := acquire(t, l, "deploy", AcquireOptions{})
		_, err := l.Acquire(context.Background(), "deploy", AcquireOptions{NoWait: true})
		var he *HeldError
		if !errors.As(err, &he) || !errors.Is(err, ErrHeld) {
			t.Fatalf("err = %v, want *HeldError", err)
		}
		if he.Holder.Owner != held.Owner() || he.Holder.Host != "testhost" || he.Holder.PID != os.Getpid() || he.Holder.Command != "make deploy" {
			t.Fatalf("holder = %+v, want the lease's owner", he.Holder)
		}
	})

	t.Run("no-wait is not refused by a look at the key", func(t *testing.T) {
		l := newTestLocal(t, t.TempDir())
		acquire(t, l, "deploy", AcquireOptions{}).Release(context.Background())
		// What status, list and another run's look at the holders do
		// to the lock file: LOCK_SH for a moment (here 30 ms).
		look := func(hold time.Duration) <-chan struct{} {
			f, err := os.Open(l.Path("deploy"))
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				time.Sleep(hold)
				f.Close()
			}()
			return done
		}
		done := look(30 * time.Millisecond)
		lease, err := l.Acquire(context.Background(), "deploy", AcquireOptions{NoWait: true})
		<-done
		if err != nil {
			t.Fatalf("no-wait during a look at the key: %v", err)
		}
		lease.Release(context.Background())
		// The same with the record of a holder that was killed still in
		// the file: its process is gone, so the look is only a look.
		gone := exec.Command("true")
		if err := gone.Run(); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(l.Path("deploy"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		dead := localFile{Schema: localSchema, Key: "deploy", Owner: "testhost-" + strconv.Itoa(gone.Process.Pid) + "-0badc0de",
			Host: "testhost", PID: gone.Process.Pid, Token: lease.Token()}
		if err := writeLocalFile(f, dead); err != nil {
			t.Fatal(err)
		}
		f.Close()
		done = look(30 * time.Millisecond)
		lease, err = l.Acquire(context.Background(), "deploy", AcquireOptions{NoWait: true})
		<-done
		if err != nil {
			t.Fatalf("no-wait during a look at a key whose holder was killed: %v", err)
		}
		lease.Release(context.Background())
		// A LOCK_SH that stays (another program's flock -s) is a holder:
		// refused once the patience is over, naming nobody.
		done = look(time.Second)
		began := time.Now()
		_, err = l.Acquire(context.Background(), "deploy", AcquireOptions{NoWait: true})
		took := time.Since(began)
		<-done
		var he *HeldError
		if !errors.As(err, &he) || he.Holder.Owner != unknownOwner {
			t.Fatalf("no-wait under a lasting LOCK_SH: %v, want held by %q", err, unknownOwner)
		}
		if took < unknownPatience || took > unknownPatience+500*time.Millisecond {
			t.Errorf("no-wait under a lasting LOCK_SH took %v, want about %v", took, unknownPatience)
		}
	})

	t.Run("fencing tokens grow by one per acquisition and survive release", func(t *testing.T) {
		dir := t.TempDir()
		var last uint64
		for i := range 5 {
			// A fresh backend each time: the counter lives in the file.
			lease := acquire(t, newTestLocal(t, dir), "k", AcquireOptions{})
			if want := uint64(i + 1); lease.Token() != want {
				t.Fatalf("acquisition %d got token %d, want %d", i+1, lease.Token(), want)
			}
			last = lease.Token()
			lease.Release(context.Background())
		}
		rec, err := newTestLocal(t, dir).Status(context.Background(), "k")
		if err != nil || rec.Held() || rec.Token != last {
			t.Fatalf("status after release = %+v, %v; want free with token %d", rec, err, last)
		}
	})

	t.Run("cancelling a wait leaves nothing held", func(t *testing.T) {
		l := newTestLocal(t, t.TempDir())
		held := acquire(t, l, "k", AcquireOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := l.Acquire(ctx, "k", AcquireOptions{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		held.Release(context.Background())
		// The abandoned flock goroutine gets the lock now and must drop it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			lease, err := l.Acquire(context.Background(), "k", AcquireOptions{NoWait: true})
			if err == nil {
				if lease.Token() != held.Token()+1 {
					t.Fatalf("token %d after abandoned wait, want %d", lease.Token(), held.Token()+1)
				}
				lease.Release(context.Background())
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("key still held after the abandoned wait: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("a wait reports the holder at the start and every progress interval", func(t *testing.T) {
		l := newTestLocal(t, t.TempDir())
		held := acquire(t, l, "k", AcquireOptions{})
		var mu sync.Mutex
		var calls []time.Duration
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := l.Acquire(ctx, "k", AcquireOptions{Progress: 50 * time.Millisecond, OnWait: func(w Wait) {
			h, waited := w.Record, w.Waited
			if h.Owner != held.Owner() {
				t.Errorf("OnWait holder %q, want %q", h.Owner, held.Owner())
			}
			mu.Lock()
			calls = append(calls, waited)
			mu.Unlock()
		}})
		if err == nil {
			t.Fatal("acquire succeeded while held")
		}
		mu.Lock()
		defer mu.Unlock()
		if len(calls) < 3 || calls[0] != 0 {
			t.Fatalf("OnWait calls %v, want one at 0 then several", calls)
		}
	})

	t.Run("status and list show the holder and nothing after release", func(t *testing.T) {
		l := newTestLocal(t, t.TempDir())
		a := acquire(t, l, "a/b c", AcquireOptions{})
		acquire(t, l, "z", AcquireOptions{})
		rec, err := l.Status(context.Background(), "a/b c")
		if err != nil || rec.Owner != a.Owner() || rec.Key != "a/b c" || rec.User != "tester" {
			t.Fatalf("status = %+v, %v", rec, err)
		}
		list, err := l.List(context.Background())
		if err != nil || len(list) != 2 || list[0].Key != "a/b c" || list[1].Key != "z" {
			t.Fatalf("list = %+v, %v", list, err)
		}
		a.Release(context.Background())
		list, _ = l.List(context.Background())
		if len(list) != 1 {
			t.Fatalf("list after release = %+v, want only z", list)
		}
		if rec, _ := l.Status(context.Background(), "never"); rec.Held() {
			t.Fatalf("status of an unused key = %+v", rec)
		}
	})

	t.Run("force release refuses and names the holder", func(t *testing.T) {
		l := newTestLocal(t, t.TempDir())
		acquire(t, l, "k", AcquireOptions{})
		_, err := l.ForceRelease(context.Background(), "k")
		if !errors.Is(err, ErrCannotBreak) || !strings.Contains(err.Error(), "testhost") {
			t.Fatalf("err = %v", err)
		}
		if _, err := l.ForceRelease(context.Background(), "free"); !errors.Is(err, ErrNotHeld) {
			t.Fatalf("force release of a free key: %v", err)
		}
	})

	t.Run("keys map to distinct safe file names", func(t *testing.T) {
		keys := []string{"a", "A", "a/b", "a_b", "../../etc/passwd", "terraform apply -auto-approve", "ключ", strings.Repeat("x", MaxKeyBytes)}
		seen := map[string]string{}
		for _, k := range keys {
			name := LocalFileName(k)
			if strings.ContainsRune(name, '/') || len(name) > 255 {
				t.Errorf("key %q → unsafe name %q", k, name)
			}
			if other, ok := seen[name]; ok {
				t.Errorf("keys %q and %q share file %q", k, other, name)
			}
			seen[name] = k
		}
		l := newTestLocal(t, t.TempDir())
		for _, k := range keys {
			acquire(t, l, k, AcquireOptions{NoWait: true})
		}
	})

	t.Run("invalid keys are refused", func(t *testing.T) {
		l := newTestLocal(t, t.TempDir())
		for _, k := range []string{"", strings.Repeat("x", MaxKeyBytes+1), "\xff"} {
			if _, err := l.Acquire(context.Background(), k, AcquireOptions{}); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("key of %d bytes: err = %v, want ErrInvalidKey", len(k), err)
			}
		}
	})

	t.Run("a lock file replaced while waiting does not give two holders", func(t *testing.T) {
		l := newTestLocal(t, t.TempDir())
		held := acquire(t, l, "k", AcquireOptions{})
		waiter := mustBlock(t, l, "k")
		// Someone removes the file: a newcomer creates and locks a new one.
		if err := os.Remove(l.Path("k")); err != nil {
			t.Fatal(err)
		}
		newcomer := acquire(t, l, "k", AcquireOptions{NoWait: true})
		held.Release(context.Background())
		select {
		case lease := <-waiter:
			t.Fatalf("waiter got the stale file's lock (token %d) while %s holds the new one", lease.Token(), newcomer.Owner())
		case <-time.After(300 * time.Millisecond):
		}
		newcomer.Release(context.Background())
		receive(t, waiter)
	})

	t.Run("a symlink planted at the lock path is not followed", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLocal(t, dir)
		target := filepath.Join(dir, "victim")
		os.WriteFile(target, []byte("precious"), 0o644)
		os.Symlink(target, l.Path("k"))
		if _, err := l.Acquire(context.Background(), "k", AcquireOptions{NoWait: true}); err == nil {
			t.Fatal("acquire through a symlink succeeded")
		}
		if data, _ := os.ReadFile(target); string(data) != "precious" {
			t.Fatalf("symlink target overwritten: %q", data)
		}
	})
}

func TestLocalAcrossProcesses(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a spawned child neither drops the lock nor inherits its descriptor", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLocal(t, dir)
		acquire(t, l, "k", AcquireOptions{})
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), envLocalChild+"=fds")
		fds, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(fds), LocalFileName("k")) {
			t.Fatalf("child inherited the lock file descriptor:\n%s", fds)
		}
		cmd = exec.Command(exe)
		cmd.Env = append(os.Environ(), envLocalChild+"=trylock", envLocalDir+"="+dir, envLocalKey+"=k")
		err = cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("another process could take the lock after a child ran: %v", err)
		}
	})

	t.Run("processes contending for one key never overlap", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "result")
		const procs, iters = 6, 25
		var cmds []*exec.Cmd
		for range procs {
			cmd := exec.Command(exe)
			cmd.Env = append(os.Environ(), envLocalChild+"=contend", envLocalDir+"="+dir, envLocalKey+"=shared",
				envLocalOut+"="+out, envLocalIters+"="+strconv.Itoa(iters))
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, cmd)
		}
		for _, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("contender: %v", err)
			}
		}
		data, _ := os.ReadFile(out + ".counter")
		if got := strings.TrimSpace(string(data)); got != strconv.Itoa(procs*iters) {
			t.Fatalf("counter = %s, want %d: critical sections overlapped", got, procs*iters)
		}
		tokens, _ := os.ReadFile(out + ".tokens")
		lines := strings.Fields(string(tokens))
		for i, s := range lines {
			if s != strconv.Itoa(i+1) {
				t.Fatalf("token %d in append order is %s, want %d", i, s, i+1)
			}
		}
	})
}
