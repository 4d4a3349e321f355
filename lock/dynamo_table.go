package lock

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
		err = d.do(ctx, "create-table", func(ctx context.Context) error {
			_, err := d.api.CreateTable(ctx, &dynamodb.CreateTableInput{
				TableName:            aws.String(d.table),
				AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS}},
				KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeHash}},
				BillingMode:          types.BillingModePayPerRequest,
			}, callOpts)
			return translate(err, d.table)
		})
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
	var out *dynamodb.DescribeTableOutput
	err := d.do(ctx, "describe-table", func(ctx context.Context) error {
		var err error
		out, err = d.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(d.table)}, callOpts)
		return translate(err, d.table)
	})
	if err != nil {
		return nil, err
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
		return &KeySchemaError{Table: aws.ToString(t.TableName), Key: hash, Type: string(typ), SortKey: strings.Join(others, ", ")}
	}
	return nil
}

// A KeySchemaError reports a table that is not keyed by the string
// partition key LockID alone. It matches ErrKeySchema and ErrInvalidConfig.
type KeySchemaError struct {
	Table, Key, Type string
	SortKey          string // empty without one
}

func (e *KeySchemaError) Error() string {
	key := fmt.Sprintf("%s (%s)", e.Key, e.Type)
	if e.SortKey != "" {
		key += " with sort key " + e.SortKey
	}
	return fmt.Sprintf("table %s's key is %s; locked-run needs %s (S): use another table", e.Table, key, attrKey)
}

// Is reports whether target is ErrKeySchema or ErrInvalidConfig.
func (e *KeySchemaError) Is(target error) bool {
	return target == ErrKeySchema || target == ErrInvalidConfig
}

// explainValidation turns a request refused as invalid into a
// *KeySchemaError when the table's key is not LockID: what DynamoDB says
// then ("The provided key element does not match the schema") does not
// name either key. Any other refusal is returned as it is.
func (d *Dynamo) explainValidation(ctx context.Context, err error) error {
	desc, derr := d.describeTable(ctx)
	if derr != nil {
		return err
	}
	if kerr := checkKeySchema(desc); kerr != nil {
		return kerr
	}
	return err
}
