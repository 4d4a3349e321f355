package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// The README's command blocks are run as users paste them. A block is
// marked by the HTML comment `<!-- readme-test: NAME -->` on the line
// before its fence: quickstart, console (any number) and cron.

// readmeBlocks returns the contents of every fenced block marked name, in
// order.
func readmeBlocks(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	marker := "<!-- readme-test: " + name + " -->"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != marker {
			continue
		}
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "```") {
			t.Fatalf("README: %s is not followed by a fenced block", marker)
		}
		var b strings.Builder
		for sc.Scan() && !strings.HasPrefix(sc.Text(), "```") {
			b.WriteString(sc.Text() + "\n")
		}
		blocks = append(blocks, b.String())
	}
	if len(blocks) == 0 {
		t.Fatalf("README has no block marked %s", marker)
	}
	return blocks
}

// binDir returns a directory holding locked-run, for PATH.
func binDir() string { return filepath.Dir(binPath) }

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runScript runs script with bash -e in dir, its stdout and stderr in
// files (background jobs that outlive it must not hold a pipe open), in a
// process group of its own that is killed when the test ends.
func runScript(t *testing.T, dir string, env []string, script string, timeout time.Duration) (code int, stdout, stderr string, took time.Duration) {
	t.Helper()
	outF, _ := os.Create(filepath.Join(t.TempDir(), "stdout"))
	errF, _ := os.Create(filepath.Join(t.TempDir(), "stderr"))
	defer outF.Close()
	defer errF.Close()
	cmd := exec.Command("bash", "-e", "-c", script)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, outF, errF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		o, _ := os.ReadFile(outF.Name())
		e, _ := os.ReadFile(errF.Name())
		t.Fatalf("script did not finish within %s\nstdout:\n%s\nstderr:\n%s", timeout, o, e)
	}
	took = time.Since(start)
	o, _ := os.ReadFile(outF.Name())
	e, _ := os.ReadFile(errF.Name())
	return cmd.ProcessState.ExitCode(), string(o), string(e), took
}

// TestReadmeQuickStart pastes the Quick start as a whole into bash in a
// fresh directory laid out like a checkout after `make deps build` (a
// stand-in `make` checks it is asked for exactly that). The block starts
// its own DynamoDB Local, on a free port instead of 8000, and must cope
// with it still starting.
func TestReadmeQuickStart(t *testing.T) {
	ddblocal.Endpoint(t) // the same skip/fail rule as every DynamoDB test
	jarDir, err := ddblocal.JarDir()
	if err != nil {
		t.Fatal(err)
	}
	block := readmeBlocks(t, "quickstart")[0]
	checkout := t.TempDir()
	os.Mkdir(filepath.Join(checkout, "bin"), 0o755)
	if err := os.Symlink(binPath, filepath.Join(checkout, "bin", "locked-run")); err != nil {
		t.Fatal(err)
	}
	nodeModules := filepath.Dir(filepath.Dir(filepath.Dir(jarDir)))
	if err := os.Symlink(nodeModules, filepath.Join(checkout, "node_modules")); err != nil {
		t.Fatal(err)
	}
	fakeBin := t.TempDir()
	os.WriteFile(filepath.Join(fakeBin, "make"), []byte("#!/bin/sh\n[ \"$*\" = \"deps build\" ] || { echo \"make stand-in: unexpected arguments: $*\" >&2; exit 2; }\n"), 0o755)
	port := strconv.Itoa(freePort(t))
	if !strings.Contains(block, "8000") {
		t.Fatal("the Quick start no longer uses port 8000; update this test")
	}
	script := strings.ReplaceAll(block, "8000", port)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "LOCKED_RUN_") && !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	tmp := t.TempDir()
	env = append(env, "PATH="+fakeBin+":"+os.Getenv("PATH"), "TMPDIR="+tmp, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")

	code, stdout, stderr, took := runScript(t, checkout, env, script, 3*time.Minute)
	t.Logf("the Quick start took %s pasted as a whole (a 10 s holder included)", took.Round(100*time.Millisecond))
	if code != 0 {
		t.Fatalf("the Quick start failed (exit %d)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if errLines := regexp.MustCompile(`(?m)^locked-run: .*$`).FindAllString(stderr, -1); len(errLines) > 0 {
		t.Fatalf("error lines:\n%s", strings.Join(errLines, "\n"))
	}
	statusOut := regexp.MustCompile(`(?s)^demo: held by \S+\n  owner +\S+\n  host +.*\n  command +sleep 10\n.*  lease +30s\n  fencing token +1\nmy turn\n$`)
	if !statusOut.MatchString(stdout) {
		t.Fatalf("stdout is not status showing the holder, then \"my turn\":\n%s", stdout)
	}
	if !strings.Contains(stderr, "table is ACTIVE") {
		t.Fatalf("create-table did not say the table is ACTIVE:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(checkout, "dynamodb-local-metadata.json")); err == nil {
		t.Fatal("DynamoDB Local left dynamodb-local-metadata.json in the checkout")
	}
}

// consoleStep is one `$ command` of a console block and the output the
// README shows for it.
type consoleStep struct {
	cmd  string
	want []string
}

func parseConsole(block string) []consoleStep {
	var steps []consoleStep
	for _, l := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		if c, ok := strings.CutPrefix(l, "$ "); ok {
			steps = append(steps, consoleStep{cmd: c})
		} else if len(steps) > 0 {
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, l)
		}
	}
	return steps
}

// logLine matches locked-run's log lines, which the README leaves out of
// its examples (they carry times and ids).
var logLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+ \[(TRACE|DEBUG|INFO|WARN|ERROR)\] `)

// TestReadmeConsoleExamples runs every `console` block of the README in one
// bash each, command after command as typed, with locked-run on PATH and
// DynamoDB Local as the endpoint, and compares what each command printed
// (stdout and stderr, log lines left out) with the README, character for
// character.
func TestReadmeConsoleExamples(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	env := append(dynamoEnv(endpoint), "PATH="+binDir()+":"+os.Getenv("PATH"), "HOME="+t.TempDir(), "LOCKED_RUN_LOCK_DIR="+t.TempDir())
	if r := runBin(t, env, "create-table", "-t", "deploy-locks"); r.code != 0 {
		t.Fatalf("create-table deploy-locks: %s", r.stderr)
	}
	// app-data is a table that is not a lock table: its key is "id".
	client := ddblocal.Client(endpoint, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("app-data"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil && !strings.Contains(err.Error(), "ResourceInUse") {
		t.Fatal(err)
	}
	// skewed is held by a host whose clock is far ahead.
	skewed := map[string]types.AttributeValue{
		"LockID": &types.AttributeValueMemberS{Value: "skewed"}, "Schema": &types.AttributeValueMemberS{Value: "locked-run/1"},
		"Owner": &types.AttributeValueMemberS{Value: "far-host-4412-0badf00d"}, "Host": &types.AttributeValueMemberS{Value: "far-host"},
		"Pid": &types.AttributeValueMemberN{Value: "4412"}, "User": &types.AttributeValueMemberS{Value: "deploy"},
		"Command": &types.AttributeValueMemberS{Value: "make deploy"}, "AcquiredAt": &types.AttributeValueMemberS{Value: "2099-01-01T00:00:00Z"},
		"HeartbeatAt": &types.AttributeValueMemberS{Value: "2099-01-01T00:00:10Z"}, "LeaseMs": &types.AttributeValueMemberN{Value: "30000"},
		"RVN": &types.AttributeValueMemberS{Value: "0123456789abcdef"}, "FencingToken": &types.AttributeValueMemberN{Value: "7"},
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("deploy-locks"), Item: skewed}); err != nil {
		t.Fatal(err)
	}
	for i, block := range readmeBlocks(t, "console") {
		steps := parseConsole(block)
		t.Run(fmt.Sprintf("block %d: %s", i+1, steps[0].cmd), func(t *testing.T) {
			const sep = "@@readme-step-end@@"
			var script strings.Builder
			script.WriteString("exec 2>&1\nset +e\n")
			for _, s := range steps {
				// Keep the step's status for a following `echo $?`.
				fmt.Fprintf(&script, "%s\n__s=$?; printf '\\n%s\\n'; (exit $__s)\n", s.cmd, sep)
			}
			code, out, _, _ := runScript(t, t.TempDir(), env, script.String(), 2*time.Minute)
			if code != 0 && !strings.Contains(out, sep) {
				t.Fatalf("bash exit %d:\n%s", code, out)
			}
			chunks := strings.Split(out, "\n"+sep+"\n")
			for j, s := range steps {
				var got []string
				if j < len(chunks) {
					for _, l := range strings.Split(chunks[j], "\n") {
						if !logLine.MatchString(l) {
							got = append(got, l)
						}
					}
				}
				for len(got) > 0 && got[len(got)-1] == "" {
					got = got[:len(got)-1]
				}
				if strings.Join(got, "\n") != strings.Join(s.want, "\n") {
					t.Errorf("$ %s\nREADME shows:\n%s\nthe program printed:\n%s", s.cmd, strings.Join(s.want, "\n"), strings.Join(got, "\n"))
				}
			}
		})
	}
}

// TestReadmeCronOnSeveralHosts runs the command of the README's crontab
// line as cron would on several hosts at once (sh -c, no terminal, a bare
// environment): exactly one runs the job, and none prints anything, since
// cron mails any output. Then again, for the next quarter hour.
func TestReadmeCronOnSeveralHosts(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	line := strings.TrimSpace(readmeBlocks(t, "cron")[0])
	fields := strings.Fields(line)
	if len(fields) < 6 {
		t.Fatalf("not a crontab line: %q", line)
	}
	command := strings.Join(fields[5:], " ")
	const jobPath = "/opt/jobs/reindex"
	if !strings.Contains(command, jobPath) {
		t.Fatalf("the cron line no longer runs %s; update this test: %q", jobPath, command)
	}
	runs := filepath.Join(t.TempDir(), "runs")
	job := filepath.Join(t.TempDir(), "reindex")
	// Long enough that every host starts while the first still runs.
	os.WriteFile(job, []byte("#!/bin/sh\necho $$ >> "+runs+"\nsleep 5\n"), 0o755)
	command = strings.ReplaceAll(command, jobPath, job)

	env := []string{"PATH=" + binDir() + ":/usr/bin:/bin", "HOME=" + t.TempDir(), "SHELL=/bin/sh"}
	for _, kv := range dynamoEnv(endpoint) {
		if strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	if r := runBin(t, env, "create-table", "-t", "cron-locks"); r.code != 0 {
		t.Fatalf("create-table cron-locks: %s", r.stderr)
	}
	const hosts = 4
	for round := 1; round <= 2; round++ {
		var wg sync.WaitGroup
		results := make([]result, hosts)
		for h := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command("/bin/sh", "-c", command)
				cmd.Env = env
				out, err := cmd.CombinedOutput()
				results[h] = result{code: cmd.ProcessState.ExitCode(), stdout: string(out)}
				if err != nil && cmd.ProcessState == nil {
					results[h].code = -1
				}
			}()
		}
		wg.Wait()
		for h, r := range results {
			if r.code != 0 || r.stdout != "" {
				t.Errorf("round %d, host %d: exit %d, output %q; want 0 and nothing for cron to mail", round, h+1, r.code, r.stdout)
			}
		}
		data, _ := os.ReadFile(runs)
		if n := strings.Count(string(data), "\n"); n != round {
			t.Fatalf("after round %d the job ran %d times in all, want %d (once a round)", round, n, round)
		}
	}
}
