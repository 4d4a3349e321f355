// Package early catches locked-run's signals as soon as the program's own
// code runs: a program imports it for its side effect, and its init runs as
// early in package initialisation as its few imports allow, before the
// heavy initialisation of the AWS SDK. See signals.CatchEarly.
package early

import (
	"os"

	"github.com/locked-run/locked-run/internal/proctree"
	"github.com/locked-run/locked-run/signals"
)

func init() {
	// The runner's guardian is this same program started again; it
	// catches signals of its own and must see each one, so nothing may
	// hold them back for a relay it never starts.
	if _, guardian := os.LookupEnv(proctree.Env); guardian {
		return
	}
	signals.CatchEarly()
}
