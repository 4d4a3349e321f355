package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseDuration reads a duration option: a Go duration ("30s", "1m30s",
// "250ms") or, as flock(1) and timeout(1) take, a plain number of seconds
// ("30", "0.5"). Negative durations are refused. name says where the value
// came from, for the message: a flag's name ("timeout", shown as
// --timeout), the option as typed ("-w"), or an environment variable
// ("LOCKED_RUN_TIMEOUT").
func parseDuration(name, s string) (time.Duration, error) {
	given := valueAsGiven(name, s)
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, usagef("%s: empty duration; give one like 30s, 2m or 1h", given)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "xXpPeEiInN_") {
		if f < 0 || f > float64(1<<62)/float64(time.Second) {
			return 0, usagef("%s: out of range; give a positive duration like 30s", given)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, usagef("%s: not a duration; give one like 30s, 2m or 1h", given)
	}
	if d < 0 {
		return 0, usagef("%s: negative; give a positive duration like 30s", given)
	}
	return d, nil
}

// valueAsGiven shows an option and its value the way they were given:
// `--timeout "soon"`, `-w "soon"`, `LOCKED_RUN_TIMEOUT="soon"`.
func valueAsGiven(name, value string) string {
	switch {
	case strings.HasPrefix(name, "-"):
		return fmt.Sprintf("%s %q", name, value)
	case strings.ToUpper(name) == name:
		return fmt.Sprintf("%s=%q", name, value)
	default:
		return fmt.Sprintf("--%s %q", name, value)
	}
}

// shellQuote joins args into one line that a POSIX shell would split back
// into the same words: the default key, and the command shown to waiters.
func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = quoteWord(a)
	}
	return strings.Join(out, " ")
}

func quoteWord(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// splitArgs finds where locked-run's own options end in args (os.Args
// without the program name). It returns the options, and the child command
// when there is one: everything after the first "--" that is not a flag's
// value, or else everything from the first word that is not an option,
// unless that word names a subcommand (then sub is true and rest is empty:
// the whole of args belongs to the CLI parser). valueFlags tells which
// options take a separate value ("-t NAME").
func splitArgs(args []string, valueFlags, subcommands map[string]bool) (opts, child []string, sawDashDash, sub bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return args[:i], args[i+1:], true, false
		case a == "-" || !strings.HasPrefix(a, "-"):
			if subcommands[a] {
				return args, nil, false, true
			}
			return args[:i], args[i:], false, false
		case strings.Contains(a, "="):
			// --flag=value carries its own value.
		case valueFlags[strings.TrimLeft(a, "-")]:
			i++ // skip the value, even if it looks like "--"
		}
	}
	return args, nil, false, false
}

// validateTableName checks a DynamoDB table name before any request.
func validateTableName(name string) error {
	if len(name) < 3 || len(name) > 255 {
		return usagef("--table %q: a DynamoDB table name has 3 to 255 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return usagef("--table %q: a DynamoDB table name has only letters, digits, '_', '-' and '.'", name)
		}
	}
	return nil
}

// describeDuration prints d rounded for people: "2m5s", "350ms".
func describeDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
