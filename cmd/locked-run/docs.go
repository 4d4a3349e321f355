package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// The shell completions (completion.go) and the man page (man.go) are
// written from the same cli.Flag and cli.Command values as --help, through
// the small model below, so that none of them can list an option the
// others lack.

// docFlag is one option as the documentation shows it.
type docFlag struct {
	long, short []string // names without dashes: "table"; "t"
	arg         string   // placeholder of the value, "" when it takes none
	usage       string   // usage with the placeholder's backquotes removed
	def         string   // default shown by --help, "" when none
	env         []string
	category    string
}

// names returns every spelling of the option with its dashes:
// "-t", "--table".
func (f docFlag) names() []string {
	var out []string
	for _, s := range f.short {
		out = append(out, "-"+s)
	}
	for _, l := range f.long {
		out = append(out, "--"+l)
	}
	return out
}

// valueHint says how a shell completes an option's value: a fixed list of
// words, a directory, or anything (nil, false).
func valueHint(long []string) (words []string, dir bool) {
	for _, l := range long {
		switch l {
		case flagLogLevel:
			return []string{"trace", "debug", "info", "warn", "error"}, false
		case flagLogFormat:
			return []string{"text", "json"}, false
		case flagLockDir:
			return nil, true
		}
	}
	return nil, false
}

// docFlagsOf turns cli flags into docFlags, skipping hidden ones.
func docFlagsOf(flags []cli.Flag) []docFlag {
	var out []docFlag
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		var d docFlag
		for _, n := range f.Names() {
			if len(n) == 1 {
				d.short = append(d.short, n)
			} else {
				d.long = append(d.long, n)
			}
		}
		if g, ok := f.(cli.DocGenerationFlag); ok {
			d.arg, d.usage = unquoteUsage(g.GetUsage())
			if !g.TakesValue() {
				d.arg = ""
			} else if d.arg == "" {
				d.arg = "VALUE"
			}
			if g.TakesValue() {
				d.def = strings.Trim(g.GetDefaultText(), `"`)
			}
			d.env = g.GetEnvVars()
		}
		if c, ok := f.(cli.CategorizableFlag); ok {
			d.category = c.GetCategory()
		}
		out = append(out, d)
	}
	return out
}

// docCommand is a subcommand as the documentation shows it.
type docCommand struct {
	name, usage, usageText string
	flags                  []docFlag
}

// appFlags returns the main options, --help and --version included.
func appFlags(app *cli.App) []docFlag {
	return docFlagsOf(withStandardFlags(app.Flags, cli.HelpFlag, cli.VersionFlag))
}

// appCommands returns the visible subcommands with their options, --help
// included.
func appCommands(app *cli.App) []docCommand {
	var out []docCommand
	for _, c := range app.Commands {
		if c.Hidden {
			continue
		}
		out = append(out, docCommand{
			name:      c.Name,
			usage:     c.Usage,
			usageText: c.UsageText,
			flags:     docFlagsOf(withStandardFlags(c.Flags, cli.HelpFlag)),
		})
	}
	return out
}

// withStandardFlags appends the flags urfave/cli adds by itself (--help,
// --version) unless flags has them already (after App.Setup).
func withStandardFlags(flags []cli.Flag, std ...cli.Flag) []cli.Flag {
	out := append([]cli.Flag(nil), flags...)
	for _, s := range std {
		if s == nil {
			continue
		}
		have := false
		for _, f := range flags {
			if f.Names()[0] == s.Names()[0] {
				have = true
			}
		}
		if !have {
			out = append(out, s)
		}
	}
	return out
}

// valueFlagSpellings returns every spelling ("-t", "--table") of the
// options in flags that take a value.
func valueFlagSpellings(flags []docFlag) []string {
	var out []string
	for _, f := range flags {
		if f.arg != "" {
			out = append(out, f.names()...)
		}
	}
	return out
}

// allSpellings returns every spelling of every option in flags.
func allSpellings(flags []docFlag) []string {
	var out []string
	for _, f := range flags {
		out = append(out, f.names()...)
	}
	return out
}

// uniqueFlags merges the options of the main command and every subcommand,
// by their first long name, for the value completions shared by all.
func uniqueFlags(app *cli.App) []docFlag {
	seen := map[string]bool{}
	var out []docFlag
	add := func(fs []docFlag) {
		for _, f := range fs {
			k := strings.Join(f.names(), ",")
			if !seen[k] {
				seen[k] = true
				out = append(out, f)
			}
		}
	}
	add(appFlags(app))
	for _, c := range appCommands(app) {
		add(c.flags)
	}
	return out
}

// describeFlag is the usage with its default and environment variable, as
// one line for the man page and the shells' descriptions.
func describeFlag(f docFlag) string {
	s := f.usage
	if f.def != "" {
		s += fmt.Sprintf(" (default: %s)", f.def)
	}
	if len(f.env) > 0 {
		s += " [$" + strings.Join(f.env, ", $") + "]"
	}
	return s
}

// unquoteUsage splits a usage string the way --help reads it: the first
// `backquoted` word names the value ("DynamoDB table `NAME`" shows NAME).
func unquoteUsage(usage string) (name, text string) {
	before, rest, ok := strings.Cut(usage, "`")
	if !ok {
		return "", usage
	}
	name, after, ok := strings.Cut(rest, "`")
	if !ok {
		return "", usage
	}
	return name, before + name + after
}
