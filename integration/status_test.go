package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// putTerraformItems writes what Terraform's S3 backend writes in a shared
// lock table: a lock item and the state's -md5 digest item.
func putTerraformItems(t *testing.T, endpoint, table string) {
	t.Helper()
	client := ddblocal.Client(endpoint, nil)
	for _, item := range []map[string]types.AttributeValue{
		{"LockID": &types.AttributeValueMemberS{Value: "tf-state/prod.tfstate"}, "Info": &types.AttributeValueMemberS{Value: `{"ID":"x","Operation":"OperationTypeApply"}`}},
		{"LockID": &types.AttributeValueMemberS{Value: "tf-state/prod.tfstate-md5"}, "Digest": &types.AttributeValueMemberS{Value: "0123456789abcdef"}},
	} {
		if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStatusAndListOfForeignItems(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	env := dynamoEnv(endpoint)
	table := ddblocal.NewTable(t)
	putTerraformItems(t, endpoint, table)

	t.Run("status reports another tool's item as such and exits 0", func(t *testing.T) {
		r := runBin(t, env, "status", "-t", table, "-k", "tf-state/prod.tfstate")
		want := `tf-state/prod.tfstate: an item of another tool (no locked-run Schema), not a locked-run lock; locked-run never modifies it: use another --key` + "\n"
		if r.code != 0 || r.stdout != want || r.stderr != "" {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		r = runBin(t, env, "status", "-t", table, "-k", "tf-state/prod.tfstate", "--json")
		var rec map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &rec); r.code != 0 || err != nil || rec["foreign"] != true || rec["held"] != false {
			t.Fatalf("status --json: exit %d %s (%v)", r.code, r.stdout, err)
		}
	})
	t.Run("list counts the items it skips", func(t *testing.T) {
		r := runBin(t, env, "list", "-t", table)
		if r.code != 0 || r.stdout != "" || r.stderr != "no locks held (2 items of other tools skipped; --all lists them)\n" {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("with JSON logs the count is a JSON log line", func(t *testing.T) {
		r := runBin(t, env, "list", "-t", table, "--log-format", "json")
		var line map[string]any
		if err := json.Unmarshal([]byte(r.stderr), &line); r.code != 0 || err != nil || !strings.Contains(line["@message"].(string), "2 items of other tools skipped") {
			t.Fatalf("exit %d stderr %q (%v)", r.code, r.stderr, err)
		}
	})
	t.Run("list --all shows them, in text and JSON", func(t *testing.T) {
		r := runBin(t, env, "list", "-t", table, "--all")
		if r.code != 0 || !strings.Contains(r.stdout, "tf-state/prod.tfstate      (another tool's item)") || !strings.Contains(r.stdout, "tf-state/prod.tfstate-md5  (another tool's item)") {
			t.Fatalf("exit %d stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr)
		}
		r = runBin(t, env, "list", "-t", table, "--all", "--json")
		var recs []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &recs); err != nil || len(recs) != 2 || recs[0]["foreign"] != true {
			t.Fatalf("list --all --json = %s (%v)", r.stdout, err)
		}
	})
}

func TestStatusOfADeadHolderAndReleaseByOwner(t *testing.T) {
	endpoint := ddblocal.Endpoint(t)
	env := dynamoEnv(endpoint)
	table := ddblocal.NewTable(t)
	var holderErr syncBuffer
	ready := filepath.Join(t.TempDir(), "ready")
	holder := startBin(t, env, nil, &holderErr, "-t", table, "-k", "job", "--lease", "3s", "--heartbeat", "500ms", "--kill-after", "1s",
		"--", "sh", "-c", "touch "+ready+"; exec sleep 60")
	waitFor(t, 20*time.Second, "the holder's child to start", func() bool { _, err := os.Stat(ready); return err == nil })

	status := func(t *testing.T) map[string]any {
		t.Helper()
		r := runBin(t, env, "status", "-t", table, "-k", "job", "--json")
		var rec map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || r.code != 0 {
			t.Fatalf("status --json: exit %d %q (%v)", r.code, r.stdout, err)
		}
		return rec
	}
	rec := status(t)
	owner, _ := rec["owner"].(string)
	if owner == "" || rec["looks_dead"] == true {
		t.Fatalf("a live holder: %v", rec)
	}
	t.Run("status prints the owner id to copy", func(t *testing.T) {
		r := runBin(t, env, "status", "-t", table, "-k", "job")
		if !strings.Contains(r.stdout, "  owner           "+owner+"\n") || strings.Contains(r.stdout, "looks dead") {
			t.Fatalf("status of a live holder:\n%s", r.stdout)
		}
	})
	// Freeze the holder: its heartbeats stop, its item stays.
	if err := holder.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Signal(syscall.SIGCONT) })
	t.Run("a holder silent for longer than its lease looks dead", func(t *testing.T) {
		waitFor(t, 30*time.Second, "status to say the holder looks dead", func() bool { return status(t)["looks_dead"] == true })
		r := runBin(t, env, "status", "-t", table, "-k", "job")
		for _, want := range []string{"looks dead      no heartbeat for ", "longer than its 3s lease, by this host's clock",
			"takeover        the next run of this key takes it over after watching it unchanged for 3s",
			"break it now    locked-run release -t " + table + " -k job --owner " + owner} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("status lacks %q:\n%s", want, r.stdout)
			}
		}
		r = runBin(t, env, "list", "-t", table)
		if !strings.Contains(r.stdout, "(looks dead)") {
			t.Fatalf("list does not say the holder looks dead:\n%s", r.stdout)
		}
	})
	t.Run("release without --owner or --force refuses and gives the owner to copy", func(t *testing.T) {
		r := runBin(t, env, "release", "-t", table, "-k", "job")
		if r.code != 125 {
			t.Fatalf("exit %d, want 125", r.code)
		}
		oneErrorLine(t, r, "without --owner "+owner+" (that holder only) or --force (whoever holds it)")
	})
	t.Run("release --owner of someone else refuses and names who holds it now", func(t *testing.T) {
		r := runBin(t, env, "release", "-t", table, "-k", "job", "--owner", "old-host-1-0badf00d")
		if r.code != 125 {
			t.Fatalf("exit %d, want 125; stderr %s", r.code, r.stderr)
		}
		oneErrorLine(t, r, "held by "+owner)
		oneErrorLine(t, r, "now, not by old-host-1-0badf00d; nothing released")
		if status(t)["owner"] != owner {
			t.Fatal("the lock was broken by a release naming another owner")
		}
	})
	t.Run("release --owner of the holder breaks it and says whose it was", func(t *testing.T) {
		r := runBin(t, env, "release", "-t", table, "-k", "job", "--owner", owner)
		if r.code != 0 || !strings.HasPrefix(r.stdout, `released lock "job" held by `+owner+" (host ") {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		if rec := status(t); rec["held"] != false || rec["fencing_token"] != float64(1) {
			t.Fatalf("after release --owner: %v", rec)
		}
		holder.Process.Signal(syscall.SIGCONT)
		if code := exitCode(t, holder, 20*time.Second); code != 76 {
			t.Fatalf("the holder exit %d, want 76 (lock lost); stderr:\n%s", code, holderErr.String())
		}
	})
	t.Run("--owner and --force together are refused", func(t *testing.T) {
		r := runBin(t, env, "release", "-t", table, "-k", "job", "--owner", owner, "--force")
		if r.code != 125 {
			t.Fatalf("exit %d, want 125", r.code)
		}
		oneErrorLine(t, r, "not both")
	})
}
