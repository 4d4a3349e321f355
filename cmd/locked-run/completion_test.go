package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// completionScript returns what `locked-run completion SHELL` prints,
// through the real argument parsing.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if status := runWith(context.Background(), []string{"locked-run", "completion", shell}, &stdout, &stderr); status != 0 {
		t.Fatalf("locked-run completion %s: status %d: %s", shell, status, stderr.String())
	}
	return stdout.String()
}

// bashComplete sources the bash completion script in a real bash and
// returns, for each command line, the words the completion function offers
// for its last word (COMP_WORDS/COMP_CWORD as bash sets them on Tab).
func bashComplete(t *testing.T, lines [][]string, preamble ...string) [][]string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not found")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "locked-run.bash")
	if err := os.WriteFile(script, []byte(completionScript(t, "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	var driver strings.Builder
	if len(preamble) == 0 {
		driver.WriteString("set -u\n") // bash-completion's library is not -u clean
	}
	for _, p := range preamble {
		driver.WriteString(p + "\n")
	}
	driver.WriteString("source " + script + "\n")
	driver.WriteString("[[ $(complete -p locked-run) == *_locked_run* ]] || { echo 'not registered' >&2; exit 3; }\n")
	driver.WriteString(`t() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=(); _locked_run; printf '%s\n' "${COMPREPLY[@]}" | sort -u; echo '@@'; }` + "\n")
	for _, l := range lines {
		driver.WriteString("t")
		for _, w := range l {
			driver.WriteString(" " + shellQuote([]string{w}))
		}
		driver.WriteString("\n")
	}
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", driver.String())
	// A known PATH, so that command completion finds echo and not a
	// program called status.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	parts := strings.Split(strings.TrimSuffix(string(out), "@@\n"), "@@\n")
	if len(parts) != len(lines) {
		t.Fatalf("bash printed %d answers for %d lines:\n%s", len(parts), len(lines), out)
	}
	res := make([][]string, len(parts))
	for i, p := range parts {
		res[i] = strings.Fields(p)
	}
	return res
}

func longOptions(t *testing.T, fs []docFlag) []string {
	t.Helper()
	var out []string
	for _, f := range fs {
		for _, l := range f.long {
			out = append(out, "--"+l)
		}
	}
	if len(out) < 5 {
		t.Fatalf("only %d long options: %v", len(out), out)
	}
	return out
}

func TestBashCompletionInARealBash(t *testing.T) {
	app := newApp(nil, nil, nil)
	mainLong := longOptions(t, appFlags(app))
	var statusLong []string
	for _, c := range appCommands(app) {
		if c.name == "status" {
			statusLong = longOptions(t, c.flags)
		}
	}
	tests := []struct {
		name     string
		line     []string
		want     []string // all offered
		exactly  bool     // and nothing else
		mustNot  []string
		wantNone bool
	}{
		{name: "first word offers every subcommand", line: []string{"locked-run", ""},
			want: []string{"status", "list", "release", "create-table", "completion"}},
		{name: "first word completes a subcommand", line: []string{"locked-run", "creat"},
			want: []string{"create-table"}, mustNot: []string{"status"}},
		{name: "a dash offers every long option of the main command", line: []string{"locked-run", "--"},
			want: mainLong},
		{name: "a prefix completes one option", line: []string{"locked-run", "--ta"},
			want: []string{"--table"}, exactly: true},
		{name: "a subcommand offers its own options", line: []string{"locked-run", "status", "--"},
			want: statusLong, mustNot: []string{"--lease", "--no-wait"}},
		{name: "a subcommand after options is still found", line: []string{"locked-run", "-t", "locks", "release", "--fo"},
			want: []string{"--force"}, exactly: true},
		{name: "an option's value is not a subcommand", line: []string{"locked-run", "-k", "status", "--js"},
			wantNone: true},
		{name: "log levels", line: []string{"locked-run", "--log-level", ""},
			want: []string{"trace", "debug", "info", "warn", "error"}, exactly: true},
		{name: "a value after =", line: []string{"locked-run", "status", "--log-format", "=", "j"},
			want: []string{"json"}, exactly: true},
		{name: "completion offers the shells", line: []string{"locked-run", "completion", ""},
			want: []string{"bash", "zsh", "fish"}, exactly: true},
		{name: "after -- the command is completed, not a subcommand", line: []string{"locked-run", "--local", "--", "ech"},
			want: []string{"echo"}, mustNot: []string{"status"}},
		{name: "after -- a word named like a subcommand is the command", line: []string{"locked-run", "--", "completion", "--"},
			mustNot: []string{"--help", "bash"}},
		{name: "a command's arguments are not locked-run's options", line: []string{"locked-run", "-t", "locks", "echo", "--ta"},
			mustNot: []string{"--table"}},
	}
	lines := make([][]string, len(tests))
	for i, tt := range tests {
		lines[i] = tt.line
	}
	got := bashComplete(t, lines)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := got[i]
			for _, w := range tt.want {
				if !slices.Contains(g, w) {
					t.Errorf("%q: %q not offered; got %q", tt.line, w, g)
				}
			}
			if tt.exactly && len(g) != len(tt.want) {
				t.Errorf("%q: got %q, want exactly %q", tt.line, g, tt.want)
			}
			for _, w := range tt.mustNot {
				if slices.Contains(g, w) {
					t.Errorf("%q: %q offered; got %q", tt.line, w, g)
				}
			}
			if tt.wantNone && len(g) != 0 {
				t.Errorf("%q: got %q, want nothing", tt.line, g)
			}
		})
	}
}

// With bash-completion loaded (as on most systems), the command after "--"
// is completed by its own completion: here, locked-run's.
func TestBashCompletionHandsTheCommandToItsCompletion(t *testing.T) {
	const lib = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(lib); err != nil {
		t.Skip("bash-completion not installed")
	}
	got := bashComplete(t, [][]string{
		{"locked-run", "--local", "--", "locked-run", "--ta"},
		{"locked-run", "-k", "x", "--", "locked-run", "status", "--js"},
	}, "source "+lib+" 2>/dev/null")
	for i, want := range []string{"--table", "--json"} {
		if !slices.Equal(got[i], []string{want}) {
			t.Errorf("line %d: got %q, want [%s]", i, got[i], want)
		}
	}
}

// The zsh and fish scripts are checked by their shells' parsers (when
// installed) and must name every option.
func TestZshAndFishCompletionsParse(t *testing.T) {
	app := newApp(nil, nil, nil)
	for _, tt := range []struct{ shell, check string }{{"zsh", "-n"}, {"fish", "--no-execute"}} {
		t.Run(tt.shell, func(t *testing.T) {
			script := completionScript(t, tt.shell)
			for _, f := range uniqueFlags(app) {
				for _, l := range f.long {
					if !strings.Contains(script, l) {
						t.Errorf("%s completion lacks --%s", tt.shell, l)
					}
				}
			}
			sh, err := exec.LookPath(tt.shell)
			if err != nil {
				t.Skipf("%s not installed: syntax not checked", tt.shell)
			}
			cmd := exec.Command(sh, tt.check)
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s %s: %v\n%s", tt.shell, tt.check, err, out)
			}
			// Load it as a user would, and ask the shell.
			file := filepath.Join(t.TempDir(), "locked-run."+tt.shell)
			if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
				t.Fatal(err)
			}
			var probe string
			var want []string // lines the shell prints, in order, each up to a tab
			switch tt.shell {
			case "zsh":
				probe = "autoload -U compinit; compinit -u -d " + filepath.Join(filepath.Dir(file), "zcompdump") + "; source " + file + "; print -r -- ${_comps[locked-run]}"
				want = []string{"_locked-run"}
			case "fish":
				probe = "source " + file + "; complete -C'locked-run status --j'; complete -C'locked-run completion '; complete -C'locked-run --log-format '"
				want = []string{"--json", "bash", "fish", "zsh", "json", "text"}
			}
			cmd = exec.Command(sh, "-c", probe)
			if tt.shell == "zsh" {
				cmd = exec.Command(sh, "-f", "-c", probe)
			}
			cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(file))
			out, err := cmd.CombinedOutput()
			var got []string
			for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
				w, _, _ := strings.Cut(l, "\t")
				got = append(got, w)
			}
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("%s -c %q: %v: got %q, want %q", tt.shell, probe, err, out, want)
			}
		})
	}
}

func TestCompletionRefusesAnUnknownShell(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "ksh"}, {"completion", "bash", "zsh"}} {
		var stdout, stderr bytes.Buffer
		status := runWith(context.Background(), append([]string{"locked-run"}, args...), &stdout, &stderr)
		if status != exitError || !strings.Contains(stderr.String(), "bash, zsh or fish") || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("locked-run %q: status %d, stderr %q; want %d and one line naming the shells", args, status, stderr.String(), exitError)
		}
	}
}
