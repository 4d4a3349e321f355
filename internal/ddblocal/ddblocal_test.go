package ddblocal

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestNewTableIsActiveAndKeyedByLockID(t *testing.T) {
	name := NewTable(t)
	out, err := Client(Endpoint(t), nil).DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.Table.KeySchema[0].AttributeName); got != "LockID" {
		t.Fatalf("partition key = %q, want LockID", got)
	}
}
