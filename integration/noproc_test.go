package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Without /proc the tree cannot be found, so what the command leaves
// running is neither stopped nor waited for; locked-run must say so instead
// of releasing the lock as if all were well.
func TestWithoutProcItWarns(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root, and this test needs it")
		}
		t.Skip("unshare --mount needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("unshare (util-linux) is missing")
	}
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c",
		`umount -l /proc && exec "$0" --local -k noproc -- true`, binPath)
	cmd.Env = localEnv(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "cannot see the command's processes") {
		t.Errorf("no warning that the tree cannot be seen; output:\n%s", out)
	}
}
