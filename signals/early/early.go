// Package early catches locked-run's signals as soon as the program's own
// code runs: a program imports it for its side effect, and its init runs as
// early in package initialisation as its few imports allow, before the
// heavy initialisation of the AWS SDK. See signals.CatchEarly.
package early

import "github.com/locked-run/locked-run/signals"

func init() { signals.CatchEarly() }
