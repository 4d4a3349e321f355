package lock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// fakeTable is an in-memory DynamoDB table for unit tests. It honours the
// condition and update expressions the backend sends (the part of the
// grammar it uses, see exprParser), checks them as DynamoDB does (every
// name and value placeholder used, no overlapping paths, and so on), and
// fails the test on any call it was not scripted for: each test allows the
// kinds of calls it expects, and may script faults with a hook. Tests play
// other processes with put, update, remove and exec.
type fakeTable struct {
	fail  func(format string, args ...any)
	clock Clock
	name  string

	mu       sync.Mutex
	exists   bool
	keyName  string // partition key name when created by the test
	creating int    // DescribeTable answers CREATING this many more times
	items    map[string]map[string]types.AttributeValue
	allowed  map[string]bool
	hook     func(c *fakeCall) (apply bool, err error)
	calls    []*fakeCall
	pageSize int
	noOld    bool          // behave like an endpoint without ReturnValuesOnConditionCheckFailure
	shadow   *fakeShadow   // DynamoDB Local, checking every update (EnvFakeShadow)
	changed  chan struct{} // closed and replaced at every call's end
	won      chan struct{} // closed when an acquire or takeover first succeeds
}

// A fakeCall is one request the table received.
type fakeCall struct {
	Seq     int
	Kind    string // op, or for UpdateItem what it does (updateKind)
	At      time.Time
	Ctx     context.Context
	Timeout time.Duration // real time left before the call's deadline; 0 without one
	CtxErr  error         // the context's error when the call arrived
	NoRetry bool          // the SDK's retries were turned off
	Update  *dynamodb.UpdateItemInput
	Get     *dynamodb.GetItemInput
	Err     error // what the call returned
	Ended   bool
}

const fakeTableName = "locks"

// newFakeTable returns an existing, empty table that allows the given kinds
// of calls: GetItem, Scan, CreateTable, DescribeTable, and for UpdateItem
// the kinds of updateKind: acquire, takeover, heartbeat, release, force,
// join, refresh, leave, evict, shared-acquire, shared-heartbeat,
// shared-release.
func newFakeTable(t testing.TB, clock Clock, allowed ...string) *fakeTable {
	f := newFakeTableFailing(func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
	}, clock, allowed...)
	f.shadow = newFakeShadow(t)
	return f
}

func newFakeTableFailing(fail func(string, ...any), clock Clock, allowed ...string) *fakeTable {
	f := &fakeTable{
		fail:    fail,
		clock:   clock,
		name:    fakeTableName,
		exists:  true,
		keyName: attrKey,
		items:   make(map[string]map[string]types.AttributeValue),
		allowed: make(map[string]bool),
		changed: make(chan struct{}),
		won:     make(chan struct{}),
	}
	f.allow(allowed...)
	return f
}

func (f *fakeTable) allow(kinds ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range kinds {
		f.allowed[k] = true
	}
}

func (f *fakeTable) setHook(h func(c *fakeCall) (apply bool, err error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// put stores an item as given, bypassing every check: a test's way of
// playing another process.
func (f *fakeTable) put(item map[string]types.AttributeValue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items[item[attrKey].(*types.AttributeValueMemberS).Value] = cloneItem(item)
}

// update changes attributes of key's item directly (nil removes one).
func (f *fakeTable) update(key string, attrs map[string]types.AttributeValue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	item := f.items[key]
	for k, v := range attrs {
		if v == nil {
			delete(item, k)
		} else {
			item[k] = v
		}
	}
}

// exec runs an UpdateItem on key's item as another process would, past
// the scripting and the hook: cond may be empty; kv are the :values, as
// placeholder, value pairs; every #X placeholder names the attribute X,
// unless kv maps it (a "#x", "name" pair) to another name. It returns the
// error DynamoDB would (a *types.ConditionalCheckFailedException, or a
// ValidationException).
func (f *fakeTable) exec(key, cond, update string, kv ...any) error {
	in := &dynamodb.UpdateItemInput{TableName: aws.String(f.name), Key: keyOf(key), UpdateExpression: aws.String(update),
		ExpressionAttributeNames: map[string]string{}}
	if cond != "" {
		in.ConditionExpression = aws.String(cond)
	}
	for _, tok := range tokenize(cond + " " + update) {
		if strings.HasPrefix(tok, "#") {
			in.ExpressionAttributeNames[tok] = tok[1:]
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		ph := kv[i].(string)
		switch v := kv[i+1].(type) {
		case string:
			in.ExpressionAttributeNames[ph] = v
		case types.AttributeValue:
			if in.ExpressionAttributeValues == nil {
				in.ExpressionAttributeValues = map[string]types.AttributeValue{}
			}
			in.ExpressionAttributeValues[ph] = v
		}
	}
	if len(in.ExpressionAttributeNames) == 0 {
		in.ExpressionAttributeNames = nil
	}
	_, err := f.applyUpdate(in)
	return err
}

func (f *fakeTable) remove(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.items, key)
}

func (f *fakeTable) item(key string) map[string]types.AttributeValue {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cloneItem(f.items[key])
}

func (f *fakeTable) record(t testing.TB, key string) Record {
	t.Helper()
	item := f.item(key)
	if item == nil {
		return Record{}
	}
	rec, err := decodeRecord(item)
	if err != nil {
		t.Fatalf("decode %q: %v", key, err)
	}
	return rec
}

// callsOf returns the calls of the given kinds (all calls when none).
func (f *fakeTable) callsOf(kinds ...string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if len(kinds) == 0 || contains(kinds, c.Kind) {
			out = append(out, *c)
		}
	}
	return out
}

// waitCalls waits until n calls of kind have ended, and returns them.
func (f *fakeTable) waitCalls(t testing.TB, kind string, n int) []fakeCall {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	for {
		f.mu.Lock()
		var got []fakeCall
		for _, c := range f.calls {
			if c.Kind == kind && c.Ended {
				got = append(got, *c)
			}
		}
		ch := f.changed
		f.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-limit.C:
			t.Fatalf("fake table: waited %s for %d %s calls, have %d", waitLimit, n, kind, len(got))
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// begin records a call and says whether it was scripted.
func (f *fakeTable) begin(ctx context.Context, kind string, optFns []func(*dynamodb.Options)) (*fakeCall, bool) {
	var o dynamodb.Options
	for _, fn := range optFns {
		fn(&o)
	}
	_, noRetry := o.Retryer.(aws.NopRetryer)
	c := &fakeCall{Kind: kind, Ctx: ctx, CtxErr: ctx.Err(), NoRetry: noRetry}
	if f.clock != nil {
		c.At = f.clock.Now()
	}
	if dl, ok := ctx.Deadline(); ok {
		c.Timeout = time.Until(dl)
	}
	f.mu.Lock()
	c.Seq = len(f.calls)
	f.calls = append(f.calls, c)
	allowed := f.allowed[kind]
	f.mu.Unlock()
	if !allowed {
		f.fail("fake table: unscripted %s call", kind)
		return c, false
	}
	switch kind {
	case "acquire", "takeover", "heartbeat", "release":
		if !noRetry {
			f.fail("fake table: %s call leaves the SDK's retries on", kind)
		}
	}
	return c, true
}

func (f *fakeTable) end(c *fakeCall, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.Err = err
	c.Ended = true
	if err == nil && (c.Kind == "acquire" || c.Kind == "takeover" || c.Kind == "shared-acquire") && !isClosed(f.won) {
		// Before the client hears of it: a test driving the clock
		// until the lock is won stops before the renewer's first tick.
		close(f.won)
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

// runHook lets the test's hook decide the call's fate.
func (f *fakeTable) runHook(c *fakeCall) (bool, error) {
	f.mu.Lock()
	h := f.hook
	f.mu.Unlock()
	if h == nil {
		return true, nil
	}
	return h(c)
}

var errUnscripted = errors.New("fake table: unscripted call")

func (f *fakeTable) checkTable(name *string) error {
	if aws.ToString(name) != f.name || !f.exists {
		return &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	return nil
}

func validation(format string, args ...any) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: fmt.Sprintf(format, args...), Fault: smithy.FaultClient}
}

func keyString(key map[string]types.AttributeValue) (string, error) {
	if len(key) != 1 {
		return "", validation("the key must have exactly one attribute")
	}
	s, ok := key[attrKey].(*types.AttributeValueMemberS)
	if !ok {
		return "", validation("the key attribute must be the string LockID")
	}
	return s.Value, nil
}

func (f *fakeTable) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (out *dynamodb.GetItemOutput, err error) {
	c, ok := f.begin(ctx, "GetItem", optFns)
	defer func() { f.end(c, err) }()
	c.Get = in
	if !ok {
		return nil, errUnscripted
	}
	if !aws.ToBool(in.ConsistentRead) {
		f.fail("fake table: GetItem without ConsistentRead")
	}
	apply, herr := f.runHook(c)
	if herr != nil && !apply {
		return nil, herr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkTable(in.TableName); err != nil {
		return nil, err
	}
	key, err := keyString(in.Key)
	if err != nil {
		return nil, err
	}
	if herr != nil {
		return nil, herr
	}
	return &dynamodb.GetItemOutput{Item: cloneItem(f.items[key])}, nil
}

// Attributes of the layout v2 (DESIGN12) that updateKind looks for.
const (
	fkLine   = "Line"
	fkShared = "SharedHolders"
)

// updateKind names what an UpdateItem from the backend does, from the
// paths its update expression writes (placeholders resolved) and the
// attributes its condition names:
//
//	acquire          ADD FencingToken, condition on attribute_not_exists(#LockID or #Owner)
//	takeover         ADD FencingToken, otherwise (exclusive)
//	shared-acquire   ADD FencingToken and SET SharedHolders or SharedHolders.x
//	join             SET Line (list_append)
//	refresh          SET Line[i].x only
//	leave            REMOVE Line[i], condition without RVN
//	evict            REMOVE Line[i] or SharedHolders.x, condition on RVN
//	shared-release   REMOVE SharedHolders.x, condition without RVN
//	shared-heartbeat SET SharedHolders.x.y only
//	heartbeat        SET RVN
//	force            REMOVE Owner, condition on RVN; or REMOVE SharedHolders.x
//	                 on their RVN and attribute_not_exists(#Owner) (release --force)
//	release          REMOVE Owner, condition without RVN
func updateKind(in *dynamodb.UpdateItemInput) string {
	p := newExprParser(in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	acts, err := p.actions(aws.ToString(in.UpdateExpression))
	if err != nil {
		return "UpdateItem"
	}
	// condRVN: the condition names RVN; condFree: it asks for no Owner
	// (or no item), as acquiring writes do and takeovers do not.
	condRVN, condFree := false, false
	toks := tokenize(aws.ToString(in.ConditionExpression))
	for i, tok := range toks {
		name := in.ExpressionAttributeNames[tok]
		if name == attrRVN {
			condRVN = true
		}
		if (name == attrOwner || name == attrKey) && i >= 2 && toks[i-1] == "(" && toks[i-2] == "attribute_not_exists" {
			condFree = true
		}
	}
	var addToken, setShared, setLine, setRVN, removeOwner bool
	only := func(clause, top string, depth int) bool { // every action is clause on top with depth steps
		for _, a := range acts {
			if a.clause != clause || a.path[0].name != top || len(a.path) != depth {
				return false
			}
		}
		return true
	}
	for _, a := range acts {
		top := a.path[0].name
		switch {
		case a.clause == "ADD" && top == attrToken:
			addToken = true
		case a.clause == "SET" && top == fkShared:
			setShared = true
		case a.clause == "SET" && top == fkLine && len(a.path) == 1:
			setLine = true
		case a.clause == "SET" && top == attrRVN:
			setRVN = true
		case a.clause == "REMOVE" && top == attrOwner:
			removeOwner = true
		}
	}
	switch {
	case addToken && setShared:
		return "shared-acquire"
	case addToken && condFree:
		// a free key, or the head of the line taking it
		return "acquire"
	case addToken:
		return "takeover"
	case setLine:
		return "join"
	case only("SET", fkLine, 3):
		return "refresh"
	case only("REMOVE", fkShared, 2) && condRVN && condFree:
		return "force"
	case only("REMOVE", fkLine, 2) && condRVN, only("REMOVE", fkShared, 2) && condRVN:
		return "evict"
	case only("REMOVE", fkLine, 2):
		return "leave"
	case only("REMOVE", fkShared, 2):
		return "shared-release"
	case only("SET", fkShared, 3):
		return "shared-heartbeat"
	case setRVN:
		return "heartbeat"
	case removeOwner && condRVN:
		return "force"
	case removeOwner:
		return "release"
	}
	return "UpdateItem"
}

func (f *fakeTable) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (out *dynamodb.UpdateItemOutput, err error) {
	c, ok := f.begin(ctx, updateKind(in), optFns)
	defer func() { f.end(c, err) }()
	c.Update = in
	if !ok {
		return nil, errUnscripted
	}
	apply, herr := f.runHook(c)
	if herr != nil && !apply {
		return nil, herr
	}
	out, err = f.applyUpdate(in)
	if herr != nil {
		return nil, herr // applied, but the client never hears of it
	}
	return out, err
}

func (f *fakeTable) applyUpdate(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkTable(in.TableName); err != nil {
		return nil, err
	}
	key, err := keyString(in.Key)
	if err != nil {
		return nil, err
	}
	item, out, err := fakeUpdateItem(f.items[key], key, in, !f.noOld)
	if f.shadow != nil {
		after := f.items[key]
		if err == nil {
			after = item
		}
		if diff := f.shadow.check(in, f.items[key], f.noOld, out, err, after); diff != "" {
			f.fail("%s", diff)
		}
	}
	if err != nil {
		return nil, err
	}
	f.items[key] = item
	return out, nil
}

// fakeUpdateItem is DynamoDB's UpdateItem on key's item old (nil when there is
// none): it returns the item after and the answer. The expressions are
// checked first, then the condition, then the update is applied; old is
// never changed. oldOnFailure says whether a failed condition returns the
// item when asked to (ReturnValuesOnConditionCheckFailure).
func fakeUpdateItem(old map[string]types.AttributeValue, key string, in *dynamodb.UpdateItemInput, oldOnFailure bool) (map[string]types.AttributeValue, *dynamodb.UpdateItemOutput, error) {
	if err := checkPlaceholderMaps(in.ExpressionAttributeNames, in.ExpressionAttributeValues); err != nil {
		return nil, nil, err
	}
	p := newExprParser(in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	var cond func(map[string]types.AttributeValue) bool
	var err error
	if in.ConditionExpression != nil {
		if cond, err = p.condition(aws.ToString(in.ConditionExpression)); err != nil {
			return nil, nil, err
		}
	}
	upd, err := p.update(aws.ToString(in.UpdateExpression))
	if err != nil {
		return nil, nil, err
	}
	if err := p.allUsed(); err != nil {
		return nil, nil, err
	}
	switch in.ReturnValues {
	case types.ReturnValueAllNew, types.ReturnValueAllOld, types.ReturnValueNone, "":
	default:
		return nil, nil, validation("fake table: ReturnValues %s not supported", in.ReturnValues)
	}
	if cond != nil && !cond(old) {
		ccf := &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
		if in.ReturnValuesOnConditionCheckFailure == types.ReturnValuesOnConditionCheckFailureAllOld && oldOnFailure {
			ccf.Item = cloneItem(old)
		}
		return nil, nil, ccf
	}
	base := old
	if base == nil {
		base = map[string]types.AttributeValue{attrKey: avS(key)}
	}
	item, err := upd(base)
	if err != nil {
		return nil, nil, err
	}
	if n := itemSize(item); n > maxItemSize {
		return nil, nil, validation("Item size to update has exceeded the maximum allowed size")
	}
	out := &dynamodb.UpdateItemOutput{}
	switch in.ReturnValues {
	case types.ReturnValueAllNew:
		out.Attributes = cloneItem(item)
	case types.ReturnValueAllOld:
		out.Attributes = cloneItem(old)
	}
	return item, out, nil
}

func (f *fakeTable) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (out *dynamodb.ScanOutput, err error) {
	c, ok := f.begin(ctx, "Scan", optFns)
	defer func() { f.end(c, err) }()
	if !ok {
		return nil, errUnscripted
	}
	if !aws.ToBool(in.ConsistentRead) {
		f.fail("fake table: Scan without ConsistentRead")
	}
	if _, herr := f.runHook(c); herr != nil {
		return nil, herr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkTable(in.TableName); err != nil {
		return nil, err
	}
	if err := checkPlaceholderMaps(in.ExpressionAttributeNames, in.ExpressionAttributeValues); err != nil {
		return nil, err
	}
	p := newExprParser(in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	filter := func(map[string]types.AttributeValue) bool { return true }
	if in.FilterExpression != nil {
		if filter, err = p.conditionIn("FilterExpression", aws.ToString(in.FilterExpression)); err != nil {
			return nil, err
		}
	}
	if err := p.allUsed(); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(f.items))
	for k := range f.items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	start := 0
	if in.ExclusiveStartKey != nil {
		after, err := keyString(in.ExclusiveStartKey)
		if err != nil {
			return nil, err
		}
		start = sort.SearchStrings(keys, after)
		if start < len(keys) && keys[start] == after {
			start++
		}
	}
	out = &dynamodb.ScanOutput{}
	for i := start; i < len(keys); i++ {
		if f.pageSize > 0 && i-start == f.pageSize {
			out.LastEvaluatedKey = keyOf(keys[i-1])
			break
		}
		if item := f.items[keys[i]]; filter(item) {
			out.Items = append(out.Items, cloneItem(item))
		}
	}
	return out, nil
}

func (f *fakeTable) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (out *dynamodb.CreateTableOutput, err error) {
	c, ok := f.begin(ctx, "CreateTable", optFns)
	defer func() { f.end(c, err) }()
	if !ok {
		return nil, errUnscripted
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exists && aws.ToString(in.TableName) == f.name {
		return nil, &types.ResourceInUseException{Message: aws.String("Table already exists")}
	}
	if in.BillingMode != types.BillingModePayPerRequest || len(in.KeySchema) != 1 {
		f.fail("fake table: CreateTable %+v", in)
	}
	f.name, f.exists, f.keyName = aws.ToString(in.TableName), true, aws.ToString(in.KeySchema[0].AttributeName)
	return &dynamodb.CreateTableOutput{}, nil
}

func (f *fakeTable) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (out *dynamodb.DescribeTableOutput, err error) {
	c, ok := f.begin(ctx, "DescribeTable", optFns)
	defer func() { f.end(c, err) }()
	if !ok {
		return nil, errUnscripted
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkTable(in.TableName); err != nil {
		return nil, err
	}
	status := types.TableStatusActive
	if f.creating > 0 {
		f.creating--
		status = types.TableStatusCreating
	}
	return &dynamodb.DescribeTableOutput{Table: &types.TableDescription{
		TableName:            aws.String(f.name),
		TableStatus:          status,
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(f.keyName), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(f.keyName), AttributeType: types.ScalarAttributeTypeS}},
	}}, nil
}

func cloneItem(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	if item == nil {
		return nil
	}
	c := make(map[string]types.AttributeValue, len(item))
	for k, v := range item {
		c[k] = v // members are never mutated in place
	}
	return c
}

// checkPlaceholderMaps fails as DynamoDB does on a map given but empty
// (the SDK sends a non-nil empty map as {}), and on an empty set.
func checkPlaceholderMaps(names map[string]string, values map[string]types.AttributeValue) error {
	if names != nil && len(names) == 0 {
		return validation("ExpressionAttributeNames must not be empty")
	}
	if values != nil && len(values) == 0 {
		return validation("ExpressionAttributeValues must not be empty")
	}
	for ph, v := range values {
		n, kind := -1, ""
		switch v := v.(type) {
		case *types.AttributeValueMemberSS:
			n, kind = len(v.Value), "string"
		case *types.AttributeValueMemberNS:
			n, kind = len(v.Value), "number"
		case *types.AttributeValueMemberBS:
			n, kind = len(v.Value), "binary"
		}
		if n == 0 {
			return validation("ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: An %s set  may not be empty for key %s", kind, ph)
		}
	}
	return nil
}

// maxItemSize is DynamoDB's limit on an item's size: 400 KB.
const maxItemSize = 400 * 1024

// itemSize is an item's size as DynamoDB documents it: names and values,
// strings in UTF-8 bytes, numbers about one byte per two digits, 1 byte for
// a boolean or null, 3 bytes for a list or map and 1 more per element.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + avSize(v)
	}
	return n
}

func avSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return len(strings.Trim(v.Value, "-+.0"))/2 + 1
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + avSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + avSize(e)
		}
		return n
	case *types.AttributeValueMemberSS:
		n := 0
		for _, e := range v.Value {
			n += len(e)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, e := range v.Value {
			n += len(e)/2 + 1
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, e := range v.Value {
			n += len(e)
		}
		return n
	}
	return 1
}

// exprParser parses the expressions of one request, resolving placeholders
// and remembering which ones were used. It knows the part of DynamoDB's
// expression grammar the backend uses, with DynamoDB's semantics (pinned by
// fake_dynamo_expr_test.go, and checked there against DynamoDB Local):
// document paths (#a.#b, #a[0], #a[0].#b), the comparators = <> < <= > >=,
// IN, BETWEEN, AND, OR, NOT and parentheses, attribute_exists,
// attribute_not_exists and size in conditions; SET (with +, -,
// if_not_exists and list_append), REMOVE, ADD and DELETE in updates.
type exprParser struct {
	where      string // the expression parsed: ConditionExpression, UpdateExpression, FilterExpression
	names      map[string]string
	values     map[string]types.AttributeValue
	usedNames  map[string]bool
	usedValues map[string]bool
	toks       []string
	pos        int
}

func newExprParser(names map[string]string, values map[string]types.AttributeValue) *exprParser {
	return &exprParser{names: names, values: values, usedNames: map[string]bool{}, usedValues: map[string]bool{}}
}

// allUsed fails as DynamoDB does when a placeholder is not used.
func (p *exprParser) allUsed() error {
	for n := range p.names {
		if !p.usedNames[n] {
			return validation("Value provided in ExpressionAttributeNames unused in expressions: keys: {%s}", n)
		}
	}
	for v := range p.values {
		if !p.usedValues[v] {
			return validation("Value provided in ExpressionAttributeValues unused in expressions: keys: {%s}", v)
		}
	}
	return nil
}

// exprPunct are the characters that are tokens of their own.
const exprPunct = "(),=<>.[]+-"

func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		switch ch := s[i]; {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			i++
		case ch == '<' || ch == '>':
			if i+1 < len(s) && (s[i+1] == '>' || s[i+1] == '=') {
				toks = append(toks, s[i:i+2])
				i += 2
			} else {
				toks = append(toks, string(ch))
				i++
			}
		case strings.IndexByte(exprPunct, ch) >= 0:
			toks = append(toks, string(ch))
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r"+exprPunct, rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

// invalid is a ValidationException about the expression being parsed.
func (p *exprParser) invalid(format string, args ...any) error {
	return validation("Invalid "+p.where+": "+format, args...)
}

func (p *exprParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *exprParser) next() string {
	t := p.peek()
	p.pos++
	return t
}

func (p *exprParser) expect(tok string) error {
	if got := p.next(); !strings.EqualFold(got, tok) {
		return p.invalid("Syntax error; expected %q, got %q", tok, got)
	}
	return nil
}

// closing returns the index of the ")" that closes the "(" at i.
func (p *exprParser) closing(i int) int {
	depth := 0
	for j := i; j < len(p.toks); j++ {
		switch p.toks[j] {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

func (p *exprParser) isKeyword(kw string) bool { return strings.EqualFold(p.peek(), kw) }

// name reads an attribute name or map key, through a #placeholder or bare.
func (p *exprParser) name() (string, error) {
	tok := p.next()
	switch {
	case strings.HasPrefix(tok, "#"):
		name, ok := p.names[tok]
		if !ok {
			return "", p.invalid("An expression attribute name used in the document path is not defined; attribute name: %s", tok)
		}
		p.usedNames[tok] = true
		return name, nil
	case tok == "" || strings.HasPrefix(tok, ":") || strings.ContainsAny(tok, exprPunct) || exprKeywords[strings.ToUpper(tok)]:
		return "", p.invalid("Syntax error; expected an attribute name, got %q", tok)
	case reservedWords[strings.ToUpper(tok)]:
		return "", p.invalid("Attribute name is a reserved keyword; reserved keyword: %s", tok)
	}
	return tok, nil
}

// exprKeywords are the words of the grammar, never names.
var exprKeywords = map[string]bool{"SET": true, "REMOVE": true, "ADD": true, "DELETE": true, "AND": true, "OR": true, "NOT": true, "IN": true, "BETWEEN": true}

// reservedWords are some of DynamoDB's reserved words, which cannot be
// names without a #placeholder: those that DynamoDB Local refused among
// the layout's attribute names and other likely ones (the whole list has
// some 570 words).
var reservedWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`NAME VALUE STATUS KEY DATA DATE TIME TIMESTAMP TYPE LIST MAP LEVEL MAX ITEM ITEMS
		TABLE INDEX ORDER POSITION STATE LOCK LOCKS WAIT PATH COMMENT SOURCE GROUP ROLE SESSION HASH RANGE PRIMARY
		NUMBER STRING BINARY BOOLEAN NULL TRUE FALSE OBJECT ATTRIBUTE CONDITION EXPRESSION RETURN VALUES SELECT FROM
		WHERE UPDATE INSERT CREATE DROP SCHEMA OWNER USER TOKEN SHARED COUNT`) {
		m[w] = true
	}
	return m
}()

// value reads a :placeholder.
func (p *exprParser) value() (types.AttributeValue, error) {
	tok := p.next()
	v, ok := p.values[tok]
	if !ok {
		return nil, p.invalid("An expression attribute value used in expression is not defined; attribute value: %s", tok)
	}
	p.usedValues[tok] = true
	return v, nil
}

// A pathElem is one step of a document path: a name (the top-level
// attribute, or a map key) or, when index >= 0, a list index.
type pathElem struct {
	name  string
	index int
}

// A docPath is a document path: an attribute, then map keys and list
// indexes into it.
type docPath []pathElem

// String renders the path as DynamoDB's error messages do: [a, b, [0]].
func (d docPath) String() string {
	parts := make([]string, len(d))
	for i, e := range d {
		if e.index >= 0 {
			parts[i] = fmt.Sprintf("[%d]", e.index)
		} else {
			parts[i] = e.name
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// get returns the value at the path in item, if there is one.
func (d docPath) get(item map[string]types.AttributeValue) (types.AttributeValue, bool) {
	v, ok := item[d[0].name]
	for _, e := range d[1:] {
		if !ok {
			return nil, false
		}
		v, ok = childAV(v, e)
	}
	return v, ok && v != nil
}

func childAV(v types.AttributeValue, e pathElem) (types.AttributeValue, bool) {
	if e.index >= 0 {
		l, ok := v.(*types.AttributeValueMemberL)
		if !ok || e.index >= len(l.Value) {
			return nil, false
		}
		return l.Value[e.index], true
	}
	m, ok := v.(*types.AttributeValueMemberM)
	if !ok {
		return nil, false
	}
	c, ok := m.Value[e.name]
	return c, ok
}

// path reads a document path: a name, then .name and [index] steps.
func (p *exprParser) path() (docPath, error) {
	first, err := p.name()
	if err != nil {
		return nil, err
	}
	d := docPath{{name: first, index: -1}}
	for {
		switch p.peek() {
		case ".":
			p.next()
			n, err := p.name()
			if err != nil {
				return nil, err
			}
			d = append(d, pathElem{name: n, index: -1})
		case "[":
			p.next()
			tok := p.next()
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || strings.Trim(tok, "0123456789") != "" {
				return nil, p.invalid("Syntax error; a list index must be a non-negative integer, got %q", tok)
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			d = append(d, pathElem{index: i})
		default:
			return d, nil
		}
	}
}

// An operand yields a value from an item, or nothing (a missing path).
type operand func(item map[string]types.AttributeValue) (types.AttributeValue, bool)

// operand reads an operand of a condition: a :value, a path or size(path).
func (p *exprParser) operand() (operand, error) {
	switch tok := p.peek(); {
	case strings.HasPrefix(tok, ":"):
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		return func(map[string]types.AttributeValue) (types.AttributeValue, bool) { return v, true }, nil
	case tok == "size":
		p.next()
		if err := p.expect("("); err != nil {
			return nil, err
		}
		arg, err := p.operand()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return func(item map[string]types.AttributeValue) (types.AttributeValue, bool) {
			v, ok := arg(item)
			if !ok {
				return nil, false
			}
			n, ok := sizeAV(v)
			if !ok {
				return nil, false
			}
			return avN(int64(n)), true
		}, nil
	}
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	return func(item map[string]types.AttributeValue) (types.AttributeValue, bool) { return path.get(item) }, nil
}

// sizeAV is DynamoDB's size(): the length of a string (in UTF-16 code
// units, as DynamoDB Local counts: "a😀" is 3) or of a binary, the number of elements of a set, list or map; nothing for other
// types.
func sizeAV(v types.AttributeValue) (int, bool) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(utf16.Encode([]rune(v.Value))), true
	case *types.AttributeValueMemberB:
		return len(v.Value), true
	case *types.AttributeValueMemberSS:
		return len(v.Value), true
	case *types.AttributeValueMemberNS:
		return len(v.Value), true
	case *types.AttributeValueMemberBS:
		return len(v.Value), true
	case *types.AttributeValueMemberL:
		return len(v.Value), true
	case *types.AttributeValueMemberM:
		return len(v.Value), true
	}
	return 0, false
}

type condFn = func(map[string]types.AttributeValue) bool

func (p *exprParser) condition(s string) (condFn, error) {
	return p.conditionIn("ConditionExpression", s)
}

// conditionIn parses a condition given as the request's where.
func (p *exprParser) conditionIn(where, s string) (condFn, error) {
	p.where, p.toks, p.pos = where, tokenize(s), 0
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, p.invalid("Syntax error; unexpected %q", p.peek())
	}
	return c, nil
}

func (p *exprParser) or() (condFn, error) {
	left, err := p.and()
	for err == nil && p.isKeyword("OR") {
		p.next()
		var right condFn
		if right, err = p.and(); err == nil {
			l, r := left, right
			left = func(i map[string]types.AttributeValue) bool { return l(i) || r(i) }
		}
	}
	return left, err
}

func (p *exprParser) and() (condFn, error) {
	left, err := p.unary()
	for err == nil && p.isKeyword("AND") {
		p.next()
		var right condFn
		if right, err = p.unary(); err == nil {
			l, r := left, right
			left = func(i map[string]types.AttributeValue) bool { return l(i) && r(i) }
		}
	}
	return left, err
}

func (p *exprParser) unary() (condFn, error) {
	switch {
	case p.isKeyword("NOT"):
		p.next()
		c, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(i map[string]types.AttributeValue) bool { return !c(i) }, nil
	case p.peek() == "(":
		open := p.pos
		p.next()
		c, err := p.or()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		// DynamoDB refuses a group that holds nothing but a group.
		if p.toks[open+1] == "(" && p.closing(open+1) == p.pos-2 {
			return nil, p.invalid("The expression has redundant parentheses;")
		}
		return c, nil
	case p.peek() == "attribute_exists" || p.peek() == "attribute_not_exists":
		want := p.next() == "attribute_exists"
		if err := p.expect("("); err != nil {
			return nil, err
		}
		path, err := p.path()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return func(i map[string]types.AttributeValue) bool { _, ok := path.get(i); return ok == want }, nil
	}
	leftTok := p.peek()
	left, err := p.operand()
	if err != nil {
		return nil, err
	}
	switch op := p.next(); {
	case op == "=" || op == "<>" || op == "<" || op == "<=" || op == ">" || op == ">=":
		rightTok := p.peek()
		right, err := p.operand()
		if err != nil {
			return nil, err
		}
		if op != "=" && op != "<>" {
			if err := p.orderable(op, leftTok, rightTok); err != nil {
				return nil, err
			}
		}
		return func(i map[string]types.AttributeValue) bool {
			a, ok1 := left(i)
			b, ok2 := right(i)
			switch op {
			case "=":
				return ok1 && ok2 && equalAV(a, b)
			case "<>":
				// The negation of =: true when either side is missing.
				return !(ok1 && ok2 && equalAV(a, b))
			}
			if !ok1 || !ok2 {
				return false
			}
			c, ok := compareAV(a, b)
			if !ok {
				return false
			}
			switch op {
			case "<":
				return c < 0
			case "<=":
				return c <= 0
			case ">":
				return c > 0
			}
			return c >= 0
		}, nil
	case strings.EqualFold(op, "BETWEEN"):
		lowTok := p.peek()
		low, err := p.operand()
		if err != nil {
			return nil, err
		}
		if err := p.expect("AND"); err != nil {
			return nil, err
		}
		highTok := p.peek()
		high, err := p.operand()
		if err != nil {
			return nil, err
		}
		if err := p.orderable("BETWEEN", leftTok, lowTok, highTok); err != nil {
			return nil, err
		}
		return func(i map[string]types.AttributeValue) bool {
			a, ok1 := left(i)
			l, ok2 := low(i)
			h, ok3 := high(i)
			if !ok1 || !ok2 || !ok3 {
				return false
			}
			c1, ok4 := compareAV(l, a)
			c2, ok5 := compareAV(a, h)
			return ok4 && ok5 && c1 <= 0 && c2 <= 0
		}, nil
	case strings.EqualFold(op, "IN"):
		if err := p.expect("("); err != nil {
			return nil, err
		}
		var list []operand
		for {
			o, err := p.operand()
			if err != nil {
				return nil, err
			}
			list = append(list, o)
			if p.peek() != "," {
				break
			}
			p.next()
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		if len(list) > 100 {
			return nil, p.invalid("The IN operator is provided with too many operands; number of operands: %d", len(list))
		}
		return func(i map[string]types.AttributeValue) bool {
			a, ok := left(i)
			if !ok {
				return false
			}
			for _, o := range list {
				if b, ok := o(i); ok && equalAV(a, b) {
					return true
				}
			}
			return false
		}, nil
	default:
		return nil, p.invalid("Syntax error; unsupported operator %q", op)
	}
}

// orderable fails, as DynamoDB does before it reads the item, when an
// operand of an ordering comparison is a :value that has no order.
func (p *exprParser) orderable(op string, toks ...string) error {
	for _, tok := range toks {
		switch v := p.values[tok].(type) {
		case nil, *types.AttributeValueMemberN, *types.AttributeValueMemberS, *types.AttributeValueMemberB:
		default:
			t := avType(v)
			if t == "BOOLEAN" {
				t = "BOOL"
			}
			return p.invalid("Incorrect operand type for operator or function; operator or function: %s, operand type: %s", op, t)
		}
	}
	return nil
}

// fakeNum reads a DynamoDB number.
func fakeNum(s string) (*big.Rat, bool) {
	if s == "" || strings.Trim(s, "0123456789.eE+-") != "" {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

// fakeFormatNum writes a number as DynamoDB returns it: no exponent, no
// trailing zeros.
func fakeFormatNum(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	return strings.TrimRight(r.FloatString(40), "0")
}

// compareAV orders two numbers, two strings or two binaries; other pairs
// have no order.
func compareAV(a, b types.AttributeValue) (int, bool) {
	switch a := a.(type) {
	case *types.AttributeValueMemberN:
		b, ok := b.(*types.AttributeValueMemberN)
		if !ok {
			return 0, false
		}
		x, ok1 := fakeNum(a.Value)
		y, ok2 := fakeNum(b.Value)
		if !ok1 || !ok2 {
			return 0, false
		}
		return x.Cmp(y), true
	case *types.AttributeValueMemberS:
		b, ok := b.(*types.AttributeValueMemberS)
		if !ok {
			return 0, false
		}
		return strings.Compare(a.Value, b.Value), true
	case *types.AttributeValueMemberB:
		b, ok := b.(*types.AttributeValueMemberB)
		if !ok {
			return 0, false
		}
		return bytes.Compare(a.Value, b.Value), true
	}
	return 0, false
}

func equalNum(a, b string) bool {
	x, ok1 := fakeNum(a)
	y, ok2 := fakeNum(b)
	if !ok1 || !ok2 {
		return a == b
	}
	return x.Cmp(y) == 0
}

// equalAV is DynamoDB's =: same type and value, numbers by value, lists
// element by element, maps key by key, sets as sets.
func equalAV(a, b types.AttributeValue) bool {
	switch a := a.(type) {
	case *types.AttributeValueMemberS:
		b, ok := b.(*types.AttributeValueMemberS)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberN:
		b, ok := b.(*types.AttributeValueMemberN)
		return ok && equalNum(a.Value, b.Value)
	case *types.AttributeValueMemberB:
		b, ok := b.(*types.AttributeValueMemberB)
		return ok && bytes.Equal(a.Value, b.Value)
	case *types.AttributeValueMemberBOOL:
		b, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberNULL:
		_, ok := b.(*types.AttributeValueMemberNULL)
		return ok
	case *types.AttributeValueMemberL:
		b, ok := b.(*types.AttributeValueMemberL)
		if !ok || len(a.Value) != len(b.Value) {
			return false
		}
		for i := range a.Value {
			if !equalAV(a.Value[i], b.Value[i]) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberM:
		b, ok := b.(*types.AttributeValueMemberM)
		if !ok || len(a.Value) != len(b.Value) {
			return false
		}
		for k, v := range a.Value {
			w, ok := b.Value[k]
			if !ok || !equalAV(v, w) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberSS:
		b, ok := b.(*types.AttributeValueMemberSS)
		return ok && setSame(a.Value, b.Value, func(x, y string) bool { return x == y })
	case *types.AttributeValueMemberNS:
		b, ok := b.(*types.AttributeValueMemberNS)
		return ok && setSame(a.Value, b.Value, equalNum)
	case *types.AttributeValueMemberBS:
		b, ok := b.(*types.AttributeValueMemberBS)
		return ok && setSame(a.Value, b.Value, bytes.Equal)
	}
	return false
}

func setSame[T any](a, b []T, eq func(x, y T) bool) bool {
	return len(a) == len(b) && setSubset(a, b, eq) && setSubset(b, a, eq)
}

func setSubset[T any](a, b []T, eq func(x, y T) bool) bool {
	for _, x := range a {
		if setIndex(b, x, eq) < 0 {
			return false
		}
	}
	return true
}

func setIndex[T any](list []T, x T, eq func(x, y T) bool) int {
	for i, y := range list {
		if eq(x, y) {
			return i
		}
	}
	return -1
}

// cloneAV copies a value deeply enough that the copy's lists and maps can
// be changed in place.
func cloneAV(v types.AttributeValue) types.AttributeValue {
	switch v := v.(type) {
	case *types.AttributeValueMemberL:
		c := make([]types.AttributeValue, len(v.Value))
		for i, e := range v.Value {
			c[i] = cloneAV(e)
		}
		return &types.AttributeValueMemberL{Value: c}
	case *types.AttributeValueMemberM:
		c := make(map[string]types.AttributeValue, len(v.Value))
		for k, e := range v.Value {
			c[k] = cloneAV(e)
		}
		return &types.AttributeValueMemberM{Value: c}
	}
	return v // scalars and sets are replaced, never changed in place
}

// An updateAction is one action of an update expression.
type updateAction struct {
	clause string // SET, REMOVE, ADD or DELETE
	path   docPath
	value  func(old map[string]types.AttributeValue) (types.AttributeValue, error) // nil for REMOVE
}

var (
	msgNoSuchAttr  = "The provided expression refers to an attribute that does not exist in the item"
	msgBadOperand  = "An operand in the update expression has an incorrect data type"
	msgInvalidPath = "The document path provided in the update expression is invalid for update"
)

// update parses an update expression into a func that applies it to a copy
// of an item, as DynamoDB does: every operand is evaluated on the item
// before the update; SET, ADD and DELETE apply first, then REMOVE, so that
// every list index names an element of the item before the update (as
// DynamoDB Local does; fake_dynamo_expr_test.go).
func (p *exprParser) update(s string) (func(old map[string]types.AttributeValue) (map[string]types.AttributeValue, error), error) {
	acts, err := p.actions(s)
	if err != nil {
		return nil, err
	}
	return func(old map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
		vals := make([]types.AttributeValue, len(acts))
		for i, a := range acts {
			if a.value != nil {
				v, err := a.value(old)
				if err != nil {
					return nil, err
				}
				vals[i] = v
			}
		}
		item := make(map[string]types.AttributeValue, len(old))
		for k, v := range old {
			item[k] = cloneAV(v)
		}
		// In the order of the paths, so that elements set past the end of
		// a list are appended in the order of their indexes.
		order := make([]int, len(acts))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(i, j int) bool { return pathAfter(acts[order[j]].path, acts[order[i]].path) })
		var removes []docPath
		for _, i := range order {
			a := acts[i]
			var err error
			switch a.clause {
			case "SET":
				err = setPath(item, a.path, vals[i])
			case "ADD":
				err = addPath(item, a.path, vals[i])
			case "DELETE":
				err = deletePath(item, a.path, vals[i])
			case "REMOVE":
				removes = append(removes, a.path)
			}
			if err != nil {
				return nil, err
			}
		}
		// Higher indexes first, so that each removal leaves the paths of
		// the others as they were: in reverse order of the paths (no
		// path is a prefix of another, and at any step two paths both
		// name map keys or both list indexes: see pathClash).
		sort.Slice(removes, func(i, j int) bool { return pathAfter(removes[i], removes[j]) })
		for _, r := range removes {
			if err := removePath(item, r); err != nil {
				return nil, err
			}
		}
		return item, nil
	}, nil
}

// actions parses an update expression and checks it as DynamoDB does before
// it looks at the item: each clause once, no two paths overlapping.
func (p *exprParser) actions(s string) ([]updateAction, error) {
	p.where, p.toks, p.pos = "UpdateExpression", tokenize(s), 0
	var acts []updateAction
	seen := map[string]bool{}
	if len(p.toks) == 0 {
		return nil, validation("Invalid UpdateExpression: The expression can not be empty;")
	}
	for p.pos < len(p.toks) {
		clause := strings.ToUpper(p.next())
		switch clause {
		case "SET", "ADD", "REMOVE", "DELETE":
		default:
			return nil, validation("Invalid UpdateExpression: Syntax error; token: %q", clause)
		}
		if seen[clause] {
			return nil, validation("Invalid UpdateExpression: The %q section can only be used once in an update expression;", clause)
		}
		seen[clause] = true
		for {
			path, err := p.path()
			if err != nil {
				return nil, err
			}
			a := updateAction{clause: clause, path: path}
			switch clause {
			case "SET":
				if err := p.expect("="); err != nil {
					return nil, err
				}
				if a.value, err = p.setValue(); err != nil {
					return nil, err
				}
			case "ADD", "DELETE":
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				if err := checkAddDelete(clause, v); err != nil {
					return nil, err
				}
				a.value = func(map[string]types.AttributeValue) (types.AttributeValue, error) { return v, nil }
			}
			acts = append(acts, a)
			if p.peek() != "," {
				break
			}
			p.next()
		}
	}
	for i, a := range acts {
		if a.path[0].name == attrKey {
			return nil, validation("One or more parameter values were invalid: Cannot update attribute %s. This attribute is part of the key", attrKey)
		}
		for j := range i {
			if err := pathClash(acts[j].path, a.path); err != nil {
				return nil, err
			}
		}
	}
	return acts, nil
}

func checkAddDelete(clause string, v types.AttributeValue) error {
	switch v.(type) {
	case *types.AttributeValueMemberSS, *types.AttributeValueMemberNS, *types.AttributeValueMemberBS:
		return nil
	case *types.AttributeValueMemberN:
		if clause == "ADD" {
			return nil
		}
	}
	return validation("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: %s, operand type: %s, typeSet: ALLOWED_FOR_%s_OPERAND", clause, avType(v), clause)
}

// avType names a value's type as DynamoDB's messages do.
func avType(v types.AttributeValue) string {
	switch v.(type) {
	case *types.AttributeValueMemberS:
		return "STRING"
	case *types.AttributeValueMemberN:
		return "NUMBER"
	case *types.AttributeValueMemberB:
		return "BINARY"
	case *types.AttributeValueMemberBOOL:
		return "BOOLEAN"
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberL:
		return "LIST"
	case *types.AttributeValueMemberM:
		return "MAP"
	case *types.AttributeValueMemberSS:
		return "STRING_SET"
	case *types.AttributeValueMemberNS:
		return "NUMBER_SET"
	case *types.AttributeValueMemberBS:
		return "BINARY_SET"
	}
	return fmt.Sprintf("%T", v)
}

// pathAfter orders paths that do not clash: a comes after b.
func pathAfter(a, b docPath) bool {
	for k := 0; k < len(a) && k < len(b); k++ {
		switch x, y := a[k], b[k]; {
		case x.index != y.index:
			return x.index > y.index
		case x.name != y.name:
			return x.name > y.name
		}
	}
	return len(a) > len(b)
}

// pathClash fails when one path is a prefix of the other (they overlap), or
// when they step into the same value as a map and as a list (conflict).
func pathClash(a, b docPath) error {
	for k := 0; k < len(a) && k < len(b); k++ {
		if (a[k].index >= 0) != (b[k].index >= 0) {
			return validation("Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: %s, path two: %s", a, b)
		}
		if a[k] != b[k] {
			return nil
		}
	}
	return validation("Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: %s, path two: %s", a, b)
}

type valueFn = func(old map[string]types.AttributeValue) (types.AttributeValue, error)

// setValue reads the right-hand side of a SET action: an operand, or two
// joined by + or -.
func (p *exprParser) setValue() (valueFn, error) {
	left, err := p.setOperand()
	if err != nil {
		return nil, err
	}
	if op := p.peek(); op == "+" || op == "-" {
		p.next()
		right, err := p.setOperand()
		if err != nil {
			return nil, err
		}
		return func(old map[string]types.AttributeValue) (types.AttributeValue, error) {
			a, err := left(old)
			if err != nil {
				return nil, err
			}
			b, err := right(old)
			if err != nil {
				return nil, err
			}
			an, ok1 := a.(*types.AttributeValueMemberN)
			bn, ok2 := b.(*types.AttributeValueMemberN)
			if !ok1 || !ok2 {
				return nil, validation("%s", msgBadOperand)
			}
			x, ok3 := fakeNum(an.Value)
			y, ok4 := fakeNum(bn.Value)
			if !ok3 || !ok4 {
				return nil, validation("%s", msgBadOperand)
			}
			if op == "+" {
				return &types.AttributeValueMemberN{Value: fakeFormatNum(x.Add(x, y))}, nil
			}
			return &types.AttributeValueMemberN{Value: fakeFormatNum(x.Sub(x, y))}, nil
		}, nil
	}
	return left, nil
}

// setOperand reads a :value, a path, if_not_exists(path, operand) or
// list_append(operand, operand).
func (p *exprParser) setOperand() (valueFn, error) {
	switch tok := p.peek(); {
	case strings.HasPrefix(tok, ":"):
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		return func(map[string]types.AttributeValue) (types.AttributeValue, error) { return v, nil }, nil
	case tok == "if_not_exists":
		p.next()
		if err := p.expect("("); err != nil {
			return nil, err
		}
		path, err := p.path()
		if err != nil {
			return nil, err
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
		dflt, err := p.setOperand()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return func(old map[string]types.AttributeValue) (types.AttributeValue, error) {
			if v, ok := path.get(old); ok {
				return v, nil
			}
			return dflt(old)
		}, nil
	case tok == "list_append":
		p.next()
		if err := p.expect("("); err != nil {
			return nil, err
		}
		first, err := p.setOperand()
		if err != nil {
			return nil, err
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
		second, err := p.setOperand()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return func(old map[string]types.AttributeValue) (types.AttributeValue, error) {
			a, err := first(old)
			if err != nil {
				return nil, err
			}
			b, err := second(old)
			if err != nil {
				return nil, err
			}
			al, ok1 := a.(*types.AttributeValueMemberL)
			bl, ok2 := b.(*types.AttributeValueMemberL)
			if !ok1 || !ok2 {
				return nil, validation("%s", msgBadOperand)
			}
			l := make([]types.AttributeValue, 0, len(al.Value)+len(bl.Value))
			return &types.AttributeValueMemberL{Value: append(append(l, al.Value...), bl.Value...)}, nil
		}, nil
	}
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	return func(old map[string]types.AttributeValue) (types.AttributeValue, error) {
		v, ok := path.get(old)
		if !ok {
			return nil, validation("%s", msgNoSuchAttr)
		}
		return v, nil
	}, nil
}

// parentOf returns the list or map holding the path's last step, or an
// error when there is none of the right type.
func parentOf(item map[string]types.AttributeValue, path docPath) (types.AttributeValue, error) {
	parent, ok := path[:len(path)-1].get(item)
	if ok {
		switch parent.(type) {
		case *types.AttributeValueMemberL:
			if path[len(path)-1].index >= 0 {
				return parent, nil
			}
		case *types.AttributeValueMemberM:
			if path[len(path)-1].index < 0 {
				return parent, nil
			}
		}
	}
	return nil, validation("%s", msgInvalidPath)
}

// setPath stores v at path: a list index past the end appends.
func setPath(item map[string]types.AttributeValue, path docPath, v types.AttributeValue) error {
	if len(path) == 1 {
		item[path[0].name] = v
		return nil
	}
	parent, err := parentOf(item, path)
	if err != nil {
		return err
	}
	last := path[len(path)-1]
	switch parent := parent.(type) {
	case *types.AttributeValueMemberL:
		if last.index < len(parent.Value) {
			parent.Value[last.index] = v
		} else {
			parent.Value = append(parent.Value, v)
		}
	case *types.AttributeValueMemberM:
		parent.Value[last.name] = v
	}
	return nil
}

// removePath removes what is at path; a missing element is no error, a
// list's later elements move up.
func removePath(item map[string]types.AttributeValue, path docPath) error {
	if len(path) == 1 {
		delete(item, path[0].name)
		return nil
	}
	parent, err := parentOf(item, path)
	if err != nil {
		return err
	}
	last := path[len(path)-1]
	switch parent := parent.(type) {
	case *types.AttributeValueMemberL:
		if last.index < len(parent.Value) {
			parent.Value = append(parent.Value[:last.index:last.index], parent.Value[last.index+1:]...)
		}
	case *types.AttributeValueMemberM:
		delete(parent.Value, last.name)
	}
	return nil
}

// addPath is ADD: a number added to a number, a set's elements to a set of
// the same type, or the value stored where there is none.
func addPath(item map[string]types.AttributeValue, path docPath, v types.AttributeValue) error {
	cur, ok := path.get(item)
	if !ok {
		return setPath(item, path, v)
	}
	bad := validation("%s", msgBadOperand)
	switch c := cur.(type) {
	case *types.AttributeValueMemberN:
		add, ok := v.(*types.AttributeValueMemberN)
		if !ok {
			return bad
		}
		x, ok1 := fakeNum(c.Value)
		y, ok2 := fakeNum(add.Value)
		if !ok1 || !ok2 {
			return bad
		}
		return setPath(item, path, &types.AttributeValueMemberN{Value: fakeFormatNum(x.Add(x, y))})
	case *types.AttributeValueMemberSS:
		add, ok := v.(*types.AttributeValueMemberSS)
		if !ok {
			return bad
		}
		return setPath(item, path, &types.AttributeValueMemberSS{Value: setUnion(c.Value, add.Value, func(x, y string) bool { return x == y })})
	case *types.AttributeValueMemberNS:
		add, ok := v.(*types.AttributeValueMemberNS)
		if !ok {
			return bad
		}
		return setPath(item, path, &types.AttributeValueMemberNS{Value: setUnion(c.Value, add.Value, equalNum)})
	case *types.AttributeValueMemberBS:
		add, ok := v.(*types.AttributeValueMemberBS)
		if !ok {
			return bad
		}
		return setPath(item, path, &types.AttributeValueMemberBS{Value: setUnion(c.Value, add.Value, bytes.Equal)})
	}
	return bad
}

func setUnion[T any](a, b []T, eq func(x, y T) bool) []T {
	out := append([]T(nil), a...)
	for _, x := range b {
		if setIndex(out, x, eq) < 0 {
			out = append(out, x)
		}
	}
	return out
}

func setMinus[T any](a, b []T, eq func(x, y T) bool) []T {
	var out []T
	for _, x := range a {
		if setIndex(b, x, eq) < 0 {
			out = append(out, x)
		}
	}
	return out
}

// deletePath is DELETE: a set's elements taken from a set of the same type;
// a set left empty is removed.
func deletePath(item map[string]types.AttributeValue, path docPath, v types.AttributeValue) error {
	cur, ok := path.get(item)
	if !ok {
		return nil
	}
	bad := validation("%s", msgBadOperand)
	var rest types.AttributeValue
	n := 0
	switch c := cur.(type) {
	case *types.AttributeValueMemberSS:
		del, ok := v.(*types.AttributeValueMemberSS)
		if !ok {
			return bad
		}
		r := setMinus(c.Value, del.Value, func(x, y string) bool { return x == y })
		rest, n = &types.AttributeValueMemberSS{Value: r}, len(r)
	case *types.AttributeValueMemberNS:
		del, ok := v.(*types.AttributeValueMemberNS)
		if !ok {
			return bad
		}
		r := setMinus(c.Value, del.Value, equalNum)
		rest, n = &types.AttributeValueMemberNS{Value: r}, len(r)
	case *types.AttributeValueMemberBS:
		del, ok := v.(*types.AttributeValueMemberBS)
		if !ok {
			return bad
		}
		r := setMinus(c.Value, del.Value, bytes.Equal)
		rest, n = &types.AttributeValueMemberBS{Value: r}, len(r)
	default:
		return bad
	}
	if n == 0 {
		return removePath(item, path)
	}
	return setPath(item, path, rest)
}
