package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLocalLockOutlivesAKilledHolder: a host-local lock is a flock(2), which
// the kernel frees the moment its holder dies. After a SIGKILL of locked-run
// the guardian still has to kill what the command left running, so it holds
// the lock file too: the key stays held until the guardian is done. The
// guardian is stopped here to make that moment last; without the held file
// the key is free at once.
func TestLocalLockOutlivesAKilledHolder(t *testing.T) {
	env := localEnv(t)
	dir := strings.TrimPrefix(env[len(env)-1], "LOCKED_RUN_LOCK_DIR=")
	holder := startBin(t, env, nil, nil, "--local", "-q", "-k", "hold", "--", "sleep", "300")

	var guardian int
	var lockFile string
	deadline := time.Now().Add(20 * time.Second)
	for guardian == 0 || lockFile == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no guardian of pid %d holding a lock file in %s (guardian %d, file %q)", holder.Process.Pid, dir, guardian, lockFile)
		}
		time.Sleep(20 * time.Millisecond)
		guardian = guardianOf(holder.Process.Pid)
		if guardian == 0 {
			continue
		}
		fds, _ := os.ReadDir("/proc/" + strconv.Itoa(guardian) + "/fd")
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(guardian), "fd", fd.Name()))
			if err == nil && filepath.Dir(target) == dir && strings.HasSuffix(target, ".lock") {
				lockFile = target
			}
		}
	}

	if err := syscall.Kill(guardian, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(guardian, syscall.SIGCONT) })
	holder.Process.Kill()
	holder.Wait()

	r := runBin(t, env, "--local", "-n", "-k", "hold", "--", "true")
	if r.code != 75 {
		t.Fatalf("with the holder SIGKILLed and its guardian not done, -n exited %d, want 75 (held); stderr:\n%s", r.code, r.stderr)
	}

	syscall.Kill(guardian, syscall.SIGCONT)
	deadline = time.Now().Add(10 * time.Second)
	for {
		r := runBin(t, env, "--local", "-n", "-q", "-k", "hold", "--", "true")
		if r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key is still held 10 s after the guardian was continued: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(guardian)); err == nil {
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(guardian) + "/stat"); !strings.Contains(string(st), ") Z ") {
			t.Errorf("guardian %d still runs after the key was freed", guardian)
		}
	}
}

// guardianOf returns the pid of the guardian that locked-run pid started,
// or 0.
func guardianOf(pid int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.HasPrefix(string(cmdline), "lockedrun-guardian\x00") {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The parent is the second field after the command in parentheses.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			return p
		}
	}
	return 0
}
