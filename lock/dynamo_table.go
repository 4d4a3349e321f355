package lock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// tableStatusPoll is how often CreateTable looks whether the table is
// ACTIVE. DynamoDB takes a few seconds to create a table; a second between
// DescribeTable calls is well inside its control-plane rate limits.
const tableStatusPoll = time.Second

// CreateTable creates the lock table if it does not exist, on demand
// (pay per request), keyed by the string attribute LockID, and waits until
// it is ACTIVE or ctx ends. It returns nil at once when the table already
// exists with that key (it waits for it to be ACTIVE too), and an error
// matching ErrInvalidConfig when it exists with another key. It looks
// before it creates, so credentials without dynamodb:CreateTable work when
// the table is there.
func (d *Dynamo) CreateTable(ctx context.Context) error {
	if err := d.createTable(ctx); err != nil {
		return fmt.Errorf("create table %q: %w", d.table, err)
	}
	return nil
}

func (d *Dynamo) createTable(ctx context.Context) error {
	desc, err := d.describeTable(ctx)
	if errors.Is(err, ErrTableNotFound) {
		_, err = d.api.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(d.table),
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest,
		})
		err = translate(err, d.table)
		if err != nil && !errors.Is(err, errResourceInUse) {
			return err
		}
		// Created now, or by someone else meanwhile: either way, look.
		desc, err = d.describeTable(ctx)
	}
	if err != nil {
		return err
	}
	if err := checkKeySchema(desc); err != nil {
		return err
	}
	for desc.TableStatus != types.TableStatusActive {
		d.log.Debug("waiting for table", "table", d.table, "status", desc.TableStatus)
		if err := sleep(ctx, d.clock, tableStatusPoll); err != nil {
			return fmt.Errorf("waiting for the table to be ACTIVE: %w", err)
		}
		if desc, err = d.describeTable(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (d *Dynamo) describeTable(ctx context.Context) (*types.TableDescription, error) {
	out, err := d.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(d.table)})
	if err != nil {
		return nil, translate(err, d.table)
	}
	if out.Table == nil {
		return nil, errors.New("DescribeTable returned no table")
	}
	return out.Table, nil
}

// checkKeySchema accepts a table whose only key is a string partition key
// named LockID.
func checkKeySchema(t *types.TableDescription) error {
	var hash string
	var others []string
	for _, k := range t.KeySchema {
		name := aws.ToString(k.AttributeName)
		if k.KeyType == types.KeyTypeHash {
			hash = name
		} else {
			others = append(others, name)
		}
	}
	typ := types.ScalarAttributeType("")
	for _, a := range t.AttributeDefinitions {
		if aws.ToString(a.AttributeName) == hash {
			typ = a.AttributeType
		}
	}
	if hash != attrKey || typ != types.ScalarAttributeTypeS || len(others) > 0 {
		desc := fmt.Sprintf("partition key %q of type %s", hash, typ)
		if len(others) > 0 {
			desc += fmt.Sprintf(" and sort key %q", others[0])
		}
		return fmt.Errorf("%w: the table exists with %s; locked-run needs a table whose only key is the string partition key %s",
			ErrInvalidConfig, desc, attrKey)
	}
	return nil
}
