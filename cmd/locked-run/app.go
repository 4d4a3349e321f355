package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/locked-run/locked-run/lock"
	"github.com/locked-run/locked-run/runner"
)

// describeFlagError rewrites the flag package's messages into the tool's
// own words, quoting the option as it was typed: "unknown option --bogus".
// typed maps words made by expandShort to what the user typed; args are
// the options as given to the parser.
func describeFlagError(err error, args []string, typed map[string]string) string {
	msg := err.Error()
	asTyped := func(name string) string {
		name = strings.TrimLeft(name, "-")
		for _, a := range args {
			word, _, _ := strings.Cut(a, "=")
			if strings.HasPrefix(word, "-") && strings.TrimLeft(word, "-") == name {
				if orig, ok := typed[word]; ok && orig != word {
					return shown(word) + " (in " + shown(orig) + ")"
				}
				return shown(word)
			}
		}
		if len(name) == 1 {
			return "-" + name
		}
		return "--" + name
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return "unknown option " + asTyped(name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return "option " + asTyped(name) + " needs a value"
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		// `invalid value "x" for flag -E: parse error`
		if val, flag, ok := strings.Cut(rest, " for flag "); ok {
			flag, _, _ = strings.Cut(flag, ":")
			return asTyped(flag) + " " + val + ": not a number"
		}
	}
	return msg
}

const usageText = `locked-run [options] -- COMMAND [ARG...]
locked-run [options] COMMAND [ARG...]
locked-run status|list|release|create-table [options]
locked-run completion bash|zsh|fish`

const description = `Runs COMMAND while holding a lease lock: in a DynamoDB table (--table), or on
this host (--local). Waits while another holder has the lock; keeps the lease
alive with heartbeats; forwards signals; releases the lock when COMMAND ends.
Exits with COMMAND's status, 75 when the lock was not acquired (--no-wait,
--timeout), 76 when the lock was lost and COMMAND stopped, 125 on its own
errors, 126/127 when COMMAND cannot be run or found.

EXAMPLES:
   # one terraform apply at a time, across hosts and CI jobs
   locked-run -t deploy-locks -k prod-network -- terraform apply

   # on a single host, no AWS (like flock(1))
   locked-run --local -- ./nightly-backup.sh

   # cron on several hosts: skip this run if another host is at it
   locked-run -t cron-locks -k reindex --no-wait --conflict-exit-code 0 --quiet -- ./reindex

   # give up after 10 minutes of waiting
   locked-run -t deploy-locks --timeout 10m -- make deploy

   # at most 2 deploys at once (every run on the key gives the same N)
   locked-run -t deploy-locks -k deploy-prod --max-holders 2 -- ./deploy.sh

   # app deploys together, a migration alone
   locked-run -t deploy-locks -k prod-db --shared -- ./deploy-app.sh
   locked-run -t deploy-locks -k prod-db -- ./migrate.sh

   # who holds it, every lock, break a stale one
   locked-run status -t deploy-locks -k prod-network
   locked-run list -t deploy-locks --json
   locked-run release -t deploy-locks -k prod-network --owner ci-7-4412-9f1c03ab

   # make the table (on-demand, key LockID)
   locked-run create-table -t deploy-locks`

// Flag names used in more than one place.
const (
	flagTable      = "table"
	flagLocal      = "local"
	flagLockDir    = "lock-dir"
	flagRegion     = "region"
	flagProfile    = "profile"
	flagEndpoint   = "endpoint-url"
	flagKey        = "key"
	flagLogLevel   = "log-level"
	flagLogFormat  = "log-format"
	flagQuiet      = "quiet"
	flagJSON       = "json"
	flagForce      = "force"
	flagOwner      = "owner"
	flagAll        = "all"
	flagCreate     = "create-table"
	flagLease      = "lease"
	flagHeartbeat  = "heartbeat"
	flagNoWait     = "no-wait"
	flagTimeout    = "timeout"
	flagPoll       = "poll"
	flagConflict   = "conflict-exit-code"
	flagKillAfter  = "kill-after"
	flagProgress   = "progress"
	flagShared     = "shared"
	flagMaxHolders = "max-holders"
	categoryLock   = "Lock"
	categoryWhere  = "Where the lock lives"
	categoryOutput = "Output"
	categoryChild  = "The command"
)

// backendFlags say where the lock lives; every command takes them.
func backendFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagTable, Aliases: []string{"t"}, Usage: "DynamoDB table `NAME` holding the locks", EnvVars: []string{"LOCKED_RUN_TABLE"}, Category: categoryWhere},
		// LOCKED_RUN_LOCAL is read by envBool, which takes yes/no and on/off too.
		&cli.BoolFlag{Name: flagLocal, Usage: "use a host-local flock(2) lock instead of DynamoDB (no AWS) [$LOCKED_RUN_LOCAL]", Category: categoryWhere},
		&cli.StringFlag{Name: flagLockDir, Usage: "`DIR` of --local lock files; share one to share keys between users (default: a private per-user directory, /run/lock/locked-run-UID or /dev/shm/locked-run-UID)", EnvVars: []string{"LOCKED_RUN_LOCK_DIR"}, Category: categoryWhere},
		&cli.StringFlag{Name: flagRegion, Usage: "AWS `REGION` (default: the SDK's chain, e.g. AWS_REGION)", Category: categoryWhere},
		&cli.StringFlag{Name: flagProfile, Usage: "AWS shared config `PROFILE` (default: AWS_PROFILE)", Category: categoryWhere},
		&cli.StringFlag{Name: flagEndpoint, Usage: "DynamoDB endpoint `URL`, e.g. DynamoDB Local (default: AWS_ENDPOINT_URL_DYNAMODB)", Category: categoryWhere},
	}
}

// outputFlags control locked-run's own output on stderr.
func outputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagLogLevel, Usage: "`LEVEL`: trace, debug, info, warn or error (default: info)", EnvVars: []string{"LOCKED_RUN_LOG_LEVEL"}, Category: categoryOutput},
		&cli.StringFlag{Name: flagLogFormat, Usage: "`FORMAT`: text, or json for one JSON object a line (default: text)", Category: categoryOutput},
		&cli.BoolFlag{Name: flagQuiet, Aliases: []string{"q"}, Usage: "log only errors", Category: categoryOutput},
	}
}

func keyFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: flagKey, Aliases: []string{"k"}, Usage: usage, EnvVars: []string{"LOCKED_RUN_KEY"}, Category: categoryLock}
}

// mainFlags are the options of running a command under the lock.
func mainFlags() []cli.Flag {
	flags := backendFlags()
	flags = append(flags,
		&cli.BoolFlag{Name: flagCreate, Usage: "create the table if it is missing (on-demand billing) and wait until it is ACTIVE", Category: categoryWhere},
		keyFlag("which lock: `KEY` (default: the command line, shell-quoted)"),
		&cli.StringFlag{Name: flagLease, Usage: "how long (`D`) the lock survives without a heartbeat", Value: "30s", EnvVars: []string{"LOCKED_RUN_LEASE"}, Category: categoryLock},
		&cli.StringFlag{Name: flagHeartbeat, Usage: "how often (`D`) the holder renews (default: lease/3)", Category: categoryLock},
		&cli.BoolFlag{Name: flagNoWait, Aliases: []string{"n"}, Usage: "do not wait when the lock is held (a holder that looks crashed is watched for up to one lease, then taken over)", Category: categoryLock},
		&cli.StringFlag{Name: flagTimeout, Aliases: []string{"w"}, Usage: "give up waiting after `D` (default: wait forever; 0: do not wait)", EnvVars: []string{"LOCKED_RUN_TIMEOUT"}, Category: categoryLock},
		&cli.StringFlag{Name: flagPoll, Usage: "how often (`D`) a waiter looks again, jittered ±50% (DynamoDB)", Value: "200ms", Category: categoryLock},
		&cli.BoolFlag{Name: flagShared, Usage: "hold the lock shared, with other --shared holders, never with an exclusive one (flock -s)", Category: categoryLock},
		&cli.IntFlag{Name: flagMaxHolders, Usage: "a semaphore: at most `N` holders of the key at once; every run on the key must give the same N", Category: categoryLock},
		&cli.IntFlag{Name: flagConflict, Aliases: []string{"E"}, Usage: "exit status `N` when the lock was not acquired", Value: exitConflict, Category: categoryLock},
		&cli.StringFlag{Name: flagKillAfter, Usage: "grace `D` between SIGTERM and SIGKILL when locked-run stops the command", Value: "10s", Category: categoryChild},
		&cli.StringFlag{Name: flagProgress, Usage: "while waiting, say who holds the lock every `D`", Value: "30s", Category: categoryOutput},
	)
	return append(flags, outputFlags()...)
}

// newApp returns the command-line application. child is the command found
// by splitArgs; the main action runs it.
func newApp(stdout, stderr io.Writer, child []string) *cli.App {
	app := &cli.App{
		Name:                 "locked-run",
		Usage:                "run a command while holding a distributed lock",
		UsageText:            usageText,
		Description:          description,
		Version:              versionString(),
		Flags:                mainFlags(),
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		Writer:               stdout,
		ErrWriter:            stderr,
		// Run must always return, so that deferred releases run and only
		// main exits.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			args, _ := c.App.Metadata[metaArgs].([]string)
			typed, _ := c.App.Metadata[metaTyped].(map[string]string)
			return usageError{describeFlagError(err, args, typed) + " (see locked-run --help)"}
		},
		Metadata: map[string]any{},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				// splitArgs hands the parser only options; a word left
				// here means an option took an unexpected value.
				return usagef("unexpected argument %q", c.Args().First())
			}
			return runMain(c, child)
		},
		Commands: []*cli.Command{
			{
				Name:      "status",
				Usage:     "say whether a lock is free or who holds it",
				UsageText: "locked-run status -t TABLE -k KEY [--json]",
				Flags:     append(append(backendFlags(), keyFlag("which lock: `KEY`"), &cli.BoolFlag{Name: flagJSON, Usage: "print JSON"}), outputFlags()...),
				Action:    runStatus,
			},
			{
				Name:      "list",
				Usage:     "list every held lock",
				UsageText: "locked-run list -t TABLE [--json]",
				Flags:     append(append(backendFlags(), &cli.BoolFlag{Name: flagJSON, Usage: "print JSON"}, &cli.BoolFlag{Name: flagAll, Usage: "list the items of other tools too"}), outputFlags()...),
				Action:    runList,
			},
			{
				Name:      "release",
				Usage:     "break the lock of one holder (--owner ID), or whoever holds it (--force)",
				UsageText: "locked-run release -t TABLE -k KEY --owner ID | --force",
				Flags: append(append(backendFlags(), keyFlag("which lock: `KEY`"),
					&cli.StringFlag{Name: flagOwner, Usage: "break the lock only if owner `ID` (from status) holds it"},
					&cli.BoolFlag{Name: flagForce, Usage: "break the lock whoever holds it"}), outputFlags()...),
				Action: runRelease,
			},
			{
				Name:      "create-table",
				Usage:     "create the DynamoDB table (on-demand, key LockID) and wait until it is ACTIVE",
				UsageText: "locked-run create-table -t TABLE",
				Flags:     append(backendFlags(), outputFlags()...),
				Action:    runCreateTable,
			},
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = app.OnUsageError
		cmd.HideHelpCommand = true
		if cmd.Action != nil {
			action := cmd.Action
			cmd.Action = func(c *cli.Context) error {
				if c.Args().Len() > 0 {
					return usagef("%s: unexpected argument %q", c.Command.Name, c.Args().First())
				}
				return action(c)
			}
		}
	}
	completion := completionCommand()
	completion.OnUsageError = app.OnUsageError
	app.Commands = append(app.Commands, completion)
	return app
}

// subcommandNames are the words that name a subcommand when they come
// first, before any "--".
var subcommandNames = map[string]bool{"status": true, "list": true, "release": true, "create-table": true, "completion": true, "help": true, "h": true}

// valueFlagNames lists every option (by each of its names) that takes a
// separate value, for splitArgs; longNames lists every option's names of
// more than one letter, for expandShort.
func valueFlagNames() map[string]bool {
	names := map[string]bool{}
	for _, f := range mainFlags() {
		if _, isBool := f.(*cli.BoolFlag); isBool {
			continue
		}
		for _, n := range namesOf(f) {
			names[n] = true
		}
	}
	return names
}

func longNames(app *cli.App) map[string]bool {
	names := map[string]bool{"help": true, "version": true}
	add := func(flags []cli.Flag) {
		for _, f := range flags {
			for _, n := range namesOf(f) {
				if len(n) > 1 {
					names[n] = true
				}
			}
		}
	}
	add(app.Flags)
	for _, cmd := range app.Commands {
		add(cmd.Flags)
	}
	return names
}

// isHelpOption reports whether a (an option word after expandShort) asks
// for the help screen.
func isHelpOption(a string) bool {
	name, _, _ := strings.Cut(a, "=")
	return name == "-h" || name == "--help" || name == "-help"
}

// uncategorized drops the flags' categories. urfave/cli groups the flags
// by category in App.Setup, before it knows what it runs, formatting the
// help line of every flag to do so: on a run that shows no help, a tenth of
// the time from the program's start to its command's.
func uncategorized(flags []cli.Flag) {
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Category = ""
		case *cli.BoolFlag:
			f.Category = ""
		case *cli.IntFlag:
			f.Category = ""
		}
	}
}

// namedOnce returns flags with their names worked out once. urfave/cli
// asks a flag for its names (Names) on every lookup: IsSet walks every
// flag of the command until it finds the one asked for, and before the
// action runs, its flag actions ask IsSet of every name of every flag, so
// a run asks several hundred times; the library's Names runs a regexp
// over each name every time (FlagNames), 3 % of a run's CPU. The wrapped
// flags embed the originals, so every other method and optional interface
// (value, usage, required, actions) is theirs; only the type differs,
// which urfave/cli looks at when it formats help, never shown on a run.
func namedOnce(flags []cli.Flag) []cli.Flag {
	out := make([]cli.Flag, len(flags))
	for i, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			out[i] = stringNamed{f, namesOf(f)}
		case *cli.BoolFlag:
			out[i] = boolNamed{f, namesOf(f)}
		case *cli.IntFlag:
			out[i] = intNamed{f, namesOf(f)}
		default:
			out[i] = f
		}
	}
	return out
}

// namesOf returns f's names as its Names method does, without the regexp
// urfave/cli's FlagNames runs over each name to cut off what follows a
// comma or a space (an old way of giving aliases, which none of our
// options use; TestNamesOf holds every option to that).
func namesOf(f cli.Flag) []string {
	switch f := f.(type) {
	case *cli.StringFlag:
		return append([]string{f.Name}, f.Aliases...)
	case *cli.BoolFlag:
		return append([]string{f.Name}, f.Aliases...)
	case *cli.IntFlag:
		return append([]string{f.Name}, f.Aliases...)
	}
	return f.Names()
}

type (
	stringNamed struct {
		*cli.StringFlag
		names []string
	}
	boolNamed struct {
		*cli.BoolFlag
		names []string
	}
	intNamed struct {
		*cli.IntFlag
		names []string
	}
)

func (f stringNamed) Names() []string { return f.names }
func (f boolNamed) Names() []string   { return f.names }
func (f intNamed) Names() []string    { return f.names }

// App.Metadata keys of the command line as typed, for messages.
const (
	metaArgs  = "args"
	metaTyped = "typed"
	metaQuiet = "quiet"
	// metaGuardian holds the runner's guardian of a run, started early.
	metaGuardian = "guardian"
)

// run is the whole program: it parses args (os.Args), runs, and returns the
// exit status, having written at most one error line to stderr.
func run(args []string, stderr io.Writer) int {
	return runWith(context.Background(), args, os.Stdout, stderr)
}

func runWith(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := checkEnvBools()
	var app *cli.App
	if err == nil {
		var expanded []string
		var typed map[string]string
		probe := newApp(stdout, stderr, nil)
		valued := valueFlagNames()
		expanded, typed, err = expandShort(args[1:], longNames(probe), valued, subcommandNames)
		if err == nil {
			opts, child, _, _ := splitArgs(expanded, valued, subcommandNames)
			app = newApp(stdout, stderr, child)
			if len(child) > 0 && !slices.ContainsFunc(opts, isHelpOption) {
				// A run shows no help screen, the only place categories
				// appear; grouping by them formats every flag's help line.
				uncategorized(app.Flags)
				app.Flags = namedOnce(app.Flags)
				for _, cmd := range app.Commands {
					uncategorized(cmd.Flags)
				}
			}
			if len(child) > 0 {
				// A run: its guardian starts now, beside the option
				// checks, the AWS configuration and the wait for the lock
				// (runMain hands it to the runner).
				guardian := runner.StartGuardian()
				defer guardian.Close()
				app.Metadata[metaGuardian] = guardian
			}
			app.Metadata[metaArgs] = opts
			app.Metadata[metaTyped] = typed
			err = app.RunContext(ctx, append([]string{args[0]}, opts...))
		}
	}
	if app == nil {
		app = &cli.App{Metadata: map[string]any{}}
	}
	if table, _ := app.Metadata[metaTable].(string); table != "" && errors.Is(err, lock.ErrTableNotFound) {
		err = missingTableError{table: table, err: err}
	}
	status, msg := exitStatus(err)
	if quiet, _ := app.Metadata[metaQuiet].(bool); quiet && status == 0 {
		// --quiet: a conflict answered with --conflict-exit-code 0 is not
		// an error, and cron mails any output.
		msg = ""
	}
	if msg != "" {
		if logger, ok := app.Metadata[metaJSONLogger].(hclog.Logger); ok {
			logger.Error(msg)
		} else {
			fmt.Fprintf(stderr, "locked-run: %s\n", msg)
		}
	}
	return status
}
