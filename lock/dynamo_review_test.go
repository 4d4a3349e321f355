package lock

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A release whose first attempt lands but whose answer is lost, after
// which a waiter takes the freed key before the retry: the retry finds the
// key held by the waiter with a greater token. Our release is what let the
// waiter in, so Release must not report the lock as lost.
func TestDynamoReleaseLostAnswerThenTaken(t *testing.T) {
	clk := newFakeClock()
	f := newFakeTable(t, clk, "acquire", "heartbeat", "release")
	d := newUnitDynamo(t, f, clk)
	l := mustAcquire(t, d, "deploy")
	releases := 0
	f.setHook(func(c *fakeCall) (bool, error) {
		if c.Kind != "release" {
			return true, nil
		}
		releases++
		switch releases {
		case 1:
			return true, throttledAfterApply() // landed, answer lost
		case 2:
			// A waiter polling the key took it meanwhile.
			f.put(renewedAt(holderItem("deploy", "other-7-abcdef01", "w1", 3000, int64(l.Token())+1), clk.Now()))
		}
		return true, nil
	})
	done := make(chan struct{})
	var err error
	go func() { defer close(done); err = l.Release(context.Background()) }()
	clk.run(t, 1, 10*time.Millisecond, time.Minute, done, nil)
	<-done
	if releases != 2 {
		t.Fatalf("%d release attempts, want 2", releases)
	}
	if errors.Is(err, ErrLost) {
		t.Errorf("Release = %v; want success: the first attempt freed the key, then the waiter took it", err)
	}
}
