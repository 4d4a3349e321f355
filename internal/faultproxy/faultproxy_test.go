package faultproxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.Run(m)) }

// wait bounds every wait on the proxy: generous, as the machine is shared.
const wait = 5 * time.Second

// noRetry makes the SDK give up after one attempt, so that a fault reaches
// the caller as it was injected.
func noRetry(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }

// quickRetry keeps the SDK's standard retry policy but caps its backoff,
// which starts at up to 2 s, so that tests stay quick.
func quickRetry(o *dynamodb.Options) {
	o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, 20*time.Millisecond)
}

// fixture is a proxy in front of DynamoDB Local, with a client through it
// and one straight to DynamoDB Local to see what really happened.
type fixture struct {
	proxy    *Proxy
	db       *dynamodb.Client
	direct   *dynamodb.Client
	table    string
	arrived  chan struct{} // one value per request read by the proxy
	finished chan struct{} // one value per request handler that returned
}

func newFixture(t *testing.T, table string) *fixture {
	t.Helper()
	endpoint := ddblocal.Endpoint(t)
	f := &fixture{
		table:    table,
		arrived:  make(chan struct{}, 1000),
		finished: make(chan struct{}, 1000),
		direct:   ddblocal.Client(endpoint, nil),
	}
	p, err := start("127.0.0.1:0", endpoint, func(e event) {
		ch := f.arrived
		if e == finished {
			ch = f.finished
		}
		select {
		case ch <- struct{}{}:
		default: // never reached at the sizes tests use
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	f.proxy = p
	f.db = ddblocal.Client(p.URL(), nil)
	return f
}

// await fails the test unless ch yields within the deadline.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("%s: nothing after %v", what, wait)
		panic("unreachable")
	}
}

func (f *fixture) put(ctx context.Context, key string, opts ...func(*dynamodb.Options)) error {
	_, err := f.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(f.table),
		Item: map[string]types.AttributeValue{
			"LockID": &types.AttributeValueMemberS{Value: key},
			"Owner":  &types.AttributeValueMemberS{Value: "test"},
		},
	}, opts...)
	return err
}

// putAsync runs put in a goroutine and returns the channel its error
// arrives on.
func (f *fixture) putAsync(ctx context.Context, key string, opts ...func(*dynamodb.Options)) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f.put(ctx, key, opts...) }()
	return done
}

func (f *fixture) get(ctx context.Context, key string, opts ...func(*dynamodb.Options)) error {
	_, err := f.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(f.table),
		Key:       map[string]types.AttributeValue{"LockID": &types.AttributeValueMemberS{Value: key}},
	}, opts...)
	return err
}

// stored reports whether DynamoDB Local holds key, asked directly.
func (f *fixture) stored(t *testing.T, key string) bool {
	t.Helper()
	out, err := f.direct.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(f.table),
		Key:            map[string]types.AttributeValue{"LockID": &types.AttributeValueMemberS{Value: key}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("direct get %q: %v", key, err)
	}
	return out.Item != nil
}

func wantAPIError(t *testing.T, err error, code string, status int) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code {
		t.Fatalf("err = %v, want API error %s", err, code)
	}
	var httpErr interface{ HTTPStatusCode() int }
	if !errors.As(err, &httpErr) || httpErr.HTTPStatusCode() != status {
		t.Fatalf("err = %v, want HTTP status %d", err, status)
	}
}

func wantReset(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("err = %v, want connection reset", err)
	}
}

func TestRequestsPassThroughUnchangedAndAreCountedByOperation(t *testing.T) {
	f := newFixture(t, ddblocal.NewTable(t))
	ctx := context.Background()

	if err := f.put(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if !f.stored(t, "a") {
		t.Fatal("item written through the proxy is not in DynamoDB Local")
	}
	out, err := f.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(f.table),
		Key:       map[string]types.AttributeValue{"LockID": &types.AttributeValueMemberS{Value: "a"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if owner, ok := out.Item["Owner"].(*types.AttributeValueMemberS); !ok || owner.Value != "test" {
		t.Fatalf("item read through the proxy = %v", out.Item)
	}
	// DynamoDB's own errors come through as the SDK's typed errors.
	_, err = f.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(f.table),
		Item:                map[string]types.AttributeValue{"LockID": &types.AttributeValueMemberS{Value: "a"}},
		ConditionExpression: aws.String("attribute_not_exists(LockID)"),
	})
	var condErr *types.ConditionalCheckFailedException
	if !errors.As(err, &condErr) {
		t.Fatalf("conditional put on an existing item: err = %v, want ConditionalCheckFailedException", err)
	}

	s := f.proxy.Stats()
	if s.Requests["PutItem"] != 2 || s.Requests["GetItem"] != 1 || len(s.Requests) != 2 {
		t.Errorf("Requests = %v, want PutItem:2 GetItem:1", s.Requests)
	}
	if s.Forwarded != 3 {
		t.Errorf("Forwarded = %d, want 3", s.Forwarded)
	}
	f.proxy.ResetStats()
	if s := f.proxy.Stats(); s.Forwarded != 0 || len(s.Requests) != 0 {
		t.Errorf("after ResetStats: %+v", s)
	}
}

func TestErrorAnswers(t *testing.T) {
	table := ddblocal.NewTable(t)
	ctx := context.Background()

	t.Run("throttle next reaches a client without retries as ThrottlingException", func(t *testing.T) {
		f := newFixture(t, table)
		f.proxy.ThrottleNext(1)
		wantAPIError(t, f.get(ctx, "k", noRetry), "ThrottlingException", 400)
		if err := f.get(ctx, "k", noRetry); err != nil {
			t.Fatalf("request after the throttle: %v", err)
		}
		if s := f.proxy.Stats(); s.Throttled != 1 || s.Forwarded != 1 || s.Requests["GetItem"] != 2 {
			t.Errorf("stats = %+v, want 1 throttled, 1 forwarded, 2 GetItem", s)
		}
	})

	t.Run("throttle next is retried away by the SDK's standard retries", func(t *testing.T) {
		f := newFixture(t, table)
		f.proxy.ThrottleNext(1)
		if err := f.put(ctx, "throttled-once", quickRetry); err != nil {
			t.Fatalf("put with retries: %v", err)
		}
		if !f.stored(t, "throttled-once") {
			t.Fatal("item not written after the retry")
		}
		if s := f.proxy.Stats(); s.Throttled != 1 || s.Forwarded != 1 || s.Requests["PutItem"] != 2 {
			t.Errorf("stats = %+v, want 1 throttled, 1 forwarded, 2 PutItem", s)
		}
	})

	t.Run("throttle rate 1 throttles every request and 0 none", func(t *testing.T) {
		f := newFixture(t, table)
		f.proxy.SetThrottleRate(1)
		for range 3 {
			wantAPIError(t, f.get(ctx, "k", noRetry), "ThrottlingException", 400)
		}
		f.proxy.SetThrottleRate(0)
		if err := f.get(ctx, "k", noRetry); err != nil {
			t.Fatal(err)
		}
		if s := f.proxy.Stats(); s.Throttled != 3 || s.Forwarded != 1 {
			t.Errorf("stats = %+v, want 3 throttled, 1 forwarded", s)
		}
	})

	t.Run("calm turns every fault off", func(t *testing.T) {
		f := newFixture(t, table)
		f.proxy.SetThrottleRate(1)
		f.proxy.ThrottleNext(5)
		f.proxy.Fail5xxNext(5)
		f.proxy.ResetNext(5)
		f.proxy.DropAnswerNext(5)
		f.proxy.SetLatency(time.Hour)
		f.proxy.Hold(time.Hour)
		f.proxy.Calm()
		if err := f.get(ctx, "k", noRetry); err != nil {
			t.Fatalf("request after Calm: %v", err)
		}
		if s := f.proxy.Stats(); s.Throttled != 0 || s.Failed != 0 || s.Forwarded != 1 {
			t.Errorf("stats = %+v, want nothing but 1 forwarded", s)
		}
	})

	t.Run("fail 5xx next reaches the client as InternalServerError", func(t *testing.T) {
		f := newFixture(t, table)
		f.proxy.Fail5xxNext(1)
		wantAPIError(t, f.put(ctx, "failed", noRetry), "InternalServerError", 500)
		if f.stored(t, "failed") {
			t.Fatal("a request answered with 500 was forwarded")
		}
		if s := f.proxy.Stats(); s.Failed != 1 || s.Forwarded != 0 {
			t.Errorf("stats = %+v, want 1 failed, none forwarded", s)
		}
	})
}

func TestBlackhole(t *testing.T) {
	table := ddblocal.NewTable(t)

	t.Run("a blackholed request times out and never reaches DynamoDB", func(t *testing.T) {
		f := newFixture(t, table)
		f.proxy.Blackhole(true)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := f.put(ctx, "partitioned")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		// Heal only once the proxy has dropped the request, or it would be
		// forwarded.
		await(t, f.finished, "request dropped")
		f.proxy.Blackhole(false)
		if f.stored(t, "partitioned") {
			t.Fatal("DynamoDB saw a blackholed request")
		}
		if err := f.put(context.Background(), "healed"); err != nil {
			t.Fatalf("request after Blackhole(false): %v", err)
		}
		if s := f.proxy.Stats(); s.Blackholed != 1 || s.Forwarded != 1 {
			t.Errorf("stats = %+v, want 1 blackholed, 1 forwarded", s)
		}
	})

	t.Run("turning the blackhole off lets a waiting request through", func(t *testing.T) {
		f := newFixture(t, table)
		f.proxy.Blackhole(true)
		done := f.putAsync(context.Background(), "waited")
		await(t, f.arrived, "request arrival")
		f.proxy.Blackhole(false)
		if err := await(t, done, "put"); err != nil {
			t.Fatal(err)
		}
		if !f.stored(t, "waited") {
			t.Fatal("item not written")
		}
	})

	t.Run("a blackhole withholds requests already queued behind a hold", func(t *testing.T) {
		f := newFixture(t, table)
		f.proxy.Hold(100 * time.Millisecond)
		done := f.putAsync(context.Background(), "queued")
		await(t, f.arrived, "request arrival")
		f.proxy.Blackhole(true)
		select {
		case err := <-done:
			t.Fatalf("answered while blackholed (err %v)", err)
		case <-time.After(500 * time.Millisecond):
		}
		f.proxy.Blackhole(false)
		if err := await(t, done, "put"); err != nil {
			t.Fatal(err)
		}
		if s := f.proxy.Stats(); s.Held != 1 || s.Blackholed != 1 {
			t.Errorf("stats = %+v, want 1 held, 1 blackholed", s)
		}
	})
}

func TestResets(t *testing.T) {
	table := ddblocal.NewTable(t)
	ctx := context.Background()

	t.Run("reset next resets the connection and DynamoDB never sees the request", func(t *testing.T) {
		f := newFixture(t, table)
		f.proxy.ResetNext(1)
		wantReset(t, f.put(ctx, "reset", noRetry))
		if f.stored(t, "reset") {
			t.Fatal("a reset request was forwarded")
		}
		if err := f.put(ctx, "after-reset", noRetry); err != nil {
			t.Fatalf("request after the reset: %v", err)
		}
		if s := f.proxy.Stats(); s.Reset != 1 || s.Forwarded != 1 {
			t.Errorf("stats = %+v, want 1 reset, 1 forwarded", s)
		}
	})

	t.Run("reset connections resets a request in flight", func(t *testing.T) {
		f := newFixture(t, table)
		f.proxy.Blackhole(true)
		done := f.putAsync(ctx, "in-flight", noRetry)
		await(t, f.arrived, "request arrival")
		f.proxy.ResetConnections()
		wantReset(t, await(t, done, "put"))
		await(t, f.finished, "request dropped")
		f.proxy.Blackhole(false)
		if f.stored(t, "in-flight") {
			t.Fatal("a request whose connection was reset was forwarded")
		}
		if s := f.proxy.Stats(); s.Reset != 1 {
			t.Errorf("Reset = %d, want 1", s.Reset)
		}
	})

	t.Run("drop answer next applies the request and resets instead of answering", func(t *testing.T) {
		f := newFixture(t, table)
		f.proxy.DropAnswerNext(1)
		wantReset(t, f.put(ctx, "applied", noRetry))
		if !f.stored(t, "applied") {
			t.Fatal("the request whose answer was dropped was not applied")
		}
		if s := f.proxy.Stats(); s.AnswersDropped != 1 || s.Forwarded != 1 {
			t.Errorf("stats = %+v, want 1 answer dropped, 1 forwarded", s)
		}
	})
}

func TestDelays(t *testing.T) {
	table := ddblocal.NewTable(t)
	ctx := context.Background()

	t.Run("latency delays each request by at least the latency", func(t *testing.T) {
		f := newFixture(t, table)
		const latency = 200 * time.Millisecond
		f.proxy.SetLatency(latency)
		for range 2 {
			start := time.Now()
			if err := f.get(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < latency {
				t.Fatalf("request took %v, want at least %v", took, latency)
			}
		}
	})

	t.Run("hold delays answers until its window ends and no longer", func(t *testing.T) {
		f := newFixture(t, table)
		const hold = 400 * time.Millisecond
		start := time.Now()
		f.proxy.Hold(hold)
		if err := f.get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		// The upper bound only catches a hold that never ends; the machine
		// is shared.
		if took := time.Since(start); took < hold || took > hold+2*time.Second {
			t.Fatalf("held request took %v, want about %v", took, hold)
		}
		if err := f.get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if s := f.proxy.Stats(); s.Held != 1 || s.Forwarded != 2 {
			t.Errorf("stats = %+v, want only the first request held", s)
		}
	})

	t.Run("a held request is delivered after its client gave up", func(t *testing.T) {
		f := newFixture(t, table)
		f.proxy.Hold(500 * time.Millisecond)
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := f.put(ctx, "late"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		await(t, f.finished, "held request forwarded")
		if !f.stored(t, "late") {
			t.Fatal("the held request was not delivered late")
		}
	})
}

func TestCloseReleasesBlockedRequestsAndLeavesNoGoroutine(t *testing.T) {
	table := ddblocal.NewTable(t)
	endpoint := ddblocal.Endpoint(t)
	before := runtime.NumGoroutine()

	reached := make(chan struct{}, 10)
	p, err := start("127.0.0.1:0", endpoint, func(e event) {
		if e == arrived {
			reached <- struct{}{}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	transport := &http.Transport{}
	f := &fixture{proxy: p, table: table, db: ddblocal.Client(p.URL(), &http.Client{Transport: transport})}
	ctx := context.Background()
	// One request goes all the way, so the proxy has a connection to
	// DynamoDB Local to clean up too.
	if err := f.get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	await(t, reached, "first request")

	p.Hold(time.Minute)
	held := f.putAsync(ctx, "held", noRetry)
	await(t, reached, "held request")
	p.Hold(0)
	p.Blackhole(true)
	blackholed := f.putAsync(ctx, "blackholed", noRetry)
	await(t, reached, "blackholed request")

	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	if err := await(t, closed, "Close"); err != nil {
		t.Fatalf("close: %v", err)
	}
	for _, done := range []<-chan error{held, blackholed} {
		if err := await(t, done, "released request"); err == nil {
			t.Fatal("a request blocked at Close got an answer")
		}
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	transport.CloseIdleConnections()

	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the proxy:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestControlAPISwitchesFaultsAndReportsStats(t *testing.T) {
	f := newFixture(t, ddblocal.NewTable(t))
	control := httptest.NewServer(f.proxy.ControlHandler())
	t.Cleanup(control.Close)
	post := func(path string, want int) {
		t.Helper()
		resp, err := http.Post(control.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST %s: status %d, want %d", path, resp.StatusCode, want)
		}
	}

	post("/throttle-next?n=1", http.StatusNoContent)
	wantAPIError(t, f.get(context.Background(), "k", noRetry), "ThrottlingException", 400)
	post("/latency?d=soon", http.StatusBadRequest)
	post("/blackhole?on=maybe", http.StatusBadRequest)

	resp, err := http.Get(control.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.Throttled != 1 || s.Requests["GetItem"] != 1 {
		t.Errorf("stats = %+v, want 1 throttled GetItem", s)
	}
	post("/reset-stats", http.StatusNoContent)
	if s := f.proxy.Stats(); s.Throttled != 0 {
		t.Errorf("after /reset-stats: %+v", s)
	}
}
