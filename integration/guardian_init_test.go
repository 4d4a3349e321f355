package integration

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The runner's guardian is this binary started again, and it runs from the
// init of internal/proctree, before the packages it does not need are
// initialised (the AWS SDK, crypto, net/http, the CLI): every run of a
// command pays for the guardian's start, on the same CPUs as its own.
// Go initialises, at each step, the first package in import-path order
// whose imports are all initialised, so proctree comes early only while it
// imports nothing that waits for most of the standard library (bytes and
// strings wait for unicode, encoding/binary for reflect, which fmt and
// everything after it waits for; golang.org/x/sys/unix sorts after every
// crypto/ and encoding/ package). A new import there that sends the
// guardian back behind them fails this test.
func TestGuardianStartsBeforeTheRestIsInitialised(t *testing.T) {
	// A guardian with no control socket (fd 3) finds its owner gone at
	// once, sweeps the process table for a marker no process carries,
	// and exits.
	cmd := exec.Command(binPath, "guard")
	cmd.Args[0] = "lockedrun-guardian"
	cmd.Env = []string{
		fmt.Sprintf("LOCKED_RUN_GUARDIAN=LOCKED_RUN_OWNER=init-order-test-%d", os.Getpid()),
		"GODEBUG=inittrace=1",
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("guardian: %v\n%s", err, out)
	}
	var inits []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "init" {
			inits = append(inits, f[1])
		}
	}
	// What the guardian needs was initialised (which also shows the trace
	// was read).
	for _, need := range []string{"runtime", "os", "os/signal"} {
		if !slices.Contains(inits, need) {
			t.Errorf("package %s was not initialised before the guardian ran; inits: %v", need, inits)
		}
	}
	for _, pkg := range inits {
		for _, late := range []string{
			"github.com/aws/aws-sdk-go-v2/service/", "github.com/aws/aws-sdk-go-v2/config",
			"github.com/urfave/", "github.com/hashicorp/", "net/http", "crypto/tls", "crypto/x509",
			"encoding/xml", "compress/", "unicode", "golang.org/x/sys/unix",
		} {
			if strings.HasPrefix(pkg, late) {
				t.Errorf("package %s was initialised before the guardian ran", pkg)
			}
		}
	}
	if t.Failed() {
		t.Logf("initialised before the guardian ran (%d): %s", len(inits), strings.Join(inits, " "))
	}
}
