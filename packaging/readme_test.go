package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's release-archive install commands, run as written against a
// local fake release: the URL becomes file://, /usr/local a temporary
// directory, and sudo is dropped.
func TestReadmeReleaseArchiveInstall(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not found")
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\\*\\*A release archive\\*\\*.*?```sh\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no release-archive install block")
	}
	block := string(m[1])
	const url = "https://github.com/locked-run/locked-run/releases/download"
	if !strings.Contains(block, url) || !strings.Contains(block, "sha256sum -c") {
		t.Fatalf("the README block does not download from %s and check sha256sums:\n%s", url, block)
	}
	run := func(t *testing.T, base string) (string, error) {
		t.Helper()
		root := t.TempDir()
		for _, d := range []string{"usr/local/bin", "usr/local/share/man/man1", "work"} {
			os.MkdirAll(filepath.Join(root, d), 0o755)
		}
		script := strings.NewReplacer(url, base, "sudo ", "", "/usr/local/", root+"/usr/local/", "OS=linux ARCH=amd64", "OS=linux ARCH=arm64").Replace(block)
		cmd := exec.Command("bash", "-e", "-c", script)
		cmd.Dir = filepath.Join(root, "work")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), err
		}
		for _, f := range []string{"usr/local/bin/locked-run", "usr/local/share/man/man1/locked-run.1"} {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("not installed: %v", err)
			}
		}
		v, err := exec.Command(filepath.Join(root, "usr/local/bin/locked-run"), "--version").Output()
		return string(out) + string(v), err
	}

	t.Run("installs the archive with its checksum checked", func(t *testing.T) {
		base, _ := fakeRelease(t, "v0.1.0", "linux_arm64")
		out, err := run(t, base)
		if err != nil || !strings.Contains(out, "linux_arm64.tar.gz: OK") || !strings.Contains(out, "locked-run version v0.1.0 (linux_arm64)") {
			t.Errorf("%v\n%s", err, out)
		}
	})
	t.Run("stops at a checksum mismatch", func(t *testing.T) {
		base, dir := fakeRelease(t, "v0.1.0", "linux_arm64")
		archive := filepath.Join(dir, "locked-run_0.1.0_linux_arm64.tar.gz")
		b, _ := os.ReadFile(archive)
		os.WriteFile(archive, append(b, 0), 0o644)
		if out, err := run(t, base); err == nil || !strings.Contains(out, "FAILED") {
			t.Errorf("tampered archive: %v\n%s", err, out)
		}
	})
}
