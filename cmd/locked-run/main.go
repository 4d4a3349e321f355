//go:build !locked_run_gendocs

// Command locked-run holds a distributed lock while it runs a command.
//
//	locked-run --table deploy-locks -- terraform apply
//
// See the README for options, exit codes and the lock's guarantees.
package main

import (
	"os"

	// First of the program's packages to initialise: see its doc.
	_ "github.com/locked-run/locked-run/internal/startup"
)

func main() { os.Exit(run(os.Args, os.Stderr)) }
