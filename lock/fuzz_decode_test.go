package lock

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// Fuzz targets for what locked-run reads back from a table it shares with
// other tools: a lock item may be corrupt, half-written by another version,
// or not ours at all (a Terraform state lock). None of that may crash
// locked-run, be taken for a lock it can hold, or be modified. The seeds run
// in plain `go test`; explore with
//
//	go test -run '^$' -fuzz FuzzDecodeRecord ./lock
//	go test -run '^$' -fuzz FuzzAcquireOverItem ./lock
//	go test -run '^$' -fuzz FuzzValidateKey ./lock

// fzAttrs are the attributes a fuzzed item may carry, in the order of the
// shape bytes: the layout's, two that Terraform's lock items have, then
// those of the layout v2 (DESIGN12).
var fzAttrs = []string{
	attrKey, attrSchema, attrOwner, attrHost, attrPID, attrUser, attrCommand,
	attrAcquired, attrHeartbeat, attrLease, attrRVN, attrToken, "Info", "Digest",
	"Line", "SharedHolders", "MaxHolders",
}

// fzV2 is true once the backend writes the layout v2 (DESIGN12, Schema
// "locked-run/2"): it then reads items of both layouts, and its exclusive
// acquiring write also needs no shared holder and an empty line.
var fzV2 = SchemaVersion != "locked-run/1"

// fzOurs reports whether the item's Schema is one the backend reads as its
// own: its SchemaVersion, and "locked-run/1" (read by every version).
func fzOurs(item map[string]types.AttributeValue) bool {
	s, ok := item[attrSchema].(*types.AttributeValueMemberS)
	return ok && s != nil && (s.Value == SchemaVersion || s.Value == "locked-run/1")
}

// Kinds of attribute value in a shape byte (taken modulo fzKinds).
const (
	fzAbsent = iota
	fzS
	fzN
	fzB
	fzBOOL
	fzNULL
	fzL
	fzM
	fzSS
	fzNilValue // present in the map with a nil value
	fzKinds
)

// fzItem builds an item: attribute i has the kind shape[i] (absent past
// the end of shape) and the i-th line of vals as its text.
func fzItem(shape []byte, vals string) map[string]types.AttributeValue {
	lines := strings.Split(vals, "\n")
	item := map[string]types.AttributeValue{}
	for i, name := range fzAttrs {
		if i >= len(shape) {
			break
		}
		v := ""
		if i < len(lines) {
			v = lines[i]
		}
		switch shape[i] % fzKinds {
		case fzS:
			item[name] = &types.AttributeValueMemberS{Value: v}
		case fzN:
			item[name] = &types.AttributeValueMemberN{Value: v}
		case fzB:
			item[name] = &types.AttributeValueMemberB{Value: []byte(v)}
		case fzBOOL:
			item[name] = &types.AttributeValueMemberBOOL{Value: v != ""}
		case fzNULL:
			item[name] = &types.AttributeValueMemberNULL{Value: true}
		case fzL:
			if name == "Line" {
				// Entries as the layout v2 has them, one per
				// comma-separated owner.
				var l []types.AttributeValue
				for _, o := range strings.Split(v, ",") {
					l = append(l, &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
						attrOwner: &types.AttributeValueMemberS{Value: o}, attrRVN: &types.AttributeValueMemberS{Value: o}}})
				}
				item[name] = &types.AttributeValueMemberL{Value: l}
				break
			}
			item[name] = &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: v}}}
		case fzM:
			if name == "SharedHolders" {
				// Shared holders keyed by comma-separated owners.
				m := map[string]types.AttributeValue{}
				for _, o := range strings.Split(v, ",") {
					m[o] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{attrRVN: &types.AttributeValueMemberS{Value: o}}}
				}
				item[name] = &types.AttributeValueMemberM{Value: m}
				break
			}
			item[name] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"S": &types.AttributeValueMemberS{Value: v}}}
		case fzSS:
			item[name] = &types.AttributeValueMemberSS{Value: []string{v}}
		case fzNilValue:
			item[name] = nil
		}
	}
	return item
}

// fzSeeds are items worth starting from: ours held and free, Terraform's
// two kinds of item, and near misses.
func fzSeeds() []struct {
	shape []byte
	vals  string
} {
	//      LockID Schema Owner Host Pid User Command AcquiredAt HeartbeatAt LeaseMs RVN FencingToken Info Digest
	held := []byte{fzS, fzS, fzS, fzS, fzN, fzS, fzS, fzS, fzS, fzN, fzS, fzN}
	heldVals := strings.Join([]string{"deploy", SchemaVersion, "ci-7-4412-9f1c03ab", "ci-7", "4412", "alice", "terraform apply",
		"2024-05-01T12:03:10Z", "2024-05-01T12:03:20.5Z", "30000", "0123456789abcdef01234567", "17"}, "\n")
	free := []byte{fzS, fzS, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzN}
	freeVals := "deploy\n" + SchemaVersion + "\n\n\n\n\n\n\n\n\n\n17"
	tfLock := []byte{fzS, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzS}
	tfLockVals := "tf-state/prod.tfstate\n\n\n\n\n\n\n\n\n\n\n\n" + `{"ID":"5b5d","Operation":"OperationTypeApply","Who":"bob@laptop"}`
	tfDigest := []byte{fzS, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzAbsent, fzS}
	tfDigestVals := "tf-state/prod.tfstate-md5\n\n\n\n\n\n\n\n\n\n\n\n\nd41d8cd98f00b204e9800998ecf8427e"

	with := func(shape []byte, i int, kind byte) []byte {
		s := append([]byte(nil), shape...)
		s[i] = kind
		return s
	}
	// v2 gives a shape Line and SharedHolders of the given kinds.
	v2 := func(shape []byte, line, shared byte) []byte {
		s := make([]byte, len(fzAttrs))
		copy(s, shape)
		s[14], s[15] = line, shared
		return s
	}
	replace := func(vals string, i int, v string) string {
		l := strings.Split(vals, "\n")
		l[i] = v
		return strings.Join(l, "\n")
	}
	return []struct {
		shape []byte
		vals  string
	}{
		{held, heldVals},
		{free, freeVals},
		{tfLock, tfLockVals},
		{tfDigest, tfDigestVals},
		{nil, ""},
		{with(held, 1, fzAbsent), heldVals},                      // held-looking, no Schema
		{held, replace(heldVals, 1, "locked-run/9")},             // a future layout
		{with(held, 1, fzNULL), heldVals},                        // Schema of the wrong type
		{with(held, 2, fzN), replace(heldVals, 2, "7")},          // Owner of the wrong type
		{held, replace(heldVals, 2, "")},                         // Owner empty
		{with(held, 2, fzNilValue), heldVals},                    // Owner nil
		{held, replace(heldVals, 9, "9223372036854775807")},      // LeaseMs overflowing a Duration
		{held, replace(heldVals, 9, "-30000")},                   // negative lease
		{held, replace(heldVals, 11, "18446744073709551616")},    // token past uint64
		{held, replace(heldVals, 11, "-1")},                      // negative token
		{held, replace(heldVals, 11, "1e3")},                     // token in exponent form
		{held, replace(heldVals, 4, "99999999999")},              // pid out of range
		{held, replace(heldVals, 7, "yesterday")},                // unreadable display time
		{with(free, 0, fzAbsent), freeVals},                      // no key at all
		{with(free, 0, fzN), replace(freeVals, 0, "5")},          // key of the wrong type
		{free, replace(freeVals, 0, "")},                         // empty key
		{with(free, 11, fzS), freeVals},                          // token as a string
		{v2(free, fzL, fzAbsent), freeVals + "\n\n\nw1"},         // a waiter in the line
		{v2(free, fzAbsent, fzM), freeVals + "\n\n\n\nr1"},       // a shared holder
		{v2(free, fzL, fzM), freeVals + "\n\n\nw1\nr1"},          // both
		{v2(free, fzS, fzS), freeVals},                           // empty strings: size 0
		{v2(held, fzL, fzAbsent), heldVals + "\n\n\nw1"},         // held, with a line
		{v2(free, fzL, fzM), freeVals + "\n\n\nw1,w2,w3\nh2,h1"}, // longer line, two shared holders
		{v2(free, fzL, fzM), freeVals + "\n\n\n,w2\n"},           // an empty owner in each
	}
}

// FuzzDecodeRecord checks decodeRecord on arbitrary items: it never panics,
// an item without Schema "locked-run/1" is never a Record (so never a held
// lock of ours), and a Record it returns says exactly what the item holds.
func FuzzDecodeRecord(f *testing.F) {
	for _, s := range fzSeeds() {
		f.Add(s.shape, s.vals)
	}
	f.Fuzz(func(t *testing.T, shape []byte, vals string) {
		item := fzItem(shape, vals)
		rec, err := decodeRecord(item)

		_, schemaOK := item[attrSchema].(*types.AttributeValueMemberS)
		ours := fzOurs(item)
		key, keyOK := item[attrKey].(*types.AttributeValueMemberS)
		keyOK = keyOK && key != nil && key.Value != ""
		_, schemaPresent := item[attrSchema]
		schemaWrongType := schemaPresent && item[attrSchema] != nil && !schemaOK

		if err != nil {
			if rec.Held() || rec.Token != 0 {
				t.Errorf("decodeRecord returned an error and a record that says something: %+v, %v", rec, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error is not one line: %q", err)
			}
			if keyOK && !ours && !schemaWrongType && !errors.Is(err, ErrForeignItem) {
				t.Errorf("an item keyed %q without Schema %q gave %v, want ErrForeignItem", key.Value, SchemaVersion, err)
			}
			return
		}
		if !ours {
			t.Fatalf("decodeRecord accepted an item without Schema %q: %+v from %s", SchemaVersion, rec, fzString(item))
		}
		if !keyOK || rec.Key != key.Value {
			t.Errorf("Key %q, item's LockID %v", rec.Key, item[attrKey])
		}
		fzCheckHolders(t, item, rec)
		if o, owner := item[attrOwner].(*types.AttributeValueMemberS); owner && o != nil || len(rec.Holders) == 0 {
			// Otherwise the first shared holder speaks for the key.
			fzCheckString(t, item, attrOwner, rec.Owner)
			fzCheckString(t, item, attrHost, rec.Host)
			fzCheckString(t, item, attrUser, rec.User)
			fzCheckString(t, item, attrCommand, rec.Command)
			fzCheckString(t, item, attrRVN, rec.Version)
		}
		if n, ok := item[attrToken].(*types.AttributeValueMemberN); ok {
			if want, err := strconv.ParseUint(n.Value, 10, 64); err != nil || rec.Token != want {
				t.Errorf("Token %d from FencingToken %q", rec.Token, n.Value)
			}
		} else if rec.Token != 0 {
			t.Errorf("Token %d without a FencingToken number", rec.Token)
		}
		if n, ok := item[attrLease].(*types.AttributeValueMemberN); ok {
			ms, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil || rec.Lease != time.Duration(ms)*time.Millisecond || rec.Lease.Milliseconds() != ms {
				t.Errorf("Lease %s from LeaseMs %q", rec.Lease, n.Value)
			}
		} else if rec.Lease != 0 {
			t.Errorf("Lease %s without a LeaseMs number", rec.Lease)
		}
		if rec.PID < 0 {
			t.Errorf("PID %d", rec.PID)
		}
	})
}

// fzCheckHolders checks the holders and the line of a decoded record
// against the item: the exclusive holder first, then one entry per shared
// holder, the first of which speaks for the key when there is no exclusive
// one; the line's owners in the item's order.
func fzCheckHolders(t *testing.T, item map[string]types.AttributeValue, rec Record) {
	t.Helper()
	var want []string
	if o, ok := item[attrOwner].(*types.AttributeValueMemberS); ok && o != nil {
		want = append(want, o.Value)
	}
	exclusive := len(want)
	if m, ok := item["SharedHolders"].(*types.AttributeValueMemberM); ok && m != nil {
		for o := range m.Value {
			want = append(want, o)
		}
	}
	var got []string
	for _, h := range rec.Holders {
		got = append(got, h.Owner)
	}
	sort.Strings(want[exclusive:])
	sorted := append([]string(nil), got...)
	if len(sorted) >= exclusive {
		sort.Strings(sorted[exclusive:])
	}
	if !slices.Equal(sorted, want) || (len(got) > 0 && got[0] != rec.Owner) {
		t.Errorf("holders %q (owner %q), item has %q", got, rec.Owner, want)
	}
	if exclusive == 0 && len(got) > 0 && !rec.Shared {
		t.Errorf("record of shared holders %q is not Shared", got)
	}
	var line []string
	if l, ok := item["Line"].(*types.AttributeValueMemberL); ok && l != nil {
		for _, e := range l.Value {
			if m, ok := e.(*types.AttributeValueMemberM); ok && m != nil {
				if o, ok := m.Value[attrOwner].(*types.AttributeValueMemberS); ok && o != nil {
					line = append(line, o.Value)
				}
			}
		}
	}
	var gotLine []string
	for _, w := range rec.Line {
		gotLine = append(gotLine, w.Owner)
	}
	if !slices.Equal(gotLine, line) {
		t.Errorf("line %q, item has %q", gotLine, line)
	}
}

// fzCheckString checks that a decoded string field is the item's string
// attribute, or empty when the attribute is absent.
func fzCheckString(t *testing.T, item map[string]types.AttributeValue, name, got string) {
	t.Helper()
	want := ""
	if s, ok := item[name].(*types.AttributeValueMemberS); ok && s != nil {
		want = s.Value
	}
	if got != want {
		t.Errorf("%s decoded as %q, item holds %q", name, got, want)
	}
}

// FuzzAcquireOverItem puts an arbitrary item under the key and acquires it
// with --no-wait through a table that evaluates the backend's expressions as
// DynamoDB does (the fake table's engine). Whatever the item, Acquire returns
// after a few requests (no busy loop), never modifies an item without a
// Schema of ours, and succeeds only on a key that is free by the item's own
// attributes, or by a takeover of a holder of ours.
func FuzzAcquireOverItem(f *testing.F) {
	for _, s := range fzSeeds() {
		f.Add(s.shape, s.vals)
	}
	f.Fuzz(func(t *testing.T, shape []byte, vals string) {
		item := fzItem(shape, vals)
		if len(item) == 0 {
			return // no item: an ordinary free key
		}
		// DynamoDB never stores nil values or an item without its key.
		for name, v := range item {
			if v == nil {
				delete(item, name)
			}
		}
		item[attrKey] = &types.AttributeValueMemberS{Value: "k"}
		before := fzClone(item)
		tbl := &fzTable{item: item}
		d, err := NewDynamo(DynamoConfig{Client: tbl, Table: "locks", Identity: Identity{Host: "me", PID: 1}})
		if err != nil {
			t.Fatal(err)
		}
		// A holder that looks stopped is watched, a read every poll:
		// one second of that is 20 reads at most.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		lease, err := d.Acquire(ctx, "k", AcquireOptions{NoWait: true})
		calls := tbl.count()
		if calls > fzMaxCalls {
			t.Fatalf("Acquire over item %s made more than %d requests (a busy loop); it ended with %v", fzString(before), fzMaxCalls, err)
		}
		_, foreign := fzAcquireCond(before)
		switch {
		case err == nil:
			if !fzFree(before) && !(tbl.tookOver() && fzTakeable(before)) {
				t.Errorf("Acquire succeeded over an item DynamoDB would not let it take: %s", fzString(before))
			}
			if rerr := lease.Release(context.Background()); rerr != nil {
				t.Errorf("release: %v", rerr)
			}
		case foreign && !errors.Is(err, ErrForeignItem) && !errors.Is(err, ErrHeld):
			// A foreign item may also be reported as corrupt when its key
			// attributes are unreadable; anything else is an error too.
			if !strings.Contains(err.Error(), "corrupt") {
				t.Errorf("Acquire over a foreign item: %v", err)
			}
		}
		if foreign && !fzEqual(tbl.snapshot(), before) {
			t.Errorf("Acquire modified an item that is not a locked-run lock:\nbefore %s\nafter  %s", fzString(before), fzString(tbl.snapshot()))
		}
	})
}

// fzMaxCalls is more requests than an Acquire with NoWait has any reason to
// make in a second on one unchanging item: a write, a read, perhaps one
// more write, and, for a holder that looks stopped, a read every poll
// (200 ms, jittered down to 100 ms).
const fzMaxCalls = 20

// fzTable is a one-item DynamoDB table that evaluates the conditions of the
// acquiring write and of the release as DynamoDB would, on the item's own
// attributes. Anything else is refused.
type fzTable struct {
	mu    sync.Mutex
	item  map[string]types.AttributeValue
	calls int
	kinds []string // updateKind of every write that landed
}

// tookOver reports whether a takeover write landed.
func (f *fzTable) tookOver() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.kinds, "takeover")
}

func (f *fzTable) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fzTable) snapshot() map[string]types.AttributeValue {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fzClone(f.item)
}

// call counts a request and refuses it once there have been too many, so
// that a busy loop ends (with an error that cannot be retried).
func (f *fzTable) call() error {
	f.calls++
	if f.calls > fzMaxCalls {
		return &smithy.GenericAPIError{Code: "ValidationException", Message: "fuzz table: too many requests"}
	}
	return nil
}

func (f *fzTable) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(); err != nil {
		return nil, err
	}
	return &dynamodb.GetItemOutput{Item: fzClone(f.item)}, nil
}

// UpdateItem evaluates the backend's expressions as DynamoDB does, with
// the fake table's engine (fake_dynamo_test.go).
func (f *fzTable) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(); err != nil {
		return nil, err
	}
	key, err := keyString(in.Key)
	if err != nil {
		return nil, err
	}
	var old map[string]types.AttributeValue
	if s, ok := f.item[attrKey].(*types.AttributeValueMemberS); ok && s.Value == key {
		old = f.item
	}
	item, out, err := fakeUpdateItem(old, key, in, true)
	if err != nil {
		return nil, err
	}
	f.item = item
	f.kinds = append(f.kinds, updateKind(in))
	return out, nil
}

func (f *fzTable) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return nil, errors.New("fuzz table: Scan not expected")
}

func (f *fzTable) CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	return nil, errors.New("fuzz table: CreateTable not expected")
}

func (f *fzTable) DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return nil, errors.New("fuzz table: DescribeTable not expected")
}

// fzFree is the design's verdict on the exclusive acquiring write's
// condition for an existing item: an item of ours (fzOurs) without an
// Owner, and, in the layout v2, no shared holder and an empty line
// ("attribute_not_exists(#X) OR size(#X) = :zero", DynamoDB's size: an
// empty string has size 0 too).
func fzFree(item map[string]types.AttributeValue) bool {
	if _, owner := item[attrOwner]; owner || !fzOurs(item) {
		return false
	}
	return !fzV2 || fzEmpty(item, "SharedHolders") && fzEmpty(item, "Line")
}

// fzTakeable says whether a held item may be taken over by a --no-wait run
// (after watching its holder for a lease): an item of ours with an Owner,
// and, in the layout v2, an empty line.
func fzTakeable(item map[string]types.AttributeValue) bool {
	_, owner := item[attrOwner]
	return owner && fzOurs(item) && (!fzV2 || fzEmpty(item, "Line"))
}

func fzEmpty(item map[string]types.AttributeValue, name string) bool {
	v, ok := item[name]
	if !ok {
		return true
	}
	n, ok := sizeAV(v)
	return ok && n == 0
}

// fzAcquireCond reports whether the item is free by DynamoDB's reading and
// whether it is foreign (no Schema of ours).
func fzAcquireCond(item map[string]types.AttributeValue) (free, foreign bool) {
	return fzFree(item), !fzOurs(item)
}

// fzString shows an item with its values, for failure messages.
func fzString(item map[string]types.AttributeValue) string {
	names := make([]string, 0, len(item))
	for name := range item {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("{")
	for i, name := range names {
		if i > 0 {
			b.WriteString(" ")
		}
		switch v := item[name].(type) {
		case *types.AttributeValueMemberS:
			fmt.Fprintf(&b, "%s:S%q", name, v.Value)
		case *types.AttributeValueMemberN:
			fmt.Fprintf(&b, "%s:N%q", name, v.Value)
		default:
			fmt.Fprintf(&b, "%s:%T", name, v)
		}
	}
	b.WriteString("}")
	return b.String()
}

func fzClone(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	if item == nil {
		return nil
	}
	c := make(map[string]types.AttributeValue, len(item))
	for k, v := range item {
		c[k] = v
	}
	return c
}

func fzEqual(a, b map[string]types.AttributeValue) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !fzEqualAV(v, w) {
			return false
		}
	}
	return true
}

// fzEqualAV compares two attribute values as DynamoDB's = does (deeply).
func fzEqualAV(a, b types.AttributeValue) bool { return equalAV(a, b) }

// FuzzValidateKey checks that ValidateKey accepts exactly the keys DynamoDB
// accepts as a string partition key (1 to 2048 bytes of UTF-8), and that
// its error matches ErrInvalidKey and fits on one line.
func FuzzValidateKey(f *testing.F) {
	for _, k := range []string{
		"deploy", "tf/prod/network", "a", "", " ", "\x00", "\xff", "\xc3\x28", "日本語のキー", "emoji 🔒",
		strings.Repeat("k", MaxKeyBytes), strings.Repeat("k", MaxKeyBytes+1),
		strings.Repeat("é", MaxKeyBytes/2), strings.Repeat("é", MaxKeyBytes/2) + "x",
		"line\nbreak", "terraform apply -auto-approve",
	} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := ValidateKey(key)
		want := key != "" && utf8.ValidString(key) && len(key) <= MaxKeyBytes
		if (err == nil) != want {
			t.Fatalf("ValidateKey(%q) (%d bytes) = %v", key, len(key), err)
		}
		if err == nil {
			return
		}
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want an error matching ErrInvalidKey", key, err)
		}
		if strings.ContainsAny(err.Error(), "\n\r") {
			t.Errorf("ValidateKey error is not one line: %q", err)
		}
	})
}
