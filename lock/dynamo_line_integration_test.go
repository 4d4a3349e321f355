package lock

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/locked-run/locked-run/internal/ddblocal"
)

// TestDynamoLocalLineOrder: waiters that start waiting one after another
// acquire in that order, whatever their polls do.
func TestDynamoLocalLineOrder(t *testing.T) {
	e := newITEnv(t)
	holder := itAcquire(t, e.dynamo(t, e.client(nil), "holder", nil), "line")
	const n = 6
	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
	)
	for i := range n {
		d := e.dynamo(t, e.client(nil), fmt.Sprintf("waiter-%d", i), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := 0
			l, err := d.Acquire(context.Background(), "line", AcquireOptions{OnWait: func(w Wait) {
				if first == 0 {
					first = w.Position
				}
			}})
			if err != nil {
				t.Error(err)
				return
			}
			if first != i+1 {
				t.Errorf("waiter %d was first told place %d in line, want %d", i, first, i+1)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			time.Sleep(30 * time.Millisecond)
			if err := release(t, l); err != nil {
				t.Error(err)
			}
		}()
		waitFor(t, 10*time.Second, fmt.Sprintf("waiter %d in line", i), func() bool { return len(e.status(t, "line").Line) == i+1 })
	}
	rec := e.status(t, "line")
	for i, w := range rec.Line {
		if w.Host != fmt.Sprintf("waiter-%d", i) {
			t.Errorf("line[%d] = %s, want waiter-%d", i, w.Host, i)
		}
	}
	if err := release(t, holder); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("acquired in order %v, want 0..%d", order, n-1)
		}
	}
	if rec := e.status(t, "line"); rec.Held() || len(rec.Line) != 0 || rec.Token != n+1 {
		t.Errorf("after: held %v, line %d, token %d; want free, empty line, token %d", rec.Held(), len(rec.Line), rec.Token, n+1)
	}
}

// waitFor polls cond until it holds, or fails the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDynamoLocalShared: shared holders hold together, an exclusive one
// waits for all of them, and shared callers that come after a queued
// exclusive one wait behind it.
func TestDynamoLocalShared(t *testing.T) {
	e := newITEnv(t)
	ctx := context.Background()
	var shared []*Lease
	for i := range 3 {
		d := e.dynamo(t, e.client(nil), fmt.Sprintf("reader-%d", i), nil)
		l, err := d.Acquire(ctx, "rw", AcquireOptions{NoWait: true, Shared: true})
		if err != nil {
			t.Fatalf("shared %d: %v", i, err)
		}
		shared = append(shared, l)
	}
	rec := e.status(t, "rw")
	if len(rec.Holders) != 3 || !rec.Shared {
		t.Fatalf("status shows %d holders (shared %v), want 3 shared", len(rec.Holders), rec.Shared)
	}
	seen := map[uint64]bool{}
	for _, l := range shared {
		if seen[l.Token()] {
			t.Errorf("two shared holders got token %d", l.Token())
		}
		seen[l.Token()] = true
	}
	if _, err := e.dynamo(t, e.client(nil), "writer-n", nil).Acquire(ctx, "rw", AcquireOptions{NoWait: true}); !errors.Is(err, ErrHeld) {
		t.Fatalf("exclusive NoWait among shared holders = %v, want ErrHeld", err)
	}

	var order []string
	var mu sync.Mutex
	got := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l, err := e.dynamo(t, e.client(nil), "writer", nil).Acquire(ctx, "rw", AcquireOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		got("writer")
		time.Sleep(50 * time.Millisecond)
		_ = release(t, l)
	}()
	waitFor(t, 10*time.Second, "writer in line", func() bool { return len(e.status(t, "rw").Line) == 1 })
	wg.Add(1)
	go func() {
		defer wg.Done()
		l, err := e.dynamo(t, e.client(nil), "late-reader", nil).Acquire(ctx, "rw", AcquireOptions{Shared: true})
		if err != nil {
			t.Error(err)
			return
		}
		got("late-reader")
		_ = release(t, l)
	}()
	waitFor(t, 10*time.Second, "late reader in line", func() bool { return len(e.status(t, "rw").Line) == 2 })
	for _, l := range shared {
		if err := release(t, l); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if len(order) != 2 || order[0] != "writer" {
		t.Errorf("after the shared holders left, acquired %v; want the queued writer before the late reader", order)
	}
}

// TestDynamoLocalMaxHolders: never more than N holders, and a caller with
// another N is refused.
func TestDynamoLocalMaxHolders(t *testing.T) {
	e := newITEnv(t)
	const n, callers = 2, 6
	var (
		inside, most atomic.Int32
		wg           sync.WaitGroup
	)
	first, err := e.dynamo(t, e.client(nil), "first", nil).Acquire(context.Background(), "sem", AcquireOptions{MaxHolders: n})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dynamo(t, e.client(nil), "odd", nil).Acquire(context.Background(), "sem", AcquireOptions{MaxHolders: 3}); !errors.As(err, new(*MaxHoldersError)) {
		t.Errorf("--max-holders 3 on a key held with 2 = %v, want *MaxHoldersError", err)
	} else if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("MaxHoldersError does not match ErrInvalidConfig: %v", err)
	}
	if _, err := e.dynamo(t, e.client(nil), "odd-shared", nil).Acquire(context.Background(), "sem", AcquireOptions{Shared: true}); !errors.As(err, new(*MaxHoldersError)) {
		t.Errorf("--shared (any number) on a key held with 2 = %v, want *MaxHoldersError", err)
	}
	if err := release(t, first); err != nil {
		t.Fatal(err)
	}
	for i := range callers {
		d := e.dynamo(t, e.client(nil), fmt.Sprintf("slot-%d", i), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				l, err := d.Acquire(context.Background(), "sem", AcquireOptions{MaxHolders: n})
				if err != nil {
					t.Error(err)
					return
				}
				now := inside.Add(1)
				for {
					m := most.Load()
					if now <= m || most.CompareAndSwap(m, now) {
						break
					}
				}
				time.Sleep(40 * time.Millisecond)
				inside.Add(-1)
				if err := release(t, l); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if m := most.Load(); m > n || m < 2 {
		t.Errorf("at most %d holders at once, want exactly %d", m, n)
	}
	if rec := e.status(t, "sem"); rec.Held() || len(rec.Line) != 0 {
		t.Errorf("after: %+v", rec)
	}
}

// TestDynamoLocalLineLeaves: a waiter that gives up leaves the line at
// once; one that stops refreshing (its process died) is removed by the
// waiter behind it after a lease, and that waiter then acquires.
func TestDynamoLocalLineLeaves(t *testing.T) {
	e := newITEnv(t)
	holder := itAcquire(t, e.dynamo(t, e.client(nil), "holder", nil), "leave")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.dynamo(t, e.client(nil), "quitter", nil).Acquire(ctx, "leave", AcquireOptions{})
		done <- err
	}()
	waitFor(t, 10*time.Second, "quitter in line", func() bool { return len(e.status(t, "leave").Line) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait = %v", err)
	}
	if rec := e.status(t, "leave"); len(rec.Line) != 0 {
		t.Fatalf("a cancelled waiter left %d entries in the line", len(rec.Line))
	}
	if _, err := e.dynamo(t, e.client(nil), "timer", nil).Acquire(context.Background(), "leave", AcquireOptions{Timeout: 500 * time.Millisecond}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out wait = %v", err)
	}
	if rec := e.status(t, "leave"); len(rec.Line) != 0 {
		t.Fatalf("a timed-out waiter left %d entries in the line", len(rec.Line))
	}

	// A dead waiter: its requests go through a proxy that then drops
	// everything, so its entry stays and stops changing.
	p := e.proxy(t)
	dctx, dcancel := context.WithCancel(context.Background())
	defer dcancel()
	go func() {
		_, _ = e.dynamo(t, e.client(p), "dead", nil).Acquire(dctx, "leave", AcquireOptions{})
	}()
	waitFor(t, 10*time.Second, "dead waiter in line", func() bool { return len(e.status(t, "leave").Line) == 1 })
	p.Blackhole(true)
	behind := make(chan error, 1)
	go func() {
		l, err := e.dynamo(t, e.client(nil), "behind", nil).Acquire(context.Background(), "leave", AcquireOptions{})
		if err == nil {
			err = release(t, l)
		}
		behind <- err
	}()
	waitFor(t, 10*time.Second, "second waiter in line", func() bool { return len(e.status(t, "leave").Line) == 2 })
	released := time.Now()
	if err := release(t, holder); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-behind:
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(released)
		t.Logf("the waiter behind a dead one acquired %s after the release (lease %s)", took.Round(time.Millisecond), itTiming.Lease)
		if took < itTiming.Lease/2 {
			t.Errorf("acquired %s after the release: the dead waiter was skipped before it could have been seen unchanged for a lease", took)
		}
	case <-time.After(itTiming.Lease + 10*time.Second):
		t.Fatalf("the waiter behind a dead one did not acquire within lease + 10s")
	}
}

// TestDynamoLocalOldLayout: an item of the layout before the line
// (locked-run/1) is read, waited for and taken over like an exclusive
// holder, and rewritten in the new layout.
func TestDynamoLocalOldLayout(t *testing.T) {
	e := newITEnv(t)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	_, err := e.raw.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: map[string]types.AttributeValue{
		attrKey: avS("old"), attrSchema: avS(SchemaV1), attrOwner: avS("oldhost-1-00000000"), attrHost: avS("oldhost"),
		attrPID: avN(1), attrAcquired: avS(now), attrHeartbeat: avS(now), attrLease: avN(2000), attrRVN: avS("r1"), attrToken: avN(41),
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec := e.status(t, "old")
	if !rec.Held() || rec.Host != "oldhost" || len(rec.Holders) != 1 {
		t.Fatalf("status of an old item: %+v", rec)
	}
	start := time.Now()
	l := itAcquire(t, e.dynamo(t, e.client(nil), "new", nil), "old")
	if took := time.Since(start); took < time.Second {
		t.Errorf("took the old holder's lock over after %s, before its lease could have run out", took)
	}
	if l.Token() != 42 {
		t.Errorf("token %d, want 42 (the old counter + 1)", l.Token())
	}
	out, err := e.raw.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(e.table), Key: keyOf("old"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := out.Item[attrSchema].(*types.AttributeValueMemberS); s == nil || s.Value != SchemaVersion {
		t.Errorf("Schema after a new holder took it = %v, want %q", out.Item[attrSchema], SchemaVersion)
	}
	if err := release(t, l); err != nil {
		t.Fatal(err)
	}
}

// TestDynamoLocalLongWait: waiters that wait for longer than a lease keep
// their places (they refresh their entries, so nobody removes them).
func TestDynamoLocalLongWait(t *testing.T) {
	e := newITEnv(t)
	holder := itAcquire(t, e.dynamo(t, e.client(nil), "holder", nil), "long")
	got := make(chan string, 2)
	for _, name := range []string{"first", "second"} {
		d := e.dynamo(t, e.client(nil), name, nil)
		go func() {
			l, err := d.Acquire(context.Background(), "long", AcquireOptions{})
			if err != nil {
				t.Error(err)
				got <- "error"
				return
			}
			got <- name
			_ = release(t, l)
		}()
		waitFor(t, 10*time.Second, name+" in line", func() bool {
			l := e.status(t, "long").Line
			return len(l) > 0 && l[len(l)-1].Host == name
		})
	}
	end := time.Now().Add(2 * itTiming.Lease)
	for time.Now().Before(end) {
		if rec := e.status(t, "long"); len(rec.Line) != 2 || rec.Owner != holder.Owner() {
			t.Fatalf("while waiting: holder %s, %d in line; want the holder and 2 waiters", rec.Owner, len(rec.Line))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := release(t, holder); err != nil {
		t.Fatal(err)
	}
	if a, b := <-got, <-got; a != "first" || b != "second" {
		t.Errorf("acquired %s then %s, want first then second", a, b)
	}
}

// TestDynamoLocalReleaseShared: release --owner breaks one shared holder,
// --force all of them.
func TestDynamoLocalReleaseShared(t *testing.T) {
	e := newITEnv(t)
	var holders []*Lease
	for i := range 3 {
		l, err := e.dynamo(t, e.client(nil), fmt.Sprintf("r%d", i), nil).Acquire(context.Background(), "brk", AcquireOptions{Shared: true, NoWait: true})
		if err != nil {
			t.Fatal(err)
		}
		holders = append(holders, l)
	}
	obs := e.dynamo(t, e.raw, "observer", nil)
	rec, err := obs.ReleaseOwner(context.Background(), "brk", holders[1].Owner())
	if err != nil || rec.Owner != holders[1].Owner() {
		t.Fatalf("ReleaseOwner of a shared holder = %+v, %v", rec, err)
	}
	waitClosed(t, holders[1].Lost(), itTiming.Heartbeat+2*time.Second, "Lost of the released shared holder")
	if isClosed(holders[0].Lost()) || len(e.status(t, "brk").Holders) != 2 {
		t.Fatalf("ReleaseOwner touched other shared holders")
	}
	if _, err := obs.ForceRelease(context.Background(), "brk"); err != nil {
		t.Fatal(err)
	}
	if rec := e.status(t, "brk"); rec.Held() {
		t.Fatalf("after ForceRelease: %+v", rec)
	}
	waitClosed(t, holders[0].Lost(), itTiming.Heartbeat+2*time.Second, "Lost of a force-released shared holder")
}

// TestDynamoLocalJoinInFlight: a wait cancelled while its joining write is
// still on its way leaves no entry, even when that write lands afterwards.
func TestDynamoLocalJoinInFlight(t *testing.T) {
	e := newITEnv(t)
	holder := itAcquire(t, e.dynamo(t, e.client(nil), "holder", nil), "flight")
	p := e.proxy(t)
	p.SetLatency(400 * time.Millisecond) // under the request timeout
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.dynamo(t, e.client(p), "late", nil).Acquire(ctx, "flight", AcquireOptions{})
		done <- err
	}()
	// Every request is slow: cancel once the join has reached the
	// proxy, so that it lands after the wait ended; the cleanup's own
	// requests then pass at once.
	waitFor(t, 10*time.Second, "the join sent", func() bool { return p.Stats().Requests["UpdateItem"] >= 2 })
	p.SetLatency(0)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait = %v", err)
	}
	landed := time.Now().Add(2 * time.Second)
	for time.Now().Before(landed) {
		time.Sleep(100 * time.Millisecond)
	}
	if rec := e.status(t, "flight"); len(rec.Line) != 0 {
		t.Fatalf("a join in flight at the cancel left %d entries in the line: %+v", len(rec.Line), rec.Line)
	}
	if err := release(t, holder); err != nil {
		t.Fatal(err)
	}
}

// TestDynamoLocalDoorbell: on one host, the release wakes the head of the
// line at once, whatever its poll (Linux).
func TestDynamoLocalDoorbell(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the doorbell is Linux-only")
	}
	e := newITEnv(t)
	slow := itTiming
	slow.Poll = 20 * time.Second
	mk := func(host string) *Dynamo {
		d, err := NewDynamo(DynamoConfig{Client: e.client(nil), Table: e.table, Timing: slow, Identity: Identity{Host: host, PID: 1}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	holder := itAcquire(t, mk("holder"), "bell")
	got := make(chan time.Time, 1)
	go func() {
		l, err := mk("waiter").Acquire(context.Background(), "bell", AcquireOptions{})
		if err != nil {
			t.Error(err)
			got <- time.Time{}
			return
		}
		got <- time.Now()
		_ = release(t, l)
	}()
	waitFor(t, 10*time.Second, "waiter in line", func() bool { return len(e.status(t, "bell").Line) == 1 })
	released := time.Now()
	if err := release(t, holder); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-got:
		t.Logf("the head took the key %s after the release (poll %s)", at.Sub(released).Round(time.Millisecond), slow.Poll)
	case <-time.After(5 * time.Second):
		t.Fatalf("the head did not take the key within 5s of the release: no doorbell (poll %s)", slow.Poll)
	}
}

// TestDynamoLocalHandover: a holder that releases with an exclusive waiter
// at the head of the line makes it the holder in the same write, and on
// this host tells it through its doorbell: the waiter sends no request to
// learn it.
func TestDynamoLocalHandover(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the doorbell is Linux-only")
	}
	e := newITEnv(t)
	slow := itTiming
	slow.Poll = 20 * time.Second
	ct := &countingTransport{base: &http.Transport{}}
	mk := func(host string, api DynamoAPI) *Dynamo {
		d, err := NewDynamo(DynamoConfig{Client: api, Table: e.table, Timing: slow, Identity: Identity{Host: host, PID: 1}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	holder := itAcquire(t, mk("holder", e.client(nil)), "hand")
	got := make(chan *Lease, 1)
	go func() {
		l, err := mk("waiter", ddblocal.Client(e.endpoint, &http.Client{Transport: ct})).Acquire(context.Background(), "hand", AcquireOptions{})
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	waitFor(t, 10*time.Second, "waiter in line", func() bool { return len(e.status(t, "hand").Line) == 1 })
	// Let the holder's heartbeat see the line, then release.
	time.Sleep(slow.Heartbeat + 300*time.Millisecond)
	before := len(ct.take())
	released := time.Now()
	if err := release(t, holder); err != nil {
		t.Fatal(err)
	}
	var l *Lease
	select {
	case l = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no handover within 5s of the release")
	}
	took := time.Since(released)
	if after := ct.take(); len(after) != 0 {
		t.Errorf("the waiter sent %v after the release, want nothing: the handover comes with the doorbell", after)
	}
	if l == nil {
		t.Fatal("no lease")
	}
	t.Logf("handed over %s after the release (the waiter sent %d requests before it)", took.Round(time.Millisecond), before)
	rec := e.status(t, "hand")
	if rec.Owner != l.Owner() || l.Token() != 2 || rec.Token != 2 || len(rec.Line) != 0 {
		t.Errorf("after the handover: item owner %s token %d line %d; lease owner %s token %d", rec.Owner, rec.Token, len(rec.Line), l.Owner(), l.Token())
	}
	// The new holder renews its handed-over hold and releases it.
	time.Sleep(slow.Heartbeat + 300*time.Millisecond)
	if isClosed(l.Lost()) {
		t.Fatalf("handed-over lease lost: %v", l.Err())
	}
	if err := release(t, l); err != nil {
		t.Fatal(err)
	}
	if rec := e.status(t, "hand"); rec.Held() {
		t.Errorf("after release: %+v", rec)
	}
}

// TestDynamoLocalLeaveAfterHandover: a waiter that leaves the line as the
// key is handed over to it finds itself the holder, and removes that hold.
func TestDynamoLocalLeaveAfterHandover(t *testing.T) {
	e := newITEnv(t)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	_, err := e.raw.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: map[string]types.AttributeValue{
		attrKey: avS("gone"), attrSchema: avS(SchemaVersion), attrOwner: avS("quitter-1-00000000"), attrHost: avS("quitter"),
		attrPID: avN(1), attrAcquired: avS(now), attrHeartbeat: avS(now), attrLease: avN(3000), attrRVN: avS("handed"), attrToken: avN(7),
		attrLine: &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := e.dynamo(t, e.client(nil), "quitter", nil)
	if !d.leaveLine(context.Background(), "gone", "quitter-1-00000000", 0) {
		t.Fatal("leaveLine did not report the entry gone")
	}
	if rec := e.status(t, "gone"); rec.Held() || rec.Token != 7 {
		t.Fatalf("after leaving: %+v; want the handed-over hold removed, token kept", rec)
	}
}

// TestDynamoLocalHeadPoll: without the doorbell (a waiter on another
// host), the head of the line learns of a release at its next read:
// about half a poll later at the median with the default poll.
func TestDynamoLocalHeadPoll(t *testing.T) {
	e := newITEnv(t)
	timing := itTiming
	timing.Poll = DefaultPoll
	mk := func(host string) *Dynamo {
		d, err := NewDynamo(DynamoConfig{Client: e.client(nil), Table: e.table, Timing: timing, Identity: Identity{Host: host, PID: 1}})
		if err != nil {
			t.Fatal(err)
		}
		d.noDoorbell = true
		return d
	}
	const rounds = 9
	var gaps []time.Duration
	holder := itAcquire(t, mk("holder"), "poll")
	for i := range rounds {
		got := make(chan *Lease, 1)
		go func() {
			l, err := mk(fmt.Sprintf("w%d", i)).Acquire(context.Background(), "poll", AcquireOptions{})
			if err != nil {
				t.Error(err)
			}
			got <- l
		}()
		waitFor(t, 10*time.Second, "waiter in line", func() bool { return len(e.status(t, "poll").Line) == 1 })
		time.Sleep(time.Duration(i) * 37 * time.Millisecond) // release at varied phases of its poll
		released := time.Now()
		if err := release(t, holder); err != nil {
			t.Fatal(err)
		}
		holder = <-got
		if holder == nil {
			t.FailNow()
		}
		gaps = append(gaps, time.Since(released))
	}
	_ = release(t, holder)
	slices.Sort(gaps)
	median := gaps[rounds/2]
	t.Logf("head acquired after a release, no doorbell, poll %s: median %s (min %s, max %s)", timing.Poll,
		median.Round(time.Millisecond), gaps[0].Round(time.Millisecond), gaps[rounds-1].Round(time.Millisecond))
	if median > 3*timing.Poll {
		t.Errorf("median %s after a release, want about half a poll (%s)", median, timing.Poll/2)
	}
}
