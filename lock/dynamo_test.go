package lock

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// unitTiming is the timing of the unit tests: lost deadline at 1.7 s after
// the last landed write (3 s − 1 s kill-after − 0.3 s margin).
var unitTiming = Timing{Lease: 3 * time.Second, Heartbeat: time.Second, KillAfter: time.Second, Poll: 200 * time.Millisecond}

const unitRenewDeadline = 1700 * time.Millisecond

var unitIdentity = Identity{Host: "me", PID: 42, User: "alice", Command: "make deploy"}

// newUnitDynamo returns a backend on f and clk whose polls are not
// jittered, so that the tests can say exactly when each request happens.
func newUnitDynamo(t *testing.T, f *fakeTable, clk Clock) *Dynamo {
	t.Helper()
	d, err := NewDynamo(DynamoConfig{Client: f, Table: fakeTableName, Timing: unitTiming, Identity: unitIdentity, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	d.jitter = func(d time.Duration) time.Duration { return d }
	return d
}

// holderItem is the item of a key held by another process. leaseMs < 0
// leaves LeaseMs out. Its wall-clock times are five hours ahead, as written
// by a host whose clock is wrong.
func holderItem(key, owner, rvn string, leaseMs, token int64) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		attrKey:       avS(key),
		attrSchema:    avS(SchemaVersion),
		attrOwner:     avS(owner),
		attrHost:      avS("other-host"),
		attrPID:       avN(7),
		attrUser:      avS("bob"),
		attrCommand:   avS("terraform apply"),
		attrAcquired:  avS("2026-01-02T08:00:00Z"),
		attrHeartbeat: avS("2026-01-02T08:04:00Z"),
		attrRVN:       avS(rvn),
		attrToken:     avN(token),
	}
	if leaseMs >= 0 {
		item[attrLease] = avN(leaseMs)
	}
	return item
}

// renewedAt returns item with its HeartbeatAt set to at: a holder whose
// clock agrees with ours and that renewed then, which looks alive.
func renewedAt(item map[string]types.AttributeValue, at time.Time) map[string]types.AttributeValue {
	item[attrHeartbeat] = avS(formatTime(at))
	return item
}

// asyncAcquire runs Acquire on its own goroutine.
type asyncAcquire struct {
	done  chan struct{}
	lease *Lease
	err   error
}

func goAcquire(ctx context.Context, d *Dynamo, key string, opts AcquireOptions) *asyncAcquire {
	a := &asyncAcquire{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.lease, a.err = d.Acquire(ctx, key, opts)
	}()
	return a
}

func (a *asyncAcquire) wait(t *testing.T) (*Lease, error) {
	t.Helper()
	select {
	case <-a.done:
		return a.lease, a.err
	case <-time.After(waitLimit):
		t.Fatal("Acquire did not return")
		return nil, nil
	}
}

// mustAcquire takes key at once on the fake table and releases it when the
// test ends.
func mustAcquire(t *testing.T, d *Dynamo, key string) *Lease {
	t.Helper()
	l, err := d.Acquire(context.Background(), key, AcquireOptions{})
	if err != nil {
		t.Fatalf("acquire %q: %v", key, err)
	}
	return l
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func throttled() error {
	return &types.ProvisionedThroughputExceededException{Message: aws.String("Rate of requests exceeds the allowed throughput")}
}

func TestDynamoHeartbeats(t *testing.T) {
	t.Run("a free key is taken in one write and renewed every heartbeat from its send time", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "heartbeat")
		d := newUnitDynamo(t, f, clk)
		start := clk.Now()
		l := mustAcquire(t, d, "deploy")
		if got := f.callsOf(); len(got) != 1 || got[0].Kind != "acquire" {
			t.Fatalf("calls = %+v, want one acquire", got)
		}
		if l.Token() != 1 || !strings.HasPrefix(l.Owner(), "me-42-") {
			t.Fatalf("lease token %d owner %q", l.Token(), l.Owner())
		}
		rvns := map[string]bool{f.record(t, "deploy").Version: true}
		for i := 1; i <= 4; i++ {
			clk.step(t, 1, time.Second)
			hb := f.waitCalls(t, "heartbeat", i)
			if at := hb[i-1].At.Sub(start); at != time.Duration(i)*time.Second {
				t.Fatalf("heartbeat %d sent at %s, want %ds", i, at, i)
			}
			rec := f.record(t, "deploy")
			if rvns[rec.Version] || rec.Owner != l.Owner() {
				t.Fatalf("heartbeat %d left %+v", i, rec)
			}
			rvns[rec.Version] = true
		}
		if isClosed(l.Lost()) {
			t.Fatalf("lost: %v", l.Err())
		}
	})

	t.Run("renewals failing with transient errors close Lost at the renew deadline, before lease minus kill-after", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "heartbeat")
		d := newUnitDynamo(t, f, clk)
		start := clk.Now()
		l := mustAcquire(t, d, "deploy")
		f.setHook(func(c *fakeCall) (bool, error) {
			if c.Kind == "heartbeat" {
				return false, throttled()
			}
			return true, nil
		})
		clk.run(t, 1, 10*time.Millisecond, unitTiming.Lease, l.Lost(), nil)
		lostAfter := clk.since(start)
		if lostAfter < unitRenewDeadline || lostAfter > unitRenewDeadline+10*time.Millisecond {
			t.Errorf("Lost closed %s after the acquiring write, want at the renew deadline %s", lostAfter, unitRenewDeadline)
		}
		if lostAfter >= unitTiming.Lease-unitTiming.KillAfter {
			t.Errorf("Lost closed %s after acquiring: no time left to stop the child before lease - kill-after", lostAfter)
		}
		if err := l.Err(); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "exceeds the allowed throughput") {
			t.Errorf("Err() = %v, want ErrLost carrying the last error", err)
		}
		hbs := f.callsOf("heartbeat")
		if len(hbs) < 3 {
			t.Errorf("only %d heartbeat attempts before giving up", len(hbs))
		}
		for _, c := range hbs {
			if c.At.Sub(start) >= unitRenewDeadline {
				t.Errorf("heartbeat attempt at %s, after the renew deadline", c.At.Sub(start))
			}
		}
	})

	t.Run("a heartbeat that landed although its answer was lost keeps the lease", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "heartbeat")
		d := newUnitDynamo(t, f, clk)
		start := clk.Now()
		l := mustAcquire(t, d, "deploy")
		first := true
		f.setHook(func(c *fakeCall) (bool, error) {
			if c.Kind == "heartbeat" && first {
				first = false
				return true, context.DeadlineExceeded // applied; the client timed out
			}
			return true, nil
		})
		clk.step(t, 1, time.Second)
		hb := f.waitCalls(t, "heartbeat", 1)
		clk.step(t, 1, 100*time.Millisecond) // the retry's backoff
		hb = f.waitCalls(t, "heartbeat", 2)
		if hb[1].Err != nil {
			t.Fatalf("retry of a landed heartbeat failed: %v", hb[1].Err)
		}
		if f.record(t, "deploy").Version != exprValue(hb[0], ":next") {
			t.Fatal("the item does not carry the heartbeat's version")
		}
		// The lease now runs from the first attempt's send time, which
		// is the conservative choice: the next heartbeat is due at 2 s.
		clk.waitTimers(t, 1)
		clk.Advance(2*time.Second - clk.since(start))
		hb = f.waitCalls(t, "heartbeat", 3)
		if at := hb[2].At.Sub(start); at != 2*time.Second {
			t.Errorf("next heartbeat at %s, want 2s", at)
		}
		if isClosed(l.Lost()) {
			t.Fatalf("lost: %v", l.Err())
		}
	})

	t.Run("a condition failure showing our own new version is not a loss", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "heartbeat")
		d := newUnitDynamo(t, f, clk)
		l := mustAcquire(t, d, "deploy")
		first := true
		f.setHook(func(c *fakeCall) (bool, error) {
			if c.Kind == "heartbeat" && first {
				first = false
				// Another attempt of ours got there first.
				f.update("deploy", map[string]types.AttributeValue{attrRVN: avS(exprValue(*c, ":next"))})
				return false, &types.ConditionalCheckFailedException{Item: f.item("deploy")}
			}
			return true, nil
		})
		clk.step(t, 1, time.Second)
		f.waitCalls(t, "heartbeat", 1)
		clk.step(t, 1, time.Second)
		f.waitCalls(t, "heartbeat", 2)
		if isClosed(l.Lost()) {
			t.Fatalf("lost: %v", l.Err())
		}
	})

	t.Run("a holder that wakes up past its renew deadline reports lost without writing", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire")
		d := newUnitDynamo(t, f, clk)
		l := mustAcquire(t, d, "deploy")
		clk.step(t, 1, 10*time.Second) // suspended, then resumed
		select {
		case <-l.Lost():
		case <-time.After(waitLimit):
			t.Fatal("Lost not closed")
		}
		if !errors.Is(l.Err(), ErrLost) {
			t.Fatalf("Err() = %v", l.Err())
		}
	})

	t.Run("each heartbeat attempt's deadline ends before the renew deadline", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "heartbeat")
		d := newUnitDynamo(t, f, clk)
		start := clk.Now()
		l := mustAcquire(t, d, "deploy")
		f.setHook(func(c *fakeCall) (bool, error) {
			if c.Kind == "heartbeat" {
				return false, context.DeadlineExceeded
			}
			return true, nil
		})
		clk.run(t, 1, 10*time.Millisecond, unitTiming.Lease, l.Lost(), nil)
		hbs := f.callsOf("heartbeat")
		if len(hbs) < 3 {
			t.Fatalf("only %d heartbeat attempts", len(hbs))
		}
		for _, c := range hbs {
			left := unitRenewDeadline - c.At.Sub(start)
			if c.Timeout <= 0 || c.Timeout > left || c.Timeout > d.reqTimeout {
				t.Errorf("attempt at %s had %s until its deadline; %s was left of the lease (request timeout %s)",
					c.At.Sub(start), c.Timeout, left, d.reqTimeout)
			}
		}
	})
}

// exprValue returns the string value of a placeholder in an UpdateItem.
func exprValue(c fakeCall, name string) string {
	if s, ok := c.Update.ExpressionAttributeValues[name].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func TestDynamoLoss(t *testing.T) {
	tests := []struct {
		name    string
		do      func(f *fakeTable)
		wantErr string
		is      []error
	}{
		{
			name: "an item taken by another owner closes Lost at the next heartbeat",
			do: func(f *fakeTable) {
				f.update("deploy", map[string]types.AttributeValue{attrOwner: avS("thief-9-00000000"), attrRVN: avS("x")})
			},
			wantErr: "taken by thief-9-00000000",
		},
		{
			name:    "a deleted item closes Lost at the next heartbeat",
			do:      func(f *fakeTable) { f.remove("deploy") },
			wantErr: "deleted",
		},
		{
			name: "a forced release closes Lost at the next heartbeat",
			do: func(f *fakeTable) {
				f.update("deploy", map[string]types.AttributeValue{attrOwner: nil, attrRVN: nil})
			},
			wantErr: "released by someone else",
		},
		{
			name:    "a deleted table closes Lost at the next heartbeat",
			do:      func(f *fakeTable) { f.mu.Lock(); f.exists = false; f.mu.Unlock() },
			wantErr: "table",
			is:      []error{ErrTableNotFound},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			f := newFakeTable(t, clk, "acquire", "heartbeat", "release")
			d := newUnitDynamo(t, f, clk)
			start := clk.Now()
			l := mustAcquire(t, d, "deploy")
			tt.do(f)
			clk.step(t, 1, time.Second)
			select {
			case <-l.Lost():
			case <-time.After(waitLimit):
				t.Fatal("Lost not closed")
			}
			if got := clk.since(start); got != time.Second {
				t.Errorf("lost after %s, want at the first heartbeat", got)
			}
			if n := len(f.callsOf("heartbeat")); n != 1 {
				t.Errorf("%d heartbeats, want 1: a failed condition is not retried", n)
			}
			err := l.Err()
			if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Err() = %v, want ErrLost saying %q", err, tt.wantErr)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("Err() = %v, want it to match %v", err, target)
				}
			}
			// Release never touches what is no longer ours.
			before := f.item("deploy")
			if err := l.Release(context.Background()); !errors.Is(err, ErrLost) && !errors.Is(err, ErrTableNotFound) {
				t.Errorf("Release after loss = %v, want ErrLost", err)
			}
			if after := f.item("deploy"); len(after) != len(before) || (after != nil && !equalAV(after[attrOwner], before[attrOwner]) && before[attrOwner] != nil) {
				t.Errorf("release changed the item: %v -> %v", before, after)
			}
		})
	}
}

func TestDynamoRelease(t *testing.T) {
	t.Run("release waits for an in-flight heartbeat and the heartbeat does not re-arm the lock", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "heartbeat", "release")
		d := newUnitDynamo(t, f, clk)
		l := mustAcquire(t, d, "deploy")
		inFlight := make(chan struct{})
		f.setHook(func(c *fakeCall) (bool, error) {
			if c.Kind != "heartbeat" {
				return true, nil
			}
			close(inFlight)
			// The heartbeat reaches the server only after the client
			// gave up on it: the worst case for a release.
			<-c.Ctx.Done()
			return true, c.Ctx.Err()
		})
		clk.step(t, 1, time.Second)
		<-inFlight
		released := make(chan error, 1)
		go func() { released <- l.Release(context.Background()) }()
		var err error
		select {
		case err = <-released:
		case <-time.After(waitLimit):
			t.Fatal("Release did not return")
		}
		if err != nil {
			t.Fatalf("Release: %v", err)
		}
		calls := f.callsOf()
		if len(calls) != 3 || calls[1].Kind != "heartbeat" || calls[2].Kind != "release" {
			t.Fatalf("calls = %v, want acquire, heartbeat, release", kinds(calls))
		}
		if !calls[1].Ended {
			t.Fatal("release was sent while the heartbeat was in flight")
		}
		rec := f.record(t, "deploy")
		if rec.Held() || rec.Token != 1 {
			t.Fatalf("after release: %+v, want free with token 1", rec)
		}
		// Nothing renews a released lock.
		clk.Advance(10 * unitTiming.Lease)
		if n := len(f.callsOf()); n != 3 {
			t.Fatalf("%d calls after release, want none", n-3)
		}
		if isClosed(l.Lost()) {
			t.Fatalf("Release closed Lost: %v", l.Err())
		}
		if err := l.Release(context.Background()); err != nil || len(f.callsOf()) != 3 {
			t.Fatalf("second Release = %v with %d calls, want nil and no request", err, len(f.callsOf()))
		}
	})

	t.Run("release retries a transient error and counts a landed first attempt as released", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "release")
		d := newUnitDynamo(t, f, clk)
		l := mustAcquire(t, d, "deploy")
		first := true
		f.setHook(func(c *fakeCall) (bool, error) {
			if c.Kind == "release" && first {
				first = false
				return true, context.DeadlineExceeded
			}
			return true, nil
		})
		released := make(chan struct{})
		var err error
		go func() { defer close(released); err = l.Release(context.Background()) }()
		f.waitCalls(t, "release", 1) // the renewer is stopped by now
		clk.run(t, 1, 10*time.Millisecond, time.Minute, released, nil)
		if err != nil {
			t.Fatalf("Release: %v", err)
		}
		if n := len(f.callsOf("release")); n != 2 {
			t.Fatalf("%d release attempts, want 2", n)
		}
	})
}

func kinds(calls []fakeCall) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Kind)
	}
	return out
}

func TestDynamoTakeover(t *testing.T) {
	const lease = 3 * time.Second
	tests := []struct {
		name     string
		leaseMs  int64         // holder's LeaseMs, -1 for none
		changeAt time.Duration // when the holder writes a new RVN; 0 for never
		wantMin  time.Duration // earliest acceptable takeover, after the start
		wantMax  time.Duration
	}{
		{name: "a holder silent for its whole lease is taken over then and not before", leaseMs: 3000,
			wantMin: lease, wantMax: lease},
		{name: "a new version restarts the watch from when it was seen", leaseMs: 3000, changeAt: 1500 * time.Millisecond,
			wantMin: 1500*time.Millisecond + lease, wantMax: 1600*time.Millisecond + lease},
		{name: "the holder's own shorter lease is honoured", leaseMs: 1000,
			wantMin: time.Second, wantMax: time.Second},
		{name: "a holder without a lease is given the waiter's", leaseMs: -1,
			wantMin: lease, wantMax: lease},
		{name: "a holder with a zero lease is given the waiter's", leaseMs: 0,
			wantMin: lease, wantMax: lease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave", "takeover", "release")
			f.put(holderItem("deploy", "other-7-abcdef01", "v1", tt.leaseMs, 41))
			d := newUnitDynamo(t, f, clk)
			start := clk.Now()
			a := goAcquire(context.Background(), d, "deploy", AcquireOptions{})
			changed := false
			clk.run(t, 1, 10*time.Millisecond, time.Minute, f.won, func(elapsed time.Duration) {
				if tt.changeAt > 0 && !changed && elapsed >= tt.changeAt {
					changed = true
					f.update("deploy", map[string]types.AttributeValue{attrRVN: avS("v2")})
				}
			})
			l, err := a.wait(t)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = l.Release(context.Background()) })
			takeovers := f.callsOf("takeover")
			if len(takeovers) != 1 {
				t.Fatalf("%d takeover writes, want 1", len(takeovers))
			}
			at := takeovers[0].At.Sub(start)
			if at < tt.wantMin || at > tt.wantMax {
				t.Errorf("took over %s after first seeing the holder, want within [%s, %s]", at, tt.wantMin, tt.wantMax)
			}
			if l.Token() != 42 {
				t.Errorf("token %d, want 42: one more than the holder's", l.Token())
			}
			if n := len(f.callsOf("acquire")); n != 1 {
				t.Errorf("%d acquiring writes on a held key, want 1: waiting reads", n)
			}
		})
	}

	t.Run("a waiter that first saw the holder late waits a full lease from then", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave", "takeover", "release")
		f.put(holderItem("deploy", "other-7-abcdef01", "v1", 3000, 1))
		d := newUnitDynamo(t, f, clk)
		// The first request's answer takes 2 s to arrive: the watch
		// starts at its reception, not at its sending.
		first := true
		f.setHook(func(c *fakeCall) (bool, error) {
			if first {
				first = false
				clk.Advance(2 * time.Second)
			}
			return true, nil
		})
		start := clk.Now()
		a := goAcquire(context.Background(), d, "deploy", AcquireOptions{})
		clk.run(t, 1, 10*time.Millisecond, time.Minute, f.won, nil)
		l, err := a.wait(t)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Release(context.Background()) })
		if at := f.callsOf("takeover")[0].At.Sub(start); at != 5*time.Second {
			t.Errorf("took over at %s, want 5s: 2s to learn of the holder, then its 3s lease", at)
		}
	})
}

func TestDynamoWaiting(t *testing.T) {
	t.Run("OnWait is called when waiting starts and then every Progress", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave")
		f.put(holderItem("deploy", "other-7-abcdef01", "v1", 3_600_000, 1))
		d := newUnitDynamo(t, f, clk)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var waited []time.Duration
		var holders []string
		a := goAcquire(ctx, d, "deploy", AcquireOptions{Progress: time.Second, OnWait: func(wt Wait) {
			h, w := wt.Record, wt.Waited
			waited = append(waited, w)
			holders = append(holders, h.Owner+" "+h.Host)
		}})
		clk.run(t, 1, 50*time.Millisecond, time.Minute, a.done, func(elapsed time.Duration) {
			if elapsed >= 3500*time.Millisecond {
				cancel()
			}
		})
		_, err := a.wait(t)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Acquire = %v, want context.Canceled", err)
		}
		want := []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}
		if len(waited) != len(want) {
			t.Fatalf("OnWait waited = %v, want %v", waited, want)
		}
		for i := range want {
			if waited[i] != want[i] || holders[i] != "other-7-abcdef01 other-host" {
				t.Fatalf("OnWait calls = %v %v, want %v with the holder", waited, holders, want)
			}
		}
		// Waiting polls once per Poll, reading rather than writing.
		if n := len(f.callsOf("GetItem")); n < 15 || n > 19 {
			t.Errorf("%d reads in 3.5s at a 200ms poll", n)
		}
	})

	t.Run("NoWait fails with the holder from the acquiring write's answer", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire")
		f.put(renewedAt(holderItem("deploy", "other-7-abcdef01", "v1", 3000, 1), clk.Now()))
		d := newUnitDynamo(t, f, clk)
		_, err := d.Acquire(context.Background(), "deploy", AcquireOptions{NoWait: true})
		var held *HeldError
		if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
			t.Fatalf("Acquire = %v, want *HeldError", err)
		}
		if held.Holder.Owner != "other-7-abcdef01" || held.Holder.PID != 7 || held.Holder.Command != "terraform apply" {
			t.Errorf("holder = %+v", held.Holder)
		}
		if n := len(f.callsOf()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})

	t.Run("an endpoint that does not return the holder with a failed write costs one read more", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave")
		f.noOld = true
		f.put(renewedAt(holderItem("deploy", "other-7-abcdef01", "v1", 3000, 1), clk.Now()))
		d := newUnitDynamo(t, f, clk)
		_, err := d.Acquire(context.Background(), "deploy", AcquireOptions{NoWait: true})
		var held *HeldError
		if !errors.As(err, &held) || held.Holder.Owner != "other-7-abcdef01" {
			t.Fatalf("Acquire = %v, want *HeldError", err)
		}
		if got := kinds(f.callsOf()); strings.Join(got, ",") != "acquire,GetItem" {
			t.Errorf("calls = %v", got)
		}
	})

	t.Run("a key released while waiting is taken at the next poll", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave")
		f.put(holderItem("deploy", "other-7-abcdef01", "v1", 3000, 5))
		d := newUnitDynamo(t, f, clk)
		start := clk.Now()
		a := goAcquire(context.Background(), d, "deploy", AcquireOptions{})
		clk.run(t, 1, 10*time.Millisecond, time.Minute, f.won, func(elapsed time.Duration) {
			if elapsed == 1010*time.Millisecond {
				f.update("deploy", map[string]types.AttributeValue{attrOwner: nil, attrRVN: nil})
			}
		})
		l, err := a.wait(t)
		if err != nil {
			t.Fatal(err)
		}
		acq := f.callsOf("acquire")
		if at := acq[len(acq)-1].At.Sub(start); at != 1200*time.Millisecond || l.Token() != 6 {
			t.Errorf("took the released key at %s with token %d, want 1.2s and 6", at, l.Token())
		}
	})

	t.Run("transient errors while waiting are retried", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave")
		d := newUnitDynamo(t, f, clk)
		n := 0
		f.setHook(func(c *fakeCall) (bool, error) {
			n++
			if n <= 2 {
				return false, throttled()
			}
			return true, nil
		})
		a := goAcquire(context.Background(), d, "deploy", AcquireOptions{})
		clk.run(t, 1, 10*time.Millisecond, time.Minute, f.won, nil)
		l, err := a.wait(t)
		if err != nil {
			t.Fatal(err)
		}
		// A throttled write cannot have landed, but the waiter does not
		// rely on that: it reads before writing again.
		if got := kinds(f.callsOf()); strings.Join(got, ",") != "acquire,GetItem,GetItem,acquire" {
			t.Errorf("calls = %v", got)
		}
		if l.Token() != 1 {
			t.Errorf("token %d", l.Token())
		}
	})
}

func TestDynamoOddItems(t *testing.T) {
	t.Run("a holder item without RVN is taken over on its absence after a lease", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave", "takeover", "release")
		item := holderItem("deploy", "old-1-00000000", "", 3000, 2)
		delete(item, attrRVN)
		f.put(item)
		d := newUnitDynamo(t, f, clk)
		start := clk.Now()
		a := goAcquire(context.Background(), d, "deploy", AcquireOptions{})
		clk.run(t, 1, 10*time.Millisecond, time.Minute, f.won, nil)
		l, err := a.wait(t)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Release(context.Background()) })
		if tk := f.callsOf("takeover"); len(tk) != 1 || tk[0].At.Sub(start) != 3*time.Second {
			t.Fatalf("takeovers: %d", len(tk))
		}
	})

	t.Run("a write refused although the item looks free is not retried in a tight loop", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave")
		d := newUnitDynamo(t, f, clk)
		refusals := 0
		f.setHook(func(c *fakeCall) (bool, error) {
			if c.Kind == "acquire" && refusals < 5 {
				refusals++
				free := map[string]types.AttributeValue{attrKey: avS("deploy"), attrSchema: avS(SchemaVersion), attrToken: avN(1)}
				return false, &types.ConditionalCheckFailedException{Item: free}
			}
			return true, nil
		})
		start := clk.Now()
		a := goAcquire(context.Background(), d, "deploy", AcquireOptions{})
		clk.run(t, 1, 10*time.Millisecond, time.Minute, f.won, nil)
		if _, err := a.wait(t); err != nil {
			t.Fatal(err)
		}
		if took := clk.since(start); took < 5*unitTiming.Poll {
			t.Errorf("6 writes within %s: a poll apart at least, want >= %s", took, 5*unitTiming.Poll)
		}
	})
}

func TestDynamoCancel(t *testing.T) {
	t.Run("cancelling while the acquiring write is in flight leaves nothing held", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "release")
		d := newUnitDynamo(t, f, clk)
		ctx, cancel := context.WithCancel(context.Background())
		f.setHook(func(c *fakeCall) (bool, error) {
			if c.Kind == "acquire" {
				cancel()
				<-c.Ctx.Done()
				return true, c.Ctx.Err() // the server took it anyway
			}
			return true, nil
		})
		_, err := d.Acquire(ctx, "deploy", AcquireOptions{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Acquire = %v, want context.Canceled", err)
		}
		rec := f.record(t, "deploy")
		if rec.Held() || rec.Token != 1 {
			t.Fatalf("after a cancelled acquire: %+v, want free, token 1", rec)
		}
		rel := f.callsOf("release")
		if len(rel) != 1 || rel[0].CtxErr != nil {
			t.Fatalf("cleanup: %d releases, want 1 on a fresh context", len(rel))
		}
	})

	t.Run("a cancelled write that has not landed is watched for a while in case it still does", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "release")
		d := newUnitDynamo(t, f, clk)
		ctx, cancel := context.WithCancel(context.Background())
		var late *fakeCall
		f.setHook(func(c *fakeCall) (bool, error) {
			switch {
			case c.Kind == "acquire":
				late = c
				cancel()
				<-c.Ctx.Done()
				return false, c.Ctx.Err()
			case len(f.callsOf("release")) == 3:
				// The write arrives late, between two cleanup rounds.
				if _, err := f.applyUpdate(late.Update); err != nil {
					t.Errorf("late write: %v", err)
				}
			}
			return true, nil
		})
		start := clk.Now()
		a := goAcquire(ctx, d, "deploy", AcquireOptions{})
		clk.run(t, 1, 10*time.Millisecond, time.Minute, a.done, nil)
		if _, err := a.wait(t); !errors.Is(err, context.Canceled) {
			t.Fatalf("Acquire = %v", err)
		}
		if rec := f.record(t, "deploy"); rec.Held() {
			t.Fatalf("left held: %+v", rec)
		}
		if took := clk.since(start); took > abandonWatch {
			t.Errorf("cleanup took %s", took)
		}
	})

	t.Run("a write that landed although its answer was lost makes us the holder", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave", "heartbeat")
		d := newUnitDynamo(t, f, clk)
		first := true
		f.setHook(func(c *fakeCall) (bool, error) {
			if first {
				first = false
				return true, context.DeadlineExceeded
			}
			return true, nil
		})
		start := clk.Now()
		a := goAcquire(context.Background(), d, "deploy", AcquireOptions{})
		// One retry backoff (at most 1.5 × Poll), then the read that
		// finds the write landed.
		clk.step(t, 1, 300*time.Millisecond)
		l, err := a.wait(t)
		if err != nil {
			t.Fatal(err)
		}
		if l.Owner() != f.record(t, "deploy").Owner || l.Token() != 1 {
			t.Fatalf("lease %s/%d, item %+v", l.Owner(), l.Token(), f.record(t, "deploy"))
		}
		if n := len(f.callsOf("acquire")); n != 1 {
			t.Fatalf("%d acquiring writes, want 1", n)
		}
		// The lease runs from the landed write's send time.
		clk.waitTimers(t, 1)
		clk.Advance(time.Second - clk.since(start))
		if hb := f.waitCalls(t, "heartbeat", 1); hb[0].At.Sub(start) != time.Second {
			t.Errorf("first heartbeat at %s, want 1s", hb[0].At.Sub(start))
		}
	})
}

func TestDynamoForeignItem(t *testing.T) {
	// What Terraform's S3 backend keeps in its lock table.
	terraform := map[string]types.AttributeValue{
		attrKey:  avS("state-bucket/prod/terraform.tfstate-md5"),
		"Digest": avS("0123456789abcdef"),
	}
	for _, opts := range []AcquireOptions{{}, {NoWait: true}} {
		t.Run("an item that is not ours is reported and never modified, NoWait "+map[bool]string{true: "on", false: "off"}[opts.NoWait], func(t *testing.T) {
			clk := newFakeClock()
			f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave")
			f.put(terraform)
			d := newUnitDynamo(t, f, clk)
			key := "state-bucket/prod/terraform.tfstate-md5"
			_, err := d.Acquire(context.Background(), key, opts)
			var foreign *ForeignItemError
			if !errors.As(err, &foreign) || !errors.Is(err, ErrForeignItem) || !errors.Is(err, ErrHeld) {
				t.Fatalf("Acquire = %v, want *ForeignItemError", err)
			}
			if !strings.Contains(err.Error(), "use another --key") {
				t.Errorf("error %q does not say what to do", err)
			}
			if _, err := d.Status(context.Background(), key); !errors.Is(err, ErrForeignItem) {
				t.Errorf("Status = %v", err)
			}
			if _, err := d.ForceRelease(context.Background(), key); !errors.Is(err, ErrForeignItem) {
				t.Errorf("ForceRelease = %v", err)
			}
			if got := f.item(key); len(got) != 2 || !equalAV(got["Digest"], terraform["Digest"]) {
				t.Errorf("item changed: %v", got)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	tests := []struct {
		name   string
		timing Timing
		want   time.Duration
	}{
		{"the defaults give a quarter of the 17s renew deadline", Timing{}, 4250 * time.Millisecond},
		{"a long lease is capped at 5s", Timing{Lease: 10 * time.Minute}, 5 * time.Second},
		{"a short lease gets at least 500ms", Timing{Lease: 3 * time.Second, Heartbeat: time.Second, KillAfter: time.Second}, 500 * time.Millisecond},
		{"a tiny lease gets half its renew deadline", Timing{Lease: 800 * time.Millisecond, Heartbeat: 100 * time.Millisecond, KillAfter: 100 * time.Millisecond}, 225 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timing, err := tt.timing.Validate()
			if err != nil {
				t.Fatal(err)
			}
			if got := requestTimeout(timing); got != tt.want {
				t.Fatalf("requestTimeout = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDynamoRefusesBeforeAnyRequest(t *testing.T) {
	tests := []struct {
		name string
		key  string
	}{
		{"an empty key is refused", ""},
		{"a key over 2048 bytes is refused", strings.Repeat("k", MaxKeyBytes+1)},
		{"a key that is not UTF-8 is refused", "\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTable(t, nil) // allows nothing
			d := newUnitDynamo(t, f, newFakeClock())
			ctx := context.Background()
			if _, err := d.Acquire(ctx, tt.key, AcquireOptions{}); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Acquire = %v", err)
			}
			if _, err := d.Status(ctx, tt.key); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Status = %v", err)
			}
			if _, err := d.ForceRelease(ctx, tt.key); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("ForceRelease = %v", err)
			}
		})
	}

	t.Run("a lease too short for heartbeat and kill-after is refused naming the flags", func(t *testing.T) {
		_, err := NewDynamo(DynamoConfig{Client: newFakeTable(t, nil), Table: "t",
			Timing: Timing{Lease: 10 * time.Second, Heartbeat: 5 * time.Second, KillAfter: 5 * time.Second}})
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "--lease 10s must exceed --heartbeat 5s + --kill-after 5s") {
			t.Fatalf("NewDynamo = %v", err)
		}
	})

	t.Run("a lease longer than waiters grant is refused", func(t *testing.T) {
		_, err := NewDynamo(DynamoConfig{Client: newFakeTable(t, nil), Table: "t", Timing: Timing{Lease: 25 * time.Hour}})
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "--lease 25h0m0s") {
			t.Fatalf("NewDynamo = %v", err)
		}
	})

	t.Run("a missing table is ErrTableNotFound", func(t *testing.T) {
		f := newFakeTable(t, nil, "acquire", "GetItem", "Scan")
		f.exists = false
		d := newUnitDynamo(t, f, newFakeClock())
		ctx := context.Background()
		if _, err := d.Acquire(ctx, "k", AcquireOptions{}); !errors.Is(err, ErrTableNotFound) {
			t.Errorf("Acquire = %v", err)
		}
		if _, err := d.Status(ctx, "k"); !errors.Is(err, ErrTableNotFound) {
			t.Errorf("Status = %v", err)
		}
		if _, err := d.List(ctx); !errors.Is(err, ErrTableNotFound) {
			t.Errorf("List = %v", err)
		}
	})
}

func TestDynamoStatusListForceRelease(t *testing.T) {
	clk := newFakeClock()
	f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave", "Scan", "force", "release")
	f.pageSize = 2
	d := newUnitDynamo(t, f, clk)
	ctx := context.Background()
	f.put(holderItem("b", "other-7-abcdef01", "v1", 3000, 3))
	f.put(map[string]types.AttributeValue{attrKey: avS("c"), attrSchema: avS(SchemaVersion), attrToken: avN(9)}) // free
	f.put(map[string]types.AttributeValue{attrKey: avS("d"), "Digest": avS("x")})                                // foreign
	f.put(map[string]types.AttributeValue{attrKey: avS("e"), attrSchema: avS(SchemaVersion), attrOwner: avN(1)}) // corrupt
	l := mustAcquire(t, d, "a")

	t.Run("status of a held key says who holds it", func(t *testing.T) {
		rec, err := d.Status(ctx, "b")
		if err != nil || rec.Owner != "other-7-abcdef01" || rec.Lease != 3*time.Second || rec.Token != 3 || rec.Version != "v1" {
			t.Fatalf("Status = %+v, %v", rec, err)
		}
	})
	t.Run("status of a free key gives its last token", func(t *testing.T) {
		rec, err := d.Status(ctx, "c")
		if err != nil || rec.Held() || rec.Token != 9 {
			t.Fatalf("Status = %+v, %v", rec, err)
		}
		rec, err = d.Status(ctx, "never")
		if err != nil || rec.Held() || rec.Key != "never" || rec.Token != 0 {
			t.Fatalf("Status = %+v, %v", rec, err)
		}
	})
	t.Run("list gives held locked-run keys only, sorted, across pages", func(t *testing.T) {
		recs, err := d.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, r := range recs {
			keys = append(keys, r.Key)
		}
		if strings.Join(keys, ",") != "a,b" {
			t.Fatalf("List keys = %v, want a,b", keys)
		}
		if n := len(f.callsOf("Scan")); n < 3 {
			t.Errorf("%d scan pages, want 3", n)
		}
	})
	t.Run("force release breaks the lock, keeps the token and returns whose it was", func(t *testing.T) {
		rec, err := d.ForceRelease(ctx, "b")
		if err != nil || rec.Owner != "other-7-abcdef01" {
			t.Fatalf("ForceRelease = %+v, %v", rec, err)
		}
		if got := f.record(t, "b"); got.Held() || got.Token != 3 {
			t.Fatalf("after: %+v", got)
		}
		if _, err := d.ForceRelease(ctx, "b"); !errors.Is(err, ErrNotHeld) {
			t.Fatalf("second ForceRelease = %v, want ErrNotHeld", err)
		}
	})
	t.Run("force release reads again when the holder renews meanwhile", func(t *testing.T) {
		first := true
		f.setHook(func(c *fakeCall) (bool, error) {
			if c.Kind == "force" && first {
				first = false
				f.update("a", map[string]types.AttributeValue{attrRVN: avS("renewed")})
			}
			return true, nil
		})
		defer f.setHook(nil)
		rec, err := d.ForceRelease(ctx, "a")
		if err != nil || rec.Owner != l.Owner() || rec.Version != "renewed" {
			t.Fatalf("ForceRelease = %+v, %v", rec, err)
		}
		if err := l.Release(ctx); !errors.Is(err, ErrLost) {
			t.Fatalf("Release of a broken lock = %v, want ErrLost", err)
		}
	})
}

func TestDynamoCreateTable(t *testing.T) {
	t.Run("a missing table is created and waited for until ACTIVE", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "DescribeTable", "CreateTable")
		f.exists = false
		f.creating = 2
		d := newUnitDynamo(t, f, clk)
		done := make(chan error, 1)
		go func() { done <- d.CreateTable(context.Background()) }()
		clk.waitTimers(t, 1)
		clk.Advance(tableStatusPoll)
		clk.waitTimers(t, 1)
		clk.Advance(tableStatusPoll)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := kinds(f.callsOf()); strings.Join(got, ",") != "DescribeTable,CreateTable,DescribeTable,DescribeTable,DescribeTable" {
			t.Fatalf("calls = %v", got)
		}
	})
	t.Run("an existing table with the right key is accepted without creating", func(t *testing.T) {
		f := newFakeTable(t, nil, "DescribeTable")
		d := newUnitDynamo(t, f, newFakeClock())
		if err := d.CreateTable(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an existing table with another key is refused", func(t *testing.T) {
		f := newFakeTable(t, nil, "DescribeTable")
		f.keyName = "id"
		d := newUnitDynamo(t, f, newFakeClock())
		err := d.CreateTable(context.Background())
		if !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, ErrKeySchema) ||
			!strings.Contains(err.Error(), `table locks's key is id (S); locked-run needs LockID (S)`) {
			t.Fatalf("CreateTable = %v", err)
		}
	})
}
