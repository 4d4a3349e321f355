package integration

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/locked-run/locked-run/internal/ddblocal"
	"github.com/locked-run/locked-run/internal/faultproxy"
)

func TestVersion(t *testing.T) {
	r := runBin(t, localEnv(t), "--version")
	// The test binary is built with -X main.version only; the Go version
	// and platform come from the runtime.
	want := regexp.MustCompile(`^locked-run version v0\.0\.0-test \((commit [0-9a-f]+(, modified)?, committed \S+, )?` +
		regexp.QuoteMeta(runtime.Version()+", "+runtime.GOOS+"/"+runtime.GOARCH) + `\)\n$`)
	if r.code != 0 || !want.MatchString(r.stdout) {
		t.Fatalf("--version: exit %d %q, want to match %s", r.code, r.stdout, want)
	}
}

func TestTraceShowsEachRequest(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	table := ddblocal.NewTable(t)
	r := runBin(t, dynamoEnv(endpoint), "status", "-t", table, "-k", "k", "--log-level", "trace")
	if r.code != 0 {
		t.Fatalf("exit %d stderr %s", r.code, r.stderr)
	}
	line := regexp.MustCompile(`\[TRACE\] locked-run\.aws: dynamodb request: operation=GetItem status=200 latency=[0-9.]+[mµ]?s attempt=1\n`)
	if n := len(line.FindAllString(r.stderr, -1)); n != 1 {
		t.Fatalf("%d trace lines for one GetItem, want 1:\n%s", n, r.stderr)
	}
	r = runBin(t, dynamoEnv(endpoint), "status", "-t", table, "-k", "k")
	if strings.Contains(r.stderr, "dynamodb request") {
		t.Fatalf("request lines below trace level:\n%s", r.stderr)
	}

	t.Run("a failed request and its retry are a line each", func(t *testing.T) {
		proxy, err := faultproxy.New(endpoint)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proxy.Close() })
		proxy.Fail5xxNext(1)
		r := runBin(t, dynamoEnv(proxy.URL()), "status", "-t", table, "-k", "k", "--log-level", "trace")
		if r.code != 0 || r.stdout != "k: free (last fencing token 0)\n" {
			t.Fatalf("exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
		}
		// locked-run retries lock requests itself (the SDK's retries are
		// off): each attempt is a request of its own, with a debug line
		// between them saying it is retried.
		want := regexp.MustCompile(`operation=GetItem status=500 latency=\S+ attempt=1 error="[^"\n]*"\n.*request failed, retrying.*\n.*operation=GetItem status=200 latency=\S+ attempt=1\n`)
		if !want.MatchString(r.stderr) {
			t.Fatalf("no line for the failed attempt and its retry:\n%s", r.stderr)
		}
	})
}

// TestRegionFromInstanceMetadata runs locked-run with no region configured
// and a fake EC2 instance metadata service that says us-east-1, as on an
// EC2 instance without AWS_REGION: it must find the region there, as the
// AWS CLI does.
func TestRegionFromInstanceMetadata(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	table := ddblocal.NewTable(t)
	var asked atomic.Int32
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			w.Write([]byte("fake-imds-token"))
		case r.URL.Path == "/latest/dynamic/instance-identity/document" && r.Header.Get("X-Aws-Ec2-Metadata-Token") == "fake-imds-token":
			asked.Add(1)
			w.Write([]byte(`{"region":"` + ddblocal.Region + `","instanceId":"i-0123456789abcdef0"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(imds.Close)
	var env []string
	for _, kv := range dynamoEnv(endpoint) {
		if !strings.HasPrefix(kv, "AWS_REGION=") && !strings.HasPrefix(kv, "AWS_EC2_METADATA_DISABLED=") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds.URL)
	r := runBin(t, env, "status", "-t", table, "-k", "k")
	if r.code != 0 || r.stdout != "k: free (last fencing token 0)\n" || asked.Load() == 0 {
		t.Fatalf("exit %d stdout %q stderr %q, region asked %d times", r.code, r.stdout, r.stderr, asked.Load())
	}
}

func TestNoCredentials(t *testing.T) {
	var env []string
	for _, kv := range dynamoEnv("http://127.0.0.1:9") {
		if !strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID=") && !strings.HasPrefix(kv, "AWS_SECRET_ACCESS_KEY=") {
			env = append(env, kv)
		}
	}
	r := runBin(t, append(env, "HOME="+t.TempDir()), "status", "-t", "deploy-locks", "-k", "k")
	if r.code != 125 {
		t.Fatalf("exit %d, want 125; stderr %s", r.code, r.stderr)
	}
	oneErrorLine(t, r, "no usable AWS credentials")
}
