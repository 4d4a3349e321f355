package integration

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// testExe is this test binary, run as a child program (see child_test.go).
func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// oneErrorLine checks that stderr's last line is locked-run's single error
// line, containing want, and that no Go stack trace leaked.
func oneErrorLine(t *testing.T, r result, want string) {
	t.Helper()
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
		t.Fatalf("stack trace on stderr:\n%s", r.stderr)
	}
	var errLines []string
	for _, l := range strings.Split(strings.TrimRight(r.stderr, "\n"), "\n") {
		if strings.HasPrefix(l, "locked-run: ") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 {
		t.Fatalf("want exactly one error line, got %d in stderr:\n%s", len(errLines), r.stderr)
	}
	if !strings.Contains(errLines[0], want) {
		t.Fatalf("error line %q does not contain %q", errLines[0], want)
	}
}

func TestExitStatusLocal(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	os.WriteFile(notExec, []byte("#!/bin/sh\necho hi\n"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		msg  string // a part of the error line, when there must be one
	}{
		{"the child's zero passes through", []string{"--local", "--", "true"}, 0, ""},
		{"the child's status passes through", []string{"--local", "--", "sh", "-c", "exit 42"}, 42, ""},
		// Death by signal N: locked-run dies of N itself (TestDeathBySignal).
		{"a command not found is 127", []string{"--local", "--", "no-such-command-xyz"}, 127, "not found"},
		{"a file that is not executable is 126", []string{"--local", "--", notExec}, 126, "not executable"},
		{"a directory is 126", []string{"--local", "--", dir}, 126, ""},
		{"no backend is 125 and names both", []string{"--", "true"}, 125, "--table"},
		{"both backends is 125", []string{"--local", "-t", "tbl", "--", "true"}, 125, "choose one"},
		{"no command is 125", []string{"--local"}, 125, "no command"},
		{"an unknown option is 125", []string{"--local", "--frobnicate", "--", "true"}, 125, "unknown option --frobnicate"},
		{"a bad duration is 125", []string{"--local", "--timeout", "soon", "--", "true"}, 125, "--timeout"},
		{"a negative duration is 125", []string{"-t", "tbl", "--lease", "-5s", "--", "true"}, 125, "--lease"},
		{"a lease too short for heartbeat and kill-after is 125", []string{"-t", "tbl", "--lease", "5s", "--heartbeat", "2s", "--", "true"}, 125, "--lease 5s must exceed --heartbeat 2s + --kill-after 10s"},
		{"an empty key is 125", []string{"--local", "-k", "", "--", "true"}, 125, "--key"},
		{"a key over 2048 bytes is 125", []string{"--local", "-k", strings.Repeat("k", 2049), "--", "true"}, 125, "2048"},
		{"a bad table name is 125", []string{"-t", "a b", "--", "true"}, 125, "table name"},
		{"a bad log level is 125", []string{"--local", "--log-level", "loud", "--", "true"}, 125, "--log-level"},
		{"a bad conflict exit code is 125", []string{"--local", "--conflict-exit-code", "300", "--", "true"}, 125, "0 to 255"},
		{"an option missing its value is 125", []string{"--local", "--timeout"}, 125, "needs a value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runBin(t, localEnv(t), tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, tt.code, r.stderr)
			}
			if tt.msg != "" {
				oneErrorLine(t, r, tt.msg)
			}
		})
	}
}

func TestConflictLocal(t *testing.T) {
	env := localEnv(t)
	var holderErr syncBuffer
	ready := filepath.Join(t.TempDir(), "ready")
	holder := startBin(t, env, nil, &holderErr, "--local", "-k", "k", "--", "sh", "-c", "touch "+ready+"; sleep 30")
	waitFor(t, 10*time.Second, "the holder's child to start", func() bool { _, err := os.Stat(ready); return err == nil })

	t.Run("no-wait exits 75 and names the holder", func(t *testing.T) {
		r := runBin(t, env, "--local", "-k", "k", "--no-wait", "--", "echo", "ran")
		if r.code != 75 || r.stdout != "" {
			t.Fatalf("exit %d stdout %q, want 75 and nothing run; stderr:\n%s", r.code, r.stdout, r.stderr)
		}
		oneErrorLine(t, r, "held by")
	})
	t.Run("the conflict exit code can be changed", func(t *testing.T) {
		r := runBin(t, env, "--local", "-k", "k", "-n", "--conflict-exit-code", "0", "--", "echo", "ran")
		if r.code != 0 || r.stdout != "" {
			t.Fatalf("exit %d stdout %q, want 0 and nothing run", r.code, r.stdout)
		}
	})
	t.Run("a timeout exits 75 after about the timeout", func(t *testing.T) {
		start := time.Now()
		r := runBin(t, env, "--local", "-k", "k", "--timeout", "500ms", "--", "echo", "ran")
		took := time.Since(start)
		if r.code != 75 || r.stdout != "" {
			t.Fatalf("exit %d stdout %q, want 75; stderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if took < 500*time.Millisecond || took > 10*time.Second {
			t.Fatalf("gave up after %s, want about 500ms", took)
		}
		oneErrorLine(t, r, "--timeout")
	})
	t.Run("status and list show the holder", func(t *testing.T) {
		r := runBin(t, env, "status", "--local", "-k", "k", "--json")
		var rec map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || rec["held"] != true || rec["pid"] != float64(holder.Process.Pid) {
			t.Fatalf("status --json = %s (%v), want held by pid %d", r.stdout, err, holder.Process.Pid)
		}
		r = runBin(t, env, "list", "--local")
		if r.code != 0 || !strings.Contains(r.stdout, "k ") || !strings.Contains(r.stdout, "sleep 30") {
			t.Fatalf("list = %q (exit %d)", r.stdout, r.code)
		}
	})
	t.Run("a command that cannot run is refused before waiting for the lock", func(t *testing.T) {
		r := runBin(t, env, "--local", "-k", "k", "--", "no-such-command-xyz")
		if r.code != 127 {
			t.Fatalf("exit %d, want 127 at once while the lock is held; stderr:\n%s", r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "waiting for lock") {
			t.Fatalf("waited for the lock of a command that cannot run:\n%s", r.stderr)
		}
	})
	t.Run("a local lock cannot be force-released", func(t *testing.T) {
		r := runBin(t, env, "release", "--local", "-k", "k", "--force")
		if r.code != 125 {
			t.Fatalf("exit %d, want 125", r.code)
		}
		oneErrorLine(t, r, "cannot be broken")
	})
	t.Run("SIGINT while waiting exits 130 and never starts the child", func(t *testing.T) {
		var errb syncBuffer
		marker := filepath.Join(t.TempDir(), "started")
		waiter := startBin(t, env, nil, &errb, "--local", "-k", "k", "--", "touch", marker)
		waitFor(t, 10*time.Second, "the waiter to report waiting", func() bool { return strings.Contains(errb.String(), "waiting for lock") })
		waiter.Process.Signal(syscall.SIGINT)
		if code := exitCode(t, waiter, 10*time.Second); code != 130 {
			t.Fatalf("exit %d, want 130; stderr:\n%s", code, errb.String())
		}
		holder.Process.Signal(syscall.SIGTERM)
		exitCode(t, holder, 10*time.Second)
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("the waiter's command ran after it was interrupted")
		}
		r := runBin(t, env, "status", "--local", "-k", "k")
		if !strings.Contains(r.stdout, "free") {
			t.Fatalf("lock not free after holder and interrupted waiter: %s", r.stdout)
		}
	})
}

func TestCommandLine(t *testing.T) {
	env := localEnv(t)
	t.Run("everything after -- is the child, even a subcommand's name", func(t *testing.T) {
		bin := t.TempDir()
		os.WriteFile(filepath.Join(bin, "list"), []byte("#!/bin/sh\necho \"I am list: $*\"\n"), 0o755)
		r := runBin(t, append(env, "PATH="+bin+":"+os.Getenv("PATH")), "--local", "--", "list", "--json")
		if r.code != 0 || r.stdout != "I am list: --json\n" {
			t.Fatalf("exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
		}
		r = runBin(t, env, "--local", "--", "help")
		if r.code != 127 {
			t.Fatalf("-- help: exit %d, want 127 (a program named help); stdout %q", r.code, r.stdout)
		}
	})
	t.Run("options after the command go to the child", func(t *testing.T) {
		r := runBin(t, env, "--local", "echo", "-n", "--local", "-k", "x")
		if r.code != 0 || r.stdout != "--local -k x" {
			t.Fatalf("exit %d stdout %q, want echo to get -n --local -k x", r.code, r.stdout)
		}
	})
	t.Run("the child gets the lock's environment", func(t *testing.T) {
		r := runBin(t, env, "--local", "-k", "env-test", "--", "sh", "-c", `echo "$LOCKED_RUN_KEY|$LOCKED_RUN_FENCING_TOKEN|${LOCKED_RUN_OWNER:+set}|${LOCKED_RUN_TABLE:-none}"`)
		if r.stdout != "env-test|1|set|none\n" {
			t.Fatalf("child saw %q", r.stdout)
		}
		r = runBin(t, env, "--local", "-k", "env-test", "--", "sh", "-c", `echo $LOCKED_RUN_FENCING_TOKEN`)
		if r.stdout != "2\n" {
			t.Fatalf("second acquisition's token %q, want 2", r.stdout)
		}
	})
	t.Run("the default key is the shell-quoted command line and is logged", func(t *testing.T) {
		r := runBin(t, env, "--local", "--", "sh", "-c", "echo $LOCKED_RUN_KEY")
		if r.stdout != "sh -c 'echo $LOCKED_RUN_KEY'\n" || !strings.Contains(r.stderr, `key="sh -c 'echo $LOCKED_RUN_KEY'"`) {
			t.Fatalf("stdout %q stderr %s", r.stdout, r.stderr)
		}
	})
	t.Run("the child's stdout is byte-identical with and without the wrapper", func(t *testing.T) {
		data := make([]byte, 1<<20)
		rand.Read(data)
		f := filepath.Join(t.TempDir(), "blob")
		os.WriteFile(f, data, 0o644)
		r := runBin(t, env, "--local", "--", "cat", f)
		if r.stdout != string(data) {
			t.Fatalf("stdout differs: %d bytes, want %d", len(r.stdout), len(data))
		}
	})
	t.Run("json logs are one JSON object a line", func(t *testing.T) {
		r := runBin(t, env, "--local", "--log-format", "json", "--", "true")
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if len(lines) < 3 {
			t.Fatalf("too few log lines: %q", r.stderr)
		}
		for _, l := range lines {
			var obj map[string]any
			if err := json.Unmarshal([]byte(l), &obj); err != nil || obj["@message"] == nil {
				t.Fatalf("log line is not a JSON object: %q (%v)", l, err)
			}
		}
	})
	t.Run("options can come from the environment", func(t *testing.T) {
		envd := append(env, "LOCKED_RUN_LOCAL=1", "LOCKED_RUN_KEY=from-env", "LOCKED_RUN_LOG_LEVEL=error", "LOCKED_RUN_TIMEOUT=0")
		r := runBin(t, envd, "--", "sh", "-c", "echo $LOCKED_RUN_KEY")
		if r.code != 0 || r.stdout != "from-env\n" || r.stderr != "" {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		r = runBin(t, append(env, "LOCKED_RUN_TABLE=a b"), "--", "true")
		if r.code != 125 || !strings.Contains(r.stderr, "table name") {
			t.Fatalf("LOCKED_RUN_TABLE not read: exit %d stderr %q", r.code, r.stderr)
		}
		r = runBin(t, append(env, "LOCKED_RUN_TABLE=tbl", "LOCKED_RUN_LEASE=2s"), "--", "true")
		if r.code != 125 || !strings.Contains(r.stderr, "--lease 2s must exceed") {
			t.Fatalf("LOCKED_RUN_LEASE not read: exit %d stderr %q", r.code, r.stderr)
		}
	})
	t.Run("quiet logs nothing on success", func(t *testing.T) {
		r := runBin(t, env, "--local", "--quiet", "--", "true")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d stderr %q", r.code, r.stderr)
		}
	})
	t.Run("version and help", func(t *testing.T) {
		r := runBin(t, env, "--version")
		if r.code != 0 || !strings.Contains(r.stdout, "v0.0.0-test") {
			t.Fatalf("--version: exit %d %q", r.code, r.stdout)
		}
		r = runBin(t, env, "--help")
		for _, want := range []string{"EXAMPLES", "--table", "--local", "--conflict-exit-code", "--kill-after", "status", "create-table"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("--help lacks %q", want)
			}
		}
	})
}

func TestDynamoDB(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	env := dynamoEnv(endpoint)

	t.Run("a missing table is 125 with the fix", func(t *testing.T) {
		r := runBin(t, env, "-t", "no-such-table", "--", "true")
		if r.code != 125 {
			t.Fatalf("exit %d, want 125; stderr:\n%s", r.code, r.stderr)
		}
		oneErrorLine(t, r, "locked-run create-table -t no-such-table")
		if strings.Contains(r.stderr, "SDK ") {
			t.Fatalf("SDK log leaked to stderr:\n%s", r.stderr)
		}
	})
	t.Run("no region is 125", func(t *testing.T) {
		var noRegion []string
		for _, kv := range env {
			if !strings.HasPrefix(kv, "AWS_REGION=") {
				noRegion = append(noRegion, kv)
			}
		}
		r := runBin(t, noRegion, "-t", "tbl", "--", "true")
		if r.code != 125 {
			t.Fatalf("exit %d, want 125", r.code)
		}
		oneErrorLine(t, r, "--region")
	})
	t.Run("create-table makes a table and is idempotent", func(t *testing.T) {
		name := "it-create-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))[:20]
		for range 2 {
			if r := runBin(t, env, "create-table", "-t", name); r.code != 0 {
				t.Fatalf("create-table: exit %d stderr %s", r.code, r.stderr)
			}
		}
		if r := runBin(t, env, "-t", name, "--", "true"); r.code != 0 {
			t.Fatalf("run on the new table: exit %d stderr %s", r.code, r.stderr)
		}
	})
	t.Run("--create-table creates the table on first use", func(t *testing.T) {
		r := runBin(t, env, "-t", "it-create-flag", "--create-table", "--", "echo", "ok")
		if r.code != 0 || r.stdout != "ok\n" {
			t.Fatalf("exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
		}
	})

	table := ddblocal.NewTable(t)
	t.Run("an item another tool wrote is never touched: 125 with a hint", func(t *testing.T) {
		client := ddblocal.Client(endpoint, nil)
		item := map[string]types.AttributeValue{
			"LockID": &types.AttributeValueMemberS{Value: "state-bucket/prod.tfstate"},
			"Info":   &types.AttributeValueMemberS{Value: `{"ID":"x","Operation":"OperationTypeApply"}`},
		}
		if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
		r := runBin(t, env, "-t", table, "-k", "state-bucket/prod.tfstate", "--", "echo", "ran")
		if r.code != 125 || r.stdout != "" {
			t.Fatalf("exit %d stdout %q, want 125 and nothing run; stderr:\n%s", r.code, r.stdout, r.stderr)
		}
		oneErrorLine(t, r, "--key")
		got, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"LockID": item["LockID"]}})
		if err != nil || len(got.Item) != 2 {
			t.Fatalf("foreign item changed: %v %v", got.Item, err)
		}
		if r := runBin(t, env, "list", "-t", table, "--json"); strings.Contains(r.stdout, "tfstate") {
			t.Fatalf("list shows the foreign item: %s", r.stdout)
		}
	})
	t.Run("credentials never reach the log, even at trace level", func(t *testing.T) {
		secretEnv := append(dynamoEnv(endpoint), "AWS_ACCESS_KEY_ID=AKIDLEAKCHECK1234", "AWS_SECRET_ACCESS_KEY=s3cr3t-leak-check", "AWS_SESSION_TOKEN=tok-leak-check")
		for _, args := range [][]string{
			{"-t", table, "-k", "creds", "--log-level", "trace", "--", "true"},
			{"-t", "no-such-table", "--log-level", "trace", "--", "true"},
		} {
			r := runBin(t, secretEnv, args...)
			for _, secret := range []string{"s3cr3t-leak-check", "tok-leak-check", "AKIDLEAKCHECK1234", "Signature=", "Credential=", "X-Amz-Security-Token"} {
				if strings.Contains(r.stderr, secret) {
					t.Fatalf("%s appears in the log:\n%s", secret, r.stderr)
				}
			}
			// Trace shows each request: the log above was not empty.
			if !regexp.MustCompile(`dynamodb request: operation=UpdateItem status=(200|400) latency=[0-9.]+[mµ]?s attempt=1`).MatchString(r.stderr) {
				t.Fatalf("no trace line for the UpdateItem request:\n%s", r.stderr)
			}
		}
	})
	t.Run("the child runs with the lock's environment and its status passes through", func(t *testing.T) {
		r := runBin(t, env, "-t", table, "-k", "env", "--", "sh", "-c", `echo "$LOCKED_RUN_TABLE|$LOCKED_RUN_KEY|$LOCKED_RUN_FENCING_TOKEN"; exit 7`)
		if r.code != 7 || r.stdout != table+"|env|1\n" {
			t.Fatalf("exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
		}
	})

	var holderErr syncBuffer
	ready := filepath.Join(t.TempDir(), "ready")
	holder := startBin(t, env, nil, &holderErr, "-t", table, "-k", "busy", "--lease", "3s", "--heartbeat", "500ms", "--kill-after", "1s",
		"--", "sh", "-c", "touch "+ready+"; exec sleep 60")
	waitFor(t, 20*time.Second, "the holder's child to start", func() bool { _, err := os.Stat(ready); return err == nil })

	t.Run("no-wait on a held key is 75", func(t *testing.T) {
		r := runBin(t, env, "-t", table, "-k", "busy", "-n", "--", "echo", "ran")
		if r.code != 75 || r.stdout != "" {
			t.Fatalf("exit %d stdout %q", r.code, r.stdout)
		}
		oneErrorLine(t, r, "held by")
	})
	t.Run("a timeout is 75 and progress is reported while waiting", func(t *testing.T) {
		r := runBin(t, env, "-t", table, "-k", "busy", "--timeout", "1500ms", "--progress", "500ms", "--", "echo", "ran")
		if r.code != 75 {
			t.Fatalf("exit %d, want 75", r.code)
		}
		if n := strings.Count(r.stderr, "waiting for lock"); n < 3 {
			t.Fatalf("%d progress lines in 1.5s at --progress 500ms, want ≥ 3:\n%s", n, r.stderr)
		}
		for _, want := range []string{"owner=", "host=", "pid=", "command=", "since=", "waited="} {
			if !strings.Contains(r.stderr, want) {
				t.Fatalf("progress line lacks %s:\n%s", want, r.stderr)
			}
		}
	})
	t.Run("status, list and their JSON show the holder", func(t *testing.T) {
		r := runBin(t, env, "status", "-t", table, "-k", "busy")
		for _, want := range []string{"held by", "pid", "last heartbeat", "lease", "fencing token"} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("status lacks %q:\n%s", want, r.stdout)
			}
		}
		r = runBin(t, env, "-t", table, "status", "-k", "busy", "--json")
		var rec map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || rec["held"] != true || rec["lease_seconds"] != float64(3) {
			t.Fatalf("status --json = %s (%v)", r.stdout, err)
		}
		r = runBin(t, env, "list", "-t", table, "--json")
		var recs []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) != 1 || recs[0]["key"] != "busy" {
			t.Fatalf("list --json = %s (%v)", r.stdout, err)
		}
	})
	t.Run("release without --force refuses and names the holder", func(t *testing.T) {
		r := runBin(t, env, "release", "-t", table, "-k", "busy")
		if r.code != 125 {
			t.Fatalf("exit %d, want 125", r.code)
		}
		oneErrorLine(t, r, "--force")
	})
	t.Run("a forced release makes the holder lose the lock: its child is stopped and it exits 76", func(t *testing.T) {
		r := runBin(t, env, "release", "-t", table, "-k", "busy", "--force")
		if r.code != 0 || !strings.Contains(r.stdout, "released lock \"busy\" held by") {
			t.Fatalf("release --force: exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
		}
		if code := exitCode(t, holder, 10*time.Second); code != 76 {
			t.Fatalf("holder exit %d, want 76; stderr:\n%s", code, holderErr.String())
		}
		if !strings.Contains(holderErr.String(), "lock lost") {
			t.Fatalf("holder did not say the lock was lost:\n%s", holderErr.String())
		}
		r = runBin(t, env, "status", "-t", table, "-k", "busy", "--json")
		var rec map[string]any
		json.Unmarshal([]byte(r.stdout), &rec)
		if rec["held"] != false || rec["fencing_token"] != float64(1) {
			t.Fatalf("after a forced release: %s", r.stdout)
		}
	})
	t.Run("json logs are JSON on DynamoDB too, errors included", func(t *testing.T) {
		r := runBin(t, env, "-t", "no-such-table", "--log-format", "json", "--", "true")
		for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			if !json.Valid([]byte(l)) {
				t.Fatalf("not JSON: %q", l)
			}
		}
	})
}

func TestSignalsThroughTheBinary(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1} {
		t.Run(sig.String()+" sent to locked-run reaches the child exactly once", func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "signals")
			env := append(localEnv(t), envChild+"=signals", "OUT="+out)
			var errb syncBuffer
			cmd := startBin(t, env, nil, &errb, "--local", "--", testExe(t))
			waitFor(t, 10*time.Second, "the child to be ready", func() bool {
				data, _ := os.ReadFile(out)
				return strings.HasPrefix(string(data), "ready")
			})
			cmd.Process.Signal(sig)
			if code := exitCode(t, cmd, 10*time.Second); code != 0 {
				t.Fatalf("exit %d, want the child's 0; stderr:\n%s", code, errb.String())
			}
			data, _ := os.ReadFile(out)
			got := strings.Fields(string(data))[1:]
			if len(got) != 1 || got[0] != strings.ReplaceAll(sig.String(), " ", "_") {
				t.Fatalf("child received %q, want exactly [%s]", got, sig)
			}
			if !strings.Contains(errb.String(), "released lock") {
				t.Fatalf("lock not released after the child exited:\n%s", errb.String())
			}
		})
	}
}

// TestNestedRun: a locked-run started by another one inherits LOCKED_RUN_KEY
// (also --key's variable); without a key of its own it would wait for its
// parent's lock forever, so it refuses at once. The inner --timeout only
// bounds the test if the refusal is missing (it would then exit 75).
func TestNestedRun(t *testing.T) {
	t.Run("an inner run on its parent's key is refused with 125", func(t *testing.T) {
		r := runBin(t, localEnv(t), "--local", "-q", "-k", "outer", "--", binPath, "--local", "--timeout", "20s", "--", "true")
		if r.code != 125 {
			t.Fatalf("exit %d, want the inner run's 125; stderr:\n%s", r.code, r.stderr)
		}
		oneErrorLine(t, r, "held by the locked-run that started this one")
	})
	t.Run("an inner run with a key of its own runs", func(t *testing.T) {
		r := runBin(t, localEnv(t), "--local", "-q", "-k", "outer", "--", binPath, "--local", "-q", "-k", "inner", "--timeout", "20s", "--", "sh", "-c", "echo $LOCKED_RUN_KEY")
		if r.code != 0 || r.stdout != "inner\n" {
			t.Fatalf("exit %d stdout %q, want 0 and %q; stderr:\n%s", r.code, r.stdout, "inner\n", r.stderr)
		}
	})
}
