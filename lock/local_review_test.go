package lock

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

// A release rewrites the held record with the shorter free one (one write)
// and then truncates the file (a second call). A holder SIGKILLed between
// the two leaves the free record followed by the tail of the held one: the
// key must still be usable, and its counter must go on from the free
// record, rather than every later acquire failing until the file is removed
// by hand.
func TestLocalReleaseKilledBeforeTruncate(t *testing.T) {
	dir := t.TempDir()
	l := newTestLocal(t, dir)
	held, err := json.Marshal(localFile{Schema: localSchema, Key: "k", Owner: "old-1-00000000", Host: "h", PID: 1,
		User: "u", Command: "terraform apply -auto-approve", Token: 7})
	must(t, err)
	free, err := json.Marshal(localFile{Schema: localSchema, Key: "k", Token: 7})
	must(t, err)
	data := append(append([]byte{}, held...), '\n')
	copy(data, append(free, '\n')) // WriteAt(free, 0) landed, Truncate did not
	must(t, os.WriteFile(l.Path("k"), data, 0o600))

	rec, err := l.Status(context.Background(), "k")
	if err != nil || rec.Held() || rec.Token != 7 {
		t.Errorf("Status = %+v, %v; want free with token 7", rec, err)
	}
	lease := acquire(t, l, "k", AcquireOptions{NoWait: true})
	if lease.Token() != 8 {
		t.Errorf("token %d, want 8: the counter of the free record plus one", lease.Token())
	}
}
