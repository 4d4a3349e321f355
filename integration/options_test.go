package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// holdLocal starts a --local holder of key and returns once its child runs.
func holdLocal(t *testing.T, env []string, key string) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	startBin(t, env, nil, nil, "--local", "-k", key, "--", "sh", "-c", "touch "+ready+"; exec sleep 60")
	waitFor(t, 10*time.Second, "the holder's child to start", func() bool { _, err := os.Stat(ready); return err == nil })
}

func TestOptionsLikeGetopt(t *testing.T) {
	env := localEnv(t)
	holdLocal(t, env, "busy")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		errMsg string // the error line, when there must be one
	}{
		{"-nq bundles --no-wait and --quiet", []string{"--local", "-k", "busy", "-nq", "--", "echo", "ran"}, 75, "", "held by"},
		{"-w5 glues the value on", []string{"--local", "-k", "free1", "-w5", "--", "echo", "ran"}, 0, "ran\n", ""},
		{"-w 5 takes the next word", []string{"--local", "-k", "free2", "-w", "5", "--", "echo", "ran"}, 0, "ran\n", ""},
		{"-nw5 bundles a boolean and a glued value", []string{"--local", "-k", "free3", "-nw5", "--", "echo", "ran"}, 0, "ran\n", ""},
		{"-E is flock's short --conflict-exit-code", []string{"--local", "-k", "busy", "-nE", "3", "--", "echo", "ran"}, 3, "", "held by"},
		{"an unknown letter is named with the bundle as typed", []string{"--local", "-nxq", "--", "true"}, 125, "", "unknown option -x in -nxq"},
		{"an unknown single-dash word is quoted as typed", []string{"--local", "-frobnicate", "--", "true"}, 125, "", "unknown option -frobnicate"},
		{"a bad value is quoted with the option as typed", []string{"--local", "-nw5x", "--", "true"}, 125, "", `locked-run: -w "5x": not a duration`},
		{"a bad value of a long option names it as typed", []string{"--local", "--timeout", "soon", "--", "true"}, 125, "", `locked-run: --timeout "soon": not a duration`},
		{"the lease rule is checked on --local too, durations as people write them", []string{"--local", "--lease", "10s", "--", "true"}, 125, "",
			"locked-run: --lease 10s must exceed --heartbeat 3.3s + --kill-after 10s + margin 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runBin(t, env, tt.args...)
			if r.code != tt.code || r.stdout != tt.stdout {
				t.Fatalf("exit %d stdout %q, want %d %q; stderr:\n%s", r.code, r.stdout, tt.code, tt.stdout, r.stderr)
			}
			if tt.errMsg != "" {
				oneErrorLine(t, r, strings.TrimPrefix(tt.errMsg, "locked-run: "))
			}
		})
	}
	t.Run("a bad value from the environment names the variable", func(t *testing.T) {
		r := runBin(t, append(env, "LOCKED_RUN_TIMEOUT=soon"), "--local", "--", "true")
		if r.code != 125 {
			t.Fatalf("exit %d, want 125", r.code)
		}
		oneErrorLine(t, r, `LOCKED_RUN_TIMEOUT="soon": not a duration`)
	})
	t.Run("the same lease is refused with the same line on DynamoDB", func(t *testing.T) {
		local := runBin(t, env, "--local", "--lease", "15s", "--", "true")
		dynamo := runBin(t, env, "-t", "some-table", "--lease", "15s", "--", "true")
		if local.code != 125 || dynamo.code != 125 || local.stderr != dynamo.stderr {
			t.Fatalf("--local: %d %q\n--table: %d %q", local.code, local.stderr, dynamo.code, dynamo.stderr)
		}
	})
}

func TestBooleanEnvironment(t *testing.T) {
	env := localEnv(t)
	for _, v := range []string{"1", "true", "TRUE", "yes", "Yes", "on", "ON"} {
		r := runBin(t, append(env, "LOCKED_RUN_LOCAL="+v), "-q", "--", "echo", "ran")
		if r.code != 0 || r.stdout != "ran\n" {
			t.Errorf("LOCKED_RUN_LOCAL=%s: exit %d stdout %q stderr %q", v, r.code, r.stdout, r.stderr)
		}
	}
	for _, v := range []string{"0", "false", "no", "OFF"} {
		r := runBin(t, append(env, "LOCKED_RUN_LOCAL="+v), "-q", "--", "echo", "ran")
		if r.code != 125 || !strings.Contains(r.stderr, "no lock backend") {
			t.Errorf("LOCKED_RUN_LOCAL=%s: exit %d stderr %q, want the no-backend error", v, r.code, r.stderr)
		}
	}
	r := runBin(t, append(env, "LOCKED_RUN_LOCAL=maybe"), "--", "echo", "ran")
	if r.code != 125 || r.stdout != "" || r.stderr != "locked-run: LOCKED_RUN_LOCAL=\"maybe\": not a boolean; use 1 or 0 (also true/false, yes/no, on/off)\n" {
		t.Fatalf("LOCKED_RUN_LOCAL=maybe: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestQuietConflictIsSilent(t *testing.T) {
	env := localEnv(t)
	holdLocal(t, env, "reindex")
	t.Run("a conflict answered with exit code 0 prints nothing at all", func(t *testing.T) {
		r := runBin(t, env, "--local", "-k", "reindex", "--no-wait", "--conflict-exit-code", "0", "--quiet", "--", "echo", "ran")
		if r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Fatalf("exit %d stdout %q stderr %q; want 0 and no output", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("a timeout answered with exit code 0 prints nothing at all", func(t *testing.T) {
		r := runBin(t, env, "--local", "-k", "reindex", "-qE0", "-w0.3", "--", "echo", "ran")
		if r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Fatalf("exit %d stdout %q stderr %q; want 0 and no output", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("a conflict with a non-zero exit code still says why", func(t *testing.T) {
		r := runBin(t, env, "--local", "-k", "reindex", "-nq", "--", "echo", "ran")
		if r.code != 75 {
			t.Fatalf("exit %d, want 75", r.code)
		}
		oneErrorLine(t, r, "held by")
	})
	t.Run("a real error under --quiet is still said", func(t *testing.T) {
		r := runBin(t, env, "-q", "-E0", "--", "true")
		if r.code != 125 {
			t.Fatalf("exit %d, want 125", r.code)
		}
		oneErrorLine(t, r, "no lock backend")
	})
}
