package proctree

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestProcessTable(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.Env = []string{"LOCKED_RUN_OWNER=proctree-test", "OTHER=x"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	t.Run("a running process is found, with its environment", func(t *testing.T) {
		// Start returns once the exec has begun, but the kernel sets the new
		// program's environment up a little later (CI met the empty one once):
		// wait for it as the tree checks do, through Anonymous.
		for i := 0; i < 400 && Anonymous(pid); i++ {
			sleepABit()
		}
		if st := State(pid); st == 0 || st == 'Z' || st == 'T' {
			t.Errorf("State = %q, want a running state", st)
		}
		if !slices.Contains(All(), pid) {
			t.Errorf("All does not list %d", pid)
		}
		if !HasMarker(pid, "LOCKED_RUN_OWNER=proctree-test") {
			t.Errorf("HasMarker misses the exact entry")
		}
		for _, m := range []string{"LOCKED_RUN_OWNER=proctree", "LOCKED_RUN_OWNER=proctree-test2", ""} {
			if HasMarker(pid, m) {
				t.Errorf("HasMarker(%q) is true; only the exact entry counts", m)
			}
		}
	})
	t.Run("a stopped process is T, a reaped one does not exist", func(t *testing.T) {
		cmd.Process.Signal(os.Signal(stopSignal))
		for range 200 {
			if State(pid) == 'T' {
				break
			}
			sleepABit()
		}
		if st := State(pid); st != 'T' {
			t.Errorf("State after SIGSTOP = %q, want 'T'", st)
		}
		cmd.Process.Kill()
		cmd.Wait()
		if st := State(pid); st != 0 {
			t.Errorf("State of a reaped process = %q, want 0", st)
		}
	})
}

var stopSignal = syscall.SIGSTOP

// sleepABit paces a poll of another process's state, which only /proc (or
// sysctl) can tell.
func sleepABit() { time.Sleep(5 * time.Millisecond) }
