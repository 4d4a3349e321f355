package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// The fake table's expressions, pinned case by case: what each condition
// and update expression of the layout v2 (DESIGN12) does to an item. The
// same cases run against the fake (TestFakeExpressions, fast) and against
// DynamoDB Local (TestFakeExpressionsMatchDynamoDBLocal), so that the
// expectations are DynamoDB's, not the fake's.

type xItem = map[string]types.AttributeValue

func xS(s string) types.AttributeValue  { return &types.AttributeValueMemberS{Value: s} }
func xN(s string) types.AttributeValue  { return &types.AttributeValueMemberN{Value: s} }
func xBool(b bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: b} }
func xNull() types.AttributeValue       { return &types.AttributeValueMemberNULL{Value: true} }
func xL(vs ...types.AttributeValue) types.AttributeValue {
	return &types.AttributeValueMemberL{Value: append([]types.AttributeValue{}, vs...)}
}

// xM builds a map from key, value pairs.
func xM(kv ...any) types.AttributeValue {
	m := map[string]types.AttributeValue{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(types.AttributeValue)
	}
	return &types.AttributeValueMemberM{Value: m}
}

// xWaiter is an entry of the line.
func xWaiter(owner, rvn string, shared bool) types.AttributeValue {
	return xM("Owner", xS(owner), "RVN", xS(rvn), "Shared", xBool(shared), "MaxHolders", xN("0"), "HeartbeatAt", xS("t0"))
}

// xHolder is an entry of SharedHolders.
func xHolder(rvn string) types.AttributeValue {
	return xM("Host", xS("h"), "Pid", xN("7"), "RVN", xS(rvn), "HeartbeatAt", xS("t0"))
}

// xWith returns a v2 item with Schema and FencingToken and the given
// attributes (key, value pairs).
func xWith(kv ...any) xItem {
	item := xItem{"Schema": xS("locked-run/2"), "FencingToken": xN("7")}
	for i := 0; i < len(kv); i += 2 {
		item[kv[i].(string)] = kv[i+1].(types.AttributeValue)
	}
	return item
}

// An exprCase is one UpdateItem on one item.
type exprCase struct {
	name   string
	item   xItem // before, without LockID; nil: no item
	cond   string
	update string
	names  map[string]string // besides #X → X for every #X in the expressions
	values map[string]types.AttributeValue
	// want is "ok", "ccf" (condition failed) or "invalid: " and the part
	// of the ValidationException's message that matters.
	want  string
	after xItem  // when ok: the item after, without LockID
	kind  string // when not empty: what updateKind says of the call
	// emptyValues sends ExpressionAttributeValues as an empty map, not nil.
	emptyValues bool
}

var xPlaceholderRE = regexp.MustCompile(`#[A-Za-z0-9_]+`)

func (c exprCase) input(table, key string) *dynamodb.UpdateItemInput {
	names := map[string]string{}
	for _, ph := range xPlaceholderRE.FindAllString(c.cond+" "+c.update, -1) {
		names[ph] = ph[1:]
	}
	for k, v := range c.names {
		names[k] = v
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                           aws.String(table),
		Key:                                 keyOf(key),
		UpdateExpression:                    aws.String(c.update),
		ExpressionAttributeNames:            names,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if len(names) == 0 {
		in.ExpressionAttributeNames = nil
	}
	if len(c.values) > 0 {
		in.ExpressionAttributeValues = c.values
	}
	if c.emptyValues {
		in.ExpressionAttributeValues = map[string]types.AttributeValue{}
	}
	if c.cond != "" {
		in.ConditionExpression = aws.String(c.cond)
	}
	return in
}

func xWithKey(item xItem, key string) xItem {
	if item == nil {
		return nil
	}
	out := xItem{attrKey: avS(key)}
	for k, v := range item {
		out[k] = v
	}
	return out
}

// An exprOutcome is what one UpdateItem did.
type exprOutcome struct {
	kind  string // ok, ccf, invalid, or other: the error
	msg   string // the ValidationException's message
	after xItem  // the item after the call
	attrs xItem  // ALL_NEW on success, ALL_OLD on a failed condition
}

func xOutcome(err error, out *dynamodb.UpdateItemOutput, after xItem) exprOutcome {
	o := exprOutcome{after: after}
	var ccf *types.ConditionalCheckFailedException
	var api smithy.APIError
	switch {
	case err == nil:
		o.kind, o.attrs = "ok", out.Attributes
	case errors.As(err, &ccf):
		o.kind, o.attrs = "ccf", ccf.Item
	case errors.As(err, &api) && api.ErrorCode() == "ValidationException":
		o.kind, o.msg = "invalid", api.ErrorMessage()
	default:
		o.kind, o.msg = "other", err.Error()
	}
	return o
}

// check compares an outcome with the case's expectation.
func (c exprCase) check(t *testing.T, who, key string, o exprOutcome) {
	t.Helper()
	wantKind, wantMsg, _ := strings.Cut(c.want, ": ")
	if o.kind != wantKind || (wantMsg != "" && !strings.Contains(o.msg, wantMsg)) {
		t.Errorf("%s: got %s %q, want %s", who, o.kind, o.msg, c.want)
		return
	}
	switch {
	case o.kind == "ok":
		if want := xWithKey(c.after, key); !xSameItem(o.after, want) {
			t.Errorf("%s: item after\n got  %s\n want %s", who, xShowItem(o.after), xShowItem(want))
		}
		if !xSameItem(o.attrs, o.after) {
			t.Errorf("%s: ALL_NEW %s, item %s", who, xShowItem(o.attrs), xShowItem(o.after))
		}
	default:
		if before := xWithKey(c.item, key); !xSameItem(o.after, before) {
			t.Errorf("%s: a failed update changed the item\n got  %s\n want %s", who, xShowItem(o.after), xShowItem(before))
		}
		if o.kind == "ccf" && !xSameItem(o.attrs, xWithKey(c.item, key)) {
			t.Errorf("%s: ALL_OLD on condition failure %s, item %s", who, xShowItem(o.attrs), xShowItem(c.item))
		}
	}
}

// xSameItem compares items exactly: numbers by their text too, so that a
// difference in how numbers are written shows.
func xSameItem(a, b xItem) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || xShowAV(v) != xShowAV(w) {
			return false
		}
	}
	return true
}

func xShowItem(item xItem) string {
	if item == nil {
		return "<no item>"
	}
	return xShowAV(&types.AttributeValueMemberM{Value: item})
}

// xShowAV renders a value canonically (map keys and set elements sorted).
func xShowAV(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return fmt.Sprintf("S%q", v.Value)
	case *types.AttributeValueMemberN:
		return "N" + v.Value
	case *types.AttributeValueMemberB:
		return fmt.Sprintf("B%x", v.Value)
	case *types.AttributeValueMemberBOOL:
		return fmt.Sprintf("%t", v.Value)
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberL:
		parts := make([]string, len(v.Value))
		for i, e := range v.Value {
			parts[i] = xShowAV(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case *types.AttributeValueMemberM:
		keys := make([]string, 0, len(v.Value))
		for k := range v.Value {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + xShowAV(v.Value[k])
		}
		return "{" + strings.Join(parts, " ") + "}"
	case *types.AttributeValueMemberSS:
		s := append([]string{}, v.Value...)
		sort.Strings(s)
		return fmt.Sprintf("SS%q", s)
	case *types.AttributeValueMemberNS:
		s := append([]string{}, v.Value...)
		sort.Strings(s)
		return fmt.Sprintf("NS%v", s)
	}
	return fmt.Sprintf("%T", v)
}

// xRunFake runs a case on a fake table.
func xRunFake(t *testing.T, c exprCase, key string) exprOutcome {
	t.Helper()
	f := newFakeTable(t, nil)
	if c.item != nil {
		f.put(xWithKey(c.item, key))
	}
	out, err := f.applyUpdate(c.input(fakeTableName, key))
	return xOutcome(err, out, f.item(key))
}

func TestFakeExpressions(t *testing.T) {
	for _, c := range exprCases() {
		t.Run(c.name, func(t *testing.T) {
			c.check(t, "fake", "k", xRunFake(t, c, "k"))
		})
	}
}

// TestFakeUpdateKind checks how the fake table names the writes of both
// layouts, which tests use to script and count calls.
func TestFakeUpdateKind(t *testing.T) {
	kinds := map[string]bool{}
	for _, c := range exprCases() {
		if c.kind == "" {
			continue
		}
		kinds[c.kind] = true
		if got := updateKind(c.input(fakeTableName, "k")); got != c.kind {
			t.Errorf("%s: updateKind %q, want %q", c.name, got, c.kind)
		}
	}
	for _, k := range []string{"acquire", "takeover", "heartbeat", "release", "force", "join", "refresh", "leave", "evict",
		"shared-acquire", "shared-heartbeat", "shared-release"} {
		if !kinds[k] {
			t.Errorf("no case of kind %q", k)
		}
	}
}

// TestFakeExec checks the helper tests use to play another process.
func TestFakeExec(t *testing.T) {
	f := newFakeTable(t, nil)
	f.put(xWithKey(xWith("Line", xL(xWaiter("w1", "r1", false), xWaiter("w2", "r2", false))), "k"))
	if err := f.exec("k", "#Line[0].#Owner = :o", "REMOVE #Line[0]", ":o", xS("w2")); !xIsCCF(err) {
		t.Fatalf("remove another's entry: %v, want a failed condition", err)
	}
	if err := f.exec("k", "#Line[1].#Owner = :o", "SET #Line[1].#RVN = :r, #SharedHolders.#me = :r", ":o", xS("w2"), ":r", xS("r9"), "#me", "w2"); err == nil ||
		!strings.Contains(err.Error(), "invalid for update") {
		t.Fatalf("set under a missing map: %v, want a ValidationException", err)
	}
	if err := f.exec("k", "#Line[1].#Owner = :o", "REMOVE #Line[0]", ":o", xS("w2")); err != nil {
		t.Fatal(err)
	}
	want := xWithKey(xWith("Line", xL(xWaiter("w2", "r2", false))), "k")
	if got := f.item("k"); !xSameItem(got, want) {
		t.Fatalf("item %s, want %s", xShowItem(got), xShowItem(want))
	}
	if len(f.callsOf()) != 0 {
		t.Fatalf("exec recorded calls: %v", f.callsOf())
	}
}

func xIsCCF(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// TestFakeExpressionsMatchDynamoDBLocal runs every case against DynamoDB
// Local: the expectation must hold there, and the fake must end with the
// same item, or fail with the same message.
func TestFakeExpressionsMatchDynamoDBLocal(t *testing.T) {
	t.Parallel()
	ep := ddblocal.Endpoint(t)
	table := ddblocal.NewTable(t)
	client := ddblocal.Client(ep, nil)
	for i, c := range exprCases() {
		t.Run(c.name, func(t *testing.T) {
			key := fmt.Sprintf("case-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if c.item != nil {
				if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: xWithKey(c.item, key)}); err != nil {
					t.Fatalf("put: %v", err)
				}
			}
			out, err := client.UpdateItem(ctx, c.input(table, key))
			got, gerr := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: keyOf(key), ConsistentRead: aws.Bool(true)})
			if gerr != nil {
				t.Fatalf("get: %v", gerr)
			}
			local := xOutcome(err, out, got.Item)
			c.check(t, "DynamoDB Local", key, local)
			fake := xRunFake(t, c, key)
			if fake.kind != local.kind || fake.msg != local.msg || !xSameItem(fake.after, local.after) {
				t.Errorf("fake and DynamoDB Local differ:\n fake  %s %q %s\n local %s %q %s",
					fake.kind, fake.msg, xShowItem(fake.after), local.kind, local.msg, xShowItem(local.after))
			}
		})
	}
}

// The conditions and updates of DESIGN12 ("v12" and the rest spelt out).
const (
	xV12         = "#Schema IN (:v1, :v2)"
	xTokenOK     = "(attribute_not_exists(#FencingToken) OR #FencingToken < :max)"
	xNoShared    = "(attribute_not_exists(#SharedHolders) OR size(#SharedHolders) = :zero)"
	xLineEmpty   = "(attribute_not_exists(#Line) OR size(#Line) = :zero)"
	xNotOwned    = "attribute_not_exists(#Owner)"
	xFreeItem    = "attribute_not_exists(#LockID) OR "
	xFastCommon  = xV12 + " AND " + xNotOwned + " AND " + xLineEmpty + " AND " + xTokenOK
	xHeadCommon  = xV12 + " AND " + xNotOwned + " AND #Line[0].#Owner = :me AND " + xTokenOK
	xJoinCond    = "attribute_not_exists(#LockID) OR " + xV12
	xJoinSet     = "SET #Line = list_append(if_not_exists(#Line, :empty), :meList), #Schema = :v2"
	xSharedRoomC = "size(#SharedHolders) > :zero AND #MaxHolders = :n AND size(#SharedHolders) < :n"

	xExclusiveFast    = xFreeItem + "(" + xFastCommon + " AND " + xNoShared + ")"
	xExclusiveSet     = "SET #Schema = :v2, #Owner = :owner, #RVN = :rvn ADD #FencingToken :one"
	xSharedEmpty      = xFreeItem + "(" + xFastCommon + " AND " + xNoShared + ")"
	xSharedEmptySet   = "SET #SharedHolders = :mapWithMe, #MaxHolders = :n, #Schema = :v2 ADD #FencingToken :one"
	xSharedRoom       = xFreeItem + "(" + xFastCommon + " AND " + xSharedRoomC + ")"
	xSharedRoomSet    = "SET #SharedHolders.#me = :entry, #Schema = :v2 ADD #FencingToken :one"
	xHeadExclusive    = xHeadCommon + " AND " + xNoShared
	xHeadExclusiveSet = "SET #Schema = :v2, #Owner = :me REMOVE #Line[0] ADD #FencingToken :one"
	xHeadShared       = xHeadCommon + " AND size(#SharedHolders) > :zero AND #MaxHolders = :n"
	xHeadSharedSet    = "SET #SharedHolders.#me = :entry, #Schema = :v2 REMOVE #Line[0] ADD #FencingToken :one"
)

func xSchemaVals(kv ...any) map[string]types.AttributeValue {
	m := map[string]types.AttributeValue{":v1": xS("locked-run/1"), ":v2": xS("locked-run/2"),
		":max": xN("9223372036854775807"), ":zero": xN("0"), ":one": xN("1")}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(types.AttributeValue)
	}
	return m
}

func xExclusiveVals() map[string]types.AttributeValue {
	return xSchemaVals(":owner", xS("me"), ":rvn", xS("r1"))
}

func xSharedEmptyVals() map[string]types.AttributeValue {
	return xSchemaVals(":mapWithMe", xM("me", xHolder("r1")), ":n", xN("2"))
}

func xSharedRoomVals() map[string]types.AttributeValue {
	return xSchemaVals(":entry", xHolder("r2"), ":n", xN("2"))
}

func xHeadVals(me string) map[string]types.AttributeValue {
	return xSchemaVals(":me", xS(me))
}

func xJoinVals(me string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{":v1": xS("locked-run/1"), ":v2": xS("locked-run/2"),
		":empty": xL(), ":meList": xL(xWaiter(me, "r9", false))}
}

// exprCases are the cases, grouped by what they pin.
func exprCases() []exprCase {
	line := xL(xWaiter("w1", "r1", false), xWaiter("w2", "r2", true), xWaiter("w3", "r3", false))
	vals := func(kv ...any) map[string]types.AttributeValue {
		m := map[string]types.AttributeValue{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(types.AttributeValue)
		}
		return m
	}
	return []exprCase{
		// The writes of DESIGN12, as the backend sends them.
		{name: "exclusive fast path on no item", cond: xExclusiveFast, update: xExclusiveSet, values: xExclusiveVals(),
			want: "ok", after: xItem{"Schema": xS("locked-run/2"), "Owner": xS("me"), "RVN": xS("r1"), "FencingToken": xN("1")}, kind: "acquire"},
		{name: "exclusive fast path on a v1 item", item: xItem{"Schema": xS("locked-run/1"), "FencingToken": xN("7")},
			cond: xExclusiveFast, update: xExclusiveSet, values: xExclusiveVals(),
			want: "ok", after: xWith("Owner", xS("me"), "RVN", xS("r1"), "FencingToken", xN("8")), kind: "acquire"},
		{name: "exclusive fast path over empty line and holders", item: xWith("Line", xL(), "SharedHolders", xM(), "MaxHolders", xN("2")),
			cond: xExclusiveFast, update: xExclusiveSet, values: xExclusiveVals(),
			want: "ok", after: xWith("Line", xL(), "SharedHolders", xM(), "MaxHolders", xN("2"), "Owner", xS("me"), "RVN", xS("r1"), "FencingToken", xN("8")), kind: "acquire"},
		{name: "exclusive fast path with a shared holder", item: xWith("SharedHolders", xM("h1", xHolder("r1"))),
			cond: xExclusiveFast, update: xExclusiveSet, values: xExclusiveVals(), want: "ccf", kind: "acquire"},
		{name: "exclusive fast path with a line", item: xWith("Line", line),
			cond: xExclusiveFast, update: xExclusiveSet, values: xExclusiveVals(), want: "ccf", kind: "acquire"},
		{name: "exclusive fast path on a foreign item", item: xItem{"Digest": xS("d41d8cd9")},
			cond: xExclusiveFast, update: xExclusiveSet, values: xExclusiveVals(), want: "ccf", kind: "acquire"},
		{name: "exclusive fast path at the last token", item: xWith("FencingToken", xN("9223372036854775807")),
			cond: xExclusiveFast, update: xExclusiveSet, values: xExclusiveVals(), want: "ccf", kind: "acquire"},
		{name: "shared empty form on no item", cond: xSharedEmpty, update: xSharedEmptySet, values: xSharedEmptyVals(),
			want: "ok", after: xItem{"Schema": xS("locked-run/2"), "SharedHolders": xM("me", xHolder("r1")), "MaxHolders": xN("2"), "FencingToken": xN("1")},
			kind: "shared-acquire"},
		{name: "shared empty form over an empty map", item: xWith("SharedHolders", xM(), "MaxHolders", xN("5")),
			cond: xSharedEmpty, update: xSharedEmptySet, values: xSharedEmptyVals(),
			want: "ok", after: xWith("SharedHolders", xM("me", xHolder("r1")), "MaxHolders", xN("2"), "FencingToken", xN("8")), kind: "shared-acquire"},
		{name: "shared empty form beside a holder", item: xWith("SharedHolders", xM("h1", xHolder("r1")), "MaxHolders", xN("2")),
			cond: xSharedEmpty, update: xSharedEmptySet, values: xSharedEmptyVals(), want: "ccf", kind: "shared-acquire"},
		{name: "shared empty form beside an exclusive holder", item: xWith("Owner", xS("x")),
			cond: xSharedEmpty, update: xSharedEmptySet, values: xSharedEmptyVals(), want: "ccf", kind: "shared-acquire"},
		{name: "shared join form with room", item: xWith("SharedHolders", xM("h1", xHolder("r1")), "MaxHolders", xN("2")),
			cond: xSharedRoom, update: xSharedRoomSet, names: map[string]string{"#me": "me"}, values: xSharedRoomVals(),
			want: "ok", after: xWith("SharedHolders", xM("h1", xHolder("r1"), "me", xHolder("r2")), "MaxHolders", xN("2"), "FencingToken", xN("8")),
			kind: "shared-acquire"},
		{name: "shared join form when full", item: xWith("SharedHolders", xM("h1", xHolder("r1"), "h2", xHolder("r1")), "MaxHolders", xN("2")),
			cond: xSharedRoom, update: xSharedRoomSet, names: map[string]string{"#me": "me"}, values: xSharedRoomVals(), want: "ccf"},
		{name: "shared join form with another N", item: xWith("SharedHolders", xM("h1", xHolder("r1")), "MaxHolders", xN("3")),
			cond: xSharedRoom, update: xSharedRoomSet, names: map[string]string{"#me": "me"}, values: xSharedRoomVals(), want: "ccf"},
		{name: "shared join form over an empty map", item: xWith("SharedHolders", xM(), "MaxHolders", xN("2")),
			cond: xSharedRoom, update: xSharedRoomSet, names: map[string]string{"#me": "me"}, values: xSharedRoomVals(), want: "ccf"},
		{name: "shared join form without the map", item: xWith(),
			cond: xSharedRoom, update: xSharedRoomSet, names: map[string]string{"#me": "me"}, values: xSharedRoomVals(), want: "ccf"},
		// The condition holds on a missing item (attribute_not_exists(#LockID)),
		// but the update cannot: a ValidationException, not a failed condition.
		{name: "shared join form on no item", cond: xSharedRoom, update: xSharedRoomSet, names: map[string]string{"#me": "me"},
			values: xSharedRoomVals(), want: "invalid: The document path provided in the update expression is invalid for update"},
		{name: "head acquires exclusive", item: xWith("Line", line), cond: xHeadExclusive, update: xHeadExclusiveSet,
			values: xHeadVals("w1"), want: "ok",
			after: xWith("Owner", xS("w1"), "FencingToken", xN("8"), "Line", xL(xWaiter("w2", "r2", true), xWaiter("w3", "r3", false))), kind: "acquire"},
		{name: "second in line cannot acquire", item: xWith("Line", line), cond: xHeadExclusive, update: xHeadExclusiveSet,
			values: xHeadVals("w2"), want: "ccf"},
		{name: "head acquires shared", item: xWith("Line", xL(xWaiter("w2", "r2", true)), "SharedHolders", xM("h1", xHolder("r1")), "MaxHolders", xN("0")),
			cond: xHeadShared, update: xHeadSharedSet, names: map[string]string{"#me": "w2"},
			values: vals(":v1", xS("locked-run/1"), ":v2", xS("locked-run/2"), ":me", xS("w2"), ":max", xN("9223372036854775807"),
				":zero", xN("0"), ":n", xN("0"), ":entry", xHolder("r2"), ":one", xN("1")),
			want: "ok", after: xWith("Line", xL(), "SharedHolders", xM("h1", xHolder("r1"), "w2", xHolder("r2")), "MaxHolders", xN("0"), "FencingToken", xN("8")),
			kind: "shared-acquire"},
		{name: "join", item: xWith("Owner", xS("x")), cond: xJoinCond, update: xJoinSet, values: xJoinVals("w9"),
			want: "ok", after: xWith("Owner", xS("x"), "Line", xL(xWaiter("w9", "r9", false))), kind: "join"},
		{name: "refresh by index", item: xWith("Line", line), cond: "#Line[2].#Owner = :me",
			update: "SET #Line[2].#HeartbeatAt = :now, #Line[2].#RVN = :new", values: vals(":me", xS("w3"), ":now", xS("t1"), ":new", xS("r9")),
			want: "ok", after: xWith("Line", xL(xWaiter("w1", "r1", false), xWaiter("w2", "r2", true),
				xM("Owner", xS("w3"), "RVN", xS("r9"), "Shared", xBool(false), "MaxHolders", xN("0"), "HeartbeatAt", xS("t1")))),
			kind: "refresh"},
		{name: "refresh after a shift", item: xWith("Line", line), cond: "#Line[3].#Owner = :me",
			update: "SET #Line[3].#HeartbeatAt = :now, #Line[3].#RVN = :new", values: vals(":me", xS("w3"), ":now", xS("t1"), ":new", xS("r9")),
			want: "ccf", kind: "refresh"},
		{name: "leave", item: xWith("Line", line), cond: "#Line[1].#Owner = :me", update: "REMOVE #Line[1]",
			values: vals(":me", xS("w2")), want: "ok", after: xWith("Line", xL(xWaiter("w1", "r1", false), xWaiter("w3", "r3", false))), kind: "leave"},
		{name: "leave after a shift", item: xWith("Line", xL(xWaiter("w2", "r2", true))), cond: "#Line[1].#Owner = :me", update: "REMOVE #Line[1]",
			values: vals(":me", xS("w2")), want: "ccf", kind: "leave"},
		{name: "evict", item: xWith("Line", line), cond: "#Line[0].#Owner = :o AND #Line[0].#RVN = :rvn", update: "REMOVE #Line[0]",
			values: vals(":o", xS("w1"), ":rvn", xS("r1")), want: "ok", after: xWith("Line", xL(xWaiter("w2", "r2", true), xWaiter("w3", "r3", false))),
			kind: "evict"},
		{name: "evict shared holder", item: xWith("SharedHolders", xM("h1", xHolder("r1"))), cond: "#SharedHolders.#o.#RVN = :rvn",
			update: "REMOVE #SharedHolders.#o", names: map[string]string{"#o": "h1"}, values: vals(":rvn", xS("r1")),
			want: "ok", after: xWith("SharedHolders", xM()), kind: "evict"},
		{name: "evict shared holder gone", item: xWith("SharedHolders", xM()), cond: "#SharedHolders.#o.#RVN = :rvn",
			update: "REMOVE #SharedHolders.#o", names: map[string]string{"#o": "h1"}, values: vals(":rvn", xS("r1")), want: "ccf", kind: "evict"},
		{name: "force release of shared holders", item: xWith("SharedHolders", xM("h1", xHolder("r1"), "h2", xHolder("r2"))),
			cond:   "attribute_not_exists(#Owner) AND #SharedHolders.#h0.#RVN = :r0 AND #SharedHolders.#h1.#RVN = :r1",
			update: "REMOVE #SharedHolders.#h0, #SharedHolders.#h1", names: map[string]string{"#h0": "h1", "#h1": "h2"},
			values: vals(":r0", xS("r1"), ":r1", xS("r2")), want: "ok", after: xWith("SharedHolders", xM()), kind: "force"},
		{name: "force release of a shared holder that renewed", item: xWith("SharedHolders", xM("h1", xHolder("r1"), "h2", xHolder("r3"))),
			cond:   "attribute_not_exists(#Owner) AND #SharedHolders.#h0.#RVN = :r0 AND #SharedHolders.#h1.#RVN = :r1",
			update: "REMOVE #SharedHolders.#h0, #SharedHolders.#h1", names: map[string]string{"#h0": "h1", "#h1": "h2"},
			values: vals(":r0", xS("r1"), ":r1", xS("r2")), want: "ccf", kind: "force"},
		{name: "shared heartbeat with token", item: xWith("SharedHolders", xM("me", xHolder("r1"))), cond: "#SharedHolders.#me.#RVN IN (:prev, :next)",
			update: "SET #SharedHolders.#me.#RVN = :next, #SharedHolders.#me.#HeartbeatAt = :now, #SharedHolders.#me.#FencingToken = :token",
			names:  map[string]string{"#me": "me"}, values: vals(":prev", xS("r1"), ":next", xS("r2"), ":now", xS("t1"), ":token", xN("8")), want: "ok",
			after: xWith("SharedHolders", xM("me", xM("Host", xS("h"), "Pid", xN("7"), "RVN", xS("r2"), "HeartbeatAt", xS("t1"), "FencingToken", xN("8")))),
			kind:  "shared-heartbeat"},
		{name: "head takes over", item: xWith("Owner", xS("dead"), "RVN", xS("r1"), "Line", line),
			cond:   xV12 + " AND #Owner = :seenOwner AND " + xNoShared + " AND #Line[0].#Owner = :owner AND " + xTokenOK + " AND #RVN = :seenRVN",
			update: "SET #Schema = :v2, #Owner = :owner, #RVN = :rvn REMOVE #Line[0] ADD #FencingToken :one",
			values: xSchemaVals(":seenOwner", xS("dead"), ":seenRVN", xS("r1"), ":owner", xS("w1"), ":rvn", xS("r9")), want: "ok",
			after: xWith("Owner", xS("w1"), "RVN", xS("r9"), "FencingToken", xN("8"), "Line", xL(xWaiter("w2", "r2", true), xWaiter("w3", "r3", false))),
			kind:  "takeover"},
		{name: "shared heartbeat", item: xWith("SharedHolders", xM("me", xHolder("r1"))), cond: "#SharedHolders.#me.#RVN IN (:prev, :next)",
			update: "SET #SharedHolders.#me.#RVN = :next, #SharedHolders.#me.#HeartbeatAt = :now", names: map[string]string{"#me": "me"},
			values: vals(":prev", xS("r1"), ":next", xS("r2"), ":now", xS("t1")), want: "ok",
			after: xWith("SharedHolders", xM("me", xM("Host", xS("h"), "Pid", xN("7"), "RVN", xS("r2"), "HeartbeatAt", xS("t1")))), kind: "shared-heartbeat"},
		{name: "shared heartbeat after eviction", item: xWith("SharedHolders", xM("h1", xHolder("r1"))), cond: "#SharedHolders.#me.#RVN IN (:prev, :next)",
			update: "SET #SharedHolders.#me.#RVN = :next, #SharedHolders.#me.#HeartbeatAt = :now", names: map[string]string{"#me": "me"},
			values: vals(":prev", xS("r1"), ":next", xS("r2"), ":now", xS("t1")), want: "ccf", kind: "shared-heartbeat"},
		{name: "shared heartbeat without the map", item: xWith(), cond: "#SharedHolders.#me.#RVN IN (:prev, :next)",
			update: "SET #SharedHolders.#me.#RVN = :next, #SharedHolders.#me.#HeartbeatAt = :now", names: map[string]string{"#me": "me"},
			values: vals(":prev", xS("r1"), ":next", xS("r2"), ":now", xS("t1")), want: "ccf", kind: "shared-heartbeat"},
		{name: "shared release", item: xWith("SharedHolders", xM("me", xHolder("r1"), "h1", xHolder("r1"))), cond: "attribute_exists(#SharedHolders.#me)",
			update: "REMOVE #SharedHolders.#me", names: map[string]string{"#me": "me"},
			want: "ok", after: xWith("SharedHolders", xM("h1", xHolder("r1"))), kind: "shared-release"},
		{name: "shared release when gone", item: xWith(), cond: "attribute_exists(#SharedHolders.#me)",
			update: "REMOVE #SharedHolders.#me", names: map[string]string{"#me": "me"}, want: "ccf", kind: "shared-release"},

		// The writes of layout v1, which updateKind must still tell apart.
		{name: "v1 heartbeat", item: xWith("Owner", xS("me"), "RVN", xS("r1")), cond: "#Owner = :owner AND #RVN IN (:prev, :next)",
			update: "SET #RVN = :next, #HeartbeatAt = :now", values: vals(":owner", xS("me"), ":prev", xS("r1"), ":next", xS("r2"), ":now", xS("t1")),
			want: "ok", after: xWith("Owner", xS("me"), "RVN", xS("r2"), "HeartbeatAt", xS("t1")), kind: "heartbeat"},
		{name: "v1 release", item: xWith("Owner", xS("me"), "RVN", xS("r1")), cond: "#Owner = :owner",
			update: "REMOVE #Owner, #RVN", values: vals(":owner", xS("me")), want: "ok", after: xWith(), kind: "release"},
		{name: "v1 force release", item: xWith("Owner", xS("me"), "RVN", xS("r1")), cond: "#Schema = :schema AND #Owner = :owner AND #RVN = :rvn",
			update: "REMOVE #Owner, #RVN", values: vals(":schema", xS("locked-run/2"), ":owner", xS("me"), ":rvn", xS("r1")), want: "ok", after: xWith(), kind: "force"},
		{name: "v1 takeover", item: xWith("Owner", xS("dead"), "RVN", xS("r1")), cond: "#Schema = :schema AND #Owner = :seenOwner AND #RVN = :seenRVN",
			update: "SET #Owner = :owner, #RVN = :rvn ADD #FencingToken :one",
			values: vals(":schema", xS("locked-run/2"), ":seenOwner", xS("dead"), ":seenRVN", xS("r1"), ":owner", xS("me"), ":rvn", xS("r2"), ":one", xN("1")),
			want:   "ok", after: xWith("Owner", xS("me"), "RVN", xS("r2"), "FencingToken", xN("8")), kind: "takeover"},

		// Document paths in conditions.
		{name: "map key equal", item: xWith("M", xM("a", xS("x"))), cond: "#M.#a = :v", update: "SET #Z = :v",
			values: vals(":v", xS("x")), want: "ok", after: xWith("M", xM("a", xS("x")), "Z", xS("x"))},
		{name: "map key differs", item: xWith("M", xM("a", xS("y"))), cond: "#M.#a = :v", update: "SET #Z = :v",
			values: vals(":v", xS("x")), want: "ccf"},
		{name: "map key of missing map", item: xWith(), cond: "#M.#a = :v", update: "SET #Z = :v",
			values: vals(":v", xS("x")), want: "ccf"},
		{name: "map key of a list", item: xWith("M", xL(xS("x"))), cond: "#M.#a = :v", update: "SET #Z = :v",
			values: vals(":v", xS("x")), want: "ccf"},
		{name: "list index equal", item: xWith("Line", line), cond: "#Line[0].#Owner = :me", update: "SET #Z = :me",
			values: vals(":me", xS("w1")), want: "ok", after: xWith("Line", line, "Z", xS("w1"))},
		{name: "list index not the head", item: xWith("Line", line), cond: "#Line[0].#Owner = :me", update: "SET #Z = :me",
			values: vals(":me", xS("w2")), want: "ccf"},
		{name: "list index past the end", item: xWith("Line", line), cond: "#Line[3].#Owner = :me", update: "SET #Z = :me",
			values: vals(":me", xS("w1")), want: "ccf"},
		{name: "list index of empty list", item: xWith("Line", xL()), cond: "#Line[0].#Owner = :me", update: "SET #Z = :me",
			values: vals(":me", xS("w1")), want: "ccf"},
		{name: "list index of missing list", item: xWith(), cond: "#Line[0].#Owner = :me", update: "SET #Z = :me",
			values: vals(":me", xS("w1")), want: "ccf"},
		{name: "three levels", item: xWith("A", xM("b", xM("c", xN("5")))), cond: "#A.#b.#c = :v", update: "SET #Z = :v",
			values: vals(":v", xN("5")), want: "ok", after: xWith("A", xM("b", xM("c", xN("5"))), "Z", xN("5"))},
		{name: "exists nested", item: xWith("SharedHolders", xM("h1", xHolder("r1"))),
			cond: "attribute_exists(#SharedHolders.#me)", update: "SET #Z = :v", names: map[string]string{"#me": "h1"},
			values: vals(":v", xS("x")), want: "ok", after: xWith("SharedHolders", xM("h1", xHolder("r1")), "Z", xS("x"))},
		{name: "exists nested absent", item: xWith("SharedHolders", xM("h1", xHolder("r1"))),
			cond: "attribute_exists(#SharedHolders.#me)", update: "SET #Z = :v", names: map[string]string{"#me": "h2"},
			values: vals(":v", xS("x")), want: "ccf"},
		{name: "not exists nested under missing map", item: xWith(),
			cond: "attribute_not_exists(#SharedHolders.#me)", update: "SET #Z = :v", names: map[string]string{"#me": "h2"},
			values: vals(":v", xS("x")), want: "ok", after: xWith("Z", xS("x"))},
		{name: "exists list element", item: xWith("Line", line), cond: "attribute_exists(#Line[2]) AND attribute_not_exists(#Line[3])",
			update: "SET #Z = :v", values: vals(":v", xS("x")), want: "ok", after: xWith("Line", line, "Z", xS("x"))},
		{name: "map key with a dot is one key", item: xWith("SharedHolders", xM("ci.host-7", xHolder("r1"))),
			cond: "#SharedHolders.#me.#RVN = :r", update: "SET #Z = :r", names: map[string]string{"#me": "ci.host-7"},
			values: vals(":r", xS("r1")), want: "ok", after: xWith("SharedHolders", xM("ci.host-7", xHolder("r1")), "Z", xS("r1"))},

		// size().
		{name: "size of string", item: xWith("S", xS("abc")), cond: "size(#S) = :n", update: "SET #Z = :n",
			values: vals(":n", xN("3")), want: "ok", after: xWith("S", xS("abc"), "Z", xN("3"))},
		{name: "size of multibyte string", item: xWith("S", xS("héé")), cond: "size(#S) = :n", update: "SET #Z = :n",
			values: vals(":n", xN("3")), want: "ok", after: xWith("S", xS("héé"), "Z", xN("3"))},
		{name: "size of list", item: xWith("Line", line), cond: "size(#Line) = :n", update: "SET #Z = :n",
			values: vals(":n", xN("3")), want: "ok", after: xWith("Line", line, "Z", xN("3"))},
		{name: "size of map", item: xWith("SharedHolders", xM("a", xHolder("1"), "b", xHolder("2"))),
			cond: "size(#SharedHolders) > :zero AND size(#SharedHolders) < :n", update: "SET #Z = :n",
			values: vals(":zero", xN("0"), ":n", xN("3")), want: "ok",
			after: xWith("SharedHolders", xM("a", xHolder("1"), "b", xHolder("2")), "Z", xN("3"))},
		{name: "size of map full", item: xWith("SharedHolders", xM("a", xHolder("1"), "b", xHolder("2"))),
			cond: "size(#SharedHolders) < :n", update: "SET #Z = :n", values: vals(":n", xN("2")), want: "ccf"},
		{name: "size of string set", item: xWith("SS", &types.AttributeValueMemberSS{Value: []string{"a", "b"}}),
			cond: "size(#SS) = :n", update: "SET #Z = :n", values: vals(":n", xN("2")), want: "ok",
			after: xWith("SS", &types.AttributeValueMemberSS{Value: []string{"a", "b"}}, "Z", xN("2"))},
		{name: "size of nested", item: xWith("A", xM("l", xL(xS("x"), xS("y")))), cond: "size(#A.#l) = :n", update: "SET #Z = :n",
			values: vals(":n", xN("2")), want: "ok", after: xWith("A", xM("l", xL(xS("x"), xS("y"))), "Z", xN("2"))},
		{name: "size of missing is false", item: xWith(), cond: "size(#Line) = :zero", update: "SET #Z = :zero",
			values: vals(":zero", xN("0")), want: "ccf"},
		{name: "size of missing is false with <", item: xWith(), cond: "size(#Line) < :one", update: "SET #Z = :one",
			values: vals(":one", xN("1")), want: "ccf"},
		{name: "not size of missing", item: xWith(), cond: "NOT (size(#Line) > :zero)", update: "SET #Z = :zero",
			values: vals(":zero", xN("0")), want: "ok", after: xWith("Z", xN("0"))},
		{name: "size of number", item: xWith("N", xN("12345")), cond: "size(#N) = :n", update: "SET #Z = :n",
			values: vals(":n", xN("5")), want: "ccf"},
		{name: "noShared empty map", item: xWith("SharedHolders", xM()),
			cond: "attribute_not_exists(#SharedHolders) OR size(#SharedHolders) = :zero", update: "SET #Z = :zero",
			values: vals(":zero", xN("0")), want: "ok", after: xWith("SharedHolders", xM(), "Z", xN("0"))},
		{name: "lineEmpty with a waiter", item: xWith("Line", line),
			cond: "attribute_not_exists(#Line) OR size(#Line) = :zero", update: "SET #Z = :zero",
			values: vals(":zero", xN("0")), want: "ccf"},

		// Comparators.
		{name: "numbers compare as numbers", item: xWith("N", xN("9")), cond: "#N < :ten AND #N <= :nine AND #N >= :nine AND :ten > #N",
			update: "SET #Z = :nine", values: vals(":ten", xN("10"), ":nine", xN("9")), want: "ok", after: xWith("N", xN("9"), "Z", xN("9"))},
		{name: "decimals", item: xWith("N", xN("1.5")), cond: "#N > :one AND #N < :two", update: "SET #Z = :one",
			values: vals(":one", xN("1"), ":two", xN("2")), want: "ok", after: xWith("N", xN("1.5"), "Z", xN("1"))},
		{name: "number equal in other notation", item: xWith("N", xN("10")), cond: "#N = :v", update: "REMOVE #N",
			values: vals(":v", xN("10.0")), want: "ok", after: xWith()},
		{name: "strings compare by bytes", item: xWith("S", xS("B")), cond: "#S < :a AND #S > :A", update: "SET #Z = :a",
			values: vals(":a", xS("a"), ":A", xS("A")), want: "ok", after: xWith("S", xS("B"), "Z", xS("a"))},
		{name: "less than across types", item: xWith("N", xN("1")), cond: "#N < :s", update: "SET #Z = :s",
			values: vals(":s", xS("2")), want: "ccf"},
		{name: "equal across types", item: xWith("N", xN("1")), cond: "#N = :s", update: "SET #Z = :s",
			values: vals(":s", xS("1")), want: "ccf"},
		{name: "not equal across types", item: xWith("N", xN("1")), cond: "#N <> :s", update: "SET #Z = :s",
			values: vals(":s", xS("1")), want: "ok", after: xWith("N", xN("1"), "Z", xS("1"))},
		{name: "not equal of missing", item: xWith(), cond: "#Owner <> :s", update: "SET #Z = :s",
			values: vals(":s", xS("me")), want: "ok", after: xWith("Z", xS("me"))},
		{name: "less than of missing", item: xWith(), cond: "#N < :v", update: "SET #Z = :v",
			values: vals(":v", xN("1")), want: "ccf"},
		{name: "in", item: xWith("Schema", xS("locked-run/1")), cond: "#Schema IN (:v1, :v2)", update: "SET #Schema = :v2",
			values: vals(":v1", xS("locked-run/1"), ":v2", xS("locked-run/2")), want: "ok", after: xWith("Schema", xS("locked-run/2"))},
		{name: "in none", item: xWith("Schema", xS("terraform")), cond: "#Schema IN (:v1, :v2)", update: "SET #Schema = :v2",
			values: vals(":v1", xS("locked-run/1"), ":v2", xS("locked-run/2")), want: "ccf"},
		{name: "in of missing", item: xWith(), cond: "#Owner IN (:v1, :v2)", update: "SET #Z = :v2",
			values: vals(":v1", xS("a"), ":v2", xS("b")), want: "ccf"},
		{name: "in nested", item: xWith("SharedHolders", xM("h1", xHolder("r2"))),
			cond: "#SharedHolders.#me.#RVN IN (:prev, :next)", update: "SET #Z = :next", names: map[string]string{"#me": "h1"},
			values: vals(":prev", xS("r1"), ":next", xS("r2")), want: "ok", after: xWith("SharedHolders", xM("h1", xHolder("r2")), "Z", xS("r2"))},
		{name: "between", item: xWith("N", xN("5")), cond: "#N BETWEEN :lo AND :hi", update: "SET #Z = :lo",
			values: vals(":lo", xN("5"), ":hi", xN("6")), want: "ok", after: xWith("N", xN("5"), "Z", xN("5"))},
		{name: "and binds tighter than or", item: xWith("A", xS("x"), "C", xS("x")), cond: "#A = :x OR #B = :x AND #C = :y",
			update: "SET #Z = :y", values: vals(":x", xS("x"), ":y", xS("y")), want: "ok", after: xWith("A", xS("x"), "C", xS("x"), "Z", xS("y"))},
		{name: "parentheses", item: xWith("A", xS("x"), "C", xS("x")), cond: "(#A = :x OR #B = :x) AND #C = :y",
			update: "SET #Z = :y", values: vals(":x", xS("x"), ":y", xS("y")), want: "ccf"},
		{name: "not binds tighter than and", item: xWith("A", xS("x")), cond: "NOT #A = :y AND #A = :x",
			update: "SET #Z = :y", values: vals(":x", xS("x"), ":y", xS("y")), want: "ok", after: xWith("A", xS("x"), "Z", xS("y"))},

		// Values of every kind.
		{name: "bool", item: xWith("Line", line), cond: "#Line[1].#Shared = :t AND #Line[0].#Shared = :f", update: "SET #Z = :t",
			values: vals(":t", xBool(true), ":f", xBool(false)), want: "ok", after: xWith("Line", line, "Z", xBool(true))},
		{name: "null", item: xWith("X", xNull()), cond: "#X = :null", update: "SET #Z = :null",
			values: vals(":null", xNull()), want: "ok", after: xWith("X", xNull(), "Z", xNull())},
		{name: "list deep equal", item: xWith("Line", line), cond: "#Line = :line", update: "REMOVE #Line",
			values: vals(":line", line), want: "ok", after: xWith()},
		{name: "list deep differs", item: xWith("Line", line), cond: "#Line = :line", update: "REMOVE #Line",
			values: vals(":line", xL(xWaiter("w1", "r1", false), xWaiter("w2", "r2", true), xWaiter("w3", "r3", true))), want: "ccf"},
		{name: "map deep equal", item: xWith("M", xM("a", xL(xN("1")), "b", xM("c", xBool(true)))), cond: "#M = :m", update: "REMOVE #M",
			values: vals(":m", xM("b", xM("c", xBool(true)), "a", xL(xN("1")))), want: "ok", after: xWith()},
		{name: "map with a key more", item: xWith("M", xM("a", xS("1"))), cond: "#M = :m", update: "REMOVE #M",
			values: vals(":m", xM("a", xS("1"), "b", xS("2"))), want: "ccf"},

		// SET on nested paths.
		{name: "set map key", item: xWith("SharedHolders", xM("h1", xHolder("r1"))), cond: "size(#SharedHolders) > :zero",
			update: "SET #SharedHolders.#me = :entry ADD #FencingToken :one", names: map[string]string{"#me": "h2"},
			values: vals(":zero", xN("0"), ":entry", xHolder("r2"), ":one", xN("1")), want: "ok",
			after: xWith("SharedHolders", xM("h1", xHolder("r1"), "h2", xHolder("r2")), "FencingToken", xN("8"))},
		{name: "set map key of missing map", item: xWith(), update: "SET #SharedHolders.#me = :entry",
			names: map[string]string{"#me": "h2"}, values: vals(":entry", xHolder("r2")),
			want: "invalid: The document path provided in the update expression is invalid for update"},
		{name: "set map key of missing item", update: "SET #SharedHolders.#me = :entry",
			names: map[string]string{"#me": "h2"}, values: vals(":entry", xHolder("r2")),
			want: "invalid: The document path provided in the update expression is invalid for update"},
		{name: "set map key of a string", item: xWith("SharedHolders", xS("x")), update: "SET #SharedHolders.#me = :entry",
			names: map[string]string{"#me": "h2"}, values: vals(":entry", xHolder("r2")),
			want: "invalid: The document path provided in the update expression is invalid for update"},
		{name: "set third level of missing second", item: xWith("A", xM()), update: "SET #A.#b.#c = :v",
			values: vals(":v", xS("x")), want: "invalid: The document path provided in the update expression is invalid for update"},
		{name: "refresh", item: xWith("Line", line), cond: "#Line[1].#Owner = :me",
			update: "SET #Line[1].#HeartbeatAt = :now, #Line[1].#RVN = :new",
			values: vals(":me", xS("w2"), ":now", xS("t1"), ":new", xS("r9")), want: "ok",
			after: xWith("Line", xL(xWaiter("w1", "r1", false),
				xM("Owner", xS("w2"), "RVN", xS("r9"), "Shared", xBool(true), "MaxHolders", xN("0"), "HeartbeatAt", xS("t1")),
				xWaiter("w3", "r3", false)))},
		{name: "set list element past the end appends", item: xWith("L", xL(xS("a"))), update: "SET #L[5] = :v",
			values: vals(":v", xS("b")), want: "ok", after: xWith("L", xL(xS("a"), xS("b")))},
		{name: "set two past the end in reverse", item: xWith("L", xL(xS("a"))), update: "SET #L[6] = :y, #L[5] = :x",
			values: vals(":x", xS("x"), ":y", xS("y")), want: "ok", after: xWith("L", xL(xS("a"), xS("x"), xS("y")))},
		{name: "append and remove", item: xWith("L", xL(xS("a"), xS("b"))), update: "SET #L[5] = :x REMOVE #L[0]",
			values: vals(":x", xS("x")), want: "ok", after: xWith("L", xL(xS("b"), xS("x")))},
		{name: "set into missing list element", item: xWith("L", xL(xM())), update: "SET #L[1].#a = :v",
			values: vals(":v", xS("b")), want: "invalid: The document path provided in the update expression is invalid for update"},
		{name: "set list element of a map", item: xWith("L", xM()), update: "SET #L[0] = :v",
			values: vals(":v", xS("b")), want: "invalid: The document path provided in the update expression is invalid for update"},

		// REMOVE.
		{name: "remove head shifts", item: xWith("Line", line), cond: "#Line[0].#Owner = :me", update: "REMOVE #Line[0]",
			values: vals(":me", xS("w1")), want: "ok", after: xWith("Line", xL(xWaiter("w2", "r2", true), xWaiter("w3", "r3", false)))},
		{name: "remove two by their old indexes", item: xWith("Line", line), update: "REMOVE #Line[2], #Line[0]",
			want: "ok", after: xWith("Line", xL(xWaiter("w2", "r2", true)))},
		{name: "remove the last leaves an empty list", item: xWith("Line", xL(xWaiter("w1", "r1", false))), update: "REMOVE #Line[0]",
			want: "ok", after: xWith("Line", xL())},
		{name: "remove an element and a key of a later one", item: xWith("Line", line), update: "REMOVE #Line[0], #Line[2].#RVN, #Line[1].#Shared",
			want: "ok", after: xWith("Line", xL(
				xM("Owner", xS("w2"), "RVN", xS("r2"), "MaxHolders", xN("0"), "HeartbeatAt", xS("t0")),
				xM("Owner", xS("w3"), "Shared", xBool(false), "MaxHolders", xN("0"), "HeartbeatAt", xS("t0"))))},
		{name: "remove keys of two maps", item: xWith("SharedHolders", xM("a", xHolder("1"), "b", xHolder("2")), "M", xM("a", xS("x"))),
			update: "REMOVE #SharedHolders.#a, #M.#a, #SharedHolders.#b.#RVN",
			want:   "ok", after: xWith("SharedHolders", xM("b", xM("Host", xS("h"), "Pid", xN("7"), "HeartbeatAt", xS("t0"))), "M", xM())},
		{name: "remove past the end", item: xWith("Line", line), update: "REMOVE #Line[3]",
			want: "ok", after: xWith("Line", line)},
		{name: "remove element of missing list", item: xWith(), update: "REMOVE #Line[0]",
			want: "invalid: The document path provided in the update expression is invalid for update"},
		{name: "remove missing map key", item: xWith("SharedHolders", xM("h1", xHolder("r1"))), update: "REMOVE #SharedHolders.#me",
			names: map[string]string{"#me": "h2"}, want: "ok", after: xWith("SharedHolders", xM("h1", xHolder("r1")))},
		{name: "remove key of missing map", item: xWith(), update: "REMOVE #SharedHolders.#me",
			names: map[string]string{"#me": "h2"}, want: "invalid: The document path provided in the update expression is invalid for update"},
		{name: "remove last key leaves an empty map", item: xWith("SharedHolders", xM("h1", xHolder("r1"))),
			cond: "attribute_exists(#SharedHolders.#me)", update: "REMOVE #SharedHolders.#me",
			names: map[string]string{"#me": "h1"}, want: "ok", after: xWith("SharedHolders", xM())},
		{name: "evict dead waiter", item: xWith("Line", line), cond: "#Line[1].#Owner = :o AND #Line[1].#RVN = :rvn",
			update: "REMOVE #Line[1]", values: vals(":o", xS("w2"), ":rvn", xS("r2")), want: "ok",
			after: xWith("Line", xL(xWaiter("w1", "r1", false), xWaiter("w3", "r3", false)))},
		{name: "evict waiter that refreshed", item: xWith("Line", line), cond: "#Line[1].#Owner = :o AND #Line[1].#RVN = :rvn",
			update: "REMOVE #Line[1]", values: vals(":o", xS("w2"), ":rvn", xS("r1")), want: "ccf"},
		{name: "evict dead shared holder", item: xWith("SharedHolders", xM("h1", xHolder("r1"), "h2", xHolder("r2"))),
			cond: "#SharedHolders.#o.#RVN = :rvn", update: "REMOVE #SharedHolders.#o", names: map[string]string{"#o": "h2"},
			values: vals(":rvn", xS("r2")), want: "ok", after: xWith("SharedHolders", xM("h1", xHolder("r1")))},

		// ADD and arithmetic.
		{name: "add to missing", item: xWith(), update: "ADD #Count :one", values: vals(":one", xN("1")),
			want: "ok", after: xWith("Count", xN("1"))},
		{name: "add to missing item", update: "ADD #FencingToken :one", values: vals(":one", xN("1")),
			want: "ok", after: xItem{"FencingToken": xN("1")}},
		{name: "add to number", item: xWith("FencingToken", xN("9223372036854775806")), update: "ADD #FencingToken :one",
			values: vals(":one", xN("1")), want: "ok", after: xWith("FencingToken", xN("9223372036854775807"))},
		{name: "add to string", item: xWith("FencingToken", xS("7")), update: "ADD #FencingToken :one",
			values: vals(":one", xN("1")), want: "invalid: An operand in the update expression has an incorrect data type"},
		{name: "add a string", item: xWith(), update: "ADD #FencingToken :one",
			values: vals(":one", xS("1")), want: "invalid: Incorrect operand type for operator or function"},
		{name: "add nested", item: xWith("M", xM("n", xN("2"))), update: "ADD #M.#n :one",
			values: vals(":one", xN("1")), want: "ok", after: xWith("M", xM("n", xN("3")))},
		{name: "plus", item: xWith("N", xN("2")), update: "SET #N = #N + :one",
			values: vals(":one", xN("1")), want: "ok", after: xWith("N", xN("3"))},
		{name: "minus", item: xWith("N", xN("2")), update: "SET #Z = :one - #N",
			values: vals(":one", xN("1")), want: "ok", after: xWith("N", xN("2"), "Z", xN("-1"))},
		{name: "plus on missing", item: xWith(), update: "SET #N = #N + :one",
			values: vals(":one", xN("1")), want: "invalid: The provided expression refers to an attribute that does not exist in the item"},
		{name: "plus on a string", item: xWith("N", xS("2")), update: "SET #N = #N + :one",
			values: vals(":one", xN("1")), want: "invalid: An operand in the update expression has an incorrect data type"},
		{name: "plus if_not_exists", item: xWith(), update: "SET #N = if_not_exists(#N, :zero) + :one",
			values: vals(":zero", xN("0"), ":one", xN("1")), want: "ok", after: xWith("N", xN("1"))},

		// if_not_exists and list_append: joining the line.
		{name: "join on missing item", cond: "attribute_not_exists(#LockID) OR #Schema IN (:v1, :v2)",
			update: "SET #Line = list_append(if_not_exists(#Line, :empty), :meList), #Schema = :v2",
			values: vals(":v1", xS("locked-run/1"), ":v2", xS("locked-run/2"), ":empty", xL(), ":meList", xL(xWaiter("w4", "r4", false))),
			want:   "ok", after: xItem{"Schema": xS("locked-run/2"), "Line": xL(xWaiter("w4", "r4", false))}},
		{name: "join behind others", item: xWith("Line", line), cond: "attribute_not_exists(#LockID) OR #Schema IN (:v1, :v2)",
			update: "SET #Line = list_append(if_not_exists(#Line, :empty), :meList), #Schema = :v2",
			values: vals(":v1", xS("locked-run/1"), ":v2", xS("locked-run/2"), ":empty", xL(), ":meList", xL(xWaiter("w4", "r4", false))),
			want:   "ok", after: xWith("Line", xL(xWaiter("w1", "r1", false), xWaiter("w2", "r2", true), xWaiter("w3", "r3", false), xWaiter("w4", "r4", false)))},
		{name: "join a foreign item", item: xItem{"Digest": xS("abc")}, cond: "attribute_not_exists(#LockID) OR #Schema IN (:v1, :v2)",
			update: "SET #Line = list_append(if_not_exists(#Line, :empty), :meList), #Schema = :v2",
			values: vals(":v1", xS("locked-run/1"), ":v2", xS("locked-run/2"), ":empty", xL(), ":meList", xL(xWaiter("w4", "r4", false))),
			want:   "ccf"},
		{name: "list_append in front", item: xWith("L", xL(xS("b"))), update: "SET #L = list_append(:a, #L)",
			values: vals(":a", xL(xS("a"))), want: "ok", after: xWith("L", xL(xS("a"), xS("b")))},
		{name: "list_append of missing", item: xWith(), update: "SET #L = list_append(#L, :a)",
			values: vals(":a", xL(xS("a"))), want: "invalid: The provided expression refers to an attribute that does not exist in the item"},
		{name: "list_append of a string", item: xWith("L", xS("b")), update: "SET #L = list_append(#L, :a)",
			values: vals(":a", xL(xS("a"))), want: "invalid: An operand in the update expression has an incorrect data type"},
		{name: "if_not_exists keeps", item: xWith("M", xN("3")), update: "SET #M = if_not_exists(#M, :v)",
			values: vals(":v", xN("0")), want: "ok", after: xWith("M", xN("3"))},
		{name: "if_not_exists nested", item: xWith("M", xM()), update: "SET #M.#a = if_not_exists(#M.#a, :v)",
			values: vals(":v", xN("0")), want: "ok", after: xWith("M", xM("a", xN("0")))},

		// Overlapping paths, clauses, placeholders.
		{name: "overlap whole and element", item: xWith("Line", line), update: "SET #Line = :x, #Line[0].#a = :y",
			values: vals(":x", xL(), ":y", xS("y")), want: "invalid: Two document paths overlap"},
		{name: "overlap set and remove", item: xWith("A", xS("a")), update: "SET #A = :x REMOVE #A",
			values: vals(":x", xS("x")), want: "invalid: Two document paths overlap"},
		{name: "overlap same element twice", item: xWith("Line", line), update: "REMOVE #Line[0], #Line[0]",
			want: "invalid: Two document paths overlap"},
		{name: "conflict map and list", item: xWith("A", xM()), update: "SET #A.#b = :x, #A[0] = :x",
			values: vals(":x", xS("x")), want: "invalid: Two document paths conflict"},
		{name: "siblings do not overlap", item: xWith("A", xM()), update: "SET #A.#b = :x, #A.#c = :x",
			values: vals(":x", xS("x")), want: "ok", after: xWith("A", xM("b", xS("x"), "c", xS("x")))},
		{name: "clause twice", item: xWith(), update: "SET #A = :x SET #B = :x",
			values: vals(":x", xS("x")), want: "invalid: "},
		{name: "unused value", item: xWith(), update: "SET #A = :x",
			values: vals(":x", xS("x"), ":y", xS("y")), want: "invalid: unused in expressions"},
		{name: "unused name", item: xWith(), update: "SET #A = :x", names: map[string]string{"#B": "B"},
			values: vals(":x", xS("x")), want: "invalid: unused in expressions"},

		{name: "the key cannot be updated", item: xWith(), update: "REMOVE #LockID", want: "invalid: Cannot update attribute LockID"},

		{name: "empty values map", item: xWith("Z", xS("z")), update: "REMOVE #Z", emptyValues: true,
			want: "invalid: ExpressionAttributeValues must not be empty"},
		{name: "empty set value", item: xWith(), update: "SET #Z = :x", values: vals(":x", &types.AttributeValueMemberSS{Value: []string{}}),
			want: "invalid: may not be empty"},
		{name: "bare reserved word", item: xWith(), update: "SET Owner = :x", values: vals(":x", xS("x")),
			want: "invalid: Attribute name is a reserved keyword; reserved keyword: Owner"},
		{name: "bare reserved map key", item: xWith("M", xM("owner", xS("x"))), cond: "#M.owner = :x", update: "SET #Z = :x",
			values: vals(":x", xS("x")), want: "invalid: Attribute name is a reserved keyword; reserved keyword: owner"},
		{name: "bare names", item: xWith("M", xM("Holder", xS("x"))), cond: "M.Holder = :x", update: "SET Z = :x, Line = :x",
			values: vals(":x", xS("x")), want: "ok", after: xWith("M", xM("Holder", xS("x")), "Z", xS("x"), "Line", xS("x"))},
		{name: "size of a value", item: xWith(), cond: "size(:x) = :one", update: "SET #Z = :x",
			values: vals(":x", xS("x"), ":one", xN("1")), want: "ok", after: xWith("Z", xS("x"))},

		// Parentheses: a group around nothing but a group is refused.
		{name: "parentheses around all", item: xWith("A", xS("x")), cond: "(#A = :x)", update: "SET #Z = :x",
			values: vals(":x", xS("x")), want: "ok", after: xWith("A", xS("x"), "Z", xS("x"))},
		{name: "parentheses in a group", item: xWith("A", xS("x")), cond: "((#A = :x) AND (attribute_exists(#A)))", update: "SET #Z = :x",
			values: vals(":x", xS("x")), want: "ok", after: xWith("A", xS("x"), "Z", xS("x"))},
		{name: "double parentheses", item: xWith("A", xS("x")), cond: "((#A = :x))", update: "SET #Z = :x",
			values: vals(":x", xS("x")), want: "invalid: The expression has redundant parentheses"},
		{name: "double parentheses inside", item: xWith("A", xS("x")), cond: "#A = :x AND ((#A = :x OR #A = :y))", update: "SET #Z = :x",
			values: vals(":x", xS("x"), ":y", xS("y")), want: "invalid: The expression has redundant parentheses"},
		{name: "double parentheses after not", item: xWith("A", xS("x")), cond: "NOT ((#A = :y))", update: "SET #Z = :x",
			values: vals(":x", xS("x"), ":y", xS("y")), want: "invalid: The expression has redundant parentheses"},
		{name: "nested groups", item: xWith("A", xS("x")), cond: "attribute_not_exists(#LockID) OR (#A = :x AND (#A = :y OR (#A = :x AND #A <> :y)))",
			update: "SET #Z = :x", values: vals(":x", xS("x"), ":y", xS("y")), want: "ok", after: xWith("A", xS("x"), "Z", xS("x"))},

		{name: "item over 400 KB", item: xWith(), update: "SET #Z = :x",
			values: vals(":x", xS(strings.Repeat("x", 410*1024))), want: "invalid: Item size to update has exceeded the maximum allowed size"},
		{name: "item under 400 KB", item: xWith(), update: "SET #Z = :x",
			values: vals(":x", xS(strings.Repeat("x", 390*1024))), want: "ok", after: xWith("Z", xS(strings.Repeat("x", 390*1024)))},
		{name: "line over 400 KB", item: xWith("Line", xL(xS(strings.Repeat("x", 300*1024)))), update: "SET #Line = list_append(#Line, :x)",
			values: vals(":x", xL(xS(strings.Repeat("x", 110*1024)))), want: "invalid: Item size to update has exceeded the maximum allowed size"},
		{name: "add nested under missing map", item: xWith(), update: "ADD #M.#n :one",
			values: vals(":one", xN("1")), want: "invalid: The document path provided in the update expression is invalid for update"},

		// Every operand is read from the item before the update.
		{name: "swap", item: xWith("A", xS("a"), "B", xS("b")), update: "SET #A = #B, #B = #A",
			want: "ok", after: xWith("A", xS("b"), "B", xS("a"))},
		{name: "read removed element", item: xWith("Line", line), update: "SET #Head = #Line[0].#Owner REMOVE #Line[0]",
			want: "ok", after: xWith("Head", xS("w1"), "Line", xL(xWaiter("w2", "r2", true), xWaiter("w3", "r3", false)))},
		{name: "set later element and remove earlier", item: xWith("Line", line), update: "SET #Line[2].#RVN = :r REMOVE #Line[0]",
			values: vals(":r", xS("r9")), want: "ok",
			after: xWith("Line", xL(xWaiter("w2", "r2", true),
				xM("Owner", xS("w3"), "RVN", xS("r9"), "Shared", xBool(false), "MaxHolders", xN("0"), "HeartbeatAt", xS("t0"))))},
		{name: "condition fails before a bad remove", item: xWith(), cond: "attribute_exists(#SharedHolders.#me)", update: "REMOVE #SharedHolders.#me",
			names: map[string]string{"#me": "h1"}, want: "ccf"},
		{name: "size of emoji string", item: xWith("S", xS("a\U0001F600")), cond: "size(#S) = :n", update: "SET #Z = :n",
			values: vals(":n", xN("3")), want: "ok", after: xWith("S", xS("a\U0001F600"), "Z", xN("3"))},
		{name: "size of bool", item: xWith("B", xBool(true)), cond: "size(#B) >= :zero", update: "SET #Z = :zero",
			values: vals(":zero", xN("0")), want: "ccf"},
		{name: "size of missing not equal", item: xWith(), cond: "size(#Line) <> :zero", update: "SET #Z = :zero",
			values: vals(":zero", xN("0")), want: "ok", after: xWith("Z", xN("0"))},
		{name: "not equal both missing", item: xWith(), cond: "#A <> #B", update: "SET #Z = :x",
			values: vals(":x", xS("x")), want: "ok", after: xWith("Z", xS("x"))},
		{name: "not equal nested missing", item: xWith(), cond: "#Line[0].#Owner <> :x", update: "SET #Z = :x",
			values: vals(":x", xS("x")), want: "ok", after: xWith("Z", xS("x"))},
		{name: "not of missing equal", item: xWith(), cond: "NOT #A = :x", update: "SET #Z = :x",
			values: vals(":x", xS("x")), want: "ok", after: xWith("Z", xS("x"))},
		{name: "between of missing", item: xWith(), cond: "#N BETWEEN :lo AND :hi", update: "SET #Z = :lo",
			values: vals(":lo", xN("5"), ":hi", xN("6")), want: "ccf"},
		{name: "not exists element of missing list", item: xWith(), cond: "attribute_not_exists(#Line[0])", update: "SET #Z = :x",
			values: vals(":x", xS("x")), want: "ok", after: xWith("Z", xS("x"))},
		{name: "numbers as written", item: xWith(), update: "SET #A = :a, #B = :b ADD #C :c",
			values: vals(":a", xN("010.50"), ":b", xN("1e3"), ":c", xN("1.50")), want: "ok", after: xWith("A", xN("010.50"), "B", xN("1e3"), "C", xN("1.50"))},
		{name: "decimal sum", item: xWith("C", xN("1.5")), update: "ADD #C :c",
			values: vals(":c", xN("1")), want: "ok", after: xWith("C", xN("2.5"))},
		{name: "set element of empty list", item: xWith("L", xL()), update: "SET #L[1] = :x",
			values: vals(":x", xS("x")), want: "ok", after: xWith("L", xL(xS("x")))},
		{name: "remove element of a string", item: xWith("L", xS("abc")), update: "REMOVE #L[0]",
			want: "invalid: The document path provided in the update expression is invalid for update"},
		{name: "same path twice", item: xWith(), update: "SET #A = :x, #A = :x",
			values: vals(":x", xS("x")), want: "invalid: Two document paths overlap"},
		{name: "two list elements", item: xWith("L", xL(xS("a"), xS("b"))), update: "SET #L[0] = :x, #L[1] = :y",
			values: vals(":x", xS("x"), ":y", xS("y")), want: "ok", after: xWith("L", xL(xS("x"), xS("y")))},
		{name: "set element and remove another", item: xWith("L", xL(xS("a"), xS("b"), xS("c"))), update: "SET #L[0] = :x REMOVE #L[1]",
			values: vals(":x", xS("x")), want: "ok", after: xWith("L", xL(xS("x"), xS("c")))},
		{name: "numbers in a map compare by value", item: xWith("M", xM("n", xN("1"))), cond: "#M = :m", update: "REMOVE #M",
			values: vals(":m", xM("n", xN("1.0"))), want: "ok", after: xWith()},
		{name: "if_not_exists under missing map", item: xWith(), update: "SET #M.#a = if_not_exists(#M.#a, :v)",
			values: vals(":v", xN("0")), want: "invalid: The document path provided in the update expression is invalid for update"},
		{name: "list_append to empty", item: xWith("L", xL()), update: "SET #L = list_append(#L, :a)",
			values: vals(":a", xL(xS("a"))), want: "ok", after: xWith("L", xL(xS("a")))},
		{name: "delete from set", item: xWith("SS", &types.AttributeValueMemberSS{Value: []string{"a", "b"}}), update: "DELETE #SS :d",
			values: vals(":d", &types.AttributeValueMemberSS{Value: []string{"a"}}), want: "ok", after: xWith("SS", &types.AttributeValueMemberSS{Value: []string{"b"}})},
		{name: "delete last of set", item: xWith("SS", &types.AttributeValueMemberSS{Value: []string{"a"}}), update: "DELETE #SS :d",
			values: vals(":d", &types.AttributeValueMemberSS{Value: []string{"a"}}), want: "ok", after: xWith()},
		{name: "add to set", item: xWith("SS", &types.AttributeValueMemberSS{Value: []string{"a"}}), update: "ADD #SS :d",
			values: vals(":d", &types.AttributeValueMemberSS{Value: []string{"a", "b"}}), want: "ok", after: xWith("SS", &types.AttributeValueMemberSS{Value: []string{"a", "b"}})},
		{name: "literal comparison of types", item: xWith(), cond: ":a < :b", update: "SET #Z = :a",
			values: vals(":a", xBool(true), ":b", xBool(false)), want: "invalid: Incorrect operand type for operator or function; operator or function: <, operand type: BOOL"},
		{name: "overlap refused before the condition", item: xWith(), cond: "#A = :x", update: "SET #Line = :x, #Line[0] = :x",
			values: vals(":x", xS("x")), want: "invalid: Two document paths overlap"},
		{name: "unused value refused before the condition", item: xWith(), cond: "#A = :x", update: "SET #Z = :x",
			values: vals(":x", xS("x"), ":y", xS("y")), want: "invalid: unused in expressions"},
		{name: "condition fails before a bad update", item: xWith(), cond: "#A = :x", update: "SET #M.#a = :x",
			values: vals(":x", xS("x")), want: "ccf"},
	}
}

// TestFakeMatchesDynamoDBLocalRandomly sends random writes of DESIGN12 (and
// of layout v1) over random items of both layouts to DynamoDB Local and to
// the fake, and compares what each did: the outcome and the item after.
func TestFakeMatchesDynamoDBLocalRandomly(t *testing.T) {
	t.Parallel()
	ep := ddblocal.Endpoint(t)
	table := ddblocal.NewTable(t)
	client := ddblocal.Client(ep, nil)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 12))
	const rounds = 400
	seen := map[string]int{}
	defer func() {
		t.Logf("outcomes: %v", seen)
		if seen["ok"] == 0 || seen["ccf"] == 0 || seen["invalid"] == 0 {
			t.Errorf("%d rounds without each outcome: %v", rounds, seen)
		}
	}()
	for i := range rounds {
		c := xRandomCase(r)
		key := fmt.Sprintf("random-%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if c.item != nil {
			if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: xWithKey(c.item, key)}); err != nil {
				cancel()
				t.Fatalf("put: %v", err)
			}
		}
		out, err := client.UpdateItem(ctx, c.input(table, key))
		got, gerr := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: keyOf(key), ConsistentRead: aws.Bool(true)})
		cancel()
		if gerr != nil {
			t.Fatalf("get: %v", gerr)
		}
		local := xOutcome(err, out, got.Item)
		seen[local.kind]++
		fake := xRunFake(t, c, key)
		if fake.kind != local.kind || fake.msg != local.msg ||
			!xSameItem(fake.after, local.after) || !xSameItem(fake.attrs, local.attrs) {
			t.Errorf("%s over %s:\n cond   %s\n update %s\n names  %v\n fake  %s %q %s\n local %s %q %s", c.name, xShowItem(c.item),
				c.cond, c.update, c.names, fake.kind, fake.msg, xShowItem(fake.after), local.kind, local.msg, xShowItem(local.after))
		}
	}
}

// xRandomCase returns a random write of DESIGN12 or layout v1 over a random
// item; the case has no expectation of its own.
func xRandomCase(r *rand.Rand) exprCase {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	owners := []string{"w1", "w2", "w3", "h1", "h2"}
	rvns := []string{"r1", "r2"}
	var item xItem
	if r.IntN(10) != 0 {
		item = xItem{}
		if s := pick("locked-run/1", "locked-run/2", "locked-run/2", "terraform", ""); s != "" {
			item["Schema"] = xS(s)
		}
		if r.IntN(4) != 0 {
			item["FencingToken"] = xN(pick("0", "7", "9223372036854775807"))
		}
		if r.IntN(3) == 0 {
			item["Owner"], item["RVN"] = xS(pick(owners...)), xS(pick(rvns...))
		}
		if n := r.IntN(5); n > 0 {
			var line []types.AttributeValue
			for range n - 1 {
				line = append(line, xWaiter(pick(owners...), pick(rvns...), r.IntN(2) == 0))
			}
			item["Line"] = xL(line...)
		}
		if n := r.IntN(5); n > 0 {
			m := map[string]types.AttributeValue{}
			for range n - 1 {
				m[pick(owners...)] = xHolder(pick(rvns...))
			}
			item["SharedHolders"] = &types.AttributeValueMemberM{Value: m}
		}
		if r.IntN(2) == 0 {
			item["MaxHolders"] = xN(pick("0", "2", "3"))
		}
	}
	me, o, rvn := pick(owners...), pick(owners...), pick(rvns...)
	idx := fmt.Sprint(r.IntN(4))
	// Half the time, name an entry the item has, so that conditions hold
	// more often.
	if l, ok := item["Line"].(*types.AttributeValueMemberL); ok && len(l.Value) > 0 && r.IntN(2) == 0 {
		i := r.IntN(len(l.Value))
		e := l.Value[i].(*types.AttributeValueMemberM).Value
		idx, me, rvn = fmt.Sprint(i), e["Owner"].(*types.AttributeValueMemberS).Value, e["RVN"].(*types.AttributeValueMemberS).Value
		o = me
	} else if m, ok := item["SharedHolders"].(*types.AttributeValueMemberM); ok && len(m.Value) > 0 && r.IntN(2) == 0 {
		keys := make([]string, 0, len(m.Value))
		for k := range m.Value {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		me = keys[r.IntN(len(keys))]
		o, rvn = me, m.Value[me].(*types.AttributeValueMemberM).Value["RVN"].(*types.AttributeValueMemberS).Value
	}
	n := pick("0", "2", "3")
	c := exprCase{item: item, names: map[string]string{}}
	switch k := r.IntN(15); k {
	case 0:
		c.name, c.cond, c.update, c.values = "exclusive fast path", xExclusiveFast, xExclusiveSet, xExclusiveVals()
	case 1:
		c.name, c.cond, c.update = "shared empty form", xSharedEmpty, xSharedEmptySet
		c.values = xSchemaVals(":mapWithMe", xM(me, xHolder(rvn)), ":n", xN(n))
	case 2:
		c.name, c.cond, c.update = "shared room form", xSharedRoom, xSharedRoomSet
		c.names["#me"], c.values = me, xSchemaVals(":entry", xHolder(rvn), ":n", xN(n))
	case 3:
		c.name, c.cond, c.update, c.values = "head acquires exclusive", xHeadExclusive, xHeadExclusiveSet, xHeadVals(me)
	case 4:
		c.name, c.cond, c.update = "head acquires shared", xHeadShared, xHeadSharedSet
		c.names["#me"], c.values = me, xSchemaVals(":me", xS(me), ":entry", xHolder(rvn), ":n", xN(n))
	case 5:
		c.name, c.cond, c.update, c.values = "join", xJoinCond, xJoinSet, xJoinVals(me)
	case 6:
		c.name, c.cond = "refresh", "#Line["+idx+"].#Owner = :me"
		c.update = "SET #Line[" + idx + "].#HeartbeatAt = :now, #Line[" + idx + "].#RVN = :new"
		c.values = map[string]types.AttributeValue{":me": xS(me), ":now": xS("t1"), ":new": xS("r9")}
	case 7:
		c.name, c.cond, c.update = "leave", "#Line["+idx+"].#Owner = :me", "REMOVE #Line["+idx+"]"
		c.values = map[string]types.AttributeValue{":me": xS(me)}
	case 8:
		c.name, c.cond, c.update = "evict", "#Line["+idx+"].#Owner = :o AND #Line["+idx+"].#RVN = :rvn", "REMOVE #Line["+idx+"]"
		c.values = map[string]types.AttributeValue{":o": xS(o), ":rvn": xS(rvn)}
	case 9:
		c.name, c.cond, c.update = "evict shared holder", "#SharedHolders.#o.#RVN = :rvn", "REMOVE #SharedHolders.#o"
		c.names["#o"], c.values = o, map[string]types.AttributeValue{":rvn": xS(rvn)}
	case 10:
		c.name, c.cond = "shared heartbeat", "#SharedHolders.#me.#RVN IN (:prev, :next)"
		c.update = "SET #SharedHolders.#me.#RVN = :next, #SharedHolders.#me.#HeartbeatAt = :now"
		c.names["#me"], c.values = me, map[string]types.AttributeValue{":prev": xS(rvn), ":next": xS("r9"), ":now": xS("t1")}
	case 11:
		c.name, c.cond, c.update = "shared release", "attribute_exists(#SharedHolders.#me)", "REMOVE #SharedHolders.#me"
		c.names["#me"] = me
	case 12:
		c.name, c.cond, c.update = "v1 heartbeat", "#Owner = :owner AND #RVN IN (:prev, :next)", "SET #RVN = :next, #HeartbeatAt = :now"
		c.values = map[string]types.AttributeValue{":owner": xS(me), ":prev": xS(rvn), ":next": xS("r9"), ":now": xS("t1")}
	case 13:
		c.name, c.cond, c.update = "v1 release", "#Owner = :owner", "REMOVE #Owner, #RVN"
		c.values = map[string]types.AttributeValue{":owner": xS(me)}
	case 14:
		// Not a write of the design: unconditional, to reach the paths
		// the conditions guard.
		c.name = "unconditional"
		c.update = pick("REMOVE #Line["+idx+"]", "REMOVE #SharedHolders.#me", "SET #SharedHolders.#me = :v",
			"SET #Line["+idx+"].#RVN = :v", "SET #Line = list_append(#Line, :l)", "SET #Line["+idx+"] = :v")
		c.values = map[string]types.AttributeValue{":v": xS("v"), ":l": xL(xS("v"))}
		if !strings.Contains(c.update, ":l") {
			delete(c.values, ":l")
		}
		if !strings.Contains(c.update, ":v") {
			delete(c.values, ":v")
		}
		if len(c.values) == 0 {
			c.values = nil
		}
		if strings.Contains(c.update, "#me") {
			c.names["#me"] = me
		}
	}
	return c
}
