package lock

import (
	"context"
	"runtime"
	"testing"
	"time"
)

func TestParseHandover(t *testing.T) {
	h := handover{nonce: "n1", rvn: "r1", token: 42, more: true}
	got, ok := parseHandover(h.encode())
	if !ok || got != h {
		t.Fatalf("parseHandover(encode(%+v)) = %+v, %v", h, got, ok)
	}
	for _, bad := range []string{"", "\x01", "handover n r 0 1", "handover n r x 1", "handover n r 5 2", "handover  r 5 1", "handover n r 5", "handover n r 9223372036854775808 0"} {
		if _, ok := parseHandover([]byte(bad)); ok {
			t.Errorf("parseHandover(%q) accepted", bad)
		}
	}
}

// TestHandoverBelieved: a waiter believes a handover only with its own
// nonce, a token greater than any it saw while not holding, and a hold it
// does not know of yet; anything else only makes it look.
func TestHandoverBelieved(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the doorbell is Linux-only")
	}
	d, err := NewDynamo(DynamoConfig{Client: newFakeTable(t, nil), Table: "t", Identity: Identity{Host: "h", PID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	a := newAcquisition(d, "k", AcquireOptions{})
	a.bell = openDoorbell(a.owner)
	if a.bell == nil {
		t.Fatal("no doorbell")
	}
	defer a.bell.Close()
	a.lastToken = 41
	a.handed["known"] = time.Now()
	try := func(h handover) *handover {
		t.Helper()
		ringTransfer(a.owner, h)
		rung, got, err := a.sleep(context.Background(), 5*time.Second)
		if err != nil || !rung {
			t.Fatalf("sleep = %v, %v: the ring did not wake it", rung, err)
		}
		return got
	}
	if got := try(handover{nonce: "other", rvn: "r", token: 42}); got != nil {
		t.Errorf("believed a handover with another nonce: %+v", got)
	}
	if got := try(handover{nonce: a.nonce, rvn: "r", token: 41}); got != nil {
		t.Errorf("believed a stale handover (token 41, and 41 seen while waiting): %+v", got)
	}
	if got := try(handover{nonce: a.nonce, rvn: "known", token: 50}); got != nil {
		t.Errorf("believed a handover of a hold already known: %+v", got)
	}
	if got := try(handover{nonce: a.nonce, rvn: "r", token: 42}); got == nil || got.token != 42 {
		t.Errorf("did not believe a good handover: %+v", got)
	}
}
