package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionLine(t *testing.T) {
	platform := runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")"
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "e3ed922608d78468333ba43794f22b19bb9aed13"},
		{Key: "vcs.time", Value: "2026-11-25T21:05:34Z"}, {Key: "vcs.modified", Value: "true"}}
	tests := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  string
	}{
		{"make build stamps version, commit and its date", "v1.2.3", "e3ed922608d78468333ba43794f22b19bb9aed13", "2026-12-01T00:00:00Z", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			"locked-run version v1.2.3 (commit e3ed922608d7, committed 2026-12-01T00:00:00Z, " + platform},
		{"go install ...@v1.2.3 reports the module version", "dev", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}},
			"locked-run version v1.2.3 (" + platform},
		{"go build in a checkout reports the revision and its time", "dev", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261125210534-e3ed922608d7+dirty"}, Settings: vcs},
			"locked-run version v0.0.0-20261125210534-e3ed922608d7+dirty (commit e3ed922608d7, modified, committed 2026-11-25T21:05:34Z, " + platform},
		{"go run records neither: devel", "dev", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			"locked-run version devel (" + platform},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := formatVersion(factsFrom(tt.version, tt.commit, tt.date, tt.bi, true))
			if got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if strings.Contains(got, "\n") {
				t.Fatal("more than one line")
			}
		})
	}
}
