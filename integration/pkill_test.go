package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// descendants returns pid and every process below it, from /proc.
func descendants(pid int) []int {
	out := []int{pid}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, descendants(c)...)
			}
		}
	}
	return out
}

// `pkill -f locked-run` is how many stop a run. It signals every process
// whose command line holds "locked-run": locked-run, and not the command.
// The signal must reach the command once, as any signal sent to locked-run
// alone does; were the guardian matched too, it would look like a signal
// sent to the whole job, and nothing would be passed on. (Emulated on this
// run's own processes only, so as to touch nothing else on the machine.)
func TestPkillByTheWrappersName(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	stderr := &syncBuffer{}
	cmd := startBin(t, localEnv(t), nil, stderr, "--local", "-k", "pkill-f", "--",
		"sh", "-c", `trap 'echo TERM >>"$0"; exit 0' TERM; echo ready >>"$0"; while :; do sleep 0.05; done`, log)
	waitFor(t, 30*time.Second, "the command to be ready", func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), "ready")
	})
	var matched []string
	for _, pid := range descendants(cmd.Process.Pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(b), "locked-run") {
			continue
		}
		matched = append(matched, strings.ReplaceAll(string(b), "\x00", " "))
		syscall.Kill(pid, syscall.SIGTERM)
	}
	t.Logf("pkill -f locked-run would signal: %q", matched)
	if code := exitCode(t, cmd, 15*time.Second); code != 0 {
		t.Errorf("exit %d, want the command's 0; stderr:\n%s", code, stderr.String())
	}
	b, _ := os.ReadFile(log)
	if n := strings.Count(string(b), "TERM"); n != 1 {
		t.Errorf("the command got SIGTERM %d times, want once; stderr:\n%s", n, stderr.String())
	}
}
