package packaging_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

// container returns podman, or skips: under CI=true a missing podman is a
// failure (make deps installs it).
func container(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("podman")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("podman not found: run make deps (apt-get install podman runc)")
		}
		t.Skip("podman not found: the image is not built (make deps installs it)")
	}
	return p
}

// runFlags adapt `podman run` to a host that is itself a container: runc
// (crun refuses hybrid cgroups), and resource limits no higher than ours
// (raising them needs CAP_SYS_RESOURCE).
func runFlags() []string {
	var flags []string
	if _, err := exec.LookPath("runc"); err == nil {
		flags = append(flags, "--runtime", "runc")
	}
	var nofile syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile) == nil {
		flags = append(flags, "--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Cur, nofile.Max))
	}
	return append(flags, "--ulimit", "nproc=4096:4096")
}

type podman struct {
	t   *testing.T
	bin string
	run []string
}

func (p podman) cmd(args ...string) (stdout, stderr string, err error) {
	p.t.Helper()
	if args[0] == "run" {
		args = append(append([]string{"run"}, p.run...), args[1:]...)
	}
	cmd := exec.Command(p.bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func (p podman) must(args ...string) string {
	p.t.Helper()
	out, errOut, err := p.cmd(args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// staticProgram builds a tiny static program, the stand-in for what an
// existing image holds: as "echo" it prints its arguments, as "ppid" the
// pid of its parent.
func staticProgram(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "probe.go")
	if err := os.WriteFile(src, []byte(`package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	switch filepath.Base(os.Args[0]) {
	case "ppid":
		fmt.Println(os.Getppid())
	default:
		fmt.Println(strings.Join(os.Args[1:], " "))
	}
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "probe")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build probe: %v\n%s", err, out)
	}
	return bin
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// TestContainerImage builds the image as `make image` does, runs locked-run
// in it (non-root, PID 1), and adds it to another image with the README's
// COPY --from line.
func TestContainerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image")
	}
	p := podman{t: t, bin: container(t), run: runFlags()}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	tag := "locked-run-test:" + hex.EncodeToString(suffix)
	base := "locked-run-test-base:" + hex.EncodeToString(suffix)
	app := "locked-run-test-app:" + hex.EncodeToString(suffix)
	t.Cleanup(func() { p.cmd("rmi", "-f", app, base, tag) })

	make := exec.Command("make", "image", "IMAGE="+tag, "CONTAINER="+p.bin)
	make.Dir = repoRoot(t)
	if out, err := make.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}

	t.Run("the image runs as user 65532 with locked-run as entrypoint", func(t *testing.T) {
		got := strings.TrimSpace(p.must("image", "inspect", "--format", "{{.Config.User}} {{json .Config.Entrypoint}}", tag))
		if want := `65532:65532 ["/usr/local/bin/locked-run"]`; got != want {
			t.Errorf("image config: %s, want %s", got, want)
		}
		if out := p.must("run", "--rm", tag, "--version"); !strings.HasPrefix(out, "locked-run version v") {
			t.Errorf("--version printed %q", out)
		}
	})

	t.Run("a command runs under a --local lock, with locked-run as PID 1", func(t *testing.T) {
		// The only program in the scratch image is locked-run itself.
		out, errOut, err := p.cmd("run", "--rm", tag, "--local", "-k", "job", "--", "locked-run", "--version")
		if err != nil || !strings.HasPrefix(out, "locked-run version v") || !strings.Contains(errOut, "released lock") {
			t.Errorf("locked-run --local -- locked-run --version: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		// The owner id is host-pid-random: pid 1.
		if !strings.Contains(errOut, "-1-") {
			t.Errorf("locked-run does not look like PID 1 in the owner id:\n%s", errOut)
		}
	})

	// An "existing image": the probe as echo and ppid, and a /tmp.
	ctx := t.TempDir()
	probe := staticProgram(t, t.TempDir())
	copyFile(t, probe, filepath.Join(ctx, "bin", "echo"), 0o755)
	copyFile(t, probe, filepath.Join(ctx, "bin", "ppid"), 0o755)
	if err := os.Mkdir(filepath.Join(ctx, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(ctx, "tmp"), 0o1777)
	dockerfiles := t.TempDir()
	baseDockerfile := filepath.Join(dockerfiles, "Dockerfile.base")
	if err := os.WriteFile(baseDockerfile, []byte("FROM scratch\nCOPY . /\nENV PATH=/bin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.must("build", "-q", "-f", baseDockerfile, "-t", base, ctx)
	// The README's pattern, with this test's image names.
	appDockerfile := filepath.Join(dockerfiles, "Dockerfile.app")
	if err := os.WriteFile(appDockerfile, []byte(fmt.Sprintf("FROM %s\nCOPY --from=%s /usr/local/bin/locked-run /usr/local/bin/locked-run\nENTRYPOINT [\"/usr/local/bin/locked-run\"]\n", base, tag)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.must("build", "-q", "-f", appDockerfile, "-t", app, dockerfiles)

	t.Run("COPY --from adds locked-run to an existing image: --local -- echo ok", func(t *testing.T) {
		for _, user := range []string{"0:0", "65532:65532"} {
			out, errOut, err := p.cmd("run", "--rm", "--user", user, app, "--local", "--", "echo", "ok")
			if err != nil || out != "ok\n" {
				t.Errorf("as %s: locked-run --local -- echo ok: %v\nstdout: %q\nstderr: %s", user, err, out, errOut)
			}
		}
	})

	t.Run("the command's parent is locked-run as PID 1", func(t *testing.T) {
		out, errOut, err := p.cmd("run", "--rm", app, "--local", "--", "ppid")
		if err != nil || out != "1\n" {
			t.Errorf("ppid under locked-run: %v\nstdout: %q\nstderr: %s", err, out, errOut)
		}
	})

	t.Run("the command's exit status is the container's", func(t *testing.T) {
		_, _, err := p.cmd("run", "--rm", app, "--local", "--", "no-such-command")
		var ee *exec.ExitError
		if !errorsAs(err, &ee) || ee.ExitCode() != 127 {
			t.Errorf("locked-run --local -- no-such-command: %v, want exit 127", err)
		}
	})
}

func errorsAs(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*ee = e
	}
	return ok
}
