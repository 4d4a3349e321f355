package main

import (
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
)

// shortOptions are the one-letter options and whether each takes a value.
// They bundle as getopt(3) and flock(1) allow: "-nq" is "-n -q", "-w5" and
// "-w 5" are "-w 5", "-nw5" is "-n -w 5".
var shortOptions = map[byte]bool{
	't': true,  // --table
	'k': true,  // --key
	'w': true,  // --timeout
	'E': true,  // --conflict-exit-code, as flock -E
	'n': false, // --no-wait
	'q': false, // --quiet
}

// expandShort rewrites bundled short options in args (os.Args without the
// program name) into separate words, up to where locked-run's options end:
// "--", or the first word that is neither an option nor a subcommand's name.
// The child command is never touched. A single-dash word that is a long
// option's name ("-table", which Go's flag package accepts) is left alone.
// typed maps each word it made to the word the user typed, for messages.
func expandShort(args []string, longNames, valueFlags, subcommands map[string]bool) (out []string, typed map[string]string, err error) {
	typed = map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i:]...), typed, nil
		case a == "-" || !strings.HasPrefix(a, "-"):
			if !subcommands[a] {
				return append(out, args[i:]...), typed, nil
			}
			out = append(out, a)
			continue
		case strings.HasPrefix(a, "--"), strings.Contains(a, "="), longNames[a[1:]], len(a) == 2:
			// One option as it is ("-n", "-h", "-v"), or a long one.
			out = append(out, a)
			if !strings.Contains(a, "=") && valueFlags[strings.TrimLeft(a, "-")] && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			continue
		}
		words, needsNext, err := splitBundle(a)
		if err != nil {
			return nil, nil, err
		}
		for _, w := range words {
			if _, seen := typed[w]; !seen {
				typed[w] = a
			}
		}
		out = append(out, words...)
		if needsNext && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out, typed, nil
}

// splitBundle splits one word of short options such as "-nqw5". needsNext
// is true when its last option takes a value that is the next word.
func splitBundle(a string) (words []string, needsNext bool, err error) {
	for j := 1; j < len(a); j++ {
		takesValue, known := shortOptions[a[j]]
		if !known {
			if j == 1 || a[j] >= utf8.RuneSelf {
				return nil, false, usagef("unknown option %s (see locked-run --help)", shown(a))
			}
			return nil, false, usagef("unknown option %s in %s (see locked-run --help)", shown("-"+string(a[j])), shown(a))
		}
		words = append(words, "-"+string(a[j]))
		if takesValue {
			if j+1 < len(a) {
				return append(words, a[j+1:]), false, nil
			}
			return words, true, nil
		}
	}
	return words, false, nil
}

// shown returns a word of the command line as typed, or Go-quoted when it
// holds anything that would not show as typed on one line.
func shown(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}

// envBools are the environment variables of boolean options. urfave/cli
// would read them with strconv.ParseBool and report a Go error; these take
// what people write in a crontab or a unit file.
var envBools = map[string]string{flagLocal: "LOCKED_RUN_LOCAL"}

// parseBool reads a boolean as people write it: 1/0, true/false, yes/no,
// on/off, in any case. ok is false for anything else.
func parseBool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on", "y", "t":
		return true, true
	case "0", "false", "no", "off", "n", "f", "":
		return false, true
	}
	return false, false
}

// envBool returns the value of flag's environment variable, false when it
// is unset or empty.
func envBool(flag string) bool {
	name, ok := envBools[flag]
	if !ok {
		return false
	}
	v, _ := parseBool(os.Getenv(name))
	return v
}

// checkEnvBools refuses a boolean environment variable that is set to
// something that is not a boolean, with one line naming it.
func checkEnvBools() error {
	for _, name := range envBools {
		if s, set := os.LookupEnv(name); set {
			if _, ok := parseBool(s); !ok {
				return usagef("%s=%q: not a boolean; use 1 or 0 (also true/false, yes/no, on/off)", name, s)
			}
		}
	}
	return nil
}

// typedName returns how the option flag (its long name) was given: as
// typed on the command line ("-w", "--timeout", "-timeout"), else the
// environment variable that set it, else the long name. Messages about its
// value then quote what the user wrote, where they wrote it.
func typedName(c *cli.Context, flag string) string {
	var def cli.Flag
	for _, f := range mainFlags() {
		if namesOf(f)[0] == flag {
			def = f
		}
	}
	if def == nil {
		return flag
	}
	args, _ := c.App.Metadata[metaArgs].([]string)
	// The last spelling wins, as the last value does.
	found := ""
	for _, a := range args {
		word, _, _ := strings.Cut(a, "=")
		if !strings.HasPrefix(word, "-") {
			continue
		}
		for _, n := range namesOf(def) {
			if strings.TrimLeft(word, "-") == n {
				found = shown(word)
			}
		}
	}
	if found != "" {
		return found
	}
	if ev, ok := def.(interface{ GetEnvVars() []string }); ok {
		for _, e := range ev.GetEnvVars() {
			if os.Getenv(e) != "" {
				return e
			}
		}
	}
	return flag
}
