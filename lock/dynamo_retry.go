package lock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/cenkalti/backoff/v4"
)

// The retry policy of every request of the DynamoDB backend. The SDK's own
// retryer is off for all of them (callOpts): its three attempts and its
// client-side retry quota are not what a lock needs. Instead:
//
//   - transient errors (throttling, 5xx, timeouts, dropped connections)
//     are retried with jittered exponential backoff, for acquireRetryFor
//     at most outside a held lease, and until the renew deadline for a
//     heartbeat;
//   - a store that cannot be reached before any request of this process
//     got an answer (connection refused, DNS) is given up on after
//     unreachableFor, naming the endpoint: it is a wrong --endpoint-url or
//     --region far more often than an outage;
//   - a signature refused while the server's clock disagrees with ours by
//     more than the SDK's threshold is retried at once, since the SDK has
//     recorded the skew and signs the next request with it;
//   - credentials that cannot be had, access denied, a missing table and
//     validation errors are permanent;
//   - any retry that goes on longer than warnEvery logs a WARN line every
//     warnEvery, so that a silent wait is never more than that.
const (
	// unreachableFor is how long a store that never answered is retried.
	unreachableFor = 10 * time.Second
	// warnEvery is the longest a retry goes on without a WARN line.
	warnEvery = 10 * time.Second
	// maxSkewRetries bounds the immediate retries after a clock skew
	// error: one is enough once the SDK has measured the skew; a second
	// covers a skew that changed between two requests.
	maxSkewRetries = 2
)

// ErrCredentials means no usable AWS credentials could be had: none are
// configured, or their source (SSO, the instance metadata service, a web
// identity token) failed. Waiting does not help.
var ErrCredentials = errors.New("no usable AWS credentials")

// ErrUnreachable means the DynamoDB endpoint could not be reached at all
// (connection refused, unknown host) before any request of this process
// got an answer. Errors matching it are *UnreachableError.
var ErrUnreachable = errors.New("cannot reach DynamoDB")

// An UnreachableError names the endpoint that could not be reached. It
// matches ErrUnreachable.
type UnreachableError struct {
	Endpoint string // scheme and host, such as https://dynamodb.eu-west-1.amazonaws.com
	Waited   time.Duration
	Err      error // the last connection error, without the SDK's prefixes
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%s at %s (tried for %s): %v; check --endpoint-url, --region and the network",
		ErrUnreachable, e.Endpoint, e.Waited.Round(time.Second), e.Err)
}

// Is reports whether target is ErrUnreachable.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// ErrKeySchema means the table exists but is not keyed by the string
// partition key LockID alone.
var ErrKeySchema = errors.New("wrong table key schema")

// callOpts are the per-request options of every request: the SDK's
// retries off, and credential failures marked so that translate can tell
// them from a slow network.
func callOpts(o *dynamodb.Options) {
	o.Retryer = aws.NopRetryer{}
	if o.Credentials != nil && !aws.IsCredentialsProvider(o.Credentials, (*aws.AnonymousCredentials)(nil)) {
		if _, ok := o.Credentials.(markedCredentials); !ok {
			o.Credentials = markedCredentials{o.Credentials}
		}
	}
}

// markedCredentials wraps a credentials provider so that its failures,
// including a timeout of the instance metadata service, carry
// *credentialsError through the SDK's layers.
type markedCredentials struct{ aws.CredentialsProvider }

func (m markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &credentialsError{err}
	}
	return c, nil
}

type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// skewError is a signature refused while the clocks disagreed; the SDK has
// recorded the skew, and the next request is signed with it.
type skewError struct{ msg string }

func (e *skewError) Error() string { return e.msg }

// connectError is a request that could not reach the endpoint at all.
type connectError struct {
	endpoint string
	err      error
}

func (e *connectError) Error() string { return e.err.Error() }

// asConnectError returns the endpoint and cause when err is a failure to
// connect (refused, unknown host, no route) rather than a failure of a
// request that reached the server.
func asConnectError(err error) (*connectError, bool) {
	var urlErr *url.Error
	if !errors.As(err, &urlErr) {
		return nil, false
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
	case errors.As(err, &opErr) && opErr.Op == "dial":
	default:
		return nil, false
	}
	endpoint := urlErr.URL
	if u, perr := url.Parse(urlErr.URL); perr == nil {
		endpoint = u.Scheme + "://" + u.Host
	}
	return &connectError{endpoint: endpoint, err: innermost(err)}, true
}

// A retrier applies the retry policy to one operation: it says, for each
// failure, how long to wait before trying again, or that it is time to give
// up and with what error.
type retrier struct {
	d       *Dynamo
	what    string // the operation, for log lines: "acquire", "status", ...
	limit   time.Duration
	b       *backoff.ExponentialBackOff
	first   time.Time // the first failure of the current run of failures
	warned  time.Time
	skews   int
	failing bool
}

// newRetrier returns a retrier that gives up on transient errors after
// limit (0: never, the caller's context decides) with backoff starting at
// initial.
func (d *Dynamo) newRetrier(what string, limit, initial time.Duration) *retrier {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(initial),
		backoff.WithMaxInterval(5*time.Second),
		backoff.WithMaxElapsedTime(0),
		backoff.WithClockProvider(d.clock),
	)
	b.Reset()
	return &retrier{d: d, what: what, limit: limit, b: b}
}

// success resets the retrier after a request that got an answer.
func (r *retrier) success() {
	r.d.reached.Store(true)
	if r.failing {
		r.b.Reset()
		r.failing = false
		r.skews = 0
	}
}

// failed returns how long to wait before retrying after err (already
// translated), or a non-nil error when the operation must give up: err
// itself when it is permanent, a richer one when retries ran out.
func (r *retrier) failed(err error) (time.Duration, error) {
	now := r.d.clock.Now()
	if !r.failing {
		r.failing, r.first, r.warned = true, now, now
	}
	waited := now.Sub(r.first)
	var skew *skewError
	if errors.As(err, &skew) {
		r.skews++
		if r.skews > maxSkewRetries {
			return 0, fmt.Errorf("%w: %s (this host's clock is far off; fix it, e.g. with NTP)", ErrAccessDenied, skew.msg)
		}
		r.d.log.Debug("clock skew, retrying with the corrected signing time", "op", r.what, "error", err)
		return 0, nil
	}
	if ce, ok := asConnectErrorOf(err); ok && !r.d.reached.Load() && waited >= unreachableFor {
		return 0, &UnreachableError{Endpoint: ce.endpoint, Waited: waited, Err: ce.err}
	}
	if !isTransient(err) {
		return 0, err
	}
	if r.limit > 0 && waited >= r.limit {
		return 0, fmt.Errorf("gave up after %s of failures: %w", waited.Round(time.Second), err)
	}
	wait := r.b.NextBackOff()
	if isConnect(err) && !r.d.reached.Load() {
		// Wake up at the unreachable deadline rather than after it.
		wait = max(min(wait, r.first.Add(unreachableFor).Sub(now)), 0)
	}
	if r.limit > 0 {
		wait = max(min(wait, r.first.Add(r.limit).Sub(now)), 0)
	}
	// Warn now if the next attempt would come more than warnEvery after
	// the last warning: the gap between two WARN lines never exceeds it.
	if now.Add(wait).Sub(r.warned) > warnEvery {
		r.warned = now
		r.d.log.Warn("DynamoDB request failing, still retrying", "op", r.what, "waited", waited.Round(time.Second).String(), "error", err)
	} else {
		r.d.log.Debug("request failed, retrying", "op", r.what, "error", err, "in", wait)
	}
	return wait, nil
}

// asConnectErrorOf finds the *connectError in a translated error.
func asConnectErrorOf(err error) (*connectError, bool) {
	var ce *connectError
	return ce, errors.As(err, &ce)
}

// do runs op under the retry policy until it succeeds, fails permanently,
// retries run out or ctx ends. op gets a context bounded by the request
// timeout and returns a translated error; a *conditionFailedError or any
// other non-transient error is returned at once.
func (d *Dynamo) do(ctx context.Context, what string, op func(ctx context.Context) error) error {
	r := d.newRetrier(what, acquireRetryFor, 50*time.Millisecond)
	for {
		callCtx, cancel := context.WithTimeout(ctx, d.reqTimeout)
		err := op(callCtx)
		cancel()
		if err == nil || !isTransient(err) && !isSkew(err) && !isConnect(err) {
			if err == nil || answered(err) {
				r.success()
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait, gerr := r.failed(err)
		if gerr != nil {
			return gerr
		}
		if err := sleep(ctx, d.clock, wait); err != nil {
			return err
		}
	}
}

func isSkew(err error) bool {
	var s *skewError
	return errors.As(err, &s)
}

func isConnect(err error) bool {
	_, ok := asConnectErrorOf(err)
	return ok
}

// answered reports whether a translated error came from a server's answer
// (so the endpoint is reachable).
func answered(err error) bool {
	var ccf *conditionFailedError
	return errors.As(err, &ccf) || errors.Is(err, ErrTableNotFound) || errors.Is(err, ErrAccessDenied) ||
		errors.Is(err, ErrKeySchema) || errors.Is(err, errResourceInUse) || errors.Is(err, errValidation)
}
