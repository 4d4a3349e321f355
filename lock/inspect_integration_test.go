package lock

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestReleaseOwnerOnDynamoDBLocal(t *testing.T) {
	e := newITEnv(t)
	holder := e.dynamo(t, e.client(nil), "holder", nil)
	op := e.dynamo(t, e.client(nil), "operator", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("another owner's lock is left alone and its holder named", func(t *testing.T) {
		lease := itAcquire(t, holder, "k")
		defer lease.Release(ctx)
		_, err := op.ReleaseOwner(ctx, "k", "someone-else-1-deadbeef")
		var noe *NotOwnerError
		if !errors.As(err, &noe) || noe.Holder.Owner != lease.Owner() || !errors.Is(err, ErrHeld) {
			t.Fatalf("ReleaseOwner(wrong owner) = %v; want a *NotOwnerError naming %s", err, lease.Owner())
		}
		if rec, _ := op.Status(ctx, "k"); rec.Owner != lease.Owner() {
			t.Fatalf("the lock changed hands: %+v", rec)
		}
	})
	t.Run("the named owner's lock is broken, the token kept, and its holder loses it", func(t *testing.T) {
		lease := itAcquire(t, holder, "k2")
		rec, err := op.ReleaseOwner(ctx, "k2", lease.Owner())
		if err != nil || rec.Owner != lease.Owner() || rec.Token != lease.Token() || rec.Host != "holder" {
			t.Fatalf("ReleaseOwner = %+v, %v; want the broken record of %s", rec, err, lease.Owner())
		}
		now, _ := op.Status(ctx, "k2")
		if now.Held() || now.Token != lease.Token() {
			t.Fatalf("after release by owner: %+v, want free with token %d", now, lease.Token())
		}
		select {
		case <-lease.Lost():
		case <-time.After(10 * time.Second):
			t.Fatal("the holder did not notice that its lock was broken")
		}
		if _, err := op.ReleaseOwner(ctx, "k2", lease.Owner()); !errors.Is(err, ErrNotHeld) {
			t.Fatalf("releasing a free key = %v, want ErrNotHeld", err)
		}
	})
	t.Run("an item of another tool is never touched", func(t *testing.T) {
		item := map[string]types.AttributeValue{
			"LockID": &types.AttributeValueMemberS{Value: "bucket/prod.tfstate"},
			"Info":   &types.AttributeValueMemberS{Value: `{"ID":"x"}`},
		}
		if _, err := e.raw.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
			t.Fatal(err)
		}
		if _, err := op.ReleaseOwner(ctx, "bucket/prod.tfstate", "x"); !errors.Is(err, ErrForeignItem) {
			t.Fatalf("ReleaseOwner(foreign) = %v, want ErrForeignItem", err)
		}
	})
	t.Run("ListAll counts the items of other tools and lists the held locks", func(t *testing.T) {
		lease := itAcquire(t, holder, "held-one")
		defer lease.Release(ctx)
		l, err := op.ListAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, r := range l.Held {
			keys = append(keys, r.Key)
		}
		if !reflect.DeepEqual(keys, []string{"held-one"}) || !reflect.DeepEqual(l.Foreign, []string{"bucket/prod.tfstate"}) {
			t.Fatalf("ListAll = held %q foreign %q", keys, l.Foreign)
		}
	})
}
