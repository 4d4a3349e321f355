package lock

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
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

	// SchemaVersion is the value of the Schema attribute on locked-run's
	// items.
	SchemaVersion = "locked-run/1"
)

// holderAttrs are the attributes that exist only while a key is held; an
// acquisition sets them and a release removes them.
var holderAttrs = []string{attrOwner, attrHost, attrPID, attrUser, attrCommand, attrAcquired, attrHeartbeat, attrLease, attrEvery, attrRVN}

// errForeign is returned by decodeRecord for an item that is not a
// locked-run lock; callers wrap it in a *ForeignItemError naming the key.
var errForeign = fmt.Errorf("%w: no %s attribute %q", ErrForeignItem, attrSchema, SchemaVersion)

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
	if !ok || schema != SchemaVersion {
		return Record{Key: r.Key}, errForeign
	}
	if owner, ok := d.str(attrOwner); ok && owner == "" {
		d.fail(attrOwner, "is empty")
	} else {
		r.Owner = owner
	}
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
	if d.err != nil {
		return Record{}, d.err
	}
	return r, nil
}

// itemDecoder reads typed attributes and keeps the first error.
type itemDecoder struct {
	item map[string]types.AttributeValue
	err  error
}

func (d *itemDecoder) fail(name, why string) {
	if d.err == nil {
		d.err = fmt.Errorf("corrupt lock item: %s %s", name, why)
	}
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
