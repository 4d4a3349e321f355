package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hashicorp/go-hclog"
)

// DynamoAPI is the part of the DynamoDB API that the backend calls.
// *dynamodb.Client satisfies it.
type DynamoAPI interface {
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, params *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Scan(ctx context.Context, params *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	CreateTable(ctx context.Context, params *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, params *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// DynamoConfig configures a Dynamo backend.
type DynamoConfig struct {
	// Client sends the requests. Required.
	Client DynamoAPI
	// Table is the name of the lock table. Required.
	Table string
	// Timing is validated by NewDynamo; zero fields take the defaults.
	Timing Timing
	// Identity is written into the item for waiters and status.
	Identity Identity
	// Clock decides every duration; nil means SystemClock(). Its wall time
	// is only written into items for people to read.
	Clock Clock
	// Logger receives Debug logs of heartbeats, retries and takeovers; nil
	// means a null logger.
	Logger hclog.Logger
}

// Dynamo is the DynamoDB backend: one item per key in a table whose
// partition key is the string attribute LockID. The package documentation
// gives the safety argument, the item layout and the request rates.
type Dynamo struct {
	api    DynamoAPI
	table  string
	timing Timing
	id     Identity
	clock  Clock
	log    hclog.Logger

	// reqTimeout bounds each request; see requestTimeout.
	reqTimeout time.Duration
	// jitter spreads polls; tests replace it to make polls exact.
	jitter func(time.Duration) time.Duration

	// reached is set once any request got an answer from the server: from
	// then on, a connection failure is an outage to ride out, not a wrong
	// endpoint to report.
	reached atomic.Bool
}

const (
	// maxRequestTimeout caps the deadline of one request. DynamoDB answers
	// in milliseconds; a request still unanswered after seconds is lost in
	// the network, and trying again on a new connection is the best bet.
	maxRequestTimeout = 5 * time.Second
	// minRequestTimeout keeps very short leases from giving requests less
	// time than a healthy round trip on a loaded machine.
	minRequestTimeout = 500 * time.Millisecond

	// maxGiveBacks is how many leases one Acquire takes and gives back,
	// for answers too late to leave a heartbeat of validity, before it
	// gives up: one late answer is a hiccup, three in a row mean the store
	// is slower than --lease leaves room for.
	maxGiveBacks = 3

	// cleanupTimeout bounds the cleanup after an abandoned acquisition. It
	// runs on a fresh context, since the caller's is already done.
	cleanupTimeout = 5 * time.Second
	// abandonWatch is how long that cleanup keeps removing this attempt's
	// ownership when it cannot tell whether an acquiring write will still
	// land: a request the client gave up on can still reach DynamoDB when
	// the network delivers it late. A write landing later still holds the
	// key only one lease, since nobody renews it.
	abandonWatch = 2 * time.Second

	// maxHolderLease caps the lease a waiter believes a holder promised,
	// and NewDynamo refuses longer leases. A larger LeaseMs (written by
	// something else) is taken as this: waiting longer than a day on a
	// silent item is never what anyone wants, and force-release exists.
	maxHolderLease = 24 * time.Hour

	// acquireRetryFor is how long Acquire keeps retrying transient errors
	// (throttling, 5xx, timeouts) before it reports the last one: long
	// enough to ride out a DynamoDB hiccup, short enough that an
	// unreachable endpoint is reported within a minute.
	acquireRetryFor = time.Minute
)

// requestTimeout returns the deadline of one request for t: a quarter of
// the renew deadline, so that a heartbeat hung on a dead connection leaves
// time for about three more attempts before the lease is lost, within
// [minRequestTimeout, maxRequestTimeout], and never more than half the
// renew deadline, so that an acquiring write answered at its deadline
// still leaves the new lease time to renew.
func requestTimeout(t Timing) time.Duration {
	rd := t.renewDeadline()
	return min(max(rd/4, minRequestTimeout), maxRequestTimeout, rd/2)
}

// NewDynamo returns a Dynamo backend. It makes no request.
func NewDynamo(cfg DynamoConfig) (*Dynamo, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: no DynamoDB client", ErrInvalidConfig)
	}
	if cfg.Table == "" {
		return nil, fmt.Errorf("%w: no table name (--table)", ErrInvalidConfig)
	}
	timing, err := cfg.Timing.Validate()
	if err != nil {
		return nil, err
	}
	if timing.Lease > maxHolderLease {
		// Waiters cap the lease they grant a holder; a longer one
		// could be taken over while its holder still trusts it.
		return nil, fmt.Errorf("%w: --lease %s is longer than the %s maximum", ErrInvalidConfig, timing.Lease, maxHolderLease)
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	cfg.Identity.Command = truncateCommand(cfg.Identity.Command)
	return &Dynamo{
		api:        cfg.Client,
		table:      cfg.Table,
		timing:     timing,
		id:         cfg.Identity,
		clock:      cfg.Clock,
		log:        cfg.Logger.Named("lock"),
		reqTimeout: requestTimeout(timing),
		jitter:     jitter,
	}, nil
}

// jitter returns d scaled by a factor drawn uniformly from [0.5, 1.5), so
// that waiters started together do not poll in lockstep.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// Table returns the name of the lock table.
func (d *Dynamo) Table() string { return d.table }

// Timing returns the validated timing, defaults filled in.
func (d *Dynamo) Timing() Timing { return d.timing }

// Acquire takes key. See Locker. The first request is the acquiring write
// itself: a free key costs exactly one UpdateItem. While the key is held it
// reads the item every Timing.Poll (jittered) and takes the key over once
// it has seen the holder's record version unchanged for the holder's whole
// lease on its own clock. An item that is not a locked-run lock is never
// modified: Acquire returns a *ForeignItemError at once.
func (d *Dynamo) Acquire(ctx context.Context, key string, opts AcquireOptions) (*Lease, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("acquire %q: %w", key, err)
	}
	a := &acquisition{
		d:     d,
		key:   key,
		opts:  opts,
		owner: NewOwnerID(d.id),
		start: d.clock.Now(),
		sent:  make(map[string]time.Time),
		log:   d.log.With("key", key),
	}
	switch {
	case opts.NoWait:
		a.limited, a.deadline = true, a.start
	case opts.Timeout > 0:
		a.limited, a.deadline = true, a.start.Add(opts.Timeout)
	}
	lease, err := a.run(ctx)
	if err != nil && a.unknown > 0 {
		a.abandon(ctx)
	}
	return lease, err
}

// An acquisition is the state of one Acquire call.
type acquisition struct {
	d     *Dynamo
	key   string
	opts  AcquireOptions
	owner string // unique to this call: cleanup by owner id is safe
	start time.Time
	log   hclog.Logger

	// sent maps the RVN of each acquiring write to its send time: if a
	// write whose answer was lost turns out to have landed, the lease is
	// counted from when it was sent.
	sent map[string]time.Time
	// unknown counts the writes that may have taken the key without this
	// call knowing (no answer, or an answer after ctx ended); lastUnknown
	// is when the last of them was sent.
	unknown     int
	lastUnknown time.Time

	// givenBack counts the leases this call took and gave back because
	// their answers came too late to leave a heartbeat of validity;
	// lastLeft is what the last of them had left.
	givenBack int
	lastLeft  time.Duration

	notified     bool
	nextProgress time.Time

	// limited is set under NoWait or a Timeout: past deadline, Acquire
	// answers instead of waiting, unless the holder looks stopped, in
	// which case it goes on watching the version it saw (extended) for
	// up to that version's lease.
	limited  bool
	deadline time.Time
	extended *sighting
}

// A sighting is a holder's record version as a waiter watches it.
type sighting struct {
	owner, rvn string
	since      time.Time     // when the answer first carrying it was received
	lease      time.Duration // the holder's promise, made sane
	stopped    bool          // the holder looked stopped when first seen (Record.LooksStopped)
	rec        Record
}

type step int

const (
	stepWrite    step = iota // the key looked free: take it
	stepTakeover             // the watched version expired: take it over
	stepRead                 // look at the item
)

func (a *acquisition) run(ctx context.Context) (*Lease, error) {
	var (
		watch sighting
		next  = stepWrite
		retry = a.d.newRetrier("acquire", acquireRetryFor, a.d.timing.Poll)
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, a.ctxErr(err)
		}
		var (
			item     map[string]types.AttributeValue
			received time.Time
			err      error
			refused  bool // item is the answer to our failed write
		)
		if next == stepRead {
			item, err = a.d.getItem(ctx, a.key, callOpts)
			received = a.d.clock.Now()
		} else {
			var takeover *sighting
			if next == stepTakeover {
				takeover = &watch
			}
			var rec Record
			var sentAt time.Time
			rec, sentAt, err = a.write(ctx, takeover)
			received = a.d.clock.Now()
			if err == nil {
				retry.success()
				if takeover != nil {
					a.log.Info("took over expired lock", "owner", rec.Owner, "previous", watch.owner, "token", rec.Token)
				}
				lease, err := a.won(ctx, rec, sentAt)
				if lease != nil || err != nil {
					return lease, err
				}
				// Given back: too little of it was left. Answers that
				// keep coming that late would give every lease back,
				// for ever; say so instead.
				if a.givenBack++; a.givenBack >= maxGiveBacks {
					return nil, fmt.Errorf("acquire %q: %w", a.key, &SlowStoreError{Left: a.lastLeft, Heartbeat: a.d.timing.Heartbeat, Tries: a.givenBack})
				}
				next = stepRead
				continue
			}
			if ctx.Err() != nil {
				// The write may have landed as ctx ended.
				a.uncertain(sentAt)
				return nil, a.ctxErr(ctx.Err())
			}
			var ccf *conditionFailedError
			switch {
			case errors.As(err, &ccf) && ccf.ItemKnown:
				item, err, refused = ccf.Item, nil, true
			case errors.As(err, &ccf):
				// No item came back: there is none, or the endpoint
				// does not return it. Look.
				retry.success()
				next = stepRead
				continue
			case isTransient(err) && !isConnect(err):
				// A request that never connected cannot have landed.
				a.uncertain(sentAt)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, a.ctxErr(ctx.Err())
			}
			if errors.Is(err, errValidation) {
				err = a.d.explainValidation(ctx, err)
			}
			wait, gerr := retry.failed(err)
			if gerr != nil {
				return nil, fmt.Errorf("acquire %q: %w", a.key, gerr)
			}
			if a.opts.Timeout > 0 && a.extended == nil {
				// Failures do not extend a --timeout; only a holder
				// that looks stopped does.
				now := a.d.clock.Now()
				if !now.Before(a.deadline) {
					return nil, fmt.Errorf("acquire %q: gave up waiting after %s, the last request failing: %w: %w",
						a.key, now.Sub(a.start).Round(time.Millisecond), context.DeadlineExceeded, err)
				}
				wait = min(wait, a.deadline.Sub(now))
			}
			if err := sleep(ctx, a.d.clock, wait); err != nil {
				return nil, a.ctxErr(err)
			}
			// Whatever happened, the item says where things stand.
			next = stepRead
			continue
		}
		retry.success()

		if len(item) == 0 {
			next = stepWrite
			continue
		}
		rec, err := decodeRecord(item)
		if refused && err == nil && rec.Token >= MaxToken {
			return nil, fmt.Errorf("acquire %q: %w", a.key, ErrTokenExhausted)
		}
		if refused && err == nil && rec.Owner != a.owner && (!rec.Held() || a.expired(watch, rec)) {
			// Refused, yet the item looks as if the same write should
			// pass: something this code does not understand is going
			// on. Never retry a write at once; look again in a while.
			if err := sleep(ctx, a.d.clock, a.d.jitter(a.d.timing.Poll)); err != nil {
				return nil, a.ctxErr(err)
			}
			next = stepRead
			continue
		}
		switch {
		case errors.Is(err, ErrForeignItem):
			return nil, fmt.Errorf("acquire %q: %w", a.key, &ForeignItemError{Key: a.key})
		case err != nil:
			return nil, fmt.Errorf("acquire %q: %w", a.key, err)
		case rec.Owner == a.owner:
			// A write whose answer was lost did land.
			a.unknown--
			sentAt, ok := a.sent[rec.Version]
			if !ok {
				sentAt = a.start
			}
			lease, err := a.won(ctx, rec, sentAt)
			if lease != nil || err != nil {
				return lease, err
			}
			next = stepRead
			continue
		case !rec.Held():
			next = stepWrite
			continue
		}
		if rec.Owner != watch.owner || rec.Version != watch.rvn {
			// Any new version restarts the watch, from when we learned
			// of it: the holder wrote it no later than that.
			watch = sighting{owner: rec.Owner, rvn: rec.Version, since: received, lease: a.d.leaseOf(rec),
				stopped: rec.LooksStopped(received), rec: rec}
			a.log.Debug("watching holder", "owner", rec.Owner, "rvn", rec.Version, "lease", watch.lease, "looks_stopped", watch.stopped)
		}
		if err := a.pastDeadline(watch, received); err != nil {
			return nil, err
		}
		a.notify(rec, received)

		now := a.d.clock.Now()
		expiry := watch.since.Add(watch.lease)
		if !now.Before(expiry) {
			next = stepTakeover
			continue
		}
		wait := min(a.d.jitter(a.d.timing.Poll), expiry.Sub(now))
		if a.opts.OnWait != nil && a.opts.Progress > 0 {
			wait = min(wait, a.nextProgress.Sub(now))
		}
		if a.limited && a.extended == nil {
			wait = min(wait, max(a.deadline.Sub(now), 0))
		}
		if err := sleep(ctx, a.d.clock, wait); err != nil {
			return nil, a.ctxErr(err)
		}
		next = stepRead
	}
}

// pastDeadline decides, once the NoWait or Timeout deadline has passed,
// whether to answer now (it returns the error to answer with) or to go on
// watching: a holder that looked stopped when this version was first seen
// is watched for the rest of that version's lease, and given up on as soon
// as it writes a new version (it is alive).
func (a *acquisition) pastDeadline(watch sighting, now time.Time) error {
	if !a.limited || now.Before(a.deadline) {
		return nil
	}
	if a.extended == nil && watch.stopped {
		w := watch
		a.extended = &w
		a.log.Info("holder looks stopped; watching it for up to its lease before giving up",
			"owner", watch.owner, "host", watch.rec.Host, "lease", watch.lease.String())
		return nil
	}
	if a.extended != nil && a.extended.owner == watch.owner && a.extended.rvn == watch.rvn {
		return nil
	}
	if a.opts.NoWait {
		return &HeldError{Key: a.key, Holder: watch.rec}
	}
	return fmt.Errorf("acquire %q: gave up waiting after %s (held by %s): %w",
		a.key, now.Sub(a.start).Round(time.Millisecond), watch.rec.Describe(), context.DeadlineExceeded)
}

// expired reports whether rec is the version watch has watched for a whole
// lease.
func (a *acquisition) expired(watch sighting, rec Record) bool {
	return rec.Owner == watch.owner && rec.Version == watch.rvn && !a.d.clock.Now().Before(watch.since.Add(watch.lease))
}

// notify calls OnWait when waiting starts and then every Progress.
func (a *acquisition) notify(holder Record, now time.Time) {
	if a.opts.OnWait == nil {
		return
	}
	switch {
	case !a.notified:
		a.notified = true
		a.nextProgress = now.Add(a.opts.Progress)
	case a.opts.Progress > 0 && !now.Before(a.nextProgress):
		a.nextProgress = a.nextProgress.Add(a.opts.Progress)
		if !a.nextProgress.After(now) {
			a.nextProgress = now.Add(a.opts.Progress)
		}
	default:
		return
	}
	a.opts.OnWait(Wait{Record: holder, Waited: now.Sub(a.start)})
}

// ctxErr wraps the error of a done context.
func (a *acquisition) ctxErr(err error) error {
	return fmt.Errorf("acquire %q: gave up waiting: %w", a.key, err)
}

// leaseOf returns how long a waiter must see rec's version unchanged before
// it may take the key over: the holder's own promise, or ours when the item
// has none that makes sense.
func (d *Dynamo) leaseOf(rec Record) time.Duration {
	switch {
	case rec.Lease <= 0:
		return d.timing.Lease
	case rec.Lease > maxHolderLease:
		return maxHolderLease
	}
	return rec.Lease
}

// write sends one acquiring write: on a free key, or, when takeover is not
// nil, on the holder version it names. It returns the record written and
// the time the write was sent.
func (a *acquisition) write(ctx context.Context, takeover *sighting) (Record, time.Time, error) {
	rvn := newRVN()
	now := a.d.clock.Now()
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(a.d.table),
		Key:       keyOf(a.key),
		UpdateExpression: aws.String("SET #Schema = :schema, #Owner = :owner, #Host = :host, #Pid = :pid, " +
			"#User = :user, #Command = :command, #AcquiredAt = :now, #HeartbeatAt = :now, " +
			"#LeaseMs = :lease, #HeartbeatMs = :every, #RVN = :rvn ADD #FencingToken :one"),
		ExpressionAttributeNames: names(attrSchema, attrOwner, attrHost, attrPID, attrUser, attrCommand,
			attrAcquired, attrHeartbeat, attrLease, attrEvery, attrRVN, attrToken),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":schema":  avS(SchemaVersion),
			":owner":   avS(a.owner),
			":host":    avS(a.d.id.Host),
			":pid":     avN(int64(a.d.id.PID)),
			":user":    avS(a.d.id.User),
			":command": avS(a.d.id.Command),
			":now":     avS(formatTime(now)),
			":lease":   avN(a.d.timing.Lease.Milliseconds()),
			":every":   avN(a.d.timing.Heartbeat.Milliseconds()),
			":rvn":     avS(rvn),
			":one":     avN(1),
			":max":     &types.AttributeValueMemberN{Value: strconv.FormatUint(MaxToken, 10)},
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	// A counter at MaxToken is refused rather than pushed past what
	// readers can hold.
	const tokenOK = " AND (attribute_not_exists(#FencingToken) OR #FencingToken < :max)"
	if takeover == nil {
		in.ConditionExpression = aws.String("attribute_not_exists(#LockID) OR (#Schema = :schema AND attribute_not_exists(#Owner)" + tokenOK + ")")
		in.ExpressionAttributeNames["#"+attrKey] = attrKey
	} else {
		in.ExpressionAttributeValues[":seenOwner"] = avS(takeover.owner)
		if takeover.rvn != "" {
			in.ConditionExpression = aws.String("#Schema = :schema AND #Owner = :seenOwner AND #RVN = :seenRVN" + tokenOK)
			in.ExpressionAttributeValues[":seenRVN"] = avS(takeover.rvn)
		} else {
			// An item without RVN, not written by this version: the
			// watch was on its absence.
			in.ConditionExpression = aws.String("#Schema = :schema AND #Owner = :seenOwner AND attribute_not_exists(#RVN)" + tokenOK)
		}
	}
	a.sent[rvn] = now
	callCtx, cancel := context.WithTimeout(ctx, a.d.reqTimeout)
	out, err := a.d.api.UpdateItem(callCtx, in, callOpts)
	cancel()
	if err != nil {
		return Record{}, now, translate(err, a.d.table)
	}
	rec, err := decodeRecord(out.Attributes)
	if err != nil {
		// Taken, but unreadable: give it back rather than run blind.
		a.uncertain(now)
		return Record{}, now, fmt.Errorf("acquired item unreadable: %w", err)
	}
	return rec, now, nil
}

// won turns the record of a successful acquisition, written by a write sent
// at sentAt, into a held lease with its renewer running. A lease with less
// than one heartbeat left before its renew deadline (its answer came late,
// or was lost and found by a read) is given back instead, by owner id, and
// won returns nil and no error: the caller keeps acquiring.
func (a *acquisition) won(ctx context.Context, rec Record, sentAt time.Time) (*Lease, error) {
	if err := ctx.Err(); err != nil {
		// Too late for the caller, who will not release it.
		a.uncertain(sentAt)
		return nil, a.ctxErr(err)
	}
	left := sentAt.Add(a.d.timing.renewDeadline()).Sub(a.d.clock.Now())
	if left >= a.d.timing.Heartbeat {
		return a.d.startLease(rec, sentAt), nil
	}
	a.lastLeft = left
	a.log.Debug("acquired with too little of the lease left; giving it back", "left", left, "token", rec.Token)
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if res, err := a.d.removeOwner(gctx, a.key, a.owner); err != nil || (!res.removed && res.other.Owner == a.owner) {
		// Not known to be given back: the final cleanup will try again.
		a.uncertain(sentAt)
	}
	return nil, nil
}

// uncertain records a write, sent at sent, that may have taken the key
// without this call knowing.
func (a *acquisition) uncertain(sent time.Time) {
	a.unknown++
	if sent.After(a.lastUnknown) {
		a.lastUnknown = sent
	}
}

// abandon makes sure that this acquisition leaves nothing held after it
// failed with writes of unknown outcome: it removes this call's ownership
// wherever it finds it, until abandonWatch after the last such write was
// sent. It runs on a fresh context: the caller's is usually done.
func (a *acquisition) abandon(parent context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cleanupTimeout)
	defer cancel()
	until := a.lastUnknown.Add(abandonWatch)
	removed := 0
	for removed < a.unknown {
		res, err := a.d.removeOwner(ctx, a.key, a.owner)
		switch {
		case err != nil && ctx.Err() != nil:
			a.log.Debug("cleanup of abandoned acquisition failed", "owner", a.owner, "error", err)
			return
		case err != nil && !isTransient(err):
			a.log.Debug("cleanup of abandoned acquisition failed", "owner", a.owner, "error", err)
			return
		case res.removed:
			removed++
			a.log.Debug("removed abandoned acquisition", "owner", a.owner)
			continue
		}
		if !a.d.clock.Now().Before(until) {
			return
		}
		if sleep(ctx, a.d.clock, min(a.d.jitter(a.d.timing.Poll), until.Sub(a.d.clock.Now()))) != nil {
			return
		}
	}
}

// getItem reads key's item with a strongly consistent read. A missing item
// is a nil map and no error.
func (d *Dynamo) getItem(ctx context.Context, key string, optFns ...func(*dynamodb.Options)) (map[string]types.AttributeValue, error) {
	callCtx, cancel := context.WithTimeout(ctx, d.reqTimeout)
	defer cancel()
	out, err := d.api.GetItem(callCtx, &dynamodb.GetItemInput{
		TableName:      aws.String(d.table),
		Key:            keyOf(key),
		ConsistentRead: aws.Bool(true),
	}, optFns...)
	if err != nil {
		return nil, translate(err, d.table)
	}
	return out.Item, nil
}

// removal is the outcome of removeOwner.
type removal struct {
	// removed is true when a write of this call removed owner.
	removed bool
	// other is the item's record when the condition failed: Key only
	// when there was no item.
	other Record
	// ambiguous is true when an attempt failed without an answer that
	// says whether it landed.
	ambiguous bool
}

// removeOwner removes the holder attributes from key's item if owner holds
// it, keeping Schema and FencingToken. It retries transient errors until
// ctx ends (or, for an endpoint never reached, unreachableFor).
func (d *Dynamo) removeOwner(ctx context.Context, key, owner string) (removal, error) {
	in := &dynamodb.UpdateItemInput{
		TableName:                           aws.String(d.table),
		Key:                                 keyOf(key),
		UpdateExpression:                    aws.String(removeHolderExpr),
		ConditionExpression:                 aws.String("#Owner = :owner"),
		ExpressionAttributeNames:            names(holderAttrs...),
		ExpressionAttributeValues:           map[string]types.AttributeValue{":owner": avS(owner)},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	res := removal{other: Record{Key: key}}
	r := d.newRetrier("release", 0, 50*time.Millisecond)
	for {
		callCtx, cancel := context.WithTimeout(ctx, d.reqTimeout)
		_, err := d.api.UpdateItem(callCtx, in, callOpts)
		cancel()
		err = translate(err, d.table)
		var ccf *conditionFailedError
		switch {
		case err == nil:
			r.success()
			res.removed = true
			return res, nil
		case ctx.Err() != nil:
			return res, ctx.Err()
		case errors.As(err, &ccf):
			r.success()
			if len(ccf.Item) > 0 {
				rec, derr := decodeRecord(ccf.Item)
				if derr != nil {
					return res, derr
				}
				res.other = rec
			}
			return res, nil
		case isTransient(err) && !isConnect(err):
			res.ambiguous = true
		}
		wait, gerr := r.failed(err)
		if gerr != nil {
			return res, gerr
		}
		if err := sleep(ctx, d.clock, wait); err != nil {
			return res, err
		}
	}
}

// removeHolderExpr removes every attribute of the holder; Schema and
// FencingToken stay, so that tokens never go back.
const removeHolderExpr = "REMOVE #Owner, #Host, #Pid, #User, #Command, #AcquiredAt, #HeartbeatAt, #LeaseMs, #HeartbeatMs, #RVN"

// Status returns the record of key with a strongly consistent read. A free
// key gives a Record with only Key and, once acquired before, Token.
func (d *Dynamo) Status(ctx context.Context, key string) (Record, error) {
	if err := ValidateKey(key); err != nil {
		return Record{}, fmt.Errorf("status %q: %w", key, err)
	}
	rec, err := d.status(ctx, key)
	if err != nil {
		return Record{}, fmt.Errorf("status %q: %w", key, err)
	}
	return rec, nil
}

func (d *Dynamo) status(ctx context.Context, key string) (Record, error) {
	var item map[string]types.AttributeValue
	err := d.do(ctx, "status", func(ctx context.Context) error {
		var err error
		item, err = d.getItem(ctx, key, callOpts)
		return err
	})
	if errors.Is(err, errValidation) {
		err = d.explainValidation(ctx, err)
	}
	if err != nil {
		return Record{}, err
	}
	if len(item) == 0 {
		return Record{Key: key}, nil
	}
	rec, err := decodeRecord(item)
	if errors.Is(err, ErrForeignItem) {
		return Record{}, &ForeignItemError{Key: key}
	}
	return rec, err
}

// List returns the record of every held key in the table, sorted by key,
// from strongly consistent scans. Items that are not locked-run locks are
// skipped, and so are corrupt ones, which are logged. It is ListAll without
// the keys of other tools' items: a filter would not make the scan cheaper,
// since DynamoDB charges for the items it reads, not those it returns.
func (d *Dynamo) List(ctx context.Context) ([]Record, error) {
	l, err := d.ListAll(ctx)
	return l.Held, err
}

// forceReleaseAttempts bounds how often ForceRelease reads again when the
// holder renewed between its read and its write.
const forceReleaseAttempts = 3

// ForceRelease breaks the lock on key whatever its owner and returns the
// record it broke. See Locker. It reads the item and removes the holder
// conditional on the owner and version it read, so it never breaks a lock
// it has not shown. The fencing token is kept.
func (d *Dynamo) ForceRelease(ctx context.Context, key string) (Record, error) {
	if err := ValidateKey(key); err != nil {
		return Record{}, fmt.Errorf("release %q: %w", key, err)
	}
	for range forceReleaseAttempts {
		rec, err := d.status(ctx, key)
		if err != nil {
			return Record{}, fmt.Errorf("release %q: %w", key, err)
		}
		if !rec.Held() {
			return Record{}, fmt.Errorf("release %q: %w", key, ErrNotHeld)
		}
		in := &dynamodb.UpdateItemInput{
			TableName:                           aws.String(d.table),
			Key:                                 keyOf(key),
			UpdateExpression:                    aws.String(removeHolderExpr),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			ExpressionAttributeNames:            names(append([]string{attrSchema}, holderAttrs...)...),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":schema": avS(SchemaVersion),
				":owner":  avS(rec.Owner),
			},
		}
		if rec.Version != "" {
			in.ConditionExpression = aws.String("#Schema = :schema AND #Owner = :owner AND #RVN = :rvn")
			in.ExpressionAttributeValues[":rvn"] = avS(rec.Version)
		} else {
			in.ConditionExpression = aws.String("#Schema = :schema AND #Owner = :owner AND attribute_not_exists(#RVN)")
		}
		ambiguous := false
		err = d.do(ctx, "release", func(ctx context.Context) error {
			_, err := d.api.UpdateItem(ctx, in, callOpts)
			err = translate(err, d.table)
			if isTransient(err) && !isConnect(err) {
				ambiguous = true
			}
			return err
		})
		var ccf *conditionFailedError
		switch {
		case err == nil:
			d.log.Debug("forced release", "key", key, "owner", rec.Owner, "token", rec.Token)
			return rec, nil
		case errors.As(err, &ccf) && ambiguous && d.releaseLanded(ccf, rec):
			// An earlier attempt, whose answer was lost, did it.
			d.log.Debug("forced release", "key", key, "owner", rec.Owner, "token", rec.Token)
			return rec, nil
		case errors.As(err, &ccf):
			continue // renewed or released meanwhile: look again
		default:
			return Record{}, fmt.Errorf("release %q: %w", key, err)
		}
	}
	return Record{}, fmt.Errorf("release %q: the lock changed %d times while being released; try again", key, forceReleaseAttempts)
}

// releaseLanded reports whether the item in a failed release condition
// shows that an earlier attempt of the same release landed: the holder rec
// is gone and no acquisition happened since (same fencing token, no owner),
// or one did (a greater token), which only our release could have allowed
// this soon, since rec's holder was not renewing past our write.
func (d *Dynamo) releaseLanded(ccf *conditionFailedError, rec Record) bool {
	if !ccf.ItemKnown {
		return false
	}
	now, err := decodeRecord(ccf.Item)
	if err != nil {
		return false
	}
	return now.Owner != rec.Owner && now.Token >= rec.Token
}

// sleep waits d on clock, or until ctx is done.
func sleep(ctx context.Context, clock Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// clockTimer adapts a Clock to backoff.Timer, so that retries wait on the
// injected clock. A non-zero until caps every wait, so that a retry loop
// bounded by a deadline wakes up at the deadline rather than after it.
type clockTimer struct {
	clock Clock
	until time.Time
	t     Timer
}

func (c *clockTimer) Start(d time.Duration) {
	if !c.until.IsZero() {
		d = min(d, c.until.Sub(c.clock.Now()))
	}
	if c.t != nil {
		c.t.Stop()
	}
	c.t = c.clock.NewTimer(max(d, 0))
}

func (c *clockTimer) Stop() {
	if c.t != nil {
		c.t.Stop()
	}
}

func (c *clockTimer) C() <-chan time.Time { return c.t.C() }
