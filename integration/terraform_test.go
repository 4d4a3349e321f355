package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// terraformLock does what Terraform's S3 backend does to lock a state in
// its DynamoDB table: a put conditional on no item with that LockID.
func terraformLock(ctx context.Context, client *dynamodb.Client, table, lockID string) error {
	_, err := client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]types.AttributeValue{
			"LockID": &types.AttributeValueMemberS{Value: lockID},
			"Info":   &types.AttributeValueMemberS{Value: `{"ID":"tf","Operation":"OperationTypeApply"}`},
		},
		ConditionExpression: aws.String("attribute_not_exists(LockID)"),
	})
	return err
}

// TestSharingATerraformLockTable shows the README's advice on sharing a
// table with Terraform: a locked-run key that equals a Terraform lock ID
// leaves an item that keeps Terraform from ever locking that state again,
// and a prefixed key does not.
func TestSharingATerraformLockTable(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	env := dynamoEnv(endpoint)
	table := ddblocal.NewTable(t)
	client := ddblocal.Client(endpoint, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ccf *types.ConditionalCheckFailedException

	t.Run("a key equal to Terraform's lock ID blocks Terraform for good", func(t *testing.T) {
		if r := runBin(t, env, "-t", table, "-k", "tf-state/net.tfstate", "-q", "--", "true"); r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		// Released, but the item stays (Schema, FencingToken).
		if err := terraformLock(ctx, client, table, "tf-state/net.tfstate"); !errors.As(err, &ccf) {
			t.Fatalf("terraform's lock after locked-run used its ID: %v, want a failed condition", err)
		}
	})
	t.Run("a prefixed key leaves Terraform's lock alone, and both work", func(t *testing.T) {
		if r := runBin(t, env, "-t", table, "-k", "locked-run:tf-state/app.tfstate", "-q", "--", "true"); r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if err := terraformLock(ctx, client, table, "tf-state/app.tfstate"); err != nil {
			t.Fatalf("terraform's lock next to a prefixed locked-run key: %v", err)
		}
		if r := runBin(t, env, "-t", table, "-k", "locked-run:tf-state/app.tfstate", "-q", "--", "true"); r.code != 0 {
			t.Fatalf("locked-run next to a Terraform lock: exit %d: %s", r.code, r.stderr)
		}
		r := runBin(t, env, "list", "-t", table)
		if r.code != 0 || r.stderr != "no locks held (1 item of other tools skipped; --all lists them)\n" {
			t.Fatalf("list: exit %d stderr %q", r.code, r.stderr)
		}
	})
}
