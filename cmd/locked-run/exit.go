package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/locked-run/locked-run/lock"
	"github.com/locked-run/locked-run/runner"
)

// Exit statuses of locked-run's own making. The child's own status passes
// through unchanged, and death by signal N is 128+N, as in a shell.
const (
	// exitConflict is the default for --conflict-exit-code: the lock was
	// held and --no-wait was given, or --timeout passed. EX_TEMPFAIL from
	// sysexits.h: try again later.
	exitConflict = 75
	// exitLockLost means the lock was lost while the child ran, and the
	// child was stopped. Fixed, one above exitConflict: "didn't get it" and
	// "lost it" sit side by side.
	exitLockLost = 76
	// exitError is locked-run's own error: usage, AWS, credentials, a
	// missing table, bad input.
	exitError = 125
	// exitCannotRun means the command was found but could not be run.
	exitCannotRun = 126
	// exitNotFound means the command was not found.
	exitNotFound = 127
)

// childExit carries the child's shell-style status out of the main action.
// It is not a failure of locked-run and prints nothing.
type childExit struct{ status int }

func (e childExit) Error() string { return fmt.Sprintf("child exited with status %d", e.status) }

// signalExit says locked-run was interrupted by a signal before the child
// started; the status is 128+N and nothing is printed beyond the log line.
type signalExit struct{ status int }

func (e signalExit) Error() string { return fmt.Sprintf("interrupted (status %d)", e.status) }

// conflictError says the lock was not acquired: held under --no-wait, or
// --timeout passed. Its status is --conflict-exit-code.
type conflictError struct {
	err    error
	status int
}

func (e conflictError) Error() string { return e.err.Error() }
func (e conflictError) Unwrap() error { return e.err }

// missingTableError names the table that was not found, for the hint.
type missingTableError struct {
	table string
	err   error
}

func (e missingTableError) Error() string { return e.err.Error() }
func (e missingTableError) Unwrap() error { return e.err }

// usageError is a mistake on the command line or in the environment.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitStatus turns the final error of a run into the process exit status
// and at most one line for stderr (empty when nothing is to be said).
func exitStatus(err error) (int, string) {
	var (
		ce  childExit
		se  signalExit
		cfe conflictError
		ue  usageError
		mh  *lock.MaxHoldersError
	)
	switch {
	case err == nil:
		return 0, ""
	case errors.As(err, &ce):
		return ce.status, ""
	case errors.As(err, &se):
		return se.status, ""
	case errors.As(err, &cfe):
		return cfe.status, cfe.err.Error()
	case errors.As(err, &ue):
		return exitError, ue.msg
	case errors.As(err, &mh):
		// Its own line names the key and the N in force; whatever
		// wrapped it would only repeat the key.
		return exitError, mh.Error()
	case errors.Is(err, lock.ErrForeignItem):
		// Not a conflict that waiting could end: another tool owns the item.
		return exitError, err.Error()
	case errors.Is(err, lock.ErrLost):
		return exitLockLost, err.Error() + "; the command was stopped"
	case errors.Is(err, runner.ErrNotFound):
		return exitNotFound, err.Error()
	case errors.Is(err, runner.ErrNotExecutable):
		return exitCannotRun, err.Error()
	case errors.Is(err, lock.ErrTableNotFound):
		var mt missingTableError
		table := "TABLE"
		if errors.As(err, &mt) {
			table = quoteWord(mt.table)
		}
		return exitError, err.Error() + ": create it with `locked-run create-table -t " + table + "` or pass --create-table"
	case errors.Is(err, lock.ErrAccessDenied):
		return exitError, err.Error() + ": check the AWS credentials and the IAM policy (see README, IAM policy)"
	case errors.Is(err, lock.ErrInvalidKey):
		return exitError, err.Error() + ": pass a shorter --key"
	case errors.Is(err, context.DeadlineExceeded):
		return exitError, err.Error() + ": DynamoDB did not answer in time; check --region and --endpoint-url, and the network"
	default:
		return exitError, oneLine(err.Error())
	}
}

// detail returns err's message without the sentinel's words in front, for
// a usage line that already says what kind of problem it is.
func detail(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}

// oneLine folds a multi-line message (some SDK errors have several) so the
// user gets exactly one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
