package lock

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hashicorp/go-hclog"
)

// Tests of issue 9, point 1: a crashed holder is freed for NoWait and short
// timeouts too, and a live one still answers them within a heartbeat.
func TestDynamoStaleHolder(t *testing.T) {
	const lease = 3 * time.Second // the holder's, and unitTiming's
	tests := []struct {
		name      string
		opts      AcquireOptions
		stampAge  time.Duration // how old the holder's HeartbeatAt is by our clock; negative: ahead
		renewAt   time.Duration // when the holder writes a new version; 0 for never (it is dead)
		wantTaken bool
		wantAt    time.Duration // when Acquire answers (the takeover write, or the error)
		wantCtx   bool          // the error wraps context.DeadlineExceeded rather than *HeldError
	}{
		{name: "NoWait on a dead holder that looks stopped takes it over after one lease",
			opts: AcquireOptions{NoWait: true}, stampAge: 10 * time.Second, wantTaken: true, wantAt: lease},
		{name: "NoWait on a live holder that looks stopped answers held at its next renewal",
			opts: AcquireOptions{NoWait: true}, stampAge: 10 * time.Second, renewAt: 800 * time.Millisecond, wantAt: time.Second},
		{name: "NoWait on a holder that looks alive answers held at once",
			opts: AcquireOptions{NoWait: true}, stampAge: 200 * time.Millisecond, wantAt: 0},
		{name: "NoWait on a dead holder whose clock runs hours ahead watches it and takes it over",
			opts: AcquireOptions{NoWait: true}, stampAge: -5 * time.Hour, wantTaken: true, wantAt: lease},
		{name: "NoWait on a live holder whose clock runs hours ahead answers held at its next renewal",
			opts: AcquireOptions{NoWait: true}, stampAge: -5 * time.Hour, renewAt: 900 * time.Millisecond, wantAt: time.Second},
		{name: "a Timeout shorter than the lease on a dead holder that looks stopped takes it over after one lease",
			opts: AcquireOptions{Timeout: time.Second}, stampAge: 10 * time.Second, wantTaken: true, wantAt: lease},
		{name: "a Timeout shorter than the lease on a holder that looks alive gives up at the timeout",
			opts: AcquireOptions{Timeout: time.Second}, stampAge: 0, wantAt: time.Second, wantCtx: true},
		{name: "a Timeout on a live holder that looks stopped gives up at its renewal after the timeout",
			opts: AcquireOptions{Timeout: time.Second}, stampAge: 10 * time.Second, renewAt: 1500 * time.Millisecond,
			wantAt: 1600 * time.Millisecond, wantCtx: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave", "takeover", "release")
			f.put(renewedAt(holderItem("deploy", "other-7-abcdef01", "v1", lease.Milliseconds(), 41), clk.Now().Add(-tt.stampAge)))
			d := newUnitDynamo(t, f, clk)
			start := clk.Now()
			a := goAcquire(context.Background(), d, "deploy", tt.opts)
			renewed := false
			done := a.done
			if tt.wantTaken {
				// Stop at the takeover, before the renewer's first tick.
				done = f.won
			}
			clk.run(t, 1, 100*time.Millisecond, time.Minute, done, func(elapsed time.Duration) {
				if tt.renewAt > 0 && !renewed && elapsed >= tt.renewAt {
					renewed = true
					f.update("deploy", map[string]types.AttributeValue{attrRVN: avS("v2"), attrHeartbeat: avS(formatTime(clk.Now()))})
				}
			})
			l, err := a.wait(t)
			at := clk.since(start)
			if tt.wantTaken {
				if err != nil {
					t.Fatalf("Acquire = %v, want the lock taken over", err)
				}
				t.Cleanup(func() { _ = l.Release(context.Background()) })
				tk := f.callsOf("takeover")
				if len(tk) != 1 || tk[0].At.Sub(start) != tt.wantAt {
					t.Fatalf("takeover writes %v, want one at %s", kinds(tk), tt.wantAt)
				}
				if l.Token() != 42 {
					t.Errorf("token %d, want 42", l.Token())
				}
				return
			}
			if err == nil {
				_ = l.Release(context.Background())
				t.Fatal("Acquire succeeded, want it to answer held")
			}
			var held *HeldError
			switch {
			case tt.wantCtx && (!errors.Is(err, context.DeadlineExceeded) || errors.As(err, &held)):
				t.Errorf("Acquire = %v, want a timeout", err)
			case !tt.wantCtx && !errors.As(err, &held):
				t.Errorf("Acquire = %v, want *HeldError", err)
			}
			if at != tt.wantAt {
				t.Errorf("answered after %s, want %s", at, tt.wantAt)
			}
			if n := len(f.callsOf("takeover")); n != 0 {
				t.Errorf("%d takeover writes on a live holder", n)
			}
		})
	}
}

func TestRecordLooksStopped(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := Record{Owner: "o", Lease: 30 * time.Second, HeartbeatEvery: 10 * time.Second}
	tests := []struct {
		name string
		last time.Time
		want bool
	}{
		{"a renewal within one heartbeat looks alive", now.Add(-9 * time.Second), false},
		{"a renewal within a heartbeat and the slack looks alive", now.Add(-10500 * time.Millisecond), false},
		{"a renewal older than a heartbeat and the slack looks stopped", now.Add(-11500 * time.Millisecond), true},
		{"a renewal slightly ahead of our clock looks alive", now.Add(500 * time.Millisecond), false},
		{"a renewal far ahead of our clock says nothing, so the holder is watched", now.Add(2 * time.Second), true},
		{"no renewal time at all is watched", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rec
			r.Heartbeat = tt.last
			if got := r.LooksStopped(now); got != tt.want {
				t.Errorf("LooksStopped = %v, want %v", got, tt.want)
			}
		})
	}
	if (Record{}).LooksStopped(now) {
		t.Error("a free record looks stopped")
	}
}

// Issue 9, point 2: an acquiring write that landed but whose answer was
// lost, found by a read so late that less than one heartbeat of the lease
// is left, is given back and acquired again, never handed out.
func TestDynamoNoShortLease(t *testing.T) {
	clk := newFakeClock()
	f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave", "release")
	d := newUnitDynamo(t, f, clk)
	writes, reads := 0, 0
	f.setHook(func(c *fakeCall) (bool, error) {
		switch c.Kind {
		case "acquire":
			writes++
			if writes == 1 {
				return true, throttledAfterApply() // landed, answer lost
			}
		case "GetItem":
			reads++
			if reads <= 4 {
				// Reads fail while time passes, past what the first
				// write's lease could be trusted for.
				clk.Advance(300 * time.Millisecond)
				return false, throttled()
			}
		}
		return true, nil
	})
	start := clk.Now()
	a := goAcquire(context.Background(), d, "deploy", AcquireOptions{})
	// The first write's success is lost to the client; won closes at the
	// first one it hears of, and the clock stops there.
	clk.run(t, 1, 50*time.Millisecond, time.Minute, f.won, nil)
	l, err := a.wait(t)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	if !l.Valid() {
		t.Fatal("Acquire returned a lease that is not valid")
	}
	left := l.Remaining()
	if left < unitTiming.Heartbeat {
		t.Errorf("lease handed out with %s left, want at least a heartbeat (%s)", left, unitTiming.Heartbeat)
	}
	if writes != 2 || len(f.callsOf("release")) != 1 {
		t.Errorf("%d acquiring writes and %d give-backs, want the late lease given back and the key taken again",
			writes, len(f.callsOf("release")))
	}
	if l.Token() != 2 {
		t.Errorf("token %d, want 2: the given-back acquisition counted too", l.Token())
	}
	t.Logf("acquired after %s with %s left", clk.since(start), left)
}

// throttledAfterApply is the error of a request whose answer was lost.
func throttledAfterApply() error { return context.DeadlineExceeded }

// Issue 9, points 6 and 7 on the fake table.
func TestDynamoLimits(t *testing.T) {
	t.Run("a huge command is stored cut to MaxCommandBytes", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "release")
		id := unitIdentity
		id.Command = strings.Repeat("x", 1<<20)
		d, err := NewDynamo(DynamoConfig{Client: f, Table: fakeTableName, Timing: unitTiming, Identity: id, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		l := mustAcquire(t, d, "deploy")
		t.Cleanup(func() { _ = l.Release(context.Background()) })
		if got := f.record(t, "deploy").Command; len(got) > MaxCommandBytes || !strings.HasSuffix(got, "...") {
			t.Errorf("stored a command of %d bytes, want at most %d ending in ...", len(got), MaxCommandBytes)
		}
	})

	t.Run("a fencing counter at its maximum is refused, not wrapped", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave")
		f.put(map[string]types.AttributeValue{attrKey: avS("deploy"), attrSchema: avS(SchemaVersion),
			attrToken: &types.AttributeValueMemberN{Value: strconv.FormatUint(MaxToken, 10)}})
		d := newUnitDynamo(t, f, clk)
		_, err := d.Acquire(context.Background(), "deploy", AcquireOptions{})
		if !errors.Is(err, ErrTokenExhausted) {
			t.Fatalf("Acquire = %v, want ErrTokenExhausted", err)
		}
		if got := f.record(t, "deploy"); got.Held() || got.Token != MaxToken {
			t.Errorf("item changed to %+v", got)
		}
	})

	t.Run("a forced release whose answer was lost reports the lock broken, not free", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "GetItem", "force")
		f.put(renewedAt(holderItem("deploy", "other-7-abcdef01", "v1", 3000, 9), clk.Now()))
		d := newUnitDynamo(t, f, clk)
		first := true
		f.setHook(func(c *fakeCall) (bool, error) {
			if c.Kind == "force" && first {
				first = false
				return true, context.DeadlineExceeded // landed, answer lost
			}
			return true, nil
		})
		done := make(chan struct{})
		var rec Record
		var err error
		go func() { defer close(done); rec, err = d.ForceRelease(context.Background(), "deploy") }()
		clk.run(t, 1, 10*time.Millisecond, time.Minute, done, nil)
		if err != nil || rec.Owner != "other-7-abcdef01" {
			t.Fatalf("ForceRelease = %+v, %v, want the broken holder's record", rec, err)
		}
		if n := len(f.callsOf("force")); n != 2 {
			t.Errorf("%d release writes, want the lost one retried once", n)
		}
	})
}

func TestDynamoRetryWarns(t *testing.T) {
	clk := newFakeClock()
	f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave", "release")
	f.setHook(func(c *fakeCall) (bool, error) {
		if c.Kind == "release" {
			return true, nil
		}
		return false, throttled()
	})
	var logs syncLog
	d, err := NewDynamo(DynamoConfig{Client: f, Table: fakeTableName, Timing: unitTiming, Clock: clk,
		Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	a := goAcquire(context.Background(), d, "deploy", AcquireOptions{})
	clk.run(t, 1, 100*time.Millisecond, 2*time.Minute, a.done, nil)
	if _, err := a.wait(t); err == nil || !strings.Contains(err.Error(), "gave up after 1m0s") {
		t.Fatalf("Acquire = %v, want it to give up after a minute of throttling", err)
	}
	if n := strings.Count(logs.String(), "[WARN]"); n < 5 {
		t.Errorf("%d WARN lines in a minute of retries, want one at least every 10s:\n%s", n, logs.String())
	}
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestDynamoTimeoutWhileFailing(t *testing.T) {
	clk := newFakeClock()
	f := newFakeTable(t, clk, "acquire", "GetItem", "join", "refresh", "leave", "release")
	f.setHook(func(c *fakeCall) (bool, error) {
		if c.Kind == "release" {
			return true, nil
		}
		return false, throttled()
	})
	d := newUnitDynamo(t, f, clk)
	start := clk.Now()
	a := goAcquire(context.Background(), d, "deploy", AcquireOptions{Timeout: 2 * time.Second})
	clk.run(t, 1, 50*time.Millisecond, time.Minute, a.done, nil)
	_, err := a.wait(t)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire = %v, want a timeout", err)
	}
	if got := clk.since(start); got > 2100*time.Millisecond {
		t.Errorf("gave up after %s of failures, want at the 2s timeout", got)
	}
}
