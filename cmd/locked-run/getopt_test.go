package main

import (
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/locked-run/locked-run/lock"
)

func TestExpandShort(t *testing.T) {
	long := longNames(newApp(nil, nil, nil))
	tests := []struct {
		name string
		args []string
		want []string
		bad  string // part of the error, when the line is refused
	}{
		{"booleans bundle", []string{"-nq", "--", "x"}, []string{"-n", "-q", "--", "x"}, ""},
		{"a value may be glued on", []string{"-w5", "x"}, []string{"-w", "5", "x"}, ""},
		{"a value may be the next word", []string{"-w", "5", "x"}, []string{"-w", "5", "x"}, ""},
		{"a bundle may end in a glued value", []string{"-nw5", "x"}, []string{"-n", "-w", "5", "x"}, ""},
		{"a bundle may end in an option whose value is the next word", []string{"-nw", "5", "x"}, []string{"-n", "-w", "5", "x"}, ""},
		{"-E is --conflict-exit-code", []string{"-nqE0", "--", "x"}, []string{"-n", "-q", "-E", "0", "--", "x"}, ""},
		{"a value that looks like a bundle is left alone", []string{"-k", "-nq", "--", "x"}, []string{"-k", "-nq", "--", "x"}, ""},
		{"a single-dash long option is left alone", []string{"-table", "t", "-local"}, []string{"-table", "t", "-local"}, ""},
		{"the child is never touched", []string{"-n", "ls", "-la"}, []string{"-n", "ls", "-la"}, ""},
		{"nothing after -- is touched", []string{"--", "ls", "-la"}, []string{"--", "ls", "-la"}, ""},
		{"a subcommand's options bundle too", []string{"status", "-qk", "demo"}, []string{"status", "-q", "-k", "demo"}, ""},
		{"an unknown letter in a bundle is named with the bundle", []string{"-nxq"}, nil, "unknown option -x in -nxq"},
		{"an unknown word is quoted as typed", []string{"-frob"}, nil, "unknown option -frob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := expandShort(tt.args, long, valueFlagNames(), subcommandNames)
			if tt.bad != "" {
				var ue usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("expandShort(%q) = %q, %v; want a usage error with %q", tt.args, got, err, tt.bad)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("expandShort(%q) = %q, %v; want %q", tt.args, got, err, tt.want)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	for _, s := range []string{"1", "true", "TRUE", "yes", "Yes", "on", "ON"} {
		if v, ok := parseBool(s); !v || !ok {
			t.Errorf("parseBool(%q) = %v, %v; want true", s, v, ok)
		}
	}
	for _, s := range []string{"0", "false", "False", "no", "NO", "off", "Off", ""} {
		if v, ok := parseBool(s); v || !ok {
			t.Errorf("parseBool(%q) = %v, %v; want false", s, v, ok)
		}
	}
	for _, s := range []string{"maybe", "2", "yess", "enable"} {
		if _, ok := parseBool(s); ok {
			t.Errorf("parseBool(%q) accepted", s)
		}
	}
}

func TestValidTimingPrintsDurationsAsPeopleWriteThem(t *testing.T) {
	_, err := validTiming(lockTiming("10s", "", ""))
	want := "--lease 10s must exceed --heartbeat 3.3s + --kill-after 10s + margin 1s"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("validTiming(lease 10s) = %v; want %q", err, want)
	}
	if _, err := validTiming(lockTiming("20s", "", "")); err != nil {
		t.Fatalf("a 20s lease with the defaults is refused: %v", err)
	}
	if _, err := validTiming(lockTiming("10s", "", "3s")); err != nil {
		t.Fatalf("a 10s lease with --kill-after 3s is refused: %v", err)
	}
}

func lockTiming(lease, heartbeat, killAfter string) lock.Timing {
	var t lock.Timing
	for _, d := range []struct {
		s   string
		dst *time.Duration
	}{{lease, &t.Lease}, {heartbeat, &t.Heartbeat}, {killAfter, &t.KillAfter}} {
		if d.s != "" {
			*d.dst, _ = time.ParseDuration(d.s)
		}
	}
	return t
}

func FuzzExpandShort(f *testing.F) {
	f.Add("-nqw5\x00--\x00x")
	f.Add("-k\x00-nq\x00status")
	f.Add("-E\x00")
	f.Add("status\x00-qk\x00demo\x00-nx")
	long := longNames(newApp(nil, nil, nil))
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		out, _, err := expandShort(args, long, valueFlagNames(), subcommandNames)
		if err != nil {
			var ue usageError
			if !errors.As(err, &ue) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("expandShort(%q): error %v is not a one-line usage error", args, err)
			}
			return
		}
		// The child command, from where splitArgs says it starts, is never
		// touched: the expanded line ends with the same words.
		_, child, dd, _ := splitArgs(out, valueFlagNames(), subcommandNames)
		if len(child) > len(args) || !slices.Equal(child, args[len(args)-len(child):]) {
			t.Fatalf("expandShort(%q) = %q: child %q is not the end of the line", args, out, child)
		}
		if dd && len(child) == 0 && args[len(args)-1] != "--" {
			t.Fatalf("expandShort(%q) = %q: a -- appeared", args, out)
		}
	})
}

// TestNamesOf holds every option to what namesOf assumes: its names are
// the ones urfave/cli's own Names gives, so the regexp-free lookup and the
// flags answering from it (namedOnce) agree with the library.
func TestNamesOf(t *testing.T) {
	app := newApp(io.Discard, io.Discard, nil)
	flags := slices.Clone(app.Flags)
	for _, cmd := range app.Commands {
		flags = append(flags, cmd.Flags...)
	}
	for _, f := range flags {
		if got, want := namesOf(f), f.Names(); !slices.Equal(got, want) {
			t.Errorf("namesOf(%s) = %q, urfave/cli says %q", f.Names()[0], got, want)
		}
	}
	for _, f := range namedOnce(app.Flags) {
		if _, plain := f.(*cli.StringFlag); plain {
			t.Errorf("namedOnce left --%s as it was", f.Names()[0])
		}
	}
}
