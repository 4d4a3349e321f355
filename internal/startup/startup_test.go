package startup_test

import (
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestMemoryProfilingIsOff(t *testing.T) {
	if runtime.MemProfileRate != 0 {
		t.Errorf("runtime.MemProfileRate = %d after the package's init; want 0", runtime.MemProfileRate)
	}
}

// TestOnlyTheCommandImportsIt checks that no package but the command
// depends on internal/startup: its init changes the whole program, which
// a program that imports lock as a library must not get.
func TestOnlyTheCommandImportsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = "github.com/locked-run/locked-run/internal/startup"
	seen := false
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 || !slices.Contains(f[1:], self) {
			continue
		}
		switch f[0] {
		case "github.com/locked-run/locked-run/cmd/locked-run":
			seen = true
		default:
			t.Errorf("%s depends on internal/startup; only the command may", f[0])
		}
	}
	if !seen {
		t.Error("the command does not depend on internal/startup")
	}
}
