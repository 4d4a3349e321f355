package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestLocalDefaultDirEveryContext shows issue 9, point 8 with the real
// binary: a key held from one context of a user is held in every other
// context of that user on the host, whatever their environment: a login
// shell's $XDG_RUNTIME_DIR, cron's bare environment, a $TMPDIR, and a
// systemd service with PrivateTmp (a /tmp of its own, made here with
// unshare -m and a tmpfs).
func TestLocalDefaultDirEveryContext(t *testing.T) {
	var base []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "LOCKED_RUN_") ||
			strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") || strings.HasPrefix(kv, "TMPDIR=") {
			continue
		}
		base = append(base, kv)
	}
	key := "every-context-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000")
	login := append(append([]string(nil), base...), "XDG_RUNTIME_DIR="+t.TempDir())

	var holderErr syncBuffer
	holder := startBin(t, login, nil, &holderErr, "--local", "-k", key, "--", "sleep", "60")
	waitFor(t, 30*time.Second, "the holder to start its command", func() bool {
		return strings.Contains(holderErr.String(), "started command")
	})

	contexts := map[string][]string{
		"cron (no XDG_RUNTIME_DIR)": base,
		"a TMPDIR of its own":       append(append([]string(nil), base...), "TMPDIR="+t.TempDir()),
	}
	for name, env := range contexts {
		if r := runBin(t, env, "--local", "-n", "-k", key, "--", "true"); r.code != 75 {
			t.Errorf("%s: --no-wait exited %d, want 75 (held from the login shell): %s", name, r.code, r.stderr)
		}
	}

	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("unshare"); err == nil {
			// The binary lives in /tmp: open it before the tmpfs hides it.
			cmd := exec.Command("unshare", "-m", "sh", "-c",
				`exec 3<"$1"; shift; mount -t tmpfs tmpfs /tmp && exec /proc/self/fd/3 "$@"`, "sh",
				binPath, "--local", "-n", "-k", key, "--", "true")
			cmd.Env = base
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != 75 {
				t.Errorf("with a private /tmp (PrivateTmp): --no-wait exited %d, want 75: %s", code, out)
			}
		}
	}
	holder.Process.Kill()
	_ = holder.Wait()
}
