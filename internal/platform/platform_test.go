package platform_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/locked-run/locked-run"

// goList runs `go list -e -f format pkgs...` for goos and returns one line
// per package. -e: a package whose dependencies do not build on goos is
// still listed; this test is about which files each build selects.
func goList(t *testing.T, goos, format string, pkgs ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-f", format}, pkgs...)...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("GOOS=%s go list %v: %v\n%s", goos, pkgs, err, stderrOf(err))
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// goFiles returns the Go files (not tests) that a build for goos compiles
// in pkg.
func goFiles(t *testing.T, goos, pkg string) []string {
	t.Helper()
	return strings.Fields(goList(t, goos, "{{join .GoFiles \" \"}}", pkg)[0])
}

// The platform files of each package, by GOOS: each must be selected on
// its platform and on no other. runner/ and signals/ join this table with
// their darwin port.
var platformFiles = []struct {
	pkg   string
	file  string
	goose []string
}{
	{"./internal/platform", "unsupported.go", []string{"windows", "plan9", "freebsd"}},
	{"./lock", "local.go", []string{"linux", "darwin"}},
	{"./lock", "platform.go", allOS},
	{"./internal/ddblocal", "procattr_linux.go", []string{"linux"}},
	{"./internal/ddblocal", "procattr_darwin.go", []string{"darwin"}},
	{"./internal/ddblocal", "platform.go", allOS},
	{"./cmd/locked-run", "platform.go", allOS},
}

var allOS = []string{"linux", "darwin", "windows", "plan9", "freebsd"}

func TestBuildTagsSelectThePlatformFiles(t *testing.T) {
	for _, goos := range allOS {
		files := map[string][]string{}
		for _, pf := range platformFiles {
			if _, ok := files[pf.pkg]; !ok {
				files[pf.pkg] = goFiles(t, goos, pf.pkg)
			}
			want := slices.Contains(pf.goose, goos)
			if got := slices.Contains(files[pf.pkg], pf.file); got != want {
				t.Errorf("GOOS=%s: %s/%s selected=%v, want %v (files: %v)", goos, pf.pkg, pf.file, got, want, files[pf.pkg])
			}
		}
	}
}

// On darwin every package of the module loads (imports resolve, no package
// is left without files), so what remains is compiling: `make cross`.
func TestEveryPackageLoadsOnDarwin(t *testing.T) {
	for _, line := range goList(t, "darwin", "{{.ImportPath}} {{if .Error}}{{.Error}}{{end}}", "./...") {
		if path, rest, _ := strings.Cut(line, " "); rest != "" {
			t.Errorf("GOOS=darwin: %s: %s", path, rest)
		}
	}
}

// On an unsupported OS, the packages that carry the guard load without Unix
// imports, so the build's one error is the guard's message.
func TestUnsupportedOSFailsWithOneMessage(t *testing.T) {
	pkgs := []string{"./lock", "./internal/ddblocal"}
	for _, goos := range []string{"windows", "plan9"} {
		for _, line := range goList(t, goos, "{{.ImportPath}} {{join .Deps \" \"}}", pkgs...) {
			path, deps, _ := strings.Cut(line, " ")
			d := strings.Fields(deps)
			if slices.Contains(d, "golang.org/x/sys/unix") {
				t.Errorf("GOOS=%s: %s imports golang.org/x/sys/unix: its Unix files need a linux || darwin build constraint", goos, path)
			}
			if !slices.Contains(d, module+"/internal/platform") {
				t.Errorf("GOOS=%s: %s does not import internal/platform", goos, path)
			}
		}
		cmd := exec.Command("go", append([]string{"build", "-o", "/dev/null"}, pkgs...)...)
		cmd.Dir = repoRoot(t)
		cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("GOOS=%s go build %v succeeded; want the unsupported-OS error", goos, pkgs)
			continue
		}
		var errs []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !strings.HasPrefix(l, "#") {
				errs = append(errs, l)
			}
		}
		if len(errs) != 1 || !strings.Contains(errs[0], "locked_run_builds_only_on_linux_and_darwin__see_README_Platforms") {
			t.Errorf("GOOS=%s go build: want one error naming the supported platforms, got:\n%s", goos, out)
		}
	}
}

// The packages ported so far build for every supported target, and the
// command for both Linux targets: the part of `make cross` that passes
// before runner/ and signals/ are ported to darwin. (When they are, `make
// cross` in `make test` covers this and more.)
func TestPortedPackagesBuildForEveryTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles")
	}
	for _, target := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"} {
		goos, goarch, _ := strings.Cut(target, "/")
		cmds := [][]string{{"vet", "./lock/...", "./internal/..."}}
		if goos == "linux" {
			cmds = append(cmds, []string{"build", "-tags", "urfave_cli_no_docs", "-o", os.DevNull, "./cmd/locked-run"})
		}
		for _, args := range cmds {
			cmd := exec.Command("go", args...)
			cmd.Dir = repoRoot(t)
			cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("GOOS=%s GOARCH=%s go %s: %v\n%s", goos, goarch, strings.Join(args, " "), err, out)
			}
		}
	}
}
