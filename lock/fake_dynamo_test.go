package lock

import (
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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// fakeTable is an in-memory DynamoDB table for unit tests. It honours the
// condition and update expressions the backend sends (the subset it uses),
// checks them as DynamoDB does (every name and value placeholder used), and
// fails the test on any call it was not scripted for: each test allows the
// kinds of calls it expects, and may script faults with a hook.
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
	changed  chan struct{} // closed and replaced at every call's end
	won      chan struct{} // closed when an acquire or takeover first succeeds
}

// A fakeCall is one request the table received.
type fakeCall struct {
	Seq     int
	Kind    string // op, or for UpdateItem what it does: acquire, takeover, heartbeat, release, force
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
// acquire, takeover, heartbeat, release, force.
func newFakeTable(t testing.TB, clock Clock, allowed ...string) *fakeTable {
	f := newFakeTableFailing(func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
	}, clock, allowed...)
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
	if err == nil && (c.Kind == "acquire" || c.Kind == "takeover") && !isClosed(f.won) {
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

// updateKind names what an UpdateItem from the backend does.
func updateKind(in *dynamodb.UpdateItemInput) string {
	u, cond := aws.ToString(in.UpdateExpression), aws.ToString(in.ConditionExpression)
	switch {
	case strings.Contains(u, "ADD #FencingToken") && strings.Contains(cond, "attribute_not_exists(#LockID)"):
		return "acquire"
	case strings.Contains(u, "ADD #FencingToken"):
		return "takeover"
	case strings.HasPrefix(u, "SET #RVN"):
		return "heartbeat"
	case strings.HasPrefix(u, "REMOVE") && strings.Contains(cond, "#RVN"):
		return "force"
	case strings.HasPrefix(u, "REMOVE"):
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
	p := newExprParser(in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	var cond func(map[string]types.AttributeValue) bool
	if in.ConditionExpression != nil {
		if cond, err = p.condition(aws.ToString(in.ConditionExpression)); err != nil {
			return nil, err
		}
	}
	upd, err := p.update(aws.ToString(in.UpdateExpression))
	if err != nil {
		return nil, err
	}
	if err := p.allUsed(); err != nil {
		return nil, err
	}
	old := f.items[key]
	if cond != nil && !cond(old) {
		ccf := &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
		if in.ReturnValuesOnConditionCheckFailure == types.ReturnValuesOnConditionCheckFailureAllOld && !f.noOld {
			ccf.Item = cloneItem(old)
		}
		return nil, ccf
	}
	item := cloneItem(old)
	if item == nil {
		item = map[string]types.AttributeValue{attrKey: avS(key)}
	}
	if err := upd(item); err != nil {
		return nil, err
	}
	f.items[key] = item
	out := &dynamodb.UpdateItemOutput{}
	switch in.ReturnValues {
	case types.ReturnValueAllNew:
		out.Attributes = cloneItem(item)
	case types.ReturnValueAllOld:
		out.Attributes = cloneItem(old)
	case types.ReturnValueNone, "":
	default:
		return nil, validation("fake table: ReturnValues %s not supported", in.ReturnValues)
	}
	return out, nil
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
	p := newExprParser(in.ExpressionAttributeNames, in.ExpressionAttributeValues)
	filter := func(map[string]types.AttributeValue) bool { return true }
	if in.FilterExpression != nil {
		if filter, err = p.condition(aws.ToString(in.FilterExpression)); err != nil {
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

// exprParser parses the expressions of one request, resolving placeholders
// and remembering which ones were used.
type exprParser struct {
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

func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		switch ch := s[i]; {
		case ch == ' ' || ch == '\t' || ch == '\n':
			i++
		case strings.ContainsRune("(),=", rune(ch)):
			toks = append(toks, string(ch))
			i++
		case ch == '<' || ch == '>':
			if i+1 < len(s) && (s[i+1] == '>' || s[i+1] == '=') {
				toks = append(toks, s[i:i+2])
				i += 2
			} else {
				toks = append(toks, string(ch))
				i++
			}
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n(),=<>", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
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
		return validation("syntax error: expected %q, got %q", tok, got)
	}
	return nil
}

func (p *exprParser) isKeyword(kw string) bool { return strings.EqualFold(p.peek(), kw) }

// path reads an attribute name, through a #placeholder or bare.
func (p *exprParser) path() (string, error) {
	tok := p.next()
	switch {
	case strings.HasPrefix(tok, "#"):
		name, ok := p.names[tok]
		if !ok {
			return "", validation("An expression attribute name used in the document path is not defined; attribute name: %s", tok)
		}
		p.usedNames[tok] = true
		return name, nil
	case tok == "" || strings.HasPrefix(tok, ":") || strings.ContainsAny(tok, "(),=<>"):
		return "", validation("syntax error: expected an attribute name, got %q", tok)
	}
	return tok, nil
}

type operand func(item map[string]types.AttributeValue) (types.AttributeValue, bool)

func (p *exprParser) operand() (operand, error) {
	if strings.HasPrefix(p.peek(), ":") {
		tok := p.next()
		v, ok := p.values[tok]
		if !ok {
			return nil, validation("An expression attribute value used in expression is not defined; attribute value: %s", tok)
		}
		p.usedValues[tok] = true
		return func(map[string]types.AttributeValue) (types.AttributeValue, bool) { return v, true }, nil
	}
	name, err := p.path()
	if err != nil {
		return nil, err
	}
	return func(item map[string]types.AttributeValue) (types.AttributeValue, bool) {
		v, ok := item[name]
		return v, ok
	}, nil
}

type condFn = func(map[string]types.AttributeValue) bool

func (p *exprParser) condition(s string) (condFn, error) {
	p.toks, p.pos = tokenize(s), 0
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, validation("syntax error: unexpected %q", p.peek())
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
		p.next()
		c, err := p.or()
		if err != nil {
			return nil, err
		}
		return c, p.expect(")")
	case p.peek() == "attribute_exists" || p.peek() == "attribute_not_exists":
		want := p.next() == "attribute_exists"
		if err := p.expect("("); err != nil {
			return nil, err
		}
		name, err := p.path()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return func(i map[string]types.AttributeValue) bool { _, ok := i[name]; return ok == want }, nil
	}
	left, err := p.operand()
	if err != nil {
		return nil, err
	}
	switch op := p.next(); {
	case op == "=" || op == "<>":
		right, err := p.operand()
		if err != nil {
			return nil, err
		}
		return func(i map[string]types.AttributeValue) bool {
			a, ok1 := left(i)
			b, ok2 := right(i)
			if !ok1 || !ok2 {
				return false
			}
			return equalAV(a, b) == (op == "=")
		}, nil
	case op == "<":
		right, err := p.operand()
		if err != nil {
			return nil, err
		}
		return func(i map[string]types.AttributeValue) bool {
			a, ok1 := left(i)
			b, ok2 := right(i)
			an, ok3 := a.(*types.AttributeValueMemberN)
			bn, ok4 := b.(*types.AttributeValueMemberN)
			if !ok1 || !ok2 || !ok3 || !ok4 {
				return false
			}
			x, ok5 := new(big.Int).SetString(an.Value, 10)
			y, ok6 := new(big.Int).SetString(bn.Value, 10)
			return ok5 && ok6 && x.Cmp(y) < 0
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
		return nil, validation("syntax error: unsupported operator %q", op)
	}
}

func equalAV(a, b types.AttributeValue) bool {
	switch a := a.(type) {
	case *types.AttributeValueMemberS:
		b, ok := b.(*types.AttributeValueMemberS)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberN:
		b, ok := b.(*types.AttributeValueMemberN)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberBOOL:
		b, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && a.Value == b.Value
	}
	return false
}

// update parses an update expression into a func applying it to an item.
func (p *exprParser) update(s string) (func(map[string]types.AttributeValue) error, error) {
	p.toks, p.pos = tokenize(s), 0
	var steps []func(map[string]types.AttributeValue) error
	touched := map[string]bool{}
	touch := func(name string) error {
		if touched[name] {
			return validation("Two document paths overlap with each other: %s", name)
		}
		touched[name] = true
		return nil
	}
	for p.pos < len(p.toks) {
		switch clause := strings.ToUpper(p.next()); clause {
		case "SET", "ADD", "REMOVE":
			for {
				name, err := p.path()
				if err != nil {
					return nil, err
				}
				if err := touch(name); err != nil {
					return nil, err
				}
				switch clause {
				case "SET":
					if err := p.expect("="); err != nil {
						return nil, err
					}
					val, err := p.operand()
					if err != nil {
						return nil, err
					}
					steps = append(steps, func(i map[string]types.AttributeValue) error {
						if v, ok := val(i); ok {
							i[name] = v
						}
						return nil
					})
				case "ADD":
					val, err := p.operand()
					if err != nil {
						return nil, err
					}
					steps = append(steps, func(i map[string]types.AttributeValue) error {
						v, _ := val(i)
						add, ok := v.(*types.AttributeValueMemberN)
						if !ok {
							return validation("ADD needs a number")
						}
						n, _ := strconv.ParseInt(add.Value, 10, 64)
						if cur, exists := i[name]; exists {
							c, ok := cur.(*types.AttributeValueMemberN)
							if !ok {
								return validation("An operand in the update expression has an incorrect data type")
							}
							m, err := strconv.ParseInt(c.Value, 10, 64)
							if err != nil {
								return validation("bad number %q", c.Value)
							}
							n += m
						}
						i[name] = avN(n)
						return nil
					})
				case "REMOVE":
					steps = append(steps, func(i map[string]types.AttributeValue) error {
						delete(i, name)
						return nil
					})
				}
				if p.peek() != "," {
					break
				}
				p.next()
			}
		default:
			return nil, validation("syntax error: unexpected %q in update expression", clause)
		}
	}
	return func(i map[string]types.AttributeValue) error {
		for _, s := range steps {
			if err := s(i); err != nil {
				return err
			}
		}
		return nil
	}, nil
}
