package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBinaryLeavesOutUnusedOperations builds locked-run as `make build`
// does, keeping the symbol table, and checks that of the DynamoDB client's
// operations only those the backend calls are linked (lock.SDKClient says
// why the others could be kept, and what they cost).
func TestBinaryLeavesOutUnusedOperations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "locked-run")
	build := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-o", bin, ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v\n%s", err, stderrOf(err))
	}
	op := regexp.MustCompile(`service/dynamodb\.\(\*Client\)\.([A-Za-z]+)$`)
	var linked []string
	for _, line := range strings.Split(string(out), "\n") {
		if m := op.FindStringSubmatch(line); m != nil {
			linked = append(linked, m[1])
		}
	}
	called := map[string]bool{"GetItem": true, "UpdateItem": true, "Scan": true, "CreateTable": true, "DescribeTable": true}
	found := 0
	for _, name := range linked {
		switch {
		case called[name]:
			found++
		case name == "Options" || name == "DescribeEndpoints" || name[0] >= 'a':
			// the client's own plumbing: DescribeEndpoints is how the
			// client discovers endpoints when asked to
		default:
			t.Errorf("operation %s is linked but never called", name)
		}
	}
	if found != len(called) {
		t.Errorf("linked operations %v; want all of %v", linked, called)
	}
}
