package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hashicorp/go-hclog"
)

// DynamoAPI is the part of the DynamoDB API that the backend calls.
// *dynamodb.Client satisfies it; pass it through SDKClient.
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

	// noDoorbell turns the same-host doorbell off (tests measuring what
	// a waiter on another host sees).
	noDoorbell bool

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
	if opts.MaxHolders < 0 || opts.MaxHolders > MaxHoldersLimit {
		return nil, fmt.Errorf("acquire %q: %w: --max-holders %d is not between 1 and %d", key, ErrInvalidConfig, opts.MaxHolders, MaxHoldersLimit)
	}
	a := newAcquisition(d, key, opts)
	lease, err := a.run(ctx)
	a.bell.Close()
	switch {
	case err == nil:
	case a.unknown > 0, !a.joinLost.IsZero():
		a.abandon(ctx)
	case a.joined && !a.leave(ctx):
		a.abandon(ctx)
	}
	return lease, err
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
		return a.d.startLease(rec, sentAt, a.headExcl), nil
	}
	a.lastLeft = left
	a.log.Debug("acquired with too little of the lease left; giving it back", "left", left, "token", rec.Token)
	a.giveBack(ctx, rec, sentAt)
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
	// after is the item the removing write left, when it landed.
	after map[string]types.AttributeValue
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
	return d.removeWith(ctx, key, in)
}

// removeWith sends the removing write in until it lands or is refused,
// retrying transient errors until ctx ends (or, for an endpoint never
// reached, unreachableFor).
func (d *Dynamo) removeWith(ctx context.Context, key string, in *dynamodb.UpdateItemInput) (removal, error) {
	res := removal{other: Record{Key: key}}
	r := d.newRetrier("release", 0, 50*time.Millisecond)
	in.ReturnValues = types.ReturnValueAllNew
	for {
		callCtx, cancel := context.WithTimeout(ctx, d.reqTimeout)
		out, err := d.api.UpdateItem(callCtx, in, callOpts)
		cancel()
		err = translate(err, d.table)
		var ccf *conditionFailedError
		switch {
		case err == nil:
			r.success()
			res.removed, res.after = true, out.Attributes
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

// removeShared removes owner's entry from key's shared holders. It
// retries as removeOwner does.
func (d *Dynamo) removeShared(ctx context.Context, key, owner string) (removal, error) {
	in := &dynamodb.UpdateItemInput{
		TableName:                           aws.String(d.table),
		Key:                                 keyOf(key),
		UpdateExpression:                    aws.String("REMOVE #SharedHolders.#me"),
		ConditionExpression:                 aws.String("attribute_exists(#SharedHolders.#me)"),
		ExpressionAttributeNames:            map[string]string{"#SharedHolders": attrShared, "#me": owner},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	return d.removeWith(ctx, key, in)
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
	item, err := d.getItemRetried(ctx, key, "status")
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
		if rec.Shared {
			broke, err := d.forceReleaseShared(ctx, rec)
			if err != nil {
				return Record{}, fmt.Errorf("release %q: %w", key, err)
			}
			if broke {
				return rec, nil
			}
			continue
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

// forceReleaseShared removes every shared holder of rec with one write,
// conditional on each one's version as rec shows it. It reports false when
// the holders changed meanwhile.
func (d *Dynamo) forceReleaseShared(ctx context.Context, rec Record) (bool, error) {
	in := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       keyOf(rec.Key),
		ExpressionAttributeNames:  names(attrShared, attrRVN, attrOwner),
		ExpressionAttributeValues: map[string]types.AttributeValue{},
	}
	var remove, cond []string
	for i, h := range rec.Holders {
		n := "#h" + strconv.Itoa(i)
		v := ":r" + strconv.Itoa(i)
		in.ExpressionAttributeNames[n] = h.Owner
		in.ExpressionAttributeValues[v] = avS(h.Version)
		remove = append(remove, "#SharedHolders."+n)
		cond = append(cond, "#SharedHolders."+n+".#RVN = "+v)
	}
	in.UpdateExpression = aws.String("REMOVE " + strings.Join(remove, ", "))
	in.ConditionExpression = aws.String("attribute_not_exists(#Owner) AND " + strings.Join(cond, " AND "))
	err := d.do(ctx, "release", func(ctx context.Context) error {
		_, err := d.api.UpdateItem(ctx, in, callOpts)
		return translate(err, d.table)
	})
	var ccf *conditionFailedError
	switch {
	case err == nil:
		d.log.Debug("forced release of shared holders", "key", rec.Key, "holders", len(rec.Holders))
		return true, nil
	case errors.As(err, &ccf):
		return false, nil
	}
	return false, err
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
