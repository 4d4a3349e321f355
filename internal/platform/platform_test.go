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
// its platform and on no other. Every file of these packages that has a
// build constraint or an OS suffix must be listed (TestEveryPlatformFileIsListed).
var platformFiles = []struct {
	pkg   string
	file  string
	goose []string
}{
	{"./internal/platform", "unsupported.go", []string{"windows", "plan9", "freebsd"}},
	{"./lock", "local.go", []string{"linux", "darwin"}},
	{"./lock", "local_shared.go", []string{"linux", "darwin"}},
	{"./lock", "platform.go", allOS},
	{"./lock", "clock_linux.go", []string{"linux"}},
	{"./lock", "clock_darwin.go", []string{"darwin"}},
	{"./lock", "doorbell_linux.go", []string{"linux"}},
	{"./lock", "doorbell_other.go", []string{"darwin", "windows", "plan9", "freebsd"}},
	{"./lock", "clock_other.go", []string{"windows", "plan9", "freebsd"}},
	{"./lock", "localdir_linux.go", []string{"linux"}},
	{"./lock", "localdir_other.go", []string{"darwin", "windows", "plan9", "freebsd"}},
	{"./internal/ddblocal", "procattr_linux.go", []string{"linux"}},
	{"./internal/ddblocal", "procattr_darwin.go", []string{"darwin"}},
	{"./internal/ddblocal", "platform.go", allOS},
	{"./cmd/locked-run", "platform.go", allOS},
	{"./cmd/locked-run", "main.go", allOS},  // !locked_run_gendocs
	{"./cmd/locked-run", "gendocs.go", nil}, // only with -tags locked_run_gendocs (make man)

	// The runner's port: shared Unix code, then each platform's own.
	{"./runner", "platform.go", allOS},
	{"./runner", "doc.go", allOS},
	{"./runner", "runner.go", unix},
	{"./runner", "guardian.go", unix},
	{"./runner", "tree.go", unix},
	{"./runner", "jobs.go", unix},
	{"./runner", "stop.go", unix},
	{"./runner", "errors.go", unix},
	{"./runner", "treewalk.go", unix},
	{"./runner", "proc_linux.go", []string{"linux"}},
	{"./runner", "tree_linux.go", []string{"linux"}},
	{"./runner", "proc_darwin.go", []string{"darwin"}},
	{"./runner", "tree_darwin.go", []string{"darwin"}},
	// The guardian forked: linux/amd64 (the GOARCH these lists are made
	// for); every other port starts locked-run again.
	{"./runner", "guardian_linux_amd64.go", []string{"linux"}},
	{"./runner", "guardian_other.go", []string{"darwin"}},
	{"./internal/proctree", "platform.go", allOS},
	{"./internal/proctree", "guardian.go", unix},
	{"./internal/proctree", "proc.go", unix},
	{"./internal/proctree", "proc_linux.go", []string{"linux"}},
	{"./internal/proctree", "proc_darwin.go", []string{"darwin"}},
	{"./internal/sigaction", "platform.go", allOS},
	{"./internal/sigaction", "sigaction_linux.go", []string{"linux"}},
	{"./internal/sigaction", "sigaction_other.go", []string{"darwin"}},
	{"./signals", "platform.go", allOS},
	{"./signals", "signals.go", unix},
	{"./signals/early", "platform.go", allOS},
	{"./signals/early", "early.go", unix},
}

// unix are the supported platforms.
var unix = []string{"linux", "darwin"}

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

// Every file with a build constraint or an OS suffix in a package of the
// table is in the table: a platform file added later is checked too.
func TestEveryPlatformFileIsListed(t *testing.T) {
	listed := map[string]bool{}
	var pkgs []string
	for _, pf := range platformFiles {
		if !slices.Contains(pkgs, pf.pkg) {
			pkgs = append(pkgs, pf.pkg)
		}
		listed[pf.pkg+"/"+pf.file] = true
	}
	for i, line := range goList(t, "linux", "{{.Dir}} {{join .GoFiles \" \"}} {{join .IgnoredGoFiles \" \"}}", pkgs...) {
		fields := strings.Fields(line)
		for _, name := range fields[1:] {
			b, err := os.ReadFile(filepath.Join(fields[0], name))
			if err != nil {
				t.Fatal(err)
			}
			constrained := strings.HasPrefix(string(b), "//go:build ") ||
				strings.HasSuffix(name, "_linux.go") || strings.HasSuffix(name, "_darwin.go")
			if constrained && !listed[pkgs[i]+"/"+name] {
				t.Errorf("%s/%s has a build constraint but is not in platformFiles", pkgs[i], name)
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
	pkgs := []string{"./lock", "./internal/ddblocal", "./runner", "./signals/...", "./internal/proctree", "./internal/sigaction", "./cmd/locked-run"}
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
