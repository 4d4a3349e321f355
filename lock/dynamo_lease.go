package lock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"

	"github.com/locked-run/locked-run/internal/stack"
)

// A renewer keeps one DynamoDB lease alive. Its goroutine is started by
// startLease and stopped, and waited for, by the lease's release.
type renewer struct {
	d      *Dynamo
	lease  *Lease
	key    string
	owner  string
	shared bool // a shared holder: its entry in SharedHolders is the lock
	log    hclog.Logger

	// headExcl is set when the item last seen (at acquisition, or by a
	// heartbeat) had an exclusive waiter at the head of its line: the
	// release then hands the key over to it in the same write.
	headExcl atomic.Bool

	// Owned by the renewer goroutine.
	rvn      string    // the version the item carries, as last written
	lastSent time.Time // send time of the last write known to have landed

	stop context.CancelFunc
	done chan struct{} // closed when the goroutine returns
}

// startLease returns the lease of rec, taken by a write sent at sentAt, and
// starts renewing it.
func (d *Dynamo) startLease(rec Record, sentAt time.Time, headExcl bool) *Lease {
	ctx, stop := context.WithCancel(context.Background())
	r := &renewer{
		d:        d,
		key:      rec.Key,
		owner:    rec.Owner,
		shared:   rec.Shared,
		log:      d.log.With("key", rec.Key, "owner", rec.Owner),
		rvn:      rec.Version,
		lastSent: sentAt,
		stop:     stop,
		done:     make(chan struct{}),
	}
	r.headExcl.Store(headExcl)
	r.lease = newLease(rec, r.release)
	r.lease.setDeadline(d.clock, r.lostAt())
	go r.run(ctx)
	return r.lease
}

// lostAt is the moment after which the lease may no longer be assumed held.
func (r *renewer) lostAt() time.Time { return r.lastSent.Add(r.d.timing.renewDeadline()) }

// run sends a heartbeat every Timing.Heartbeat, counted from the send time
// of the last write that landed, until ctx is cancelled or the lease is lost.
//
// It wakes up at least every suspendCheck: timers stop while the host is
// suspended, the clock does not, so after a resume past the renew deadline
// Lost closes within about suspendCheck rather than a heartbeat later.
func (r *renewer) run(ctx context.Context) {
	// A heartbeat is the AWS SDK's request path, a deep stack: grown once
	// here rather than copied three times at the first one.
	stack.Grow()
	defer close(r.done)
	wait := func() time.Duration {
		return min(r.lastSent.Add(r.d.timing.Heartbeat).Sub(r.d.clock.Now()), suspendCheck)
	}
	t := r.d.clock.NewTimer(wait())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		now := r.d.clock.Now()
		if now.Before(r.lastSent.Add(r.d.timing.Heartbeat)) {
			if !now.Before(r.lostAt()) {
				r.lease.markLost(r.deadlineErr(nil))
				return
			}
			t.Reset(wait())
			continue
		}
		if err := r.heartbeat(ctx); err != nil {
			if ctx.Err() == nil {
				r.log.Debug("lease lost", "error", err)
				r.lease.markLost(err)
			}
			return
		}
		t.Reset(wait())
	}
}

// heartbeat writes a new RVN, conditional on still being the owner with the
// RVN last written or the new one: a retry of an attempt that landed
// although its answer was lost then succeeds instead of looking like a
// lost lock. Transient errors are retried with jittered backoff until the
// renew deadline; each attempt's deadline ends before it. It returns nil
// when renewed, and otherwise an error wrapping ErrLost (or ctx's error).
func (r *renewer) heartbeat(ctx context.Context) error {
	next := newRVN()
	lostAt := r.lostAt()
	var (
		firstSent time.Time
		warned    time.Time
		lastErr   error
		attempts  int
	)
	op := func() error {
		now := r.d.clock.Now()
		if !now.Before(lostAt) {
			return backoff.Permanent(r.deadlineErr(lastErr))
		}
		if firstSent.IsZero() {
			firstSent, warned = now, now
		}
		attempts++
		err := r.write(ctx, next, now, min(r.d.reqTimeout, lostAt.Sub(now)))
		var ccf *conditionFailedError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return backoff.Permanent(ctx.Err())
		case errors.As(err, &ccf):
			return backoff.Permanent(r.conditionErr(ccf, next))
		case errors.Is(err, ErrTableNotFound):
			return backoff.Permanent(fmt.Errorf("renew %q: %w: %w", r.key, ErrLost, err))
		}
		lastErr = err
		if now := r.d.clock.Now(); now.Sub(warned) >= warnEvery/2 {
			// Heartbeat retries wait at most a few seconds each, so
			// half the period keeps the gap between WARN lines under it.
			warned = now
			r.log.Warn("heartbeat failing, still retrying", "error", err, "attempt", attempts, "left", lostAt.Sub(now).String())
		} else {
			r.log.Debug("heartbeat failed, retrying", "error", err, "attempt", attempts, "left", lostAt.Sub(now))
		}
		return err
	}
	err := backoff.RetryNotifyWithTimer(op, backoff.WithContext(r.heartbeatBackoff(), ctx), nil,
		&clockTimer{clock: r.d.clock, until: lostAt})
	if errors.Is(err, errOwnWrite) {
		err = nil
	}
	if err != nil {
		return err
	}
	// The server applied one of the attempts, at the earliest when the
	// first was sent; a waiter may have seen next from then on, so the
	// lease runs from then, whichever attempt answered.
	r.lastSent = firstSent
	r.rvn = next
	r.lease.setDeadline(r.d.clock, r.lostAt())
	r.log.Debug("heartbeat", "token", r.lease.Token(), "attempts", attempts)
	return nil
}

// heartbeatBackoff is the retry policy of one heartbeat: quick first
// retries, since throttling and dropped connections usually pass within
// milliseconds, and waits capped at an eighth of the time a heartbeat has
// before the renew deadline, so that even a holder throttled half the time
// gets about ten attempts (and fails all of them about once in a thousand
// heartbeats). The renew deadline, not the policy, ends the retries.
func (r *renewer) heartbeatBackoff() backoff.BackOff {
	t := r.d.timing
	maxWait := min(max((t.renewDeadline()-t.Heartbeat)/8, 20*time.Millisecond), 5*time.Second)
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(min(max(t.Heartbeat/20, 10*time.Millisecond), maxWait)),
		backoff.WithMaxInterval(maxWait),
		backoff.WithMaxElapsedTime(0),
		backoff.WithClockProvider(r.d.clock),
	)
}

// write sends one heartbeat attempt with the given deadline.
func (r *renewer) write(ctx context.Context, next string, now time.Time, timeout time.Duration) error {
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	in := &dynamodb.UpdateItemInput{
		TableName:                aws.String(r.d.table),
		Key:                      keyOf(r.key),
		UpdateExpression:         aws.String("SET #RVN = :next, #HeartbeatAt = :now"),
		ConditionExpression:      aws.String("#Owner = :owner AND #RVN IN (:prev, :next)"),
		ExpressionAttributeNames: names(attrOwner, attrRVN, attrHeartbeat),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":owner": avS(r.owner),
			":prev":  avS(r.rvn),
			":next":  avS(next),
			":now":   avS(formatTime(now)),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if r.shared {
		// The entry's own token, which a read cannot tell from the
		// counter, is written by every heartbeat (the acquiring write
		// could not know it).
		in.UpdateExpression = aws.String("SET #SharedHolders.#me.#RVN = :next, #SharedHolders.#me.#HeartbeatAt = :now, #SharedHolders.#me.#FencingToken = :token")
		in.ConditionExpression = aws.String("#SharedHolders.#me.#RVN IN (:prev, :next)")
		in.ExpressionAttributeNames = names(attrShared, attrRVN, attrHeartbeat, attrToken)
		in.ExpressionAttributeNames["#me"] = r.owner
		delete(in.ExpressionAttributeValues, ":owner")
		in.ExpressionAttributeValues[":token"] = &types.AttributeValueMemberN{Value: strconv.FormatUint(r.lease.Token(), 10)}
	}
	in.ReturnValues = types.ReturnValueAllNew
	out, err := r.d.api.UpdateItem(callCtx, in, callOpts)
	if err == nil && !r.shared {
		r.headExcl.Store(exclusiveHead(lineOf(out.Attributes)))
	}
	return translate(err, r.d.table)
}

// errOwnWrite marks a failed condition that shows the item as our own
// attempt left it: not a loss.
var errOwnWrite = errors.New("own write")

// conditionErr explains a heartbeat's failed condition from the item as it
// was: our own new version means an earlier attempt landed (errOwnWrite);
// anything else means the lock is gone.
func (r *renewer) conditionErr(ccf *conditionFailedError, next string) error {
	if !ccf.ItemKnown {
		return fmt.Errorf("renew %q: %w: the lock item was deleted", r.key, ErrLost)
	}
	rec, err := decodeRecord(ccf.Item)
	switch {
	case errors.Is(err, ErrForeignItem):
		return fmt.Errorf("renew %q: %w: the item was replaced by one that is not a locked-run lock", r.key, ErrLost)
	case err != nil:
		return fmt.Errorf("renew %q: %w: %w", r.key, ErrLost, err)
	case r.shared:
		for _, h := range rec.Holders {
			if h.Owner == r.owner && h.Version == next {
				return errOwnWrite
			}
		}
		return fmt.Errorf("renew %q: %w: this shared hold was removed (by a waiter that saw it unchanged for a whole lease, or a forced release)", r.key, ErrLost)
	case rec.Owner == r.owner && rec.Version == next:
		return errOwnWrite
	case rec.Held():
		return fmt.Errorf("renew %q: %w: taken by %s", r.key, ErrLost, rec.Describe())
	default:
		return fmt.Errorf("renew %q: %w: released by someone else (forced release?)", r.key, ErrLost)
	}
}

// deadlineErr is the loss by renewals failing until the renew deadline.
func (r *renewer) deadlineErr(last error) error {
	if last == nil {
		return fmt.Errorf("renew %q: %w: no renewal within %s", r.key, ErrLost, r.d.timing.renewDeadline())
	}
	return fmt.Errorf("renew %q: %w: renewals failed for %s: %w", r.key, ErrLost, r.d.timing.renewDeadline(), last)
}

// release is the lease's release func: it stops the renewer and waits for
// it, so that no heartbeat can be in flight or start afterwards, and then
// removes the holder from the item, conditional on still being the owner.
func (r *renewer) release(ctx context.Context) error {
	r.stop()
	<-r.done
	if r.shared {
		res, err := r.d.removeShared(ctx, r.key, r.owner)
		switch {
		case err != nil:
			return fmt.Errorf("release %q: %w", r.key, err)
		case res.removed, res.ambiguous && !res.other.holds(r.owner):
			r.log.Debug("released", "token", r.lease.Token())
			r.ringNext(res.after)
			return nil
		default:
			return fmt.Errorf("release %q: %w: this shared hold was already removed", r.key, ErrLost)
		}
	}
	if r.headExcl.Load() {
		switch done, err := r.handOver(ctx); {
		case err != nil:
			return fmt.Errorf("release %q: %w", r.key, err)
		case done:
			return nil
		}
		// Nobody to hand it to after all: release it.
	}
	res, err := r.d.removeOwner(ctx, r.key, r.owner)
	switch other := res.other; {
	case err != nil:
		return fmt.Errorf("release %q: %w", r.key, err)
	case res.removed:
		r.log.Debug("released", "token", r.lease.Token())
		r.ringNext(res.after)
		return nil
	case res.ambiguous && (other.Token > r.lease.Token() || !other.Held() && other.Token == r.lease.Token()):
		// Free, or taken with a greater token, after an attempt whose
		// answer was lost: that attempt is what freed it, and a waiter
		// may have taken it since (a forced release is the only other
		// way, and either way nothing of ours is left).
		r.log.Debug("released", "token", r.lease.Token())
		return nil
	case other.Held():
		return fmt.Errorf("release %q: %w: already taken by %s", r.key, ErrLost, other.Describe())
	case other.Token != 0:
		return fmt.Errorf("release %q: %w: already released by someone else", r.key, ErrLost)
	default:
		return fmt.Errorf("release %q: %w: the lock item was deleted", r.key, ErrLost)
	}
}

// ringNext wakes, on this host, the waiters at the front of the line of
// item that could take the key now: the head, and the shared waiters right
// behind a shared head.
func (r *renewer) ringNext(item map[string]types.AttributeValue) {
	if len(item) == 0 || r.d.noDoorbell {
		return
	}
	rec, err := decodeRecord(item)
	if err != nil {
		return
	}
	for i, w := range rec.Line {
		if i > 0 && !w.shares() {
			break
		}
		ring(w.Owner)
		if !w.shares() {
			break
		}
	}
}

// exclusiveHead reports whether line starts with an exclusive waiter that
// can be handed the key (one of this version, with a nonce).
func exclusiveHead(line []Waiter) bool {
	return len(line) > 0 && !line[0].shares() && line[0].Nonce != ""
}

// lineOf returns the line of item, nil when unreadable.
func lineOf(item map[string]types.AttributeValue) []Waiter {
	if len(item) == 0 {
		return nil
	}
	rec, err := decodeRecord(item)
	if err != nil {
		return nil
	}
	return rec.Line
}

// handOver releases the key by making the exclusive waiter at the head of
// the line its holder, in one write conditional on still being the owner
// and on that waiter heading the line, and tells it so through its
// doorbell, with the nonce it wrote into its entry (so that nobody else
// can make it believe it holds the key). A waiter on another host learns
// it from its next read. It reports false, and no error, when there was no
// exclusive waiter at the head: the caller then releases as usual.
func (r *renewer) handOver(ctx context.Context) (bool, error) {
	rvn := newRVN()
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(r.d.table),
		Key:       keyOf(r.key),
		UpdateExpression: aws.String("SET #Owner = #Line[0].#Owner, #Host = #Line[0].#Host, #Pid = #Line[0].#Pid, " +
			"#User = #Line[0].#User, #Command = #Line[0].#Command, #AcquiredAt = :now, #HeartbeatAt = :now, " +
			"#LeaseMs = #Line[0].#LeaseMs, #HeartbeatMs = #Line[0].#HeartbeatMs, #RVN = :rvn REMOVE #Line[0] ADD #FencingToken :one"),
		ConditionExpression: aws.String("#Owner = :owner AND size(#Line) > :zero AND #Line[0].#Shared = :false AND " +
			"#Line[0].#MaxHolders <= :one AND attribute_exists(#Line[0].#Nonce) AND " +
			"(attribute_not_exists(#FencingToken) OR #FencingToken < :max)"),
		ExpressionAttributeNames: names(attrOwner, attrHost, attrPID, attrUser, attrCommand, attrAcquired, attrHeartbeat,
			attrLease, attrEvery, attrRVN, attrToken, attrLine, attrIsShared, attrMax, attrNonce),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":owner": avS(r.owner),
			":now":   avS(formatTime(r.d.clock.Now())),
			":rvn":   avS(rvn),
			":one":   avN(1),
			":zero":  avN(0),
			":false": &types.AttributeValueMemberBOOL{Value: false},
			":max":   &types.AttributeValueMemberN{Value: strconv.FormatUint(MaxToken, 10)},
		},
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	var (
		out       *dynamodb.UpdateItemOutput
		ambiguous bool
	)
	err := r.d.do(ctx, "release", func(ctx context.Context) error {
		var err error
		out, err = r.d.api.UpdateItem(ctx, in, callOpts)
		err = translate(err, r.d.table)
		if isTransient(err) && !isConnect(err) {
			ambiguous = true
		}
		return err
	})
	var ccf *conditionFailedError
	switch {
	case err == nil:
		old, derr := decodeRecord(out.Attributes)
		if derr != nil || len(old.Line) == 0 {
			return true, nil
		}
		head := old.Line[0]
		r.log.Debug("released, handing the key over", "token", r.lease.Token(), "to", head.Owner)
		if !r.d.noDoorbell {
			ringTransfer(head.Owner, handover{nonce: head.Nonce, rvn: rvn, token: old.Token + 1, more: exclusiveHead(old.Line[1:])})
		}
		return true, nil
	case errors.As(err, &ccf) && ccf.ItemKnown:
		now, derr := decodeRecord(ccf.Item)
		switch {
		case derr != nil:
			return false, fmt.Errorf("%w: %w", ErrLost, derr)
		case now.Owner == r.owner:
			return false, nil // no exclusive waiter at the head
		case ambiguous && now.Version == rvn:
			return true, nil // an attempt whose answer was lost handed it over
		case now.Held():
			return false, fmt.Errorf("%w: already taken by %s", ErrLost, now.Describe())
		}
		return false, fmt.Errorf("%w: already released by someone else", ErrLost)
	case errors.As(err, &ccf):
		return false, nil
	}
	return false, err
}
