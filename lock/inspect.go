package lock

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A Listing is what a scan of the lock table found: the held locks, and the
// keys of items other tools wrote (a Terraform state lock and its -md5
// digest item, say), which locked-run never touches.
type Listing struct {
	// Held are the records of every held key, sorted by key.
	Held []Record
	// Foreign are the keys of items that are not locked-run locks, sorted.
	Foreign []string
}

// ListAll returns every held lock in the table and the keys of the items
// other tools wrote, from strongly consistent scans. Unlike List, it reads
// every item, so that a table shared with Terraform does not look empty.
// Corrupt locked-run items are logged and skipped.
func (d *Dynamo) ListAll(ctx context.Context) (Listing, error) {
	in := &dynamodb.ScanInput{TableName: aws.String(d.table), ConsistentRead: aws.Bool(true)}
	var l Listing
	for {
		var out *dynamodb.ScanOutput
		err := d.do(ctx, "list", func(ctx context.Context) error {
			var err error
			out, err = d.api.Scan(ctx, in, callOpts)
			return translate(err, d.table)
		})
		if err != nil {
			return Listing{}, fmt.Errorf("list: %w", err)
		}
		for _, item := range out.Items {
			rec, err := decodeRecord(item)
			switch {
			case errors.Is(err, ErrForeignItem):
				if k, ok := item[attrKey].(*types.AttributeValueMemberS); ok {
					l.Foreign = append(l.Foreign, k.Value)
				}
			case err != nil:
				d.log.Warn("skipping unreadable lock item", "key", rec.Key, "error", err)
			case rec.Held():
				l.Held = append(l.Held, rec)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	sort.Slice(l.Held, func(i, j int) bool { return l.Held[i].Key < l.Held[j].Key })
	sort.Strings(l.Foreign)
	return l, nil
}

// A NotOwnerError reports that a release by owner found the key held by
// someone else, and left it alone. It matches ErrHeld.
type NotOwnerError struct {
	Key    string
	Owner  string // the owner the caller meant to break
	Holder Record // who holds the key now
}

func (e *NotOwnerError) Error() string {
	return fmt.Sprintf("release %q: held by %s now, not by %s; nothing released", e.Key, e.Holder.Describe(), e.Owner)
}

// Is reports whether target is ErrHeld.
func (e *NotOwnerError) Is(target error) bool { return target == ErrHeld }

// ReleaseOwner breaks the lock on key only if owner holds it, with one write
// conditional on that owner (the `terraform force-unlock LOCK_ID` of
// locked-run), and returns the record it broke. Whatever the holder's
// heartbeats did meanwhile, a lock of another owner is never touched: it
// returns a *NotOwnerError naming the holder, ErrNotHeld when the key is
// free, and a *ForeignItemError for an item another tool wrote. The fencing
// token is kept.
func (d *Dynamo) ReleaseOwner(ctx context.Context, key, owner string) (Record, error) {
	if err := ValidateKey(key); err != nil {
		return Record{}, fmt.Errorf("release %q: %w", key, err)
	}
	if owner == "" {
		return Record{}, fmt.Errorf("release %q: %w: no owner given", key, ErrInvalidConfig)
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                aws.String(d.table),
		Key:                      keyOf(key),
		UpdateExpression:         aws.String(removeHolderExpr),
		ConditionExpression:      aws.String("#Schema = :schema AND #Owner = :owner"),
		ExpressionAttributeNames: names(append([]string{attrSchema}, holderAttrs...)...),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":schema": avS(SchemaVersion),
			":owner":  avS(owner),
		},
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	// Retried under the backend's policy. A retry after an attempt whose
	// answer was lost may find the key free: that attempt broke it.
	var out *dynamodb.UpdateItemOutput
	attempts := 0
	err := d.do(ctx, "release", func(ctx context.Context) error {
		attempts++
		var err error
		out, err = d.api.UpdateItem(ctx, in, callOpts)
		return translate(err, d.table)
	})
	var ccf *conditionFailedError
	switch {
	case err == nil:
		rec, derr := decodeRecord(out.Attributes)
		if derr != nil {
			// Broken all the same; say whose it was as far as known.
			rec = Record{Key: key, Owner: owner}
		}
		d.log.Debug("released by owner", "key", key, "owner", owner, "token", rec.Token)
		return rec, nil
	case errors.As(err, &ccf):
		if !ccf.ItemKnown {
			// The endpoint did not say what is there; read it.
			rec, serr := d.status(ctx, key)
			if serr != nil {
				return Record{}, fmt.Errorf("release %q: %w", key, serr)
			}
			return Record{}, d.notOwner(key, owner, rec)
		}
		if len(ccf.Item) == 0 {
			return Record{}, fmt.Errorf("release %q: %w", key, ErrNotHeld)
		}
		rec, derr := decodeRecord(ccf.Item)
		if derr == nil {
			for _, h := range rec.Holders {
				if h.Owner == owner && h.Shared {
					res, err := d.removeShared(ctx, key, owner)
					switch {
					case err != nil:
						return Record{}, fmt.Errorf("release %q: %w", key, err)
					case res.removed:
						d.log.Debug("released shared holder by owner", "key", key, "owner", owner)
						return h, nil
					}
					return Record{}, d.notOwner(key, owner, res.other)
				}
			}
		}
		if derr == nil && !rec.Held() && attempts > 1 {
			return Record{Key: key, Owner: owner, Token: rec.Token}, nil
		}
		if errors.Is(derr, ErrForeignItem) {
			return Record{}, fmt.Errorf("release %q: %w", key, &ForeignItemError{Key: key})
		}
		if derr != nil {
			return Record{}, fmt.Errorf("release %q: %w", key, derr)
		}
		return Record{}, d.notOwner(key, owner, rec)
	default:
		return Record{}, fmt.Errorf("release %q: %w", key, err)
	}
}

func (d *Dynamo) notOwner(key, owner string, now Record) error {
	if !now.Held() {
		return fmt.Errorf("release %q: %w", key, ErrNotHeld)
	}
	return &NotOwnerError{Key: key, Owner: owner, Holder: now}
}

// ReleaseOwner cannot break a flock held by another process: like
// ForceRelease, it returns ErrCannotBreak naming the holder, or ErrNotHeld
// when the key is free.
func (l *Local) ReleaseOwner(ctx context.Context, key, owner string) (Record, error) {
	return l.ForceRelease(ctx, key)
}
