package lock

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestDecodeRecord(t *testing.T) {
	full := holderItem("deploy", "ci-7-4412-9f1c03ab", "r1", 30000, 12)
	with := func(k string, v types.AttributeValue) map[string]types.AttributeValue {
		item := cloneItem(full)
		if v == nil {
			delete(item, k)
		} else {
			item[k] = v
		}
		return item
	}
	tests := []struct {
		name    string
		item    map[string]types.AttributeValue
		want    Record
		wantErr error // nil: no error; errAny: some error
	}{
		{name: "a held item gives every field", item: full, want: withHolders(Record{
			Key: "deploy", Owner: "ci-7-4412-9f1c03ab", Host: "other-host", PID: 7, User: "bob", Command: "terraform apply",
			Acquired:  time.Date(2026, 1, 2, 8, 0, 0, 0, time.UTC),
			Heartbeat: time.Date(2026, 1, 2, 8, 4, 0, 0, time.UTC),
			Lease:     30 * time.Second, Version: "r1", Token: 12,
		})},
		{name: "an item of the layout before the line is read alike", item: with(attrSchema, avS(SchemaV1)), want: mustDecode(t, full)},
		{name: "a released item gives the key and its last token",
			item: map[string]types.AttributeValue{attrKey: avS("k"), attrSchema: avS(SchemaVersion), attrToken: avN(3)},
			want: Record{Key: "k", Token: 3}},
		{name: "an item without Schema is foreign", item: with(attrSchema, nil), wantErr: ErrForeignItem},
		{name: "an item with another Schema is foreign", item: with(attrSchema, avS("other-tool/1")), wantErr: ErrForeignItem},
		{name: "an item of a newer layout is foreign, and says so", item: with(attrSchema, avS("locked-run/3")), wantErr: errNewerSchema},
		{name: "a Schema that is not a string is corrupt", item: with(attrSchema, avN(1)), wantErr: errAny},
		{name: "an Owner that is a number is corrupt", item: with(attrOwner, avN(5)), wantErr: errAny},
		{name: "an empty Owner is corrupt", item: with(attrOwner, avS("")), wantErr: errAny},
		{name: "a Pid that is a string is corrupt", item: with(attrPID, avS("7")), wantErr: errAny},
		{name: "a Pid out of range is corrupt", item: with(attrPID, avN(1<<40)), wantErr: errAny},
		{name: "a fractional LeaseMs is corrupt", item: with(attrLease, &types.AttributeValueMemberN{Value: "1.5"}), wantErr: errAny},
		{name: "a LeaseMs too big for a duration is corrupt", item: with(attrLease, &types.AttributeValueMemberN{Value: "1e300"}), wantErr: errAny},
		{name: "a negative LeaseMs is kept for the waiter to judge", item: with(attrLease, avN(-5)),
			want: func() Record { r := mustDecode(t, full); r.Lease = -5 * time.Millisecond; return withHolders(r) }()},
		{name: "a negative FencingToken is corrupt", item: with(attrToken, avN(-1)), wantErr: errAny},
		{name: "a FencingToken set is corrupt", item: with(attrToken, &types.AttributeValueMemberNS{Value: []string{"1"}}), wantErr: errAny},
		{name: "an unreadable timestamp is left zero", item: with(attrAcquired, avS("yesterday")),
			want: func() Record { r := mustDecode(t, full); r.Acquired = time.Time{}; return withHolders(r) }()},
		{name: "a timestamp that is a number is corrupt", item: with(attrHeartbeat, avN(1)), wantErr: errAny},
		{name: "a nil attribute value is treated as absent", item: with(attrUser, types.AttributeValue(nil)),
			want: func() Record { r := mustDecode(t, full); r.User = ""; return withHolders(r) }()},
		{name: "a nil string member is corrupt", item: with(attrHost, (*types.AttributeValueMemberS)(nil)), wantErr: errAny},
		{name: "a missing key is corrupt", item: with(attrKey, nil), wantErr: errAny},
		{name: "a binary key is corrupt", item: with(attrKey, &types.AttributeValueMemberB{Value: []byte("k")}), wantErr: errAny},
		{name: "an empty item is corrupt", item: map[string]types.AttributeValue{}, wantErr: errAny},
		{name: "a nil item is corrupt", item: nil, wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "a nil attribute value is treated as absent" {
				tt.item[attrUser] = nil
			}
			got, err := decodeRecord(tt.item)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("decodeRecord: %v", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("decodeRecord = %+v, %v; want error %v", got, err, tt.wantErr)
			case tt.wantErr == nil && !reflect.DeepEqual(got, tt.want):
				t.Fatalf("decodeRecord =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// withHolders returns r, an exclusive holder's record, as decodeRecord
// gives it: with itself as the only holder.
func withHolders(r Record) Record {
	h := r
	h.Holders, h.Line, h.MaxHolders = nil, nil, 0
	r.Holders = []Record{h}
	return r
}

// errAny stands for "some error" in test tables.
var errAny = errors.New("any error")

func mustDecode(t *testing.T, item map[string]types.AttributeValue) Record {
	t.Helper()
	r, err := decodeRecord(item)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTranslate(t *testing.T) {
	apiErr := func(code string) error {
		return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "UpdateItem",
			Err: &smithy.GenericAPIError{Code: code, Message: "msg of " + code}}
	}
	resp500 := &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 503}}, Err: errors.New("bad gateway")}
	tests := []struct {
		name      string
		in        error
		is        error
		transient bool
		condition bool
	}{
		{name: "a failed condition carries the old item", in: &smithy.OperationError{Err: &types.ConditionalCheckFailedException{Item: map[string]types.AttributeValue{attrKey: avS("k")}}}, condition: true},
		{name: "a missing table is ErrTableNotFound", in: &smithy.OperationError{Err: &types.ResourceNotFoundException{Message: aws.String("nope")}}, is: ErrTableNotFound},
		{name: "access denied is ErrAccessDenied", in: apiErr("AccessDeniedException"), is: ErrAccessDenied},
		{name: "an unknown access key is ErrAccessDenied", in: apiErr("UnrecognizedClientException"), is: ErrAccessDenied},
		{name: "an expired token is ErrAccessDenied", in: apiErr("ExpiredTokenException"), is: ErrAccessDenied},
		{name: "throttling is transient", in: apiErr("ThrottlingException"), transient: true},
		{name: "exceeded throughput is transient", in: &types.ProvisionedThroughputExceededException{}, transient: true},
		{name: "an internal server error is transient", in: &types.InternalServerError{}, transient: true},
		{name: "an HTTP 503 is transient", in: &smithy.OperationError{Err: resp500}, transient: true},
		{name: "a request timeout is transient", in: &smithy.OperationError{Err: fmt.Errorf("send: %w", context.DeadlineExceeded)}, transient: true},
		{name: "a reset connection is transient", in: &smithy.OperationError{Err: &smithyhttp.RequestSendError{Err: syscall.ECONNRESET}}, transient: true},
		{name: "a validation error is permanent", in: apiErr("ValidationException")},
		{name: "an unknown error is permanent", in: errors.New("get credentials: no provider")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := translate(tt.in, "locks")
			if tt.is != nil && !errors.Is(got, tt.is) {
				t.Errorf("translate = %v, want %v", got, tt.is)
			}
			if isTransient(got) != tt.transient {
				t.Errorf("translate = %v, transient %v, want %v", got, isTransient(got), tt.transient)
			}
			var ccf *conditionFailedError
			if errors.As(got, &ccf) != tt.condition || (tt.condition && !ccf.ItemKnown) {
				t.Errorf("translate = %#v, condition failure %v", got, tt.condition)
			}
			// No SDK error type escapes.
			var api smithy.APIError
			var op *smithy.OperationError
			if errors.As(got, &api) || errors.As(got, &op) {
				t.Errorf("translate = %#v lets an SDK error through", got)
			}
		})
	}
	if translate(nil, "locks") != nil {
		t.Error("translate(nil) != nil")
	}
}
