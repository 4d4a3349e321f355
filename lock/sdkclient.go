package lock

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// SDKClient returns client as a DynamoAPI. Use it rather than passing
// client itself: a *dynamodb.Client stored in an interface makes a binary
// keep all of the client's 60-odd operations (1.9 MB of the 15.7 MB
// locked-run was), because the linker keeps every exported method of a
// type held in an interface once a method can be looked up by name, and
// text/template (urfave/cli's help) can. The value returned holds only
// method values of the five operations the backend calls, so the client's
// type never reaches an interface and the other operations are left out.
func SDKClient(client *dynamodb.Client) DynamoAPI {
	return methodClient{getItem: client.GetItem, updateItem: client.UpdateItem, scan: client.Scan, createTable: client.CreateTable, describeTable: client.DescribeTable}
}

type methodClient struct {
	getItem       func(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	updateItem    func(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	scan          func(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	createTable   func(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	describeTable func(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

func (c methodClient) GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return c.getItem(ctx, params, optFns...)
}

func (c methodClient) UpdateItem(ctx context.Context, params *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return c.updateItem(ctx, params, optFns...)
}

func (c methodClient) Scan(ctx context.Context, params *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return c.scan(ctx, params, optFns...)
}

func (c methodClient) CreateTable(ctx context.Context, params *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	return c.createTable(ctx, params, optFns...)
}

func (c methodClient) DescribeTable(ctx context.Context, params *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return c.describeTable(ctx, params, optFns...)
}
