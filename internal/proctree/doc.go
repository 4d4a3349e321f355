// Package proctree reads what locked-run's runner needs of the process
// table (a process's state and environment, every pid), and holds the
// program of the runner's guardian where it is not forked (every platform
// but linux/amd64, or where the fork fails: runner/guardian_linux_amd64.go):
// locked-run started again with Env set, which this package's init runs
// instead of the rest of the program. The
// guardian's design, its protocol and why it exists are in runner's
// guardian.go; this package is small so that its init comes early and the
// guardian starts without initialising the AWS SDK.
//
// Early means few imports, and only of packages the runtime and os need
// anyway: Go initialises, at each step, the first package in import-path
// order whose imports are all initialised. On Linux this package imports
// no bytes, strings, encoding/binary or golang.org/x/sys/unix (they wait
// for unicode and reflect, after which some forty packages, crypto's and
// encoding's, come first by name), and its init runs after 22 packages
// rather than 60: the guardian is ready about a millisecond sooner and
// spends 1.6 ms less CPU (BENCHMARKS.md, sixth pass). The integration test
// TestGuardianStartsBeforeTheRestIsInitialised holds it there.
package proctree

import "os"

// Env, when present in the environment, makes this program the guardian;
// its value is the tree's marker.
const Env = "LOCKED_RUN_GUARDIAN"

func init() {
	if marker, ok := os.LookupEnv(Env); ok && len(os.Args) == 2 && os.Args[1] == "guard" {
		os.Exit(guardianMain(marker))
	}
}
