package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
)

// Stamped at build time by `make build` and the release builds
// (.goreleaser.yaml), date being the commit's time so that two builds of
// one commit are the same bytes:
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=e3ed922... -X main.date=2026-12-01T00:00:00Z"
//
// Builds without them (`go install ...@v1.2.3`, `go build`, `go run`) fall
// back to what the Go toolchain recorded in the binary (buildInfo).
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// buildFacts is what --version prints.
type buildFacts struct {
	version, commit, date string // date: the commit's time
	modified              bool
}

// buildInfo returns the stamped facts, filling the gaps from the build info
// the Go toolchain embeds: the module version (`go install ...@v1.2.3`,
// or a pseudo-version of the commit for `go build` in a checkout) and the
// VCS revision and commit time. `go run` records neither, so it says devel.
func buildInfo() buildFacts {
	bi, ok := debug.ReadBuildInfo()
	return factsFrom(version, commit, date, bi, ok)
}

// factsFrom is buildInfo for given stamps and build info.
func factsFrom(version, commit, date string, bi *debug.BuildInfo, ok bool) buildFacts {
	f := buildFacts{version: version, commit: commit, date: date}
	if !ok || bi == nil {
		return f
	}
	if f.version == "dev" && bi.Main.Version != "" {
		f.version = bi.Main.Version
		if f.version == "(devel)" {
			f.version = "devel"
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if f.commit == "" {
				f.commit = s.Value
			}
		case "vcs.time":
			if f.date == "" {
				f.date = s.Value
			}
		case "vcs.modified":
			f.modified = s.Value == "true"
		}
	}
	return f
}

// versionString is the version alone, as App.Version.
func versionString() string { return buildInfo().version }

// versionLine is the whole --version output: version, commit, build date,
// Go version and platform, on one line a bug report can quote.
func versionLine() string { return formatVersion(buildInfo()) }

func formatVersion(f buildFacts) string {
	var parts []string
	if f.commit != "" {
		c := f.commit
		if len(c) > 12 {
			c = c[:12]
		}
		if f.modified && !strings.HasSuffix(c, "-dirty") {
			c += ", modified"
		}
		parts = append(parts, "commit "+c)
	}
	if f.date != "" {
		parts = append(parts, "committed "+f.date)
	}
	parts = append(parts, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
	return fmt.Sprintf("locked-run version %s (%s)", f.version, strings.Join(parts, ", "))
}

func init() {
	cli.VersionPrinter = func(c *cli.Context) { fmt.Fprintln(c.App.Writer, versionLine()) }
}
