// Package proctree reads what locked-run's runner needs of the process
// table (a process's state and environment, every pid), and holds the
// program of the runner's guardian: locked-run started again with Env set,
// which this package's init runs instead of the rest of the program. The
// guardian's design, its protocol and why it exists are in runner's
// guardian.go; this package is small so that its init comes early and the
// guardian starts without initialising the AWS SDK.
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
