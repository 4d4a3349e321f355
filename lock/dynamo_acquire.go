package lock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hashicorp/go-hclog"
)

// An acquisition is the state of one Acquire call.
//
// It works from views of the key's item: every answer (a read, a write's
// new item, a refused write's old one) is one. From each view it decides
// one step: take the key (a free key with nobody in line, or this call at
// the head of the line), join the line, refresh its entry in the line,
// remove an entry that stopped changing for a full lease, take over an
// exclusive holder that did, or sleep and read again.
type acquisition struct {
	d     *Dynamo
	key   string
	opts  AcquireOptions
	owner string // unique to this call: cleanup by owner id is safe
	start time.Time
	log   hclog.Logger

	shared bool // a shared hold (opts.IsShared())
	n      int  // opts.MaxHolders as written into the item (0: any number)

	// sent maps the RVN of each acquiring write to its send time: if a
	// write whose answer was lost turns out to have landed, the lease is
	// counted from when it was sent.
	sent map[string]time.Time
	// unknown counts the writes that may have taken the key without this
	// call knowing (no answer, or an answer after ctx ended); lastUnknown
	// is when the last of them was sent.
	unknown     int
	lastUnknown time.Time

	// joined is set once a write joining the line was sent: on failure,
	// the entry must be removed. refreshed is when the entry was last
	// refreshed (or joined); pos its index last seen.
	joined    bool
	joinLost  time.Time // send time of the last join whose answer never came
	inLine    bool      // a view showed this call's entry
	refreshed time.Time
	pos       int

	// watched holds a sighting of every holder and waiter this call
	// watches, by entryID.
	watched map[string]*sighting

	// bell wakes this call when a holder on this host releases the key;
	// opened when it joins the line. nonce is the secret of its entry, by
	// which a holder that hands it the key proves it.
	bell  *doorbell
	nonce string
	// lastWaiting is the send time of the last request whose answer
	// showed this call not holding the key: a hold handed over to it was
	// written after that, so its lease is counted from then.
	lastWaiting time.Time
	// lastToken is the greatest fencing token in those answers: a hold
	// handed over to us has a greater one, so a handover told with a
	// token no greater is stale (that hold ended) and is not believed.
	lastToken uint64
	// handed maps the RVN of each hold handed over to us to the moment
	// its lease counts from: lastWaiting when we first learned of it.
	handed map[string]time.Time
	// headExcl tells the lease, when won, whether an exclusive waiter
	// stood at the head of the line (its release then hands it over).
	headExcl bool

	// givenBack counts the leases this call took and gave back because
	// their answers came too late to leave a heartbeat of validity;
	// lastLeft is what the last of them had left.
	givenBack int
	lastLeft  time.Duration

	notified     bool
	nextProgress time.Time

	// limited is set under NoWait or a Timeout: past deadline, Acquire
	// answers instead of waiting, unless everything in its way looks
	// stopped, in which case it goes on watching those versions
	// (extended) for up to their leases.
	limited  bool
	deadline time.Time
	extended map[string]string // entryID -> RVN watched past the deadline
}

// A sighting is a holder's or waiter's record version as a waiter watches it.
type sighting struct {
	owner, rvn string
	since      time.Time     // when the answer first carrying it was received
	lease      time.Duration // the promise, made sane
	stopped    bool          // it looked stopped when first seen
}

// A view is what an acquisition knows of the key's item at one moment.
type view struct {
	rec      Record
	received time.Time
	exists   bool    // the item exists
	excl     *Record // the exclusive holder
	shared   []Record
	pos      int     // index of this call's first entry in rec.Line; -1 when not in it
	mine     *Record // this call's own holder entry: a write of it landed
}

// actKind is a step of the acquisition.
type actKind int

const (
	actRead     actKind = iota // look at the item
	actAcquire                 // take the key: free with nobody in line, or we head the line
	actTakeover                // take over an expired exclusive holder
	actJoin                    // join the line
	actRefresh                 // refresh our entry in the line
	actEvict                   // remove an expired waiter or shared holder
)

type action struct {
	kind actKind
	// target of actTakeover and actEvict
	target *sighting
	idx    int  // actEvict of a waiter: its index; -1 for a shared holder
	head   bool // actAcquire/actTakeover: we head the line (REMOVE #Line[0])
	// nonEmpty: a shared actAcquire adds to existing shared holders.
	nonEmpty bool
}

// entry ids of the watched map.
func exclID(owner string) string   { return "x" + owner }
func sharedID(owner string) string { return "s" + owner }
func waiterID(owner string) string { return "w" + owner }

func newAcquisition(d *Dynamo, key string, opts AcquireOptions) *acquisition {
	a := &acquisition{
		d:       d,
		key:     key,
		opts:    opts,
		owner:   NewOwnerID(d.id),
		start:   d.clock.Now(),
		sent:    make(map[string]time.Time),
		handed:  make(map[string]time.Time),
		watched: make(map[string]*sighting),
		log:     d.log.With("key", key),
		shared:  opts.IsShared(),
		n:       opts.MaxHolders,
		pos:     -1,
		nonce:   newRVN(),
	}
	switch {
	case opts.NoWait:
		a.limited, a.deadline = true, a.start
	case opts.Timeout > 0:
		a.limited, a.deadline = true, a.start.Add(opts.Timeout)
	}
	return a
}

func (a *acquisition) run(ctx context.Context) (*Lease, error) {
	var (
		v       *view
		retry   = a.d.newRetrier("acquire", acquireRetryFor, a.d.timing.Poll)
		refused *action // the last step: an acquiring write the store refused
		act     = action{kind: actAcquire}
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, a.ctxErr(err)
		}
		if v != nil {
			var (
				err  error
				wait time.Duration
			)
			act, wait, err = a.decide(*v)
			if err != nil {
				return nil, err
			}
			if refused != nil && act.kind == refused.kind && act.head == refused.head && act.nonEmpty == refused.nonEmpty {
				// Refused, yet the item says the same write should
				// pass: something this code does not understand is
				// going on. Never retry a write at once.
				act, wait = action{kind: actRead}, a.d.jitter(a.d.timing.Poll)
			}
			if wait > 0 {
				rung, h, err := a.sleep(ctx, wait)
				if err != nil {
					return nil, a.ctxErr(err)
				}
				if h != nil {
					lease, won, err := a.handedOver(ctx, *h)
					if won {
						return lease, err
					}
					v, act = nil, action{kind: actRead}
					continue
				}
				switch {
				case rung && act.kind == actRead && v.pos == 0:
					// Released: try to take it at once, without a read;
					// a refusal brings the item back anyway.
					act = action{kind: actAcquire, head: true, nonEmpty: a.shared && v.excl == nil && len(v.shared) > 0}
				case rung:
					act = action{kind: actRead}
				}
			}
		}
		refused = nil
		item, exists, sentAt, err := a.step(ctx, act)
		received := a.d.clock.Now()
		var (
			lease *Lease
			won   bool
		)
		if err == nil && (act.kind == actAcquire || act.kind == actTakeover) {
			retry.success()
			if act.kind == actTakeover {
				a.log.Info("took over expired lock", "owner", a.owner, "previous", act.target.owner)
			}
			lease, won, err = a.wonItem(ctx, item)
			if won {
				return lease, err
			}
			if err == nil {
				if a.givenBack++; a.givenBack >= maxGiveBacks {
					return nil, fmt.Errorf("acquire %q: %w", a.key, &SlowStoreError{Left: a.lastLeft, Heartbeat: a.d.timing.Heartbeat, Tries: a.givenBack})
				}
				v, act = nil, action{kind: actRead}
				continue
			}
		}
		var ccf *conditionFailedError
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil, a.ctxErr(ctx.Err())
		case errors.As(err, &ccf) && ccf.ItemKnown:
			item, exists, err = ccf.Item, len(ccf.Item) > 0, nil
			if act.kind == actAcquire || act.kind == actTakeover {
				r := act
				refused = &r
			}
		case errors.As(err, &ccf):
			// No item came back: there is none, or the endpoint does not
			// return it. Look.
			retry.success()
			v, act = nil, action{kind: actRead}
			continue
		}
		if err != nil {
			if errors.Is(err, errValidation) {
				err = a.d.explainValidation(ctx, err)
			}
			wait, gerr := retry.failed(err)
			if gerr != nil {
				return nil, fmt.Errorf("acquire %q: %w", a.key, gerr)
			}
			if a.opts.Timeout > 0 && a.extended == nil {
				// Failures do not extend a --timeout; only holders
				// that look stopped do.
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
			v, act = nil, action{kind: actRead}
			continue
		}
		retry.success()
		nv, err := a.viewOf(item, exists, received)
		if err != nil {
			return nil, err
		}
		if nv.mine != nil {
			a.headExcl = exclusiveHead(nv.rec.Line)
			if _, ours := a.sent[nv.mine.Version]; ours {
				// A write whose answer was lost did land.
				a.unknown--
			} else if _, known := a.handed[nv.mine.Version]; !known {
				// Handed over by the holder before, written after our
				// last look that showed us waiting (and only the first
				// sighting says so: later looks came after the write).
				a.handed[nv.mine.Version] = a.lastWaiting
				a.log.Debug("the key was handed over to us", "token", nv.mine.Token)
			}
			lease, won, err := a.wonRecord(ctx, *nv.mine)
			if won {
				return lease, err
			}
			v, act = nil, action{kind: actRead}
			continue
		}
		if !sentAt.IsZero() {
			a.lastWaiting = sentAt
			a.lastToken = max(a.lastToken, nv.rec.Token)
		}
		v = &nv
	}
}

// sleep waits d, or until ctx is done, or until the doorbell rings; it
// reports whether it rang, and the handover it was told of, if any.
func (a *acquisition) sleep(ctx context.Context, d time.Duration) (bool, *handover, error) {
	if a.bell == nil {
		return false, nil, sleep(ctx, a.d.clock, d)
	}
	t := a.d.clock.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, nil, ctx.Err()
		case <-t.C():
			return false, nil, nil
		case <-a.bell.C():
			return true, nil, nil
		case h := <-a.bell.Handed():
			_, known := a.handed[h.rvn]
			if h.nonce != a.nonce || h.token <= a.lastToken || known {
				// Not ours to believe, or stale (a hold that has ended,
				// or one we already know of): look.
				return true, nil, nil
			}
			return true, &h, nil
		}
	}
}

// handedOver turns a handover told by the releasing holder into a lease:
// the key was written ours after our last look that showed us waiting, so
// the lease counts from that look.
func (a *acquisition) handedOver(ctx context.Context, h handover) (*Lease, bool, error) {
	id := a.d.id
	now := a.d.clock.Now()
	rec := Record{Key: a.key, Owner: a.owner, Host: id.Host, PID: id.PID, User: id.User, Command: truncateTo(id.Command, maxLineCommandBytes),
		Acquired: now, Heartbeat: now, Lease: a.d.timing.Lease, HeartbeatEvery: a.d.timing.Heartbeat, Version: h.rvn, Token: h.token}
	a.handed[h.rvn] = a.lastWaiting
	a.headExcl = h.more
	a.log.Debug("the key was handed over to us", "token", h.token)
	return a.wonRecord(ctx, rec)
}

// step sends the request of act and returns the item it answered with
// (the new item of a write, ALL_NEW), whether it exists, and when the
// request was sent.
func (a *acquisition) step(ctx context.Context, act action) (map[string]types.AttributeValue, bool, time.Time, error) {
	if act.kind == actRead {
		now := a.d.clock.Now()
		item, err := a.d.getItem(ctx, a.key, callOpts)
		return item, len(item) > 0, now, err
	}
	in, rvn := a.request(act)
	now := a.d.clock.Now()
	switch act.kind {
	case actAcquire, actTakeover:
		a.sent[rvn] = now
	case actJoin:
		a.joined = true
		if a.bell == nil && !a.d.noDoorbell {
			a.bell = openDoorbell(a.owner)
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, a.d.reqTimeout)
	out, err := a.d.api.UpdateItem(callCtx, in, callOpts)
	cancel()
	err = translate(err, a.d.table)
	var ccf *conditionFailedError
	switch {
	case err == nil:
		if act.kind == actRefresh || act.kind == actJoin {
			a.refreshed = now
		}
		return out.Attributes, true, now, nil
	case errors.As(err, &ccf):
	case ctx.Err() != nil, isTransient(err) && !isConnect(err):
		// The write may have landed (a request that never connected
		// cannot have).
		switch act.kind {
		case actAcquire, actTakeover:
			a.uncertain(now)
		case actJoin:
			a.joinLost = now
		}
	}
	return nil, false, now, err
}

// viewOf reads an answer into a view.
func (a *acquisition) viewOf(item map[string]types.AttributeValue, exists bool, received time.Time) (view, error) {
	v := view{rec: Record{Key: a.key}, received: received, exists: exists, pos: -1}
	if !exists {
		return v, nil
	}
	rec, err := decodeRecord(item)
	switch {
	case errors.Is(err, ErrForeignItem):
		return v, fmt.Errorf("acquire %q: %w", a.key, &ForeignItemError{Key: a.key, Newer: errors.Is(err, errNewerSchema)})
	case err != nil:
		return v, fmt.Errorf("acquire %q: %w", a.key, err)
	}
	v.rec = rec
	for i := range rec.Holders {
		h := &rec.Holders[i]
		switch {
		case h.Owner == a.owner:
			v.mine = h
		case h.Shared:
			v.shared = append(v.shared, *h)
		default:
			v.excl = h
		}
	}
	if v.mine != nil && v.mine.Shared {
		// A shared holder's own token is that of its acquiring write,
		// which a read after other acquisitions no longer shows.
		v.mine.Token = 0
	}
	for i, w := range rec.Line {
		if w.Owner == a.owner {
			v.pos = i
			break
		}
	}
	return v, nil
}

// decide chooses the next step from v, and how long to sleep before it.
func (a *acquisition) decide(v view) (action, time.Duration, error) {
	if err := a.checkN(v); err != nil {
		return action{}, 0, err
	}
	if v.rec.Token >= MaxToken {
		return action{}, 0, fmt.Errorf("acquire %q: %w", a.key, ErrTokenExhausted)
	}
	a.see(v)
	now := a.d.clock.Now()
	a.pos = v.pos
	inLine := v.pos >= 0
	front := v.pos == 0 || !inLine && len(v.rec.Line) == 0
	if inLine {
		a.inLine = true
	} else if a.inLine && !a.opts.NoWait {
		// Our entry is gone: removed as stopped (we could not refresh it
		// for a whole lease: suspended, or the store failing). Join
		// again, at the end.
		a.log.Warn("removed from the line (no refresh for a whole lease); joining it again at the end")
		a.inLine = false
		return action{kind: actJoin}, 0, nil
	}

	// Junk: a line entry of someone who holds the key (a join of theirs
	// that landed late). Anyone may remove it.
	for i, w := range v.rec.Line {
		if w.Owner != a.owner && v.rec.holds(w.Owner) {
			return action{kind: actEvict, idx: i, target: &sighting{owner: w.Owner, rvn: w.Version}}, 0, nil
		}
	}

	if front {
		switch room, nonEmpty := a.room(v); {
		case room:
			return action{kind: actAcquire, head: inLine, nonEmpty: nonEmpty}, 0, nil
		case v.excl != nil:
			if s := a.watched[exclID(v.excl.Owner)]; a.expired(s, now) {
				return action{kind: actTakeover, head: inLine, target: s}, 0, nil
			}
		default:
			for _, h := range v.shared {
				if s := a.watched[sharedID(h.Owner)]; a.expired(s, now) {
					return action{kind: actEvict, idx: -1, target: s}, 0, nil
				}
			}
		}
	}
	// Waiters ahead of us that stopped refreshing are removed by us.
	ahead := v.rec.Line
	if inLine {
		ahead = ahead[:v.pos]
	}
	for i, w := range ahead {
		if s := a.watched[waiterID(w.Owner)]; a.expired(s, now) {
			return action{kind: actEvict, idx: i, target: s}, 0, nil
		}
	}

	if err := a.pastDeadline(v, now); err != nil {
		return action{}, 0, err
	}
	if !inLine && !a.opts.NoWait {
		return action{kind: actJoin}, 0, nil
	}
	a.notify(v, now) // after joining: it tells the place in line
	if inLine && !now.Before(a.refreshed.Add(a.d.timing.Heartbeat)) {
		return action{kind: actRefresh}, 0, nil
	}

	// Sleep until the next read, the next refresh, the next expiry of
	// something we watch, the next progress line or the deadline.
	wait := a.d.jitter(a.d.timing.Poll * time.Duration(a.rank(v)))
	if inLine {
		wait = min(wait, a.refreshed.Add(a.d.timing.Heartbeat).Sub(now))
	}
	for _, s := range a.watched {
		// Only an expiry still to come is worth waking for: one that
		// came is acted on above, or by the waiter ahead of us.
		if a.blocks(v, s) && !a.expired(s, now) {
			wait = min(wait, s.since.Add(s.lease).Sub(now))
		}
	}
	if a.opts.OnWait != nil && a.opts.Progress > 0 {
		wait = min(wait, a.nextProgress.Sub(now))
	}
	if a.limited && a.extended == nil {
		wait = min(wait, max(a.deadline.Sub(now), 0))
	}
	return action{kind: actRead}, max(wait, 0), nil
}

// holds reports whether owner holds the key r describes.
func (r Record) holds(owner string) bool {
	for _, h := range r.Holders {
		if h.Owner == owner {
			return true
		}
	}
	return false
}

// room reports whether this call may take the key as v shows it, were it
// at the front of the line, and for a shared call whether it would join
// shared holders already there.
func (a *acquisition) room(v view) (room, nonEmpty bool) {
	if v.excl != nil {
		return false, false
	}
	if !a.shared {
		return len(v.shared) == 0, false
	}
	if len(v.shared) == 0 {
		return true, false
	}
	return v.rec.MaxHolders == a.n && (a.n == 0 || len(v.shared) < a.n), true
}

// checkN refuses to wait for a key whose shared holders, or shared waiters,
// use another N than ours: every holder of a key must agree on N. A call
// without MaxHolders that is exclusive is not compared.
func (a *acquisition) checkN(v view) error {
	if !a.shared && a.opts.MaxHolders == 0 {
		return nil
	}
	mismatch := func(n int) error {
		return fmt.Errorf("acquire %q: %w", a.key, &MaxHoldersError{Key: a.key, InForce: n, Asked: a.opts.MaxHolders})
	}
	if len(v.shared) > 0 && v.rec.MaxHolders != a.n {
		return mismatch(v.rec.MaxHolders)
	}
	for _, w := range v.rec.Line {
		if w.Owner != a.owner && w.shares() && w.MaxHolders != a.n {
			return mismatch(w.MaxHolders)
		}
	}
	return nil
}

// see updates the sightings from v: a new version restarts a watch, from
// when we learned of it; what is gone is forgotten.
func (a *acquisition) see(v view) {
	seen := make(map[string]bool, len(v.rec.Holders)+len(v.rec.Line))
	watch := func(id, owner, rvn string, lease time.Duration, stopped bool) {
		seen[id] = true
		if s, ok := a.watched[id]; ok && s.rvn == rvn {
			return
		}
		a.watched[id] = &sighting{owner: owner, rvn: rvn, since: v.received, lease: a.d.leaseOf(lease), stopped: stopped}
		a.log.Trace("watching", "id", id, "rvn", rvn, "looks_stopped", stopped)
	}
	if v.excl != nil {
		watch(exclID(v.excl.Owner), v.excl.Owner, v.excl.Version, v.excl.Lease, v.excl.LooksStopped(a.d.clock.Now()))
	}
	for _, h := range v.shared {
		watch(sharedID(h.Owner), h.Owner, h.Version, h.Lease, h.LooksStopped(a.d.clock.Now()))
	}
	for _, w := range v.rec.Line {
		if w.Owner != a.owner {
			watch(waiterID(w.Owner), w.Owner, w.Version, w.Lease, w.LooksStopped(a.d.clock.Now()))
		}
	}
	for id := range a.watched {
		if !seen[id] {
			delete(a.watched, id)
		}
	}
}

// expired reports whether s was watched unchanged for its whole lease.
func (a *acquisition) expired(s *sighting, now time.Time) bool {
	return s != nil && !now.Before(s.since.Add(s.lease))
}

// blocks reports whether the holder or waiter s stands between this call
// and the key in v: an exclusive holder, shared holders when we cannot
// join them, waiters ahead of us.
func (a *acquisition) blocks(v view, s *sighting) bool {
	if v.excl != nil && s.owner == v.excl.Owner {
		return true
	}
	for _, h := range v.shared {
		if h.Owner == s.owner {
			room, _ := a.room(v)
			return !room
		}
	}
	ahead := v.rec.Line
	if v.pos >= 0 {
		ahead = ahead[:v.pos]
	}
	for _, w := range ahead {
		if w.Owner == s.owner {
			return true
		}
	}
	return false
}

// rank is how many Poll intervals a waiter at its place in v sleeps between
// reads: 1 for those that could take the key next (the head of the line,
// and the shared waiters right behind a shared head) and for the one right
// behind them, which is next once the head has taken the key (a short hold
// would otherwise wait for its slower poll), then one more for each place
// further back, so that a key's read rate grows with the logarithm of its
// waiters (the sum of 1/rank).
func (a *acquisition) rank(v view) int {
	if v.pos <= 0 {
		return 1
	}
	lead := 1
	if v.rec.Line[0].shares() {
		for lead < len(v.rec.Line) && v.rec.Line[lead].shares() {
			lead++
		}
	}
	return max(v.pos-lead+1, 1)
}

// pastDeadline decides, once the NoWait or Timeout deadline has passed,
// whether to answer now (it returns the error to answer with) or to go on
// watching: when everything in the way looked stopped when first seen, it
// is watched for the rest of its lease, and given up on as soon as any of
// it writes a new version (it is alive) or something new gets in the way.
func (a *acquisition) pastDeadline(v view, now time.Time) error {
	if !a.limited || now.Before(a.deadline) {
		return nil
	}
	var block []string
	allStopped := true
	for id, s := range a.watched {
		if a.blocks(v, s) {
			block = append(block, id)
			allStopped = allStopped && s.stopped
		}
	}
	if len(block) == 0 {
		// Nothing in the way: the next step takes the key.
		return nil
	}
	if a.extended == nil && allStopped {
		a.extended = make(map[string]string, len(block))
		for _, id := range block {
			a.extended[id] = a.watched[id].rvn
		}
		a.log.Info("holder looks stopped; watching it for up to its lease before giving up",
			"owner", v.rec.Owner, "host", v.rec.Host, "lease", a.d.leaseOf(v.rec.Lease).String())
		return nil
	}
	if a.extended != nil {
		same := true
		for _, id := range block {
			if rvn, ok := a.extended[id]; !ok || rvn != a.watched[id].rvn {
				same = false
			}
		}
		if same {
			return nil
		}
	}
	if a.opts.NoWait {
		return &HeldError{Key: a.key, Holder: v.rec}
	}
	return fmt.Errorf("acquire %q: gave up waiting after %s (held by %s): %w",
		a.key, now.Sub(a.start).Round(time.Millisecond), v.rec.Describe(), context.DeadlineExceeded)
}

// notify calls OnWait when waiting starts and then every Progress.
func (a *acquisition) notify(v view, now time.Time) {
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
	a.opts.OnWait(Wait{Record: v.rec, Position: v.pos + 1, Waited: now.Sub(a.start)})
}

// ctxErr wraps the error of a done context.
func (a *acquisition) ctxErr(err error) error {
	return fmt.Errorf("acquire %q: gave up waiting: %w", a.key, err)
}

// leaseOf returns how long a waiter must see a version unchanged before it
// may take it over or remove it: the writer's own promise, or ours when it
// has none that makes sense.
func (d *Dynamo) leaseOf(lease time.Duration) time.Duration {
	switch {
	case lease <= 0:
		return d.timing.Lease
	case lease > maxHolderLease:
		return maxHolderLease
	}
	return lease
}

// wonItem turns the new item of a successful acquiring write into a lease.
func (a *acquisition) wonItem(ctx context.Context, item map[string]types.AttributeValue) (*Lease, bool, error) {
	rec, err := decodeRecord(item)
	if err != nil {
		// Taken, but unreadable: give it back rather than run blind.
		a.uncertain(a.d.clock.Now())
		return nil, true, fmt.Errorf("acquire %q: acquired item unreadable: %w", a.key, err)
	}
	a.headExcl = exclusiveHead(rec.Line)
	for _, h := range rec.Holders {
		if h.Owner == a.owner {
			h.Token = rec.Token // the counter as our write left it
			return a.wonRecord(ctx, h)
		}
	}
	a.uncertain(a.d.clock.Now())
	return nil, true, fmt.Errorf("acquire %q: acquired item does not name this holder", a.key)
}

// wonRecord turns this call's holder entry h into a held lease, or gives it
// back (won is false, and err nil) when too little of it is left or, for a
// shared holder found by a read, its token is not known.
func (a *acquisition) wonRecord(ctx context.Context, h Record) (*Lease, bool, error) {
	sentAt, ok := a.sent[h.Version]
	if !ok {
		sentAt, ok = a.handed[h.Version]
	}
	if !ok {
		sentAt = a.start
	}
	if h.Token == 0 {
		a.log.Debug("found our shared hold by a read, its token unknown; giving it back")
		a.lastLeft = 0
		a.giveBack(ctx, h, sentAt)
		return nil, false, nil
	}
	lease, err := a.won(ctx, h, sentAt)
	return lease, lease != nil || err != nil, err
}

// request builds the write of act. It returns it and the RVN it writes.
func (a *acquisition) request(act action) (*dynamodb.UpdateItemInput, string) {
	rvn := newRVN()
	now := formatTime(a.d.clock.Now())
	id := a.d.id
	vals := map[string]types.AttributeValue{
		":v1":    avS(SchemaV1),
		":v2":    avS(SchemaVersion),
		":owner": avS(a.owner),
		":zero":  avN(0),
		":one":   avN(1),
		":max":   &types.AttributeValueMemberN{Value: strconv.FormatUint(MaxToken, 10)},
		":rvn":   avS(rvn),
		":now":   avS(now),
	}
	nm := names(attrKey, attrSchema, attrOwner, attrHost, attrPID, attrUser, attrCommand, attrAcquired,
		attrHeartbeat, attrLease, attrEvery, attrRVN, attrToken, attrShared, attrMax, attrLine, attrJoined, attrIsShared)
	in := &dynamodb.UpdateItemInput{
		TableName:                           aws.String(a.d.table),
		Key:                                 keyOf(a.key),
		ExpressionAttributeNames:            nm,
		ExpressionAttributeValues:           vals,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	const (
		v12       = "#Schema IN (:v1, :v2)"
		tokenOK   = "(attribute_not_exists(#FencingToken) OR #FencingToken < :max)"
		noShared  = "(attribute_not_exists(#SharedHolders) OR size(#SharedHolders) = :zero)"
		lineEmpty = "(attribute_not_exists(#Line) OR size(#Line) = :zero)"
		headMe    = "#Line[0].#Owner = :owner"
	)
	front := lineEmpty
	if act.head {
		front = headMe
	}
	// takeoverCond is the condition of a takeover, exclusive or shared: the
	// dead holder still there, as last seen.
	takeoverCond := func() string {
		vals[":seenOwner"] = avS(act.target.owner)
		c := v12 + " AND #Owner = :seenOwner AND " + noShared + " AND " + front + " AND " + tokenOK
		if act.target.rvn == "" {
			// An item without RVN, not written by this version: the
			// watch was on its absence.
			return c + " AND attribute_not_exists(#RVN)"
		}
		vals[":seenRVN"] = avS(act.target.rvn)
		return c + " AND #RVN = :seenRVN"
	}
	var cond, update string
	switch act.kind {
	case actAcquire, actTakeover:
		vals[":lease"] = avN(a.d.timing.Lease.Milliseconds())
		vals[":every"] = avN(a.d.timing.Heartbeat.Milliseconds())
		remove := ""
		if act.head {
			remove = " REMOVE #Line[0]"
		}
		if !a.shared {
			vals[":host"] = avS(id.Host)
			vals[":pid"] = avN(int64(id.PID))
			vals[":user"] = avS(id.User)
			vals[":command"] = avS(id.Command)
			update = "SET #Schema = :v2, #Owner = :owner, #Host = :host, #Pid = :pid, #User = :user, #Command = :command, " +
				"#AcquiredAt = :now, #HeartbeatAt = :now, #LeaseMs = :lease, #HeartbeatMs = :every, #RVN = :rvn" +
				remove + " ADD #FencingToken :one"
			if act.kind == actTakeover {
				cond = takeoverCond()
			} else {
				cond = v12 + " AND attribute_not_exists(#Owner) AND " + noShared + " AND " + front + " AND " + tokenOK
				if !act.head {
					cond = "attribute_not_exists(#LockID) OR (" + cond + ")"
				}
			}
			break
		}
		entry := map[string]types.AttributeValue{
			attrHost:      avS(id.Host),
			attrPID:       avN(int64(id.PID)),
			attrUser:      avS(id.User),
			attrCommand:   avS(truncateTo(id.Command, maxSharedCommandBytes)),
			attrAcquired:  avS(now),
			attrHeartbeat: avS(now),
			attrLease:     avN(a.d.timing.Lease.Milliseconds()),
			attrEvery:     avN(a.d.timing.Heartbeat.Milliseconds()),
			attrRVN:       avS(rvn),
		}
		vals[":n"] = avN(int64(a.n))
		if act.kind == actTakeover {
			// A dead exclusive holder, taken over by a shared caller:
			// its attributes go, and we become the first shared holder.
			vals[":holders"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				a.owner: &types.AttributeValueMemberM{Value: entry},
			}}
			update = "SET #Schema = :v2, #SharedHolders = :holders, #MaxHolders = :n " + removeHolderExpr
			if act.head {
				update += ", #Line[0]"
			}
			update += " ADD #FencingToken :one"
			cond = takeoverCond()
			break
		}
		if act.nonEmpty {
			nm["#me"] = a.owner
			vals[":entry"] = &types.AttributeValueMemberM{Value: entry}
			update = "SET #Schema = :v2, #SharedHolders.#me = :entry" + remove + " ADD #FencingToken :one"
			cond = v12 + " AND attribute_not_exists(#Owner) AND size(#SharedHolders) > :zero AND #MaxHolders = :n AND " +
				front + " AND " + tokenOK
			if a.n > 0 {
				cond += " AND size(#SharedHolders) < :n"
			}
		} else {
			vals[":holders"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				a.owner: &types.AttributeValueMemberM{Value: entry},
			}}
			update = "SET #Schema = :v2, #SharedHolders = :holders, #MaxHolders = :n" + remove + " ADD #FencingToken :one"
			cond = v12 + " AND attribute_not_exists(#Owner) AND " + noShared + " AND " + front + " AND " + tokenOK
			if !act.head {
				cond = "attribute_not_exists(#LockID) OR (" + cond + ")"
			}
		}
	case actJoin:
		vals[":empty"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{}}
		vals[":me"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				attrOwner:     avS(a.owner),
				attrHost:      avS(id.Host),
				attrPID:       avN(int64(id.PID)),
				attrUser:      avS(id.User),
				attrCommand:   avS(truncateTo(id.Command, maxLineCommandBytes)),
				attrIsShared:  &types.AttributeValueMemberBOOL{Value: a.shared},
				attrMax:       avN(int64(a.n)),
				attrJoined:    avS(now),
				attrHeartbeat: avS(now),
				attrLease:     avN(a.d.timing.Lease.Milliseconds()),
				attrEvery:     avN(a.d.timing.Heartbeat.Milliseconds()),
				attrRVN:       avS(rvn),
				attrNonce:     avS(a.nonce),
			}},
		}}
		update = "SET #Line = list_append(if_not_exists(#Line, :empty), :me), #Schema = :v2"
		cond = "attribute_not_exists(#LockID) OR " + v12
	case actRefresh:
		i := strconv.Itoa(max(a.pos, 0))
		update = "SET #Line[" + i + "].#HeartbeatAt = :now, #Line[" + i + "].#RVN = :rvn"
		cond = "#Line[" + i + "].#Owner = :owner"
	case actEvict:
		vals[":seenOwner"] = avS(act.target.owner)
		vals[":seenRVN"] = avS(act.target.rvn)
		if act.idx >= 0 {
			i := strconv.Itoa(act.idx)
			update = "REMOVE #Line[" + i + "]"
			cond = "#Line[" + i + "].#Owner = :seenOwner AND #Line[" + i + "].#RVN = :seenRVN"
		} else {
			nm["#them"] = act.target.owner
			update = "REMOVE #SharedHolders.#them"
			cond = "#SharedHolders.#them.#RVN = :seenRVN"
			delete(vals, ":seenOwner")
		}
	}
	in.UpdateExpression = aws.String(update)
	in.ConditionExpression = aws.String(cond)
	prune(in)
	return in, rvn
}

// prune drops the names and values in that neither expression uses:
// DynamoDB refuses a request with unused ones.
func prune(in *dynamodb.UpdateItemInput) {
	used := make(map[string]bool)
	for _, e := range []*string{in.UpdateExpression, in.ConditionExpression} {
		if e == nil {
			continue
		}
		// Placeholders are # or : and a run of letters, digits and _.
		for s := *e; s != ""; {
			i := strings.IndexAny(s, "#:")
			if i < 0 {
				break
			}
			j := i + 1
			for j < len(s) && (s[j] == '_' || 'a' <= s[j] && s[j] <= 'z' || 'A' <= s[j] && s[j] <= 'Z' || '0' <= s[j] && s[j] <= '9') {
				j++
			}
			used[s[i:j]] = true
			s = s[j:]
		}
	}
	for k := range in.ExpressionAttributeNames {
		if !used[k] {
			delete(in.ExpressionAttributeNames, k)
		}
	}
	for k := range in.ExpressionAttributeValues {
		if !used[k] {
			delete(in.ExpressionAttributeValues, k)
		}
	}
}

// giveBack removes this call's hold h, taken by a write sent at sentAt, by
// owner id; a hold not known to be gone is left to the final cleanup.
func (a *acquisition) giveBack(ctx context.Context, h Record, sentAt time.Time) {
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if !a.d.removeHold(gctx, a.key, a.owner, h.Shared) {
		a.uncertain(sentAt)
	}
}

// abandon makes sure that this acquisition leaves nothing behind after it
// failed: its entry in the line, and, after writes of unknown outcome, its
// hold, which it removes by owner id until abandonWatch after the last such
// write was sent. It runs on a fresh context: the caller's is usually done.
func (a *acquisition) abandon(parent context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cleanupTimeout)
	defer cancel()
	if a.joined {
		// A join whose answer never came may still land: look for it
		// until abandonWatch after it was sent.
		until := a.joinLost.Add(abandonWatch)
		for pos := a.pos; ; pos = -1 {
			a.d.leaveLine(ctx, a.key, a.owner, pos)
			if !a.d.clock.Now().Before(until) || sleep(ctx, a.d.clock, min(a.d.jitter(a.d.timing.Poll), until.Sub(a.d.clock.Now()))) != nil {
				break
			}
		}
	}
	until := a.lastUnknown.Add(abandonWatch)
	removed := 0
	for removed < a.unknown {
		var (
			res removal
			err error
		)
		if a.shared {
			res, err = a.d.removeShared(ctx, a.key, a.owner)
		} else {
			res, err = a.d.removeOwner(ctx, a.key, a.owner)
		}
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

// leave removes this call's entry from the line, expected at pos, with one
// write in the usual case: the cheap path of a wait that ended.
func (a *acquisition) leave(parent context.Context) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cleanupTimeout)
	defer cancel()
	return a.d.leaveLine(ctx, a.key, a.owner, a.pos)
}

// leaveLine removes owner's entry from key's line, trying index pos first
// and then wherever the refused writes show it. It reports whether the
// entry is known to be gone. An entry gone because its holder handed the
// key over to it (handOver) makes owner the holder: that hold is removed
// too.
func (d *Dynamo) leaveLine(ctx context.Context, key, owner string, pos int) bool {
	gone := func(item map[string]types.AttributeValue) bool {
		if rec, err := decodeRecord(item); err == nil && rec.Owner == owner {
			return d.removeHold(ctx, key, owner, false)
		}
		return true
	}
	for range 5 {
		if pos < 0 {
			item, err := d.getItemRetried(ctx, key, "release")
			if err != nil {
				return false
			}
			if pos = lineIndex(item, owner); pos < 0 {
				return gone(item)
			}
		}
		i := strconv.Itoa(pos)
		in := &dynamodb.UpdateItemInput{
			TableName:                           aws.String(d.table),
			Key:                                 keyOf(key),
			UpdateExpression:                    aws.String("REMOVE #Line[" + i + "]"),
			ConditionExpression:                 aws.String("#Line[" + i + "].#Owner = :owner"),
			ExpressionAttributeNames:            names(attrLine, attrOwner),
			ExpressionAttributeValues:           map[string]types.AttributeValue{":owner": avS(owner)},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
		err := d.do(ctx, "release", func(ctx context.Context) error {
			_, err := d.api.UpdateItem(ctx, in, callOpts)
			return translate(err, d.table)
		})
		var ccf *conditionFailedError
		switch {
		case err == nil:
			return true
		case errors.As(err, &ccf) && ccf.ItemKnown:
			if pos = lineIndex(ccf.Item, owner); pos < 0 {
				return gone(ccf.Item)
			}
		case errors.As(err, &ccf):
			pos = -1
		default:
			return false
		}
	}
	return false
}

// lineIndex returns the index of owner's entry in the line of item, or -1.
func lineIndex(item map[string]types.AttributeValue, owner string) int {
	l, ok := item[attrLine].(*types.AttributeValueMemberL)
	if !ok || l == nil {
		return -1
	}
	for i, v := range l.Value {
		if m, ok := v.(*types.AttributeValueMemberM); ok && m != nil {
			if o, ok := m.Value[attrOwner].(*types.AttributeValueMemberS); ok && o != nil && o.Value == owner {
				return i
			}
		}
	}
	return -1
}

// getItemRetried reads key's item under the backend's retry policy.
func (d *Dynamo) getItemRetried(ctx context.Context, key, what string) (map[string]types.AttributeValue, error) {
	var item map[string]types.AttributeValue
	err := d.do(ctx, what, func(ctx context.Context) error {
		var err error
		item, err = d.getItem(ctx, key, callOpts)
		return err
	})
	return item, err
}

// removeHold removes owner's hold of key, exclusive or shared, and reports
// whether it is known to be gone.
func (d *Dynamo) removeHold(ctx context.Context, key, owner string, shared bool) bool {
	var (
		res removal
		err error
	)
	if shared {
		res, err = d.removeShared(ctx, key, owner)
	} else {
		res, err = d.removeOwner(ctx, key, owner)
	}
	return err == nil && (res.removed || !res.other.holds(owner))
}
