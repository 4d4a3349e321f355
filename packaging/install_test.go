package packaging_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeRelease writes a release directory as goreleaser lays it out
// (BASE/v0.1.0/archive and checksums.txt) whose "binary" is a script that
// prints a version, and returns BASE as a file:// URL.
func fakeRelease(t *testing.T, version string, targets ...string) (baseURL, dir string) {
	t.Helper()
	base := t.TempDir()
	dir = filepath.Join(base, version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var sums strings.Builder
	for _, target := range targets {
		name := fmt.Sprintf("locked-run_%s_%s.tar.gz", strings.TrimPrefix(version, "v"), target)
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		for _, f := range []struct {
			name, body string
			mode       int64
		}{
			{"LICENSE", "Apache License\n", 0o644},
			{"man/man1/locked-run.1", ".TH LOCKED\\-RUN 1\n", 0o644},
			{"locked-run", "#!/bin/sh\necho \"locked-run version " + version + " (" + target + ")\"\n", 0o755},
		} {
			tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
			tw.Write([]byte(f.body))
		}
		tw.Close()
		gz.Close()
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sums, "%x  %s\n", sha256.Sum256(buf.Bytes()), name)
	}
	if err := os.WriteFile(filepath.Join(dir, "checksums.txt"), []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return "file://" + base, dir
}

type installResult struct {
	status         int
	stderr         string
	installDir     string
	githubPath     string
	installedBytes []byte // nil when nothing was installed
}

func runInstall(t *testing.T, env ...string) installResult {
	t.Helper()
	home := t.TempDir()
	res := installResult{installDir: filepath.Join(home, "bin")}
	ghPath := filepath.Join(home, "github_path")
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), "packaging", "install.sh"))
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LOCKED_RUN_INSTALL_DIR=" + res.installDir, "GITHUB_PATH=" + ghPath}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	res.stderr = stderr.String()
	if ee, ok := err.(*exec.ExitError); ok {
		res.status = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(ghPath); err == nil {
		res.githubPath = string(b)
	}
	if b, err := os.ReadFile(filepath.Join(res.installDir, "locked-run")); err == nil {
		res.installedBytes = b
	}
	return res
}

func TestInstallScript(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not found")
	}
	const version = "v0.1.0"
	targets := []string{"linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64"}

	t.Run("installs the archive whose checksum matches, and adds it to GITHUB_PATH", func(t *testing.T) {
		base, _ := fakeRelease(t, version, targets...)
		for _, tc := range []struct{ os, arch, target string }{
			{"Linux", "x86_64", "linux_amd64"}, {"Linux", "aarch64", "linux_arm64"},
			{"Darwin", "x86_64", "darwin_amd64"}, {"Darwin", "arm64", "darwin_arm64"},
		} {
			r := runInstall(t, "LOCKED_RUN_VERSION="+version, "LOCKED_RUN_BASE_URL="+base, "LOCKED_RUN_OS="+tc.os, "LOCKED_RUN_ARCH="+tc.arch)
			if r.status != 0 || !bytes.Contains(r.installedBytes, []byte("("+tc.target+")")) {
				t.Errorf("%s/%s: status %d, installed %q, stderr: %s", tc.os, tc.arch, r.status, r.installedBytes, r.stderr)
			}
			if r.githubPath != r.installDir+"\n" {
				t.Errorf("%s/%s: GITHUB_PATH got %q, want %q", tc.os, tc.arch, r.githubPath, r.installDir+"\n")
			}
		}
		// And on this machine, without overrides: the binary runs.
		r := runInstall(t, "LOCKED_RUN_VERSION="+version, "LOCKED_RUN_BASE_URL="+base)
		if r.status != 0 || !strings.Contains(r.stderr, "installed locked-run version "+version) {
			t.Errorf("status %d, stderr: %s", r.status, r.stderr)
		}
	})

	t.Run("a checksum mismatch fails and installs nothing", func(t *testing.T) {
		base, dir := fakeRelease(t, version, targets...)
		archive := filepath.Join(dir, "locked-run_0.1.0_linux_amd64.tar.gz")
		b, _ := os.ReadFile(archive)
		// A tampered archive: still a valid gzip stream with the binary.
		if err := os.WriteFile(archive, append(b, 0), 0o644); err != nil {
			t.Fatal(err)
		}
		r := runInstall(t, "LOCKED_RUN_VERSION="+version, "LOCKED_RUN_BASE_URL="+base, "LOCKED_RUN_OS=Linux", "LOCKED_RUN_ARCH=x86_64")
		if r.status == 0 || !strings.Contains(r.stderr, "checksum mismatch for locked-run_0.1.0_linux_amd64.tar.gz") || r.installedBytes != nil || r.githubPath != "" {
			t.Errorf("status %d, installed %v, GITHUB_PATH %q, stderr: %s", r.status, r.installedBytes != nil, r.githubPath, r.stderr)
		}
		if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("want one line on stderr, got:\n%s", r.stderr)
		}
	})

	t.Run("an archive missing from checksums.txt fails", func(t *testing.T) {
		base, dir := fakeRelease(t, version, targets...)
		sums, _ := os.ReadFile(filepath.Join(dir, "checksums.txt"))
		kept := regexp.MustCompile(`(?m)^.*linux_arm64.*\n`).ReplaceAll(sums, nil)
		os.WriteFile(filepath.Join(dir, "checksums.txt"), kept, 0o644)
		r := runInstall(t, "LOCKED_RUN_VERSION="+version, "LOCKED_RUN_BASE_URL="+base, "LOCKED_RUN_OS=Linux", "LOCKED_RUN_ARCH=arm64")
		if r.status == 0 || !strings.Contains(r.stderr, "is not listed in") || r.installedBytes != nil {
			t.Errorf("status %d, stderr: %s", r.status, r.stderr)
		}
	})

	t.Run("refusals: no such release, a bad version, an unsupported OS or CPU", func(t *testing.T) {
		base, _ := fakeRelease(t, version, targets...)
		for _, tc := range []struct {
			env  []string
			want string
		}{
			{[]string{"LOCKED_RUN_VERSION=v9.9.9"}, "download file://"},
			{[]string{"LOCKED_RUN_VERSION=latest"}, "give a release tag such as v0.1.0"},
			{[]string{"LOCKED_RUN_VERSION=" + version, "LOCKED_RUN_OS=Windows_NT"}, "locked-run runs on Linux and macOS"},
			{[]string{"LOCKED_RUN_VERSION=" + version, "LOCKED_RUN_ARCH=riscv64"}, "releases are for amd64 and arm64"},
		} {
			r := runInstall(t, append(tc.env, "LOCKED_RUN_BASE_URL="+base)...)
			if r.status == 0 || !strings.Contains(r.stderr, tc.want) || r.installedBytes != nil {
				t.Errorf("%v: status %d, stderr %q, want %q", tc.env, r.status, r.stderr, tc.want)
			}
		}
	})
}
