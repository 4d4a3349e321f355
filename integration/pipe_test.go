package integration

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPrintersEndQuietlyOnAClosedPipe: `locked-run status | grep -q held`
// stops reading after the first match. What status and list print is read by
// such pipelines, so a closed stdout ends them by SIGPIPE, silently, as it
// ends cat or ls; only the run keeps SIGPIPE caught (its command must
// survive locked-run's own broken pipe: TestDifferential).
func TestPrintersEndQuietlyOnAClosedPipe(t *testing.T) {
	env := localEnv(t)
	holder := startBin(t, env, nil, nil, "--local", "-q", "-k", "printed", "--", "sleep", "60")
	defer func() { holder.Process.Kill(); holder.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r := runBin(t, env, "status", "--local", "-k", "printed"); strings.Contains(r.stdout, "held by") {
			break // list has a line to print too
		}
		if time.Now().After(deadline) {
			t.Fatal("the holder did not take the lock within 20 s")
		}
	}
	for _, args := range [][]string{
		{"status", "--local", "-k", "printed"},
		{"list", "--local"},
		{"completion", "bash"},
	} {
		t.Run(args[0]+" dies of SIGPIPE without a word", func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			r.Close() // nobody reads: the first write breaks the pipe
			cmd := exec.Command(binPath, args...)
			cmd.Env = env
			cmd.Stdout = w
			var stderr syncBuffer
			cmd.Stderr = &stderr
			err = cmd.Run()
			w.Close()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("exit: %v, want death by SIGPIPE; stderr: %q", err, stderr.String())
			}
			ws := ee.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
				t.Fatalf("ended %v, want death by SIGPIPE; stderr: %q", ee, stderr.String())
			}
			if stderr.String() != "" {
				t.Fatalf("stderr %q, want nothing", stderr.String())
			}
		})
	}
}
