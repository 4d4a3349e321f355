//go:build locked_run_gendocs

package main

import (
	"fmt"
	"os"
)

// Built with -tags locked_run_gendocs, locked-run is its own documentation
// generator instead of itself (main.go is left out): `make man` runs
//
//	go run -tags locked_run_gendocs ./cmd/locked-run man DATE > locked-run.1
//
// so the man page comes from the same option definitions as --help, while
// the binary `make build` makes has no generator in it.
func main() {
	app := newApp(os.Stdout, os.Stderr, nil)
	switch {
	case len(os.Args) == 3 && os.Args[1] == "man":
		writeManPage(os.Stdout, app, os.Args[2])
	case len(os.Args) == 3 && os.Args[1] == "completion":
		if err := writeCompletion(os.Stdout, app, os.Args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
			os.Exit(2)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: gendocs man YYYY-MM-DD | gendocs completion bash|zsh|fish")
		os.Exit(2)
	}
}
