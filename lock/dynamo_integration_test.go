package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/locked-run/locked-run/internal/ddblocal"
	"github.com/locked-run/locked-run/internal/faultproxy"
)

// TestMain stops the DynamoDB Local that the integration tests start.
func TestMain(m *testing.M) { os.Exit(ddblocal.Run(m)) }

// itTiming is the integration tests' timing: short leases on the real
// clock. Lost is due 1.7 s after the last landed write (3 s − 1 s − 0.3 s).
var itTiming = Timing{Lease: 3 * time.Second, Heartbeat: time.Second, KillAfter: time.Second}

// itEnv is a fresh table in DynamoDB Local for one test.
type itEnv struct {
	endpoint string
	table    string
	raw      *dynamodb.Client // for playing another process
}

func newITEnv(t *testing.T) *itEnv {
	t.Helper()
	t.Parallel()
	ep := ddblocal.Endpoint(t)
	return &itEnv{endpoint: ep, table: ddblocal.NewTable(t), raw: ddblocal.Client(ep, nil)}
}

// client returns a client of its own (own connections), through p if not
// nil, as the CLI gives it to the backend (SDKClient).
func (e *itEnv) client(p *faultproxy.Proxy) DynamoAPI {
	if p != nil {
		return SDKClient(ddblocal.Client(p.URL(), nil))
	}
	return SDKClient(ddblocal.Client(e.endpoint, nil))
}

// proxy returns a fault proxy in front of DynamoDB Local.
func (e *itEnv) proxy(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(e.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// dynamo returns a backend on the env's table; each is a separate process
// as far as the lock can tell.
func (e *itEnv) dynamo(t *testing.T, api DynamoAPI, host string, clock Clock) *Dynamo {
	t.Helper()
	return e.dynamoTimed(t, api, host, clock, itTiming)
}

// dynamoTimed is dynamo with timing instead of itTiming.
func (e *itEnv) dynamoTimed(t *testing.T, api DynamoAPI, host string, clock Clock, timing Timing) *Dynamo {
	t.Helper()
	d, err := NewDynamo(DynamoConfig{Client: api, Table: e.table, Timing: timing, Clock: clock,
		Identity: Identity{Host: host, PID: os.Getpid(), User: "test", Command: t.Name()}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func itAcquire(t *testing.T, d *Dynamo, key string) *Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := d.Acquire(ctx, key, AcquireOptions{})
	if err != nil {
		t.Fatalf("acquire %q: %v", key, err)
	}
	return l
}

func release(t *testing.T, l *Lease) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return l.Release(ctx)
}

func (e *itEnv) status(t *testing.T, key string) Record {
	t.Helper()
	rec, err := e.dynamo(t, e.raw, "observer", nil).Status(context.Background(), key)
	if err != nil {
		t.Fatalf("status %q: %v", key, err)
	}
	return rec
}

// waitClosed waits for ch and returns when it was closed.
func waitClosed(t *testing.T, ch <-chan struct{}, limit time.Duration, what string) time.Time {
	t.Helper()
	select {
	case <-ch:
		return time.Now()
	case <-time.After(limit):
		t.Fatalf("%s: not within %s", what, limit)
		return time.Time{}
	}
}

// countingTransport counts the DynamoDB requests that go through it, by
// operation (the X-Amz-Target header after its dot).
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	ops  []string
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := req.Header.Get("X-Amz-Target")
	op = op[strings.LastIndexByte(op, '.')+1:]
	c.mu.Lock()
	c.ops = append(c.ops, op)
	c.mu.Unlock()
	return c.base.RoundTrip(req)
}

// firstAnswerTransport notes when the first answer came back.
type firstAnswerTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	at   time.Time
}

func (f *firstAnswerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.base.RoundTrip(req)
	f.mu.Lock()
	if f.at.IsZero() && err == nil {
		f.at = time.Now()
	}
	f.mu.Unlock()
	return resp, err
}

func (f *firstAnswerTransport) first() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.at
}

func (c *countingTransport) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = nil
	return ops
}

func TestDynamoLocalRequests(t *testing.T) {
	e := newITEnv(t)
	// Each backend counts its own requests, and heartbeats are far apart:
	// on a loaded machine the NoWait below can take longer than itTiming's
	// heartbeat, which would put the holder's renewal among the counted.
	slow := itTiming
	slow.Lease, slow.Heartbeat = time.Minute, 20*time.Second
	counted := func(host string) (*Dynamo, *countingTransport) {
		ct := &countingTransport{base: &http.Transport{}}
		api := SDKClient(ddblocal.Client(e.endpoint, &http.Client{Transport: ct}))
		return e.dynamoTimed(t, api, host, nil, slow), ct
	}
	d, ct := counted("solo")
	ctx := context.Background()

	l, err := d.Acquire(ctx, "requests", AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ops := ct.take(); strings.Join(ops, ",") != "UpdateItem" {
		t.Errorf("uncontended acquire sent %v, want exactly one UpdateItem", ops)
	}
	other, otherCT := counted("other")
	_, err = other.Acquire(ctx, "requests", AcquireOptions{NoWait: true})
	var held *HeldError
	if !errors.As(err, &held) || held.Holder.Owner != l.Owner() || held.Holder.Host != "solo" {
		t.Errorf("NoWait on a held key = %v, want *HeldError naming the holder", err)
	}
	if ops := otherCT.take(); len(ops) != 1 {
		t.Errorf("NoWait on a held key sent %v, want one request: the holder comes back with the failed write", ops)
	}
	if err := release(t, l); err != nil {
		t.Fatal(err)
	}
	if ops := ct.take(); strings.Join(ops, ",") != "UpdateItem" {
		t.Errorf("release sent %v, want exactly one UpdateItem", ops)
	}
	t.Logf("uncontended acquire + release: 2 requests (UpdateItem, UpdateItem)")
}

func TestDynamoLocalContention(t *testing.T) {
	e := newITEnv(t)
	const lockers, rounds = 8, 3
	var (
		inside  atomic.Int32
		mu      sync.Mutex
		tokens  []uint64
		wg      sync.WaitGroup
		started = time.Now()
	)
	for i := range lockers {
		d := e.dynamo(t, e.client(nil), fmt.Sprintf("locker-%d", i), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				l, err := d.Acquire(context.Background(), "contended", AcquireOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				if !inside.CompareAndSwap(0, 1) {
					t.Error("two holders at once")
				}
				mu.Lock()
				tokens = append(tokens, l.Token())
				mu.Unlock()
				time.Sleep(20 * time.Millisecond) // the work the lock protects
				if isClosed(l.Lost()) {
					t.Errorf("lost while holding: %v", l.Err())
				}
				inside.Store(0)
				if err := release(t, l); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(tokens) != lockers*rounds {
		t.Fatalf("%d acquisitions, want %d", len(tokens), lockers*rounds)
	}
	for i, tok := range tokens {
		if tok != uint64(i+1) {
			t.Fatalf("tokens in order of acquisition = %v, want 1..%d", tokens, lockers*rounds)
		}
	}
	if rec := e.status(t, "contended"); rec.Held() || rec.Token != lockers*rounds {
		t.Errorf("after: %+v", rec)
	}
	t.Logf("%d acquisitions by %d contending holders in %s", len(tokens), lockers, time.Since(started).Round(time.Millisecond))
}

func TestDynamoLocalTakeover(t *testing.T) {
	e := newITEnv(t)
	p := e.proxy(t)
	// The crashed holder's clock is five hours fast; the waiter's five
	// hours slow. Neither matters: only durations on each one's own
	// clock decide.
	holder := e.dynamo(t, e.client(p), "crashing", offsetClock{SystemClock(), 5 * time.Hour})
	// The waiter first sees the holder in the answer to its first
	// request: its transport notes when that answer came.
	ft := &firstAnswerTransport{base: &http.Transport{}}
	waiter := e.dynamo(t, ddblocal.Client(e.endpoint, &http.Client{Transport: ft}), "waiting", offsetClock{SystemClock(), -5 * time.Hour})
	a := itAcquire(t, holder, "takeover")
	var lostAt atomic.Pointer[time.Time]
	go func() {
		<-a.Lost()
		now := time.Now()
		lostAt.Store(&now)
	}()
	if ahead := time.Until(e.status(t, "takeover").Acquired); ahead < 4*time.Hour {
		t.Fatalf("holder's AcquiredAt is %s ahead, want its clock's 5h", ahead)
	}

	// The holder goes silent: no request of it reaches DynamoDB again.
	p.Blackhole(true)
	silent := time.Now()
	var firstSeen time.Time
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := waiter.Acquire(ctx, "takeover", AcquireOptions{OnWait: func(w Wait) {
		h := w.Record
		if firstSeen.IsZero() {
			firstSeen = time.Now()
			if h.Owner != a.Owner() {
				t.Errorf("OnWait holder %q, want %q", h.Owner, a.Owner())
			}
		}
	}})
	took := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if firstSeen.IsZero() {
		t.Fatal("OnWait never called")
	}
	// OnWait is called once the waiter is in line, a request after
	// its first sight of the holder, which the lease counts from.
	firstSeen = ft.first()
	t.Cleanup(func() { _ = release(t, b) })
	if lostAt.Load() == nil {
		t.Fatal("taken over while the crashed holder's Lost was still open")
	}
	lost := *lostAt.Load()

	waited := took.Sub(firstSeen)
	t.Logf("takeover with a %s lease: %s after the holder went silent, %s after the waiter first saw it; holder's Lost closed %s before the takeover",
		itTiming.Lease, took.Sub(silent).Round(time.Millisecond), waited.Round(time.Millisecond), took.Sub(lost).Round(time.Millisecond))
	if waited < itTiming.Lease {
		t.Errorf("took over %s after first seeing the holder, before its %s lease ran out", waited, itTiming.Lease)
	}
	if waited > itTiming.Lease+time.Second {
		t.Errorf("took over only %s after first seeing the holder (lease %s)", waited, itTiming.Lease)
	}
	if gap := took.Sub(lost); gap < itTiming.KillAfter {
		t.Errorf("the holder's Lost closed only %s before the takeover, less than kill-after %s", gap, itTiming.KillAfter)
	}
	if b.Token() != a.Token()+1 {
		t.Errorf("takeover token %d, want %d", b.Token(), a.Token()+1)
	}
	if !errors.Is(a.Err(), ErrLost) {
		t.Errorf("holder's Err() = %v", a.Err())
	}

	// The old holder comes back: its release must not touch the new one.
	p.Blackhole(false)
	if err := release(t, a); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), b.Owner()) {
		t.Errorf("old holder's release = %v, want ErrLost naming the new owner", err)
	}
	if rec := e.status(t, "takeover"); rec.Owner != b.Owner() {
		t.Errorf("after the old holder's release the owner is %q, want %q", rec.Owner, b.Owner())
	}
}

func TestDynamoLocalLoss(t *testing.T) {
	tests := []struct {
		name string
		do   func(e *itEnv, key string) error
		want string
	}{
		{
			name: "an item taken by another owner closes Lost",
			do: func(e *itEnv, key string) error {
				_, err := e.raw.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
					TableName:                 aws.String(e.table),
					Key:                       keyOf(key),
					UpdateExpression:          aws.String("SET #o = :o, #r = :r"),
					ExpressionAttributeNames:  map[string]string{"#o": attrOwner, "#r": attrRVN},
					ExpressionAttributeValues: map[string]types.AttributeValue{":o": avS("thief-1-00000000"), ":r": avS("stolen")},
				})
				return err
			},
			want: "taken by thief-1-00000000",
		},
		{
			name: "a deleted item closes Lost",
			do: func(e *itEnv, key string) error {
				_, err := e.raw.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(e.table), Key: keyOf(key)})
				return err
			},
			want: "deleted",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newITEnv(t)
			l := itAcquire(t, e.dynamo(t, e.client(nil), "holder", nil), "loss")
			if err := tt.do(e, "loss"); err != nil {
				t.Fatal(err)
			}
			changed := time.Now()
			lost := waitClosed(t, l.Lost(), itTiming.Heartbeat+time.Second, "Lost")
			t.Logf("Lost closed %s after the change", lost.Sub(changed).Round(time.Millisecond))
			if err := l.Err(); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Err() = %v, want ErrLost saying %q", err, tt.want)
			}
			before := e.status(t, "loss")
			if err := release(t, l); !errors.Is(err, ErrLost) {
				t.Errorf("Release = %v, want ErrLost", err)
			}
			if after := e.status(t, "loss"); !reflect.DeepEqual(after, before) {
				t.Errorf("release changed another owner's item: %+v -> %+v", before, after)
			}
		})
	}
}

func TestDynamoLocalBlackhole(t *testing.T) {
	e := newITEnv(t)
	p := e.proxy(t)
	l := itAcquire(t, e.dynamo(t, e.client(p), "partitioned", nil), "blackhole")
	t.Cleanup(func() { p.Blackhole(false); _ = release(t, l) })
	// Let one heartbeat land, then cut the network.
	time.Sleep(itTiming.Heartbeat + 300*time.Millisecond)
	if p.Stats().Requests["UpdateItem"] < 2 {
		t.Fatalf("no heartbeat went through: %+v", p.Stats())
	}
	p.Blackhole(true)
	cut := time.Now()
	lost := waitClosed(t, l.Lost(), itTiming.Lease, "Lost")
	after := lost.Sub(cut)
	deadline := itTiming.renewDeadline()
	t.Logf("blackholed: Lost closed %s after the cut (renew deadline %s after the last landed heartbeat; lease %s, kill-after %s)",
		after.Round(time.Millisecond), deadline, itTiming.Lease, itTiming.KillAfter)
	// The last landed heartbeat was sent at most one heartbeat before the
	// cut, so Lost is due between deadline − heartbeat and deadline.
	const slack = 250 * time.Millisecond
	if after > deadline+slack {
		t.Errorf("Lost closed %s after the cut, later than the renew deadline %s", after, deadline)
	}
	if after >= itTiming.Lease-itTiming.KillAfter {
		t.Errorf("Lost closed %s after the cut: not lease − kill-after (%s) before a waiter could take over", after, itTiming.Lease-itTiming.KillAfter)
	}
	if after < deadline-itTiming.Heartbeat-slack {
		t.Errorf("Lost closed %s after the cut, before the renew deadline could have passed", after)
	}
	if err := l.Err(); !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), "renewals failed") {
		t.Errorf("Err() = %v", err)
	}
}

func TestDynamoLocalTransientFaults(t *testing.T) {
	tests := []struct {
		name   string
		inject func(p *faultproxy.Proxy)
	}{
		{"throttled heartbeats are retried without losing the lock", func(p *faultproxy.Proxy) { p.ThrottleNext(4) }},
		{"heartbeats failing with 5xx are retried without losing the lock", func(p *faultproxy.Proxy) { p.Fail5xxNext(4) }},
		{"heartbeats on reset connections are retried without losing the lock", func(p *faultproxy.Proxy) { p.ResetNext(3) }},
		{"a heartbeat that landed but whose answer was lost does not lose the lock", func(p *faultproxy.Proxy) { p.DropAnswerNext(1) }},
		{"random throttling of a third of the requests does not lose the lock", func(p *faultproxy.Proxy) { p.SetThrottleRate(0.3) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newITEnv(t)
			p := e.proxy(t)
			l := itAcquire(t, e.dynamo(t, e.client(p), "holder", nil), "faults")
			p.ResetStats()
			tt.inject(p)
			select {
			case <-l.Lost():
				t.Fatalf("lost: %v", l.Err())
			case <-time.After(3 * itTiming.Heartbeat):
			}
			p.SetThrottleRate(0)
			st := p.Stats()
			t.Logf("stats: %+v", st)
			if st.Throttled+st.Failed+st.Reset+st.AnswersDropped == 0 && !strings.Contains(tt.name, "random") {
				t.Fatal("no fault was injected")
			}
			if err := release(t, l); err != nil {
				t.Fatal(err)
			}
			if rec := e.status(t, "faults"); rec.Held() {
				t.Fatalf("held after release: %+v", rec)
			}
		})
	}
}

func TestDynamoLocalCancel(t *testing.T) {
	e := newITEnv(t)
	p := e.proxy(t)
	d := e.dynamo(t, e.client(p), "impatient", nil)
	// The acquiring write is held on the way and delivered late, after
	// the caller gave up: the cleanup must still leave the key free.
	p.Hold(800 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := d.Acquire(ctx, "cancel", AcquireOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire = %v, want context.DeadlineExceeded", err)
	}
	t.Logf("cancelled acquire returned after %s; proxy: %+v", time.Since(start).Round(time.Millisecond), p.Stats())
	if took := time.Since(start); took > 200*time.Millisecond+abandonWatch+time.Second {
		t.Errorf("cancelled acquire took %s to return", took)
	}
	rec := e.status(t, "cancel")
	if rec.Held() {
		t.Fatalf("a cancelled acquire left the key held: %+v", rec)
	}
	if rec.Token != 1 {
		t.Errorf("token %d, want 1: the late write landed and was removed", rec.Token)
	}
}

func TestDynamoLocalFencing(t *testing.T) {
	e := newITEnv(t)
	d := e.dynamo(t, e.client(nil), "fenced", nil)
	var got []uint64
	for range 2 {
		l := itAcquire(t, d, "fencing")
		got = append(got, l.Token())
		if err := release(t, l); err != nil {
			t.Fatal(err)
		}
		if rec := e.status(t, "fencing"); rec.Held() || rec.Token != l.Token() {
			t.Fatalf("after release: %+v, want free with token %d", rec, l.Token())
		}
	}
	// A holder cut off without releasing, then taken over.
	cut := &cutAPI{DynamoAPI: e.client(nil)}
	crashed := itAcquire(t, e.dynamo(t, cut, "crashed", nil), "fencing")
	got = append(got, crashed.Token())
	cut.cut.Store(true)
	next := itAcquire(t, d, "fencing")
	got = append(got, next.Token())
	if err := release(t, next); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[1 2 3 4]" {
		t.Fatalf("tokens = %v, want [1 2 3 4]", got)
	}
	if rec := e.status(t, "fencing"); rec.Token != 4 {
		t.Fatalf("token after all: %d", rec.Token)
	}
}

// cutAPI passes calls through until cut, then hangs each one until its
// context ends, as for a process whose network is gone.
type cutAPI struct {
	DynamoAPI
	cut atomic.Bool
}

func (c *cutAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if c.cut.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return c.DynamoAPI.UpdateItem(ctx, in, optFns...)
}

func TestDynamoLocalForeignItem(t *testing.T) {
	e := newITEnv(t)
	key := "state-bucket/env/prod/terraform.tfstate-md5"
	item := map[string]types.AttributeValue{attrKey: avS(key), "Digest": avS("0123456789abcdef0123456789abcdef")}
	if _, err := e.raw.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
		t.Fatal(err)
	}
	d := e.dynamo(t, e.client(nil), "me", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, noWait := range []bool{true, false} {
		_, err := d.Acquire(ctx, key, AcquireOptions{NoWait: noWait})
		if !errors.Is(err, ErrForeignItem) {
			t.Fatalf("Acquire(NoWait %v) = %v, want ErrForeignItem", noWait, err)
		}
	}
	if _, err := d.ForceRelease(ctx, key); !errors.Is(err, ErrForeignItem) {
		t.Fatalf("ForceRelease = %v", err)
	}
	if recs, err := d.List(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("List = %v, %v", recs, err)
	}
	out, err := e.raw.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.table), Key: keyOf(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Item) != 2 || !equalAV(out.Item["Digest"], item["Digest"]) {
		t.Fatalf("the foreign item changed: %v", out.Item)
	}
}

func TestDynamoLocalMissingTable(t *testing.T) {
	t.Parallel()
	ep := ddblocal.Endpoint(t)
	d, err := NewDynamo(DynamoConfig{Client: ddblocal.Client(ep, nil), Table: "no-such-table", Timing: itTiming})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Acquire(ctx, "k", AcquireOptions{}); !errors.Is(err, ErrTableNotFound) || !strings.Contains(err.Error(), "no-such-table") {
		t.Errorf("Acquire = %v, want ErrTableNotFound naming the table", err)
	}
	if _, err := d.Status(ctx, "k"); !errors.Is(err, ErrTableNotFound) {
		t.Errorf("Status = %v", err)
	}
	if _, err := d.List(ctx); !errors.Is(err, ErrTableNotFound) {
		t.Errorf("List = %v", err)
	}
	if _, err := d.ForceRelease(ctx, "k"); !errors.Is(err, ErrTableNotFound) {
		t.Errorf("ForceRelease = %v", err)
	}
}

func TestDynamoLocalCreateTable(t *testing.T) {
	t.Parallel()
	ep := ddblocal.Endpoint(t)
	raw := ddblocal.Client(ep, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	newTable := func(name string) *Dynamo {
		t.Cleanup(func() {
			_, _ = raw.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		})
		d, err := NewDynamo(DynamoConfig{Client: raw, Table: name, Timing: itTiming})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	t.Run("create-table creates an on-demand table keyed by LockID, and again is a no-op", func(t *testing.T) {
		name := fmt.Sprintf("created-%d", time.Now().UnixNano())
		d := newTable(name)
		for range 2 {
			if err := d.CreateTable(ctx); err != nil {
				t.Fatal(err)
			}
		}
		out, err := raw.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Table.TableStatus != types.TableStatusActive || aws.ToString(out.Table.KeySchema[0].AttributeName) != attrKey {
			t.Fatalf("table: %+v", out.Table)
		}
		if out.Table.BillingModeSummary == nil || out.Table.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
			t.Errorf("billing mode: %+v", out.Table.BillingModeSummary)
		}
		if l, err := d.Acquire(ctx, "k", AcquireOptions{NoWait: true}); err != nil {
			t.Fatal(err)
		} else {
			_ = release(t, l)
		}
	})
	t.Run("create-table refuses a table with another key", func(t *testing.T) {
		name := fmt.Sprintf("other-key-%d", time.Now().UnixNano())
		d := newTable(name)
		_, err := raw.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(name),
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest,
		})
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("table %s's key is id (S); locked-run needs LockID (S)", name)
		if err := d.CreateTable(ctx); !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, ErrKeySchema) || !strings.Contains(err.Error(), want) {
			t.Fatalf("CreateTable = %v, want an error saying %q", err, want)
		}
		// DynamoDB's own answer to a request on that table does not
		// name either key: acquire and status say it as create-table does.
		if _, err := d.Acquire(ctx, "k", AcquireOptions{}); !errors.Is(err, ErrKeySchema) || !strings.Contains(err.Error(), want) {
			t.Errorf("Acquire = %v, want an error saying %q", err, want)
		}
		if _, err := d.Status(ctx, "k"); !errors.Is(err, ErrKeySchema) || !strings.Contains(err.Error(), want) {
			t.Errorf("Status = %v, want an error saying %q", err, want)
		}
	})
}

func TestDynamoLocalStatusListForceRelease(t *testing.T) {
	e := newITEnv(t)
	ctx := context.Background()
	a := itAcquire(t, e.dynamo(t, e.client(nil), "host-a", nil), "job/b")
	b := itAcquire(t, e.dynamo(t, e.client(nil), "host-b", nil), "job/a")
	free := itAcquire(t, e.dynamo(t, e.client(nil), "host-c", nil), "job/c")
	if err := release(t, free); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = release(t, b) })
	d := e.dynamo(t, e.client(nil), "admin", nil)

	rec, err := d.Status(ctx, "job/b")
	if err != nil || rec.Owner != a.Owner() || rec.Host != "host-a" || rec.Token != 1 || rec.Lease != itTiming.Lease ||
		rec.Command != t.Name() || rec.Acquired.IsZero() || rec.Version == "" {
		t.Fatalf("Status = %+v, %v", rec, err)
	}
	recs, err := d.List(ctx)
	if err != nil || len(recs) != 2 || recs[0].Key != "job/a" || recs[1].Key != "job/b" {
		t.Fatalf("List = %+v, %v; want job/a and job/b", recs, err)
	}
	broken, err := d.ForceRelease(ctx, "job/b")
	if err != nil || broken.Owner != a.Owner() {
		t.Fatalf("ForceRelease = %+v, %v", broken, err)
	}
	waitClosed(t, a.Lost(), itTiming.Heartbeat+time.Second, "the broken lock's Lost")
	if !strings.Contains(a.Err().Error(), "released by someone else") {
		t.Errorf("Err() = %v", a.Err())
	}
	if _, err := d.ForceRelease(ctx, "job/b"); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("ForceRelease of a free key = %v, want ErrNotHeld", err)
	}
	if rec := e.status(t, "job/b"); rec.Held() || rec.Token != 1 {
		t.Fatalf("after force release: %+v", rec)
	}
}

func TestDynamoLocalPickup(t *testing.T) {
	e := newITEnv(t)
	holder := e.dynamo(t, e.client(nil), "holder", nil)
	waiter := e.dynamo(t, e.client(nil), "waiter", nil) // default poll
	var samples []time.Duration
	for range 12 {
		h := itAcquire(t, holder, "pickup")
		waiting := make(chan struct{})
		var once sync.Once
		type result struct {
			l   *Lease
			at  time.Time
			err error
		}
		got := make(chan result, 1)
		go func() {
			l, err := waiter.Acquire(context.Background(), "pickup", AcquireOptions{OnWait: func(Wait) {
				once.Do(func() { close(waiting) })
			}})
			got <- result{l, time.Now(), err}
		}()
		waitClosed(t, waiting, 5*time.Second, "the waiter waiting")
		time.Sleep(rand.N(300 * time.Millisecond))
		if err := release(t, h); err != nil {
			t.Fatal(err)
		}
		released := time.Now()
		r := <-got
		if r.err != nil {
			t.Fatal(r.err)
		}
		samples = append(samples, r.at.Sub(released))
		if err := release(t, r.l); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(samples)
	median := samples[len(samples)/2]
	t.Logf("a released key was taken by a waiter (poll %s) after %s at the median, %s at most", DefaultPoll,
		median.Round(time.Millisecond), samples[len(samples)-1].Round(time.Millisecond))
	if median > 2*DefaultPoll {
		t.Errorf("median pickup %s, want about half a poll", median)
	}
}
