package lock

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A lease whose renew window leaves little room past one heartbeat (--lease
// 18s with the default heartbeat and --kill-after leaves 200 ms) is given
// back whenever the acquiring write's answer comes later than that. A store
// that is always that slow would make Acquire take and give back the key
// for ever, raising its fencing token every round; it gives up after
// maxGiveBacks instead, saying why, and leaves the key free.
func TestDynamoSlowStoreGivesUp(t *testing.T) {
	for _, opts := range []AcquireOptions{{NoWait: true}, {}} {
		name := "waiting"
		if opts.NoWait {
			name = "no-wait"
		}
		t.Run(name+": answers always too late end in SlowStoreError, key left free", func(t *testing.T) {
			clk := newFakeClock()
			f := newFakeTable(t, clk, "acquire", "GetItem", "release")
			timing := Timing{Lease: 18 * time.Second, KillAfter: 10 * time.Second}
			d, err := NewDynamo(DynamoConfig{Client: f, Table: fakeTableName, Timing: timing, Identity: unitIdentity, Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			writes := 0
			f.setHook(func(c *fakeCall) (bool, error) {
				if c.Kind == "acquire" {
					writes++
					if writes > 10 {
						cancel() // the bug: it would go on for ever
					}
					clk.Advance(300 * time.Millisecond)
				}
				return true, nil
			})
			l, err := d.Acquire(ctx, "deploy", opts)
			if l != nil {
				t.Fatalf("Acquire handed out a lease with too little left: %v", l.Remaining())
			}
			var slow *SlowStoreError
			if !errors.As(err, &slow) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Acquire = %v after %d acquiring writes, want a SlowStoreError", err, writes)
			}
			if writes != maxGiveBacks {
				t.Fatalf("%d acquiring writes, want %d", writes, maxGiveBacks)
			}
			if slow.Left >= timing.Lease/3 || slow.Heartbeat != 6*time.Second {
				t.Fatalf("error says left %v, heartbeat %v", slow.Left, slow.Heartbeat)
			}
			rec, err := d.Status(context.Background(), "deploy")
			if err != nil || rec.Held() {
				t.Fatalf("after giving up: %+v, %v; want the key free", rec, err)
			}
		})
	}
}
