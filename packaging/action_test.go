package packaging_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// buildLockedRun builds the real binary for the tests that run it.
func buildLockedRun(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "locked-run")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/locked-run")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The Action's run step (action-run.sh) with the inputs in its
// environment, as action.yml passes them, against the real binary and a
// --local lock.
func TestActionRunStep(t *testing.T) {
	bin := buildLockedRun(t)
	script := filepath.Join(repoRoot(t), "packaging", "action-run.sh")
	run := func(t *testing.T, env ...string) (status int, stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(script)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LOCKED_RUN=" + bin, "LOCKED_RUN_LOCK_DIR=" + t.TempDir(), "INPUT_ARGS=--quiet"}, env...)
		cmd.Dir = t.TempDir()
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			status = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return status, o.String(), e.String()
	}

	t.Run("runs the command under the lock with the key given", func(t *testing.T) {
		status, out, errOut := run(t, "INPUT_LOCAL=true", "INPUT_KEY=org/repo/deploy/prod", "INPUT_TIMEOUT=30s",
			`INPUT_RUN=echo "key=$LOCKED_RUN_KEY token=$LOCKED_RUN_FENCING_TOKEN"`)
		if status != 0 || !regexp.MustCompile(`^key=org/repo/deploy/prod token=[1-9][0-9]*\n$`).MatchString(out) {
			t.Errorf("status %d, stdout %q, stderr %q", status, out, errOut)
		}
	})

	t.Run("the step fails with the command's status, pipefail included", func(t *testing.T) {
		for _, tc := range []struct {
			run  string
			want int
		}{{"exit 3", 3}, {"false | true", 1}, {"true", 0}} {
			if status, _, errOut := run(t, "INPUT_LOCAL=true", "INPUT_KEY=k", "INPUT_RUN="+tc.run); status != tc.want {
				t.Errorf("run %q: status %d, want %d (stderr %q)", tc.run, status, tc.want, errOut)
			}
		}
	})

	t.Run("inputs are data, not shell code", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "injected")
		status, out, errOut := run(t, "INPUT_LOCAL=true", "INPUT_KEY=$(touch "+marker+")", `INPUT_RUN=printf '%s\n' "$LOCKED_RUN_KEY"`)
		if _, err := os.Stat(marker); err == nil || status != 0 || out != "$(touch "+marker+")\n" {
			t.Errorf("status %d, stdout %q, stderr %q, marker created: %v", status, out, errOut, err == nil)
		}
	})

	t.Run("refusals: no command, a bad local, no backend", func(t *testing.T) {
		for _, tc := range []struct {
			env  []string
			want string
		}{
			{[]string{"INPUT_LOCAL=true"}, `the input "run" is empty`},
			{[]string{"INPUT_LOCAL=yes", "INPUT_RUN=true"}, `give true or false`},
			{[]string{"INPUT_RUN=true"}, "--table"},
		} {
			status, _, errOut := run(t, tc.env...)
			if status != 125 || !strings.Contains(errOut, tc.want) {
				t.Errorf("%v: status %d, stderr %q; want 125 and %q", tc.env, status, errOut, tc.want)
			}
		}
	})
}

// action.yml runs the two scripts, passes every input the run step reads,
// and installs the version the build stamps by default.
func TestActionMetadataMatchesTheScripts(t *testing.T) {
	root := repoRoot(t)
	action, err := os.ReadFile(filepath.Join(root, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"install.sh", "action-run.sh"} {
		if !strings.Contains(string(action), `"$GITHUB_ACTION_PATH/packaging/`+s+`"`) {
			t.Errorf("action.yml does not run packaging/%s", s)
		}
		if fi, err := os.Stat(filepath.Join(root, "packaging", s)); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("packaging/%s is missing or not executable: %v", s, err)
		}
	}
	script, err := os.ReadFile(filepath.Join(root, "packaging", "action-run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var used []string
	for _, m := range regexp.MustCompile(`\$\{?(INPUT_[A-Z_]+)`).FindAllStringSubmatch(string(script), -1) {
		if !slices.Contains(used, m[1]) {
			used = append(used, m[1])
		}
	}
	if len(used) < 5 {
		t.Fatalf("found only %v in action-run.sh", used)
	}
	for _, v := range used {
		input := strings.ToLower(strings.TrimPrefix(v, "INPUT_"))
		if !strings.Contains(string(action), "        "+v+": ${{ inputs."+input+" }}") {
			t.Errorf("action.yml does not pass inputs.%s as %s", input, v)
		}
		if !regexp.MustCompile(`(?m)^  ` + input + `:$`).Match(action) {
			t.Errorf("action.yml does not declare the input %q", input)
		}
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	base := regexp.MustCompile(`(?m)^BASE_VERSION := (v\S+)$`).FindSubmatch(makefile)
	if base == nil || !strings.Contains(string(action), "default: "+string(base[1])+"\n") {
		t.Errorf("action.yml's default version is not the Makefile's BASE_VERSION %q", base)
	}
}
