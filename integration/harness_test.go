package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// binPath is the locked-run binary built once for the whole package.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "locked-run-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "locked-run")
	build := exec.Command("go", "build", "-race", "-ldflags", "-X main.version=v0.0.0-test", "-o", binPath, "../cmd/locked-run")
	if os.Getenv("LOCKED_RUN_TEST_NORACE") != "" {
		// Benchmarks measure the binary users get, without the race detector.
		build = exec.Command("go", "build", "-ldflags", "-X main.version=v0.0.0-test", "-o", binPath, "../cmd/locked-run")
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build locked-run:", err)
		os.Exit(1)
	}
	code := ddblocal.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// dynamoEnv returns the environment for a locked-run talking to endpoint
// (DynamoDB Local, or a proxy in front of it), with dummy credentials and
// nothing inherited from the developer's AWS setup.
func dynamoEnv(endpoint string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "LOCKED_RUN_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"AWS_ENDPOINT_URL_DYNAMODB="+endpoint,
		"AWS_REGION="+ddblocal.Region,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	)
}

// localEnv returns an environment with no AWS settings and a private lock
// directory.
func localEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "LOCKED_RUN_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LOCKED_RUN_LOCK_DIR="+t.TempDir())
}

// result is what a finished locked-run printed and how it exited.
type result struct {
	code           int
	stdout, stderr string
}

// runBin runs locked-run with args and env to completion (at most 2 min).
func runBin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run locked-run %q: %v", args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// startBin starts locked-run in the background; the process is killed when
// the test ends if it is still running.
func startBin(t *testing.T, env []string, stdout, stderr *syncBuffer, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = env
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// syncBuffer is a bytes.Buffer that a test may read while the process it
// collects the output of is still writing to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// exitCode waits for cmd (at most d) and returns its exit status.
func exitCode(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("locked-run %q did not exit within %s", cmd.Args, d)
	}
	return -1
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
