package lock

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// EnvFakeShadow, when set, makes every fake table of the unit tests send
// each UpdateItem it applies to DynamoDB Local too, over the same item, and
// fail the test when the two differ (outcome, message, item after, values
// returned). It checks the fake on every write the backend really sends:
//
//	LOCKED_RUN_FAKE_SHADOW=1 go test -count=1 ./lock
//
// Off by default: it makes the unit tests slower by a round trip a write.
const EnvFakeShadow = "LOCKED_RUN_FAKE_SHADOW"

// A fakeShadow is the DynamoDB Local table that shadows one fake table.
type fakeShadow struct {
	client *dynamodb.Client
	table  string
}

// newFakeShadow returns the shadow of a fake table of t, or nil when
// EnvFakeShadow is not set.
func newFakeShadow(t testing.TB) *fakeShadow {
	if os.Getenv(EnvFakeShadow) == "" {
		return nil
	}
	t.Helper()
	return &fakeShadow{client: ddblocal.Client(ddblocal.Endpoint(t), nil), table: ddblocal.NewTable(t)}
}

// check sends in to DynamoDB Local over old (nil: no item) and reports
// how what it did differs from what the fake did (fakeOut, fakeErr); ""
// when it does not.
func (s *fakeShadow) check(in *dynamodb.UpdateItemInput, old map[string]types.AttributeValue, noOld bool,
	fakeOut *dynamodb.UpdateItemOutput, fakeErr error, fakeAfter map[string]types.AttributeValue) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	key := in.Key
	var err error
	if old != nil {
		_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: old})
	} else {
		_, err = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: key})
	}
	if err != nil {
		return "shadow: " + err.Error()
	}
	lin := *in
	lin.TableName = aws.String(s.table)
	out, uerr := s.client.UpdateItem(ctx, &lin)
	got, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "shadow: " + err.Error()
	}
	local := xOutcome(uerr, out, got.Item)
	fake := xOutcome(fakeErr, fakeOut, fakeAfter)
	if fake.kind == "ccf" && noOld {
		local.attrs = nil
	}
	if fake.kind != local.kind || fake.msg != local.msg || !xSameItem(fake.after, local.after) || !xSameItem(fake.attrs, local.attrs) {
		return "fake table and DynamoDB Local differ on an UpdateItem:\n cond   " + aws.ToString(in.ConditionExpression) +
			"\n update " + aws.ToString(in.UpdateExpression) + "\n over   " + xShowItem(old) +
			"\n fake   " + fake.kind + " " + fake.msg + " " + xShowItem(fake.after) +
			"\n local  " + local.kind + " " + local.msg + " " + xShowItem(local.after)
	}
	return ""
}
