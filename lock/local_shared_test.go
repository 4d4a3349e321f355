//go:build linux || darwin

package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// envLocalMode says how a "semaphore" child takes the key: "exclusive",
// "shared" or "max=N".
const envLocalMode = "LOCK_TEST_LOCAL_MODE"

func init() {
	if os.Getenv(envLocalChild) == "semaphore" {
		os.Exit(localSemaphoreChild())
	}
}

// optsOfMode returns the AcquireOptions of an envLocalMode value.
func optsOfMode(mode string) AcquireOptions {
	switch {
	case mode == "shared":
		return AcquireOptions{Shared: true}
	case strings.HasPrefix(mode, "max="):
		n, _ := strconv.Atoi(strings.TrimPrefix(mode, "max="))
		return AcquireOptions{MaxHolders: n}
	}
	return AcquireOptions{}
}

// localSemaphoreChild takes the key ITERS times in its mode. Inside, it
// creates a marker file in OUT.inside named after its kind, counts the
// markers there, and appends "kind count-of-same-kind count-of-other-kind
// token" to OUT.log.
func localSemaphoreChild() int {
	l, err := NewLocal(LocalConfig{Dir: os.Getenv(envLocalDir), Identity: Identity{Host: "h", PID: os.Getpid()}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	mode := os.Getenv(envLocalMode)
	kind := "S"
	if mode == "exclusive" {
		kind = "X"
	}
	n, _ := strconv.Atoi(os.Getenv(envLocalIters))
	out := os.Getenv(envLocalOut)
	inside := out + ".inside"
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		lease, err := l.Acquire(ctx, os.Getenv(envLocalKey), optsOfMode(mode))
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		marker := filepath.Join(inside, fmt.Sprintf("%s-%d-%d", kind, os.Getpid(), i))
		os.WriteFile(marker, nil, 0o644)
		time.Sleep(2 * time.Millisecond) // widen the window a broken lock would show
		entries, _ := os.ReadDir(inside)
		same, other := 0, 0
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), kind+"-") {
				same++
			} else {
				other++
			}
		}
		os.Remove(marker)
		f, _ := os.OpenFile(out+".log", os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		fmt.Fprintf(f, "%s %d %d %d\n", kind, same, other, lease.Token())
		f.Close()
		if err := lease.Release(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	return 0
}

func tryAcquire(l *Local, key string, opts AcquireOptions) (*Lease, error) {
	opts.NoWait = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return l.Acquire(ctx, key, opts)
}

// holderFiles returns the names of the holder files in dir.
func holderFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".holder-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestLocalShared(t *testing.T) {
	t.Run("shared holders hold together and status lists every one", func(t *testing.T) {
		dir := t.TempDir()
		var leases []*Lease
		for i := range 3 {
			l, err := NewLocal(LocalConfig{Dir: dir, Identity: Identity{Host: "h", PID: 100 + i, User: "u", Command: fmt.Sprintf("deploy %d", i)}})
			if err != nil {
				t.Fatal(err)
			}
			lease, err := tryAcquire(l, "app", AcquireOptions{Shared: true})
			if err != nil {
				t.Fatalf("shared holder %d: %v", i, err)
			}
			t.Cleanup(func() { lease.Release(context.Background()) })
			if lease.Token() != uint64(i+1) {
				t.Fatalf("holder %d got token %d, want %d", i, lease.Token(), i+1)
			}
			if !lease.Record().Shared {
				t.Fatalf("lease record not shared: %+v", lease.Record())
			}
			leases = append(leases, lease)
		}
		l := newTestLocal(t, dir)
		rec, err := l.Status(context.Background(), "app")
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Held() || !rec.Shared || len(rec.Holders) != 3 || rec.MaxHolders != 0 {
			t.Fatalf("status = %+v, want 3 shared holders", rec)
		}
		for i, h := range rec.Holders {
			if h.Owner != leases[i].Owner() || h.PID != 100+i || h.Command != fmt.Sprintf("deploy %d", i) ||
				h.Token != uint64(i+1) || !h.Shared || h.Key != "app" || h.Acquired.IsZero() {
				t.Fatalf("holder %d = %+v, want the lease of %s", i, h, leases[i].Owner())
			}
		}
		if rec.Owner != rec.Holders[0].Owner {
			t.Fatalf("record describes %s, want the first holder %s", rec.Owner, rec.Holders[0].Owner)
		}
		list, err := l.List(context.Background())
		if err != nil || len(list) != 1 || len(list[0].Holders) != 3 {
			t.Fatalf("list = %+v, %v; want one key with 3 holders", list, err)
		}
		if err := leases[0].Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		rec, _ = l.Status(context.Background(), "app")
		if len(rec.Holders) != 2 || rec.Owner != leases[1].Owner() {
			t.Fatalf("after one release: %+v, want the other two", rec)
		}
		leases[1].Release(context.Background())
		leases[2].Release(context.Background())
		rec, _ = l.Status(context.Background(), "app")
		if rec.Held() || rec.Token != 3 {
			t.Fatalf("after every release: %+v, want free with token 3", rec)
		}
		if files := holderFiles(t, dir); len(files) != 0 {
			t.Fatalf("holder files left after release: %v", files)
		}
	})

	t.Run("an exclusive holder excludes shared ones and the other way round", func(t *testing.T) {
		dir := t.TempDir()
		a, b := newTestLocal(t, dir), newTestLocal(t, dir)
		ex, err := tryAcquire(a, "db", AcquireOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, opts := range []AcquireOptions{{Shared: true}, {MaxHolders: 2}, {}} {
			_, err := tryAcquire(b, "db", opts)
			var held *HeldError
			if !errors.As(err, &held) || held.Holder.Owner != ex.Owner() || held.Holder.Shared {
				t.Fatalf("%+v under an exclusive holder: %v, want held by %s", opts, err, ex.Owner())
			}
		}
		ex.Release(context.Background())
		sh, err := tryAcquire(a, "db", AcquireOptions{Shared: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tryAcquire(b, "db", AcquireOptions{})
		var held *HeldError
		if !errors.As(err, &held) || held.Holder.Owner != sh.Owner() || !held.Holder.Shared || len(held.Holder.Holders) != 1 {
			t.Fatalf("exclusive under a shared holder: %v, want held by shared %s", err, sh.Owner())
		}
		// A waiting exclusive run gets the key once the shared holder goes.
		waiter := mustBlock(t, b, "db")
		sh.Release(context.Background())
		got := receive(t, waiter)
		if got.Token() != 3 || got.Record().Shared {
			t.Fatalf("exclusive after shared: token %d shared %v, want token 3, exclusive", got.Token(), got.Record().Shared)
		}
	})

	t.Run("a semaphore of 2 admits 2 and the third waits for a slot", func(t *testing.T) {
		dir := t.TempDir()
		ls := []*Local{newTestLocal(t, dir), newTestLocal(t, dir), newTestLocal(t, dir)}
		one, err := tryAcquire(ls[0], "ci", AcquireOptions{MaxHolders: 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tryAcquire(ls[1], "ci", AcquireOptions{MaxHolders: 2}); err != nil {
			t.Fatal(err)
		}
		_, err = tryAcquire(ls[2], "ci", AcquireOptions{MaxHolders: 2})
		var held *HeldError
		if !errors.As(err, &held) || len(held.Holder.Holders) != 2 || held.Holder.MaxHolders != 2 {
			t.Fatalf("third of 2: %v, want held by 2 holders of --max-holders 2", err)
		}
		rec, _ := ls[2].Status(context.Background(), "ci")
		if rec.MaxHolders != 2 || len(rec.Holders) != 2 {
			t.Fatalf("status = %+v, want 2 holders, N 2", rec)
		}
		got := make(chan *Lease, 1)
		go func() {
			lease, err := ls[2].Acquire(context.Background(), "ci", AcquireOptions{MaxHolders: 2})
			if err != nil {
				t.Error(err)
			}
			got <- lease
		}()
		select {
		case <-got:
			t.Fatal("third holder of a semaphore of 2 did not wait")
		case <-time.After(200 * time.Millisecond):
		}
		one.Release(context.Background())
		if third := receive(t, got); third.Token() != 3 {
			t.Fatalf("third holder's token %d, want 3", third.Token())
		}
	})

	t.Run("a run with another N gets a MaxHoldersError naming the N in force", func(t *testing.T) {
		dir := t.TempDir()
		a, b := newTestLocal(t, dir), newTestLocal(t, dir)
		if _, err := tryAcquire(a, "k", AcquireOptions{MaxHolders: 2}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			opts  AcquireOptions
			asked int
		}{
			{AcquireOptions{MaxHolders: 3}, 3},
			{AcquireOptions{Shared: true}, 0},
			{AcquireOptions{Shared: true, MaxHolders: 1}, 1},
			{AcquireOptions{MaxHolders: 1}, 1}, // exclusive, but gave N
		} {
			_, err := tryAcquire(b, "k", c.opts)
			var mh *MaxHoldersError
			if !errors.As(err, &mh) || mh.InForce != 2 || mh.Asked != c.asked || mh.Key != "k" {
				t.Fatalf("%+v: %v, want MaxHoldersError in force 2, asked %d", c.opts, err, c.asked)
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "--max-holders 2") {
				t.Fatalf("error %q does not name --max-holders 2", err)
			}
		}
		// A plain exclusive run is never compared: it waits.
		_, err := tryAcquire(b, "k", AcquireOptions{})
		if !errors.Is(err, ErrHeld) {
			t.Fatalf("exclusive run without N: %v, want held", err)
		}
		// Nor does a failed run leave a holder file behind.
		if files := holderFiles(t, dir); len(files) != 1 {
			t.Fatalf("holder files %v, want the one holder's", files)
		}
	})

	t.Run("runs of two different N racing never hold at once", func(t *testing.T) {
		dir := t.TempDir()
		var (
			inside   [2]atomic.Int32
			overlaps atomic.Int32
			wins     [2]atomic.Int32
			wg       sync.WaitGroup
		)
		deadline := time.Now().Add(2 * time.Second)
		for g := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				kind := g % 2
				l, err := NewLocal(LocalConfig{Dir: dir})
				if err != nil {
					t.Error(err)
					return
				}
				for time.Now().Before(deadline) {
					lease, err := tryAcquire(l, "race", AcquireOptions{MaxHolders: 2 + kind})
					var mh *MaxHoldersError
					if errors.As(err, &mh) || errors.Is(err, ErrHeld) {
						time.Sleep(time.Millisecond)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					inside[kind].Add(1)
					if inside[1-kind].Load() > 0 {
						overlaps.Add(1)
					}
					wins[kind].Add(1)
					time.Sleep(time.Millisecond)
					inside[kind].Add(-1)
					lease.Release(context.Background())
					// Room for the other N: three holders of one N
					// that take turns without a pause keep it from
					// ever finding the key free.
					time.Sleep(3 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		if n := overlaps.Load(); n > 0 {
			t.Fatalf("runs of --max-holders 2 and 3 held at once %d times", n)
		}
		if wins[0].Load() == 0 || wins[1].Load() == 0 {
			t.Fatalf("one N never got the key (%d, %d): the test shows nothing", wins[0].Load(), wins[1].Load())
		}
	})

	t.Run("a run of another N that registers first makes the later one give everything back", func(t *testing.T) {
		dir := t.TempDir()
		a, b := newTestLocal(t, dir), newTestLocal(t, dir)
		var other *Lease
		localBeforeRegister = func(key string) {
			// a holds its LOCK_SH and its slot of N 2 and has passed the
			// early check; b, of N 3, gets in first.
			localBeforeRegister = nil
			var err error
			if other, err = tryAcquire(b, key, AcquireOptions{MaxHolders: 3}); err != nil {
				t.Errorf("run of N 3 in the window: %v", err)
			}
		}
		t.Cleanup(func() { localBeforeRegister = nil })
		_, err := tryAcquire(a, "k", AcquireOptions{MaxHolders: 2})
		var mh *MaxHoldersError
		if !errors.As(err, &mh) || mh.InForce != 3 || mh.Asked != 2 {
			t.Fatalf("later run of N 2: %v, want MaxHoldersError in force 3", err)
		}
		if other == nil {
			t.Fatal("the hook did not run")
		}
		rec, _ := b.Status(context.Background(), "k")
		if len(rec.Holders) != 1 || rec.Owner != other.Owner() {
			t.Fatalf("status = %+v, want only the run of N 3", rec)
		}
		// a gave its slot and its LOCK_SH back: once b releases, an
		// exclusive run gets the key at once, and a's slot is free.
		other.Release(context.Background())
		lease, err := tryAcquire(a, "k", AcquireOptions{})
		if err != nil {
			t.Fatalf("exclusive run after both: %v", err)
		}
		lease.Release(context.Background())
		for range 2 {
			l, err := tryAcquire(newTestLocal(t, dir), "k", AcquireOptions{MaxHolders: 2})
			if err != nil {
				t.Fatalf("slots of N 2 after the failed run: %v", err)
			}
			defer l.Release(context.Background())
		}
	})

	t.Run("a reader of the holders in the moment a holder file is created does not fail the run", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLocal(t, dir)
		read := make(chan struct{})
		localHolderCreated = func(path string) {
			// What liveHoldersIn of another run or of `status` does
			// when it lists the directory right after the creation:
			// LOCK_SH on the file while it reads it (here 30 ms).
			localHolderCreated = nil
			f, err := os.Open(path)
			if err != nil {
				t.Errorf("open the new holder file: %v", err)
				close(read)
				return
			}
			if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
				t.Errorf("LOCK_SH on the new holder file: %v", err)
			}
			go func() {
				defer close(read)
				time.Sleep(30 * time.Millisecond)
				f.Close()
			}()
		}
		t.Cleanup(func() { localHolderCreated = nil })
		lease, err := tryAcquire(l, "k", AcquireOptions{MaxHolders: 2})
		<-read
		if err != nil {
			t.Fatalf("shared run while its holder file was being read: %v", err)
		}
		defer lease.Release(context.Background())
		rec, err := l.Status(context.Background(), "k")
		if err != nil || len(rec.Holders) != 1 || rec.Owner != lease.Owner() {
			t.Fatalf("status = %+v, %v; want the run as the one holder", rec, err)
		}
	})

	t.Run("a cancelled shared wait leaves nothing held", func(t *testing.T) {
		dir := t.TempDir()
		a, b := newTestLocal(t, dir), newTestLocal(t, dir)
		ex, err := tryAcquire(a, "k", AcquireOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		var waits atomic.Int32
		_, err = b.Acquire(ctx, "k", AcquireOptions{MaxHolders: 2, OnWait: func(w Wait) {
			waits.Add(1)
			if w.Record.Owner != ex.Owner() || w.Position != 0 {
				t.Errorf("OnWait got %+v, want holder %s and no position", w, ex.Owner())
			}
		}})
		if !errors.Is(err, context.DeadlineExceeded) || waits.Load() != 1 {
			t.Fatalf("wait: %v after %d OnWait calls, want deadline exceeded after 1", err, waits.Load())
		}
		ex.Release(context.Background())
		for _, opts := range []AcquireOptions{{}, {MaxHolders: 1}} {
			lease, err := tryAcquire(a, "k", opts)
			if err != nil {
				t.Fatalf("%+v after a cancelled wait: %v", opts, err)
			}
			lease.Release(context.Background())
		}
	})

	t.Run("a dead holder's file is ignored and removed by the next shared run", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLocal(t, dir)
		path := l.Path("k")
		// What a holder that died leaves: its file, locked by nobody.
		dead := localFile{Schema: localSchema, Key: "k", Owner: "ghost-1-00000000", Token: 9, Shared: true, MaxHolders: 5}
		f, err := os.OpenFile(holderPath(path, dead.Owner), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		writeLocalFile(f, dead)
		f.Close()
		rec, err := l.Status(context.Background(), "k")
		if err != nil || rec.Held() {
			t.Fatalf("status with a dead holder's file: %+v, %v; want free", rec, err)
		}
		// Its N (5) is not in force: a run of N 2 is not refused.
		lease, err := tryAcquire(l, "k", AcquireOptions{MaxHolders: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer lease.Release(context.Background())
		if files := holderFiles(t, dir); len(files) != 1 || !strings.HasSuffix(holderPath(path, lease.Owner()), files[0]) {
			t.Fatalf("holder files %v, want only the live one", files)
		}
	})

	t.Run("fencing tokens strictly increase across exclusive and shared holders", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLocal(t, dir)
		var tokens []uint64
		take := func(opts AcquireOptions) *Lease {
			lease, err := tryAcquire(l, "k", opts)
			if err != nil {
				t.Fatal(err)
			}
			tokens = append(tokens, lease.Token())
			return lease
		}
		take(AcquireOptions{}).Release(context.Background())
		take(AcquireOptions{Shared: true}).Release(context.Background())
		take(AcquireOptions{}).Release(context.Background())
		m1 := take(AcquireOptions{MaxHolders: 3})
		m2 := take(AcquireOptions{MaxHolders: 3})
		m1.Release(context.Background())
		m2.Release(context.Background())
		take(AcquireOptions{}).Release(context.Background())
		for i, tok := range tokens {
			if tok != uint64(i+1) {
				t.Fatalf("tokens %v, want 1..%d", tokens, len(tokens))
			}
		}
	})
}

// A semaphore and a mix of kinds across processes: 3×N processes contend.
func TestLocalSharedAcrossProcesses(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, modes []string, iters int) []string {
		t.Helper()
		dir := t.TempDir()
		out := filepath.Join(dir, "result")
		if err := os.Mkdir(out+".inside", 0o755); err != nil {
			t.Fatal(err)
		}
		var cmds []*exec.Cmd
		for _, mode := range modes {
			cmd := exec.Command(exe)
			cmd.Env = append(os.Environ(), envLocalChild+"=semaphore", envLocalDir+"="+dir, envLocalKey+"=k",
				envLocalOut+"="+out, envLocalIters+"="+strconv.Itoa(iters), envLocalMode+"="+mode)
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
		data, _ := os.ReadFile(out + ".log")
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != len(modes)*iters {
			t.Fatalf("%d sections logged, want %d", len(lines), len(modes)*iters)
		}
		// Every acquisition got its own token: 1..total, each once.
		var tokens []int
		for _, line := range lines {
			f := strings.Fields(line)
			tok, _ := strconv.Atoi(f[3])
			tokens = append(tokens, tok)
		}
		sort.Ints(tokens)
		for i, tok := range tokens {
			if tok != i+1 {
				t.Fatalf("sorted tokens %v, want 1..%d each once", tokens, len(tokens))
			}
		}
		return lines
	}

	t.Run("a child of a shared holder inherits none of its files", func(t *testing.T) {
		dir := t.TempDir()
		lease := acquire(t, newTestLocal(t, dir), "k", AcquireOptions{MaxHolders: 2})
		if n := len(lease.Files()); n != 3 {
			t.Fatalf("a holder of a semaphore holds %d files, want 3 (key, slot, holder file)", n)
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), envLocalChild+"=fds")
		fds, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(fds), LocalFileName("k")) {
			t.Fatalf("child inherited a lock file descriptor:\n%s", fds)
		}
	})

	t.Run("a semaphore of 2 never has more than 2 holders among 6 processes", func(t *testing.T) {
		const n = 2
		modes := []string{"max=2", "max=2", "max=2", "max=2", "max=2", "max=2"}
		most := 0
		for _, line := range run(t, modes, 20) {
			f := strings.Fields(line)
			same, _ := strconv.Atoi(f[1])
			if same > n {
				t.Fatalf("%d holders at once with --max-holders %d: %s", same, n, line)
			}
			most = max(most, same)
		}
		if most < n {
			t.Logf("holders never overlapped (most %d): the machine may be too slow to show it", most)
		}
	})

	t.Run("exclusive and shared processes never hold together", func(t *testing.T) {
		modes := []string{"exclusive", "shared", "shared", "exclusive", "shared", "shared"}
		sharedTogether := false
		for _, line := range run(t, modes, 15) {
			f := strings.Fields(line)
			same, _ := strconv.Atoi(f[1])
			other, _ := strconv.Atoi(f[2])
			switch {
			case other > 0:
				t.Fatalf("kinds mixed: %s", line)
			case f[0] == "X" && same > 1:
				t.Fatalf("two exclusive holders: %s", line)
			case f[0] == "S" && same > 1:
				sharedTogether = true
			}
		}
		if !sharedTogether {
			t.Logf("shared holders never overlapped: the machine may be too slow to show it")
		}
	})
}
