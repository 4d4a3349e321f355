package integration

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// silentEndpoint listens on a loopback port, accepts connections and never
// answers them, until the test ends.
func silentEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// The AWS configuration loads in the background while the options are
// checked and the command looked up (cmd/locked-run/run.go). An error of
// those must still come first, and at once: the load is abandoned, not
// waited for. Here the load would take seconds: no region anywhere, and an
// instance metadata service (asked for the region) that never answers.
func TestLocalErrorsComeFirstWhileAWSConfigurationLoads(t *testing.T) {
	var env []string
	for _, kv := range dynamoEnv("http://127.0.0.1:1") {
		if !strings.HasPrefix(kv, "AWS_REGION=") && !strings.HasPrefix(kv, "AWS_EC2_METADATA_DISABLED=") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+silentEndpoint(t))

	// How long the load takes here, to show the cases below do not wait for it.
	start := time.Now()
	r := runBin(t, env, "-t", "some-table", "--", "true")
	load := time.Since(start)
	if r.code != 125 || !strings.Contains(r.stderr, "no AWS region") {
		t.Fatalf("without a region: exit %d, want 125 and no AWS region; stderr:\n%s", r.code, r.stderr)
	}
	if load < time.Second {
		t.Skipf("the region lookup gave up after %s: too quickly to tell waiting from not", load)
	}

	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"a command not found is 127", []string{"-t", "some-table", "--", "no-such-command-xyz"}, 127, "not found"},
		{"a bad option value is 125", []string{"-t", "some-table", "--lease", "-5s", "--", "true"}, 125, "--lease"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := runBin(t, env, tt.args...)
			took := time.Since(start)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, tt.code, r.stderr)
			}
			oneErrorLine(t, r, tt.msg)
			// Wide margin: a load-bound machine may be slow, but not by
			// half of what waiting for the configuration would take.
			if took > load/2 {
				t.Errorf("took %s, as if it waited for the AWS configuration (%s)", took, load)
			}
		})
	}
}

// TestStartupPackageInitialisesFirst checks, in the binary, that
// internal/startup (memory profiling off, a grown main stack) is
// initialised before any other of the program's or its dependencies'
// packages: what it saves is spent by their initialisation.
func TestStartupPackageInitialisesFirst(t *testing.T) {
	order, out := initOrder(t)
	var before []string
	for _, pkg := range order {
		if pkg == "github.com/locked-run/locked-run/internal/startup" {
			if len(before) > 0 {
				t.Errorf("packages of the program or its dependencies initialised before internal/startup: %v", before)
			}
			return
		}
		if strings.Contains(pkg, ".") {
			before = append(before, pkg)
		}
	}
	t.Errorf("inittrace does not list internal/startup:\n%s", out)
}
