package main

import (
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "30s", want: 30 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "30", want: 30 * time.Second},
		{in: "0.5", want: 500 * time.Millisecond},
		{in: "0", want: 0},
		{in: " 2m ", want: 2 * time.Minute},
		{in: "", bad: true},
		{in: "-1s", bad: true},
		{in: "-3", bad: true},
		{in: "soon", bad: true},
		{in: "1e3", bad: true},
		{in: "NaN", bad: true},
		{in: "Inf", bad: true},
		{in: "0x10", bad: true},
		{in: "99999999999999999999", bad: true},
	}
	for _, tt := range tests {
		t.Run("parsing "+tt.in, func(t *testing.T) {
			got, err := parseDuration("lease", tt.in)
			if tt.bad {
				var ue usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--lease") {
					t.Fatalf("parseDuration(%q) = %v, %v; want a usage error naming --lease", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "1.5", "-1", "1h2m3.5s", "", "9223372036854775807", "1e9", ".", "5µs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration("timeout", s)
		if err != nil {
			var ue usageError
			if !errors.As(err, &ue) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("parseDuration(%q): error %v is not a one-line usage error", s, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("parseDuration(%q) = %v, negative", s, d)
		}
	})
}

// testValueFlags mirrors the real table so the tests read on their own.
func testSplit(args ...string) (opts, child []string, dashdash, sub bool) {
	return splitArgs(args, valueFlagNames(), subcommandNames)
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		opts     []string
		child    []string
		dashdash bool
		subcmd   bool
	}{
		{"everything after -- is the child, even a subcommand's name",
			[]string{"-t", "x", "--", "list"}, []string{"-t", "x"}, []string{"list"}, true, false},
		{"options after the command go to the child",
			[]string{"-t", "x", "terraform", "apply", "-auto-approve"}, []string{"-t", "x"}, []string{"terraform", "apply", "-auto-approve"}, false, false},
		{"a flag's value may look like --",
			[]string{"--key", "--", "--", "true"}, []string{"--key", "--"}, []string{"true"}, true, false},
		{"a subcommand first is the CLI's",
			[]string{"status", "-t", "x"}, []string{"status", "-t", "x"}, nil, false, true},
		{"a subcommand after options is the CLI's",
			[]string{"-t", "x", "list"}, []string{"-t", "x", "list"}, nil, false, true},
		{"a second -- belongs to the child",
			[]string{"--local", "--", "sh", "--", "-c"}, []string{"--local"}, []string{"sh", "--", "-c"}, true, false},
		{"--flag=value carries its value",
			[]string{"--table=t", "make"}, []string{"--table=t"}, []string{"make"}, false, false},
		{"boolean flags take no value",
			[]string{"--local", "-n", "echo", "hi"}, []string{"--local", "-n"}, []string{"echo", "hi"}, false, false},
		{"no command at all",
			[]string{"--local"}, []string{"--local"}, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, child, dd, sub := testSplit(tt.args...)
			if !reflect.DeepEqual(opts, tt.opts) || !reflect.DeepEqual(child, tt.child) || dd != tt.dashdash || sub != tt.subcmd {
				t.Fatalf("splitArgs(%q) = %q, %q, %v, %v; want %q, %q, %v, %v",
					tt.args, opts, child, dd, sub, tt.opts, tt.child, tt.dashdash, tt.subcmd)
			}
		})
	}
}

func FuzzSplitArgs(f *testing.F) {
	f.Add("-t\x00x\x00--\x00list")
	f.Add("--key\x00--\x00--\x00a")
	f.Add("status\x00-k")
	f.Add("-w\x00")
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		opts, child, dd, sub := testSplit(args...)
		// Nothing is lost or invented: options, the "--" when there was
		// one, and the child are args in order.
		n := len(opts) + len(child)
		if dd {
			n++
		}
		if n != len(args) {
			t.Fatalf("splitArgs(%q) = %q, %q (dashdash %v): %d words, want %d", args, opts, child, dd, n, len(args))
		}
		if sub && (dd || len(child) > 0) {
			t.Fatalf("splitArgs(%q): a subcommand with a child", args)
		}
		if dd && !reflect.DeepEqual(child, args[len(opts)+1:]) {
			t.Fatalf("splitArgs(%q): child %q is not what follows --", args, child)
		}
	})
}

// shellSplit undoes shellQuote for the words it produces: bare words and
// single-quoted strings with '\” escapes.
func shellSplit(s string) []string {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quoted && ch == '\'':
			quoted = false
		case quoted:
			cur.WriteByte(ch)
		case ch == '\'':
			quoted, inWord = true, true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func TestShellQuote(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"terraform", "apply", "-auto-approve"}, "terraform apply -auto-approve"},
		{[]string{"sh", "-c", "echo $HOME; ls"}, `sh -c 'echo $HOME; ls'`},
		{[]string{"echo", "it's"}, `echo 'it'\''s'`},
		{[]string{"printf", ""}, "printf ''"},
		{[]string{"a=b", "x/y.z:1@2%3+4,5"}, "a=b x/y.z:1@2%3+4,5"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.args); got != tt.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tt.args, got, tt.want)
		}
	}
	t.Run("a real shell splits the quoted line back into the same words", func(t *testing.T) {
		sh, err := exec.LookPath("sh")
		if err != nil {
			t.Skip("no sh")
		}
		args := []string{"a b", "it's", "$(rm -rf /)", "`x`", "\\", "\"q\"", "tab\there", "new\nline", "*", ""}
		out, err := exec.Command(sh, "-c", "for a in "+shellQuote(args)+`; do printf '%s\0' "$a"; done`).Output()
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if !reflect.DeepEqual(got, args) {
			t.Fatalf("sh split %q back into %q", shellQuote(args), got)
		}
	})
}

func FuzzShellQuote(f *testing.F) {
	f.Add("terraform\x00apply")
	f.Add("it's\x00\x00$x")
	f.Fuzz(func(t *testing.T, joined string) {
		if !utf8.ValidString(joined) {
			return
		}
		args := strings.Split(joined, "\x00")
		got := shellSplit(shellQuote(args))
		if !reflect.DeepEqual(got, args) {
			t.Fatalf("shellQuote(%q) = %s splits back to %q", args, shellQuote(args), got)
		}
	})
}
