package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// peerPairs measures other lock tools the way BenchmarkPaired measures
// locked-run, in the same rounds as locked-run's `-t T -- true` (the
// build named binName, run from its file copies lr), so
// that both see the same load and the same DynamoDB Local:
//
//	LOCKED_RUN_BENCH_PEERS="lock-exec=/path/to/lock-exec run k true"
//	LOCKED_RUN_BENCH_PEER_TABLES="lock-exec:key"
//
// PEERS holds name=command entries separated by ';' (a command's arguments
// split at spaces); each runs with the same environment as locked-run
// (DynamoDB Local's endpoint, dummy credentials), once without and once
// with AWS_CA_BUNDLE. PEER_TABLES names tables to create first, as
// table:partition-key (a string key, on-demand). Building a peer is up to
// whoever measures it: nothing of another tool is part of this project.
func peerPairs(b *testing.B, dir, binName string, lr []string, table string, denv, caenv []string) {
	b.Helper()
	spec := os.Getenv("LOCKED_RUN_BENCH_PEERS")
	if spec == "" {
		return
	}
	type peer struct {
		name   string
		copies []string
		args   []string
	}
	var peers []peer
	for i, e := range strings.Split(spec, ";") {
		name, command, ok := strings.Cut(strings.TrimSpace(e), "=")
		f := strings.Fields(command)
		if !ok || name == "" || len(f) == 0 {
			b.Fatalf("LOCKED_RUN_BENCH_PEERS: %q is not name=command", e)
		}
		peers = append(peers, peer{name, fileCopies(b, f[0], filepath.Join(dir, fmt.Sprintf("peer-%d", i)), pairCopies), f[1:]})
	}
	if v := os.Getenv("LOCKED_RUN_BENCH_PEER_TABLES"); v != "" {
		for _, tk := range strings.Split(v, ",") {
			name, key, ok := strings.Cut(tk, ":")
			if !ok {
				b.Fatalf("LOCKED_RUN_BENCH_PEER_TABLES: %q is not table:key", tk)
			}
			ddblocal.CreateTable(b, name, key)
		}
	}
	lrArgs := []string{"-t", table, "-k", "peer-pairs", "--", "true"}
	flockArgs := []string{filepath.Join(dir, "flock"), "true"}
	const warm, pairs = 3, 60
	for _, env := range []struct {
		name string
		env  []string
	}{{"", denv}, {", AWS_CA_BUNDLE set", caenv}} {
		ratios := make([][]float64, len(peers)+1)
		walls := make([][]float64, len(peers)+1)
		for i := range warm + pairs {
			for j := range len(peers) + 1 {
				path, args := lr[i%len(lr)], lrArgs
				if j > 0 {
					path, args = peers[j-1].copies[i%len(peers[j-1].copies)], peers[j-1].args
				}
				f, l := measurePair(b, (i+j)%2 == 0, flockArgs, env.env, path, args...)
				if i >= warm {
					ratios[j] = append(ratios[j], float64(l.wall)/float64(f.wall))
					walls[j] = append(walls[j], ms(l.wall))
				}
			}
		}
		load, _ := os.ReadFile("/proc/loadavg")
		for j := range len(peers) + 1 {
			name := "locked-run " + binName + " `-t T -- true`"
			if j > 0 {
				name = peers[j-1].name + " `" + strings.Join(peers[j-1].args, " ") + "`"
			}
			benchFigure(b, "peer pairs%s: %-44s %.2fx flock (pair ratios p25 %.2f, p75 %.2f), median %.1f ms, %d pairs; load %s",
				env.name, name, median(ratios[j]), quantileF(ratios[j], 0.25), quantileF(ratios[j], 0.75), median(walls[j]), pairs,
				strings.Fields(string(load))[0])
		}
	}
}
