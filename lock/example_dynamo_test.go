package lock

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// exampleClient stands in for dynamodb.NewFromConfig(cfg) in the examples:
// an in-memory table with a table named "locks".
func exampleClient() DynamoAPI {
	return newFakeTableFailing(func(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }, nil,
		"acquire", "takeover", "heartbeat", "release", "force", "GetItem", "Scan", "DescribeTable", "CreateTable")
}

// Acquire a key, run something while holding it, and release it.
func ExampleDynamo() {
	ctx := context.Background()
	locks, err := NewDynamo(DynamoConfig{
		Client:   exampleClient(), // dynamodb.NewFromConfig(cfg)
		Table:    "locks",
		Timing:   Timing{Lease: 30 * time.Second}, // heartbeat lease/3, kill-after 10s
		Identity: Identity{Host: "ci-runner-7", PID: 4412, User: "ci", Command: "terraform apply"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	lease, err := locks.Acquire(ctx, "deploy-prod", AcquireOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("fencing token:", lease.Token())

	// The caller runs its work, and stops it if the lease is lost.
	select {
	case <-lease.Lost():
		fmt.Println("lost:", lease.Err())
	default:
		fmt.Println("working")
	}

	// Release on a fresh context: the caller's may be done by now.
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lease.Release(rctx); err != nil {
		fmt.Println(err)
	}
	rec, _ := locks.Status(ctx, "deploy-prod")
	fmt.Println("held:", rec.Held(), "last token:", rec.Token)
	// Output:
	// fencing token: 1
	// working
	// held: false last token: 1
}

// With NoWait, a held key fails at once with the holder's description.
func ExampleDynamo_Acquire_noWait() {
	ctx := context.Background()
	client := exampleClient()
	ci, _ := NewDynamo(DynamoConfig{Client: client, Table: "locks",
		Identity: Identity{Host: "ci-runner-7", PID: 4412, Command: "terraform apply"}})
	laptop, _ := NewDynamo(DynamoConfig{Client: client, Table: "locks",
		Identity: Identity{Host: "laptop", PID: 999, Command: "terraform plan"}})

	lease, _ := ci.Acquire(ctx, "deploy-prod", AcquireOptions{})
	defer lease.Release(context.Background())

	_, err := laptop.Acquire(ctx, "deploy-prod", AcquireOptions{NoWait: true})
	var held *HeldError
	if errors.As(err, &held) {
		h := held.Holder
		fmt.Printf("held by host %s, pid %d, running %q, token %d\n", h.Host, h.PID, h.Command, h.Token)
	}
	fmt.Println("is ErrHeld:", errors.Is(err, ErrHeld))
	// Output:
	// held by host ci-runner-7, pid 4412, running "terraform apply", token 1
	// is ErrHeld: true
}
