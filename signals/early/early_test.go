package early

import (
	"slices"
	"testing"

	"github.com/locked-run/locked-run/internal/proctree"
	"github.com/locked-run/locked-run/signals"
)

// The package cannot import these without initialising later; their values
// must match.
func TestSameAsTheirSources(t *testing.T) {
	if guardianEnv != proctree.Env {
		t.Errorf("guardianEnv %q, proctree.Env %q", guardianEnv, proctree.Env)
	}
	for _, s := range signals.Forwarded {
		if !slices.Contains(Signals, s) {
			t.Errorf("%v is forwarded but not caught early", s)
		}
	}
	if len(Signals) != len(signals.Forwarded) {
		t.Errorf("caught early %v, forwarded %v", Signals, signals.Forwarded)
	}
}
