package lock

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute names of the DynamoDB item; the package documentation
// describes the layout, which other tools may read.
const (
	attrKey       = "LockID"
	attrSchema    = "Schema"
	attrOwner     = "Owner"
	attrHost      = "Host"
	attrPID       = "Pid"
	attrUser      = "User"
	attrCommand   = "Command"
	attrAcquired  = "AcquiredAt"
	attrHeartbeat = "HeartbeatAt"
	attrLease     = "LeaseMs"
	attrEvery     = "HeartbeatMs"
	attrRVN       = "RVN"
	attrToken     = "FencingToken"
	attrShared    = "SharedHolders"
	attrMax       = "MaxHolders"
	attrLine      = "Line"
	attrJoined    = "JoinedAt"
	attrIsShared  = "Shared"
	attrNonce     = "Nonce"

	// SchemaVersion is the value of the Schema attribute on the items
	// locked-run writes: the layout with shared holders and the line.
	SchemaVersion = "locked-run/2"
	// SchemaV1 is the layout of versions before the line: one exclusive
	// holder. Such items are read, and rewritten as SchemaVersion by the
	// next write; versions that know only SchemaV1 refuse the new items.
	SchemaV1 = "locked-run/1"

	// maxLineCommandBytes bounds the command a waiter writes into the
	// line, and maxSharedCommandBytes that of a shared holder, so that a
	// long line or many holders stay far below the 400 KB item limit.
	maxLineCommandBytes   = 256
	maxSharedCommandBytes = 1024
)

// holderAttrs are the attributes that exist only while a key is held; an
// acquisition sets them and a release removes them.
var holderAttrs = []string{attrOwner, attrHost, attrPID, attrUser, attrCommand, attrAcquired, attrHeartbeat, attrLease, attrEvery, attrRVN}

// errForeign is returned by decodeRecord for an item that is not a
// locked-run lock; callers wrap it in a *ForeignItemError naming the key.
var errForeign = fmt.Errorf("%w: no %s attribute %q", ErrForeignItem, attrSchema, SchemaVersion)

// errNewerSchema is returned by decodeRecord for an item of a later
// locked-run layout than this version knows.
var errNewerSchema = fmt.Errorf("%w: written by a newer locked-run", ErrForeignItem)

// decodeRecord turns an item into a Record. It never panics, whatever the
// item holds: attributes of the wrong type or with unreadable values are
// errors. An item that is not a locked-run lock (no Schema, or another one)
// gives an error matching ErrForeignItem. A nil or empty item is an error
// too: callers handle "no item" before decoding.
func decodeRecord(item map[string]types.AttributeValue) (Record, error) {
	var r Record
	if len(item) == 0 {
		return r, fmt.Errorf("corrupt lock item: no attributes")
	}
	d := itemDecoder{item: item}
	r.Key, _ = d.str(attrKey)
	if d.err == nil && r.Key == "" {
		d.fail(attrKey, "missing")
	}
	schema, ok := d.str(attrSchema)
	if d.err != nil {
		return Record{}, d.err
	}
	if !ok || schema != SchemaVersion && schema != SchemaV1 {
		if ok && strings.HasPrefix(schema, "locked-run/") {
			return Record{Key: r.Key}, errNewerSchema
		}
		return Record{Key: r.Key}, errForeign
	}
	if owner, ok := d.str(attrOwner); ok && owner == "" {
		d.fail(attrOwner, "is empty")
	} else {
		r.Owner = owner
	}
	d.holder(&r)
	if n, ok := d.int(attrMax, 0, MaxHoldersLimit); ok {
		r.MaxHolders = int(n)
	}
	if d.err != nil {
		return Record{}, d.err
	}
	var shared []Record
	if m, ok := d.mapOf(attrShared); ok {
		for owner, v := range m {
			e, ok := v.(*types.AttributeValueMemberM)
			switch {
			case owner == "":
				return Record{}, fmt.Errorf("corrupt lock item: %s has an entry with an empty owner id", attrShared)
			case !ok || e == nil:
				return Record{}, fmt.Errorf("corrupt lock item: %s entry %.40q is not a map", attrShared, owner)
			}
			h, err := decodeHolder(e.Value)
			if err != nil {
				return Record{}, err
			}
			h.Key, h.Owner, h.Shared = r.Key, owner, true
			shared = append(shared, h)
		}
		sort.Slice(shared, func(i, j int) bool {
			if !shared[i].Acquired.Equal(shared[j].Acquired) {
				return shared[i].Acquired.Before(shared[j].Acquired)
			}
			return shared[i].Owner < shared[j].Owner
		})
	}
	if l, ok := d.listOf(attrLine); ok {
		for i, v := range l {
			e, ok := v.(*types.AttributeValueMemberM)
			if !ok || e == nil {
				return Record{}, fmt.Errorf("corrupt lock item: %s[%d] is not a map", attrLine, i)
			}
			w, err := decodeWaiter(e.Value)
			if err != nil {
				return Record{}, err
			}
			r.Line = append(r.Line, w)
		}
	}
	if d.err != nil {
		return Record{}, d.err
	}
	if r.Held() {
		excl := r
		excl.Line, excl.MaxHolders = nil, 0
		r.Holders = append(r.Holders, excl)
	}
	r.Holders = append(r.Holders, shared...)
	if !r.Held() && len(shared) > 0 {
		// No exclusive holder: the first shared one speaks for the key.
		first := shared[0]
		r.Owner, r.Host, r.PID, r.User, r.Command = first.Owner, first.Host, first.PID, first.User, first.Command
		r.Acquired, r.Heartbeat, r.Lease, r.HeartbeatEvery, r.Version = first.Acquired, first.Heartbeat, first.Lease, first.HeartbeatEvery, first.Version
		r.Shared = true
	}
	return r, nil
}

// decodeHolder reads a shared holder's entry.
func decodeHolder(item map[string]types.AttributeValue) (Record, error) {
	var r Record
	d := itemDecoder{item: item}
	d.prefix = attrShared + " entry "
	d.holder(&r)
	return r, d.err
}

// holder reads the attributes that describe a holder, top-level (the
// exclusive one) or in a SharedHolders entry, into r.
func (d *itemDecoder) holder(r *Record) {
	r.Host, _ = d.str(attrHost)
	r.User, _ = d.str(attrUser)
	r.Command, _ = d.str(attrCommand)
	r.Version, _ = d.str(attrRVN)
	if pid, ok := d.int(attrPID, 0, math.MaxInt32); ok {
		r.PID = int(pid)
	}
	// Lease is kept as written, within what a Duration can hold; whether
	// it is sane is the waiter's call (leaseOf).
	if ms, ok := d.int(attrLease, math.MinInt64/int64(time.Millisecond), math.MaxInt64/int64(time.Millisecond)); ok {
		r.Lease = time.Duration(ms) * time.Millisecond
	}
	if ms, ok := d.int(attrEvery, 0, math.MaxInt64/int64(time.Millisecond)); ok {
		r.HeartbeatEvery = time.Duration(ms) * time.Millisecond
	}
	if tok, ok := d.uint(attrToken); ok {
		r.Token = tok
	}
	r.Acquired = d.time(attrAcquired)
	r.Heartbeat = d.time(attrHeartbeat)
}

// decodeWaiter reads an entry of the line.
func decodeWaiter(item map[string]types.AttributeValue) (Waiter, error) {
	var w Waiter
	d := itemDecoder{item: item}
	d.prefix = attrLine + " entry "
	w.Owner, _ = d.str(attrOwner)
	if d.err == nil && w.Owner == "" {
		d.fail(attrOwner, "is missing")
	}
	w.Host, _ = d.str(attrHost)
	w.User, _ = d.str(attrUser)
	w.Command, _ = d.str(attrCommand)
	w.Version, _ = d.str(attrRVN)
	w.Nonce, _ = d.str(attrNonce)
	if pid, ok := d.int(attrPID, 0, math.MaxInt32); ok {
		w.PID = int(pid)
	}
	if v, ok := item[attrIsShared].(*types.AttributeValueMemberBOOL); ok && v != nil {
		w.Shared = v.Value
	}
	if n, ok := d.int(attrMax, 0, MaxHoldersLimit); ok {
		w.MaxHolders = int(n)
	}
	if ms, ok := d.int(attrLease, math.MinInt64/int64(time.Millisecond), math.MaxInt64/int64(time.Millisecond)); ok {
		w.Lease = time.Duration(ms) * time.Millisecond
	}
	if ms, ok := d.int(attrEvery, 0, math.MaxInt64/int64(time.Millisecond)); ok {
		w.HeartbeatEvery = time.Duration(ms) * time.Millisecond
	}
	w.Joined = d.time(attrJoined)
	w.Heartbeat = d.time(attrHeartbeat)
	return w, d.err
}

// itemDecoder reads typed attributes and keeps the first error.
type itemDecoder struct {
	item   map[string]types.AttributeValue
	err    error
	prefix string // names the entry being read, in errors
}

func (d *itemDecoder) fail(name, why string) {
	if d.err == nil {
		d.err = fmt.Errorf("corrupt lock item: %s%s %s", d.prefix, name, why)
	}
}

// mapOf returns the map attribute name, and whether it is present.
func (d *itemDecoder) mapOf(name string) (map[string]types.AttributeValue, bool) {
	v, ok := d.item[name]
	if !ok || v == nil {
		return nil, false
	}
	m, ok := v.(*types.AttributeValueMemberM)
	if !ok || m == nil {
		d.fail(name, "is not a map")
		return nil, false
	}
	return m.Value, true
}

// listOf returns the list attribute name, and whether it is present.
func (d *itemDecoder) listOf(name string) ([]types.AttributeValue, bool) {
	v, ok := d.item[name]
	if !ok || v == nil {
		return nil, false
	}
	l, ok := v.(*types.AttributeValueMemberL)
	if !ok || l == nil {
		d.fail(name, "is not a list")
		return nil, false
	}
	return l.Value, true
}

// str returns the string attribute name, and whether it is present.
func (d *itemDecoder) str(name string) (string, bool) {
	v, ok := d.item[name]
	if !ok || v == nil {
		return "", false
	}
	s, ok := v.(*types.AttributeValueMemberS)
	if !ok || s == nil {
		d.fail(name, "is not a string")
		return "", false
	}
	return s.Value, true
}

// num returns the text of the number attribute name, and whether it is
// present.
func (d *itemDecoder) num(name string) (string, bool) {
	v, ok := d.item[name]
	if !ok || v == nil {
		return "", false
	}
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok || n == nil {
		d.fail(name, "is not a number")
		return "", false
	}
	return n.Value, true
}

func (d *itemDecoder) int(name string, lo, hi int64) (int64, bool) {
	s, ok := d.num(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		d.fail(name, fmt.Sprintf("is not an integer in range: %.40q", s))
		return 0, false
	}
	return n, true
}

func (d *itemDecoder) uint(name string) (uint64, bool) {
	s, ok := d.num(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		d.fail(name, fmt.Sprintf("is not a non-negative integer: %.40q", s))
		return 0, false
	}
	return n, true
}

// time parses a display-only timestamp. One that cannot be parsed is left
// zero rather than making the whole record unreadable: nothing decides on it.
func (d *itemDecoder) time(name string) time.Time {
	s, ok := d.str(name)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Attribute value helpers.
func avS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func avN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// keyOf returns the primary key of key's item.
func keyOf(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: avS(key)}
}

// names returns ExpressionAttributeNames mapping "#A" to A for each
// attribute. Every attribute goes through a name placeholder, since several
// (Owner, User, Schema) are DynamoDB reserved words.
func names(attrs ...string) map[string]string {
	m := make(map[string]string, len(attrs))
	for _, a := range attrs {
		m["#"+a] = a
	}
	return m
}

// allNames is names for every attribute of the layout.
func allNames() map[string]string {
	return names(append([]string{attrKey, attrSchema, attrToken}, holderAttrs...)...)
}

// formatTime formats a display-only timestamp.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// newRVN returns a fresh record version number: 12 random bytes in hex,
// which no two writes will ever share.
func newRVN() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
