package main

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func manPage(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	writeManPage(&b, newApp(nil, nil, nil), "2026-11-25")
	return b.String()
}

// The man page names every option of every command, every subcommand,
// every environment variable and every exit status of locked-run's own.
func TestManPageMentionsEveryFlag(t *testing.T) {
	page := manPage(t)
	app := newApp(nil, nil, nil)
	check := func(what, s string) {
		t.Helper()
		if !strings.Contains(page, s) {
			t.Errorf("man page lacks %s %q", what, s)
		}
	}
	all := append([]docFlag(nil), appFlags(app)...)
	for _, c := range appCommands(app) {
		check("subcommand", ".SS "+roff(c.name)+"\n")
		all = append(all, c.flags...)
	}
	if len(all) < 20 {
		t.Fatalf("only %d options found", len(all))
	}
	for _, f := range all {
		for _, n := range f.names() {
			check("option", `\fB`+roff(n)+`\fR`)
		}
		for _, e := range f.env {
			check("variable", ".B "+roff(e)+"\n")
		}
	}
	for _, s := range []string{"75", "76", "125", "126", "127", ".TH LOCKED\\-RUN 1 \"2026-11-25\""} {
		check("text", s)
	}
}

// man(1) renders the page without warnings (when man is installed).
func TestManPageRenders(t *testing.T) {
	man, err := exec.LookPath("man")
	if err != nil {
		t.Skip("man not installed: rendering not checked")
	}
	cmd := exec.Command(man, "--warnings", "-l", "-Tutf8", "-")
	cmd.Stdin = strings.NewReader(manPage(t))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("man: %v\n%s", err, stderr.String())
	}
	// Without a terminal, man still overstrikes bold: "E\bE".
	out := regexp.MustCompile(".\b").ReplaceAllString(stdout.String(), "")
	for _, s := range []string{"--conflict-exit-code", "create-table", "EXIT STATUS", "LOCKED_RUN_TABLE"} {
		if !strings.Contains(strings.ReplaceAll(out, "\u2010", "-"), s) {
			t.Errorf("rendered page lacks %q", s)
		}
	}
}

// `make man` builds the generator with -tags locked_run_gendocs; it must
// print the same page.
func TestGenDocsBuildWritesTheManPage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the generator")
	}
	cmd := exec.Command("go", "run", "-tags", "locked_run_gendocs", ".", "man", "2026-11-25")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run -tags locked_run_gendocs . man: %v\n%s", err, stderrOf(err))
	}
	if want := manPage(t); string(out) != want {
		t.Errorf("generator's page differs from writeManPage's:\n%s", out)
	}
}

func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
