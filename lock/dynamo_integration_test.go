package lock

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.Run(m)) }

// countingTransport counts the DynamoDB requests that go through it, by
// operation (the X-Amz-Target header after its dot).
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	ops  []string
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := req.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	c.mu.Lock()
	c.ops = append(c.ops, op)
	c.mu.Unlock()
	return c.base.RoundTrip(req)
}

func (c *countingTransport) Ops() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ops...)
}

func TestSmokeDynamoLocal(t *testing.T) {
	table := ddblocal.NewTable(t)
	ct := &countingTransport{base: http.DefaultTransport}
	client := ddblocal.Client(ddblocal.Endpoint(t), &http.Client{Transport: ct})
	d, err := NewDynamo(DynamoConfig{Client: client, Table: table, Timing: Timing{Lease: 3 * time.Second, Heartbeat: time.Second, KillAfter: time.Second}, Identity: Identity{Host: "h", PID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := d.Acquire(ctx, "k", AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v ops=%v", l.Record(), ct.Ops())
	d2, _ := NewDynamo(DynamoConfig{Client: client, Table: table, Timing: Timing{Lease: 3 * time.Second, Heartbeat: time.Second, KillAfter: time.Second}, Identity: Identity{Host: "h2", PID: 2}})
	_, err = d2.Acquire(ctx, "k", AcquireOptions{NoWait: true})
	t.Logf("nowait: %v ops=%v", err, ct.Ops())
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("ops=%v", ct.Ops())
	st, err := d.Status(ctx, "k")
	t.Logf("%+v %v", st, err)
}
