//go:build linux

package signals_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/locked-run/locked-run/signals"
)

// helperEnv switches the test binary into a helper program; its first
// argument names the helper.
const helperEnv = "SIGNALS_TEST_HELPER"

// wait is how long a test waits for something that should happen at once;
// long only because CI machines are slow under -race.
const wait = 10 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" && len(os.Args) > 1 {
		os.Exit(helper(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func helper(args []string) int {
	switch args[0] {
	case "ignore-hup-then-exec":
		// Start the next program with SIGHUP ignored, as nohup does: an
		// ignored disposition survives exec.
		signal.Ignore(syscall.SIGHUP)
		self, _ := os.Executable()
		err := syscall.Exec(self, append([]string{self}, args[1:]...), os.Environ())
		fmt.Println("exec:", err)
		return 2
	case "relay-hup-then-usr1":
		// Relays, sends itself SIGHUP and then SIGUSR1, and reports what
		// it got up to SIGUSR1, then what a child inherits.
		got := make(chan syscall.Signal, 8)
		stop := signals.Relay(func(sig syscall.Signal) { got <- sig })
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		syscall.Kill(os.Getpid(), syscall.SIGUSR1)
		for sig := range got {
			fmt.Println("got", sig)
			if sig == syscall.SIGUSR1 {
				break
			}
		}
		stop()
		self, _ := os.Executable()
		out, err := exec.Command(self, "print-sigign").Output()
		if err != nil {
			fmt.Println("child:", err)
			return 2
		}
		fmt.Print("child ", string(out))
		return 0
	case "print-sigign":
		fmt.Printf("SigIgn %x\n", sigIgn())
		return 0
	case "relay-stop-then-term":
		// After stop, SIGTERM must kill us (its default action) and fn
		// must not see it.
		stop := signals.Relay(func(sig syscall.Signal) { fmt.Println("got", sig) })
		stop()
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		// The signal is delivered before kill returns to a single-threaded
		// caller, but a Go program has several threads: block until it
		// lands.
		select {}
	}
	fmt.Println("unknown helper", args)
	return 2
}

// sigIgn returns the mask of ignored signals from /proc/self/status.
func sigIgn() uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "SigIgn:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n
		}
	}
	return 0
}

func mask(sig syscall.Signal) uint64 { return 1 << (uint(sig) - 1) }

// raceEnv keeps helpers built with -race from sleeping a second at exit
// (the race detector's atexit_sleep_ms), which would only slow the tests.
func raceEnv() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

func runHelper(t *testing.T, args ...string) (string, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), helperEnv+"=1", raceEnv())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(wait):
		cmd.Process.Kill()
		<-done
		t.Fatalf("helper %v did not finish in %v; output:\n%s", args, wait, out.String())
		return "", nil
	}
}

func TestRelay(t *testing.T) {
	t.Run("each forwarded signal sent to the process reaches fn once, in the order sent", func(t *testing.T) {
		got := make(chan syscall.Signal, 64)
		stop := signals.Relay(func(sig syscall.Signal) { got <- sig })
		for _, s := range signals.Forwarded {
			sig := s.(syscall.Signal)
			if err := syscall.Kill(os.Getpid(), sig); err != nil {
				t.Fatal(err)
			}
			select {
			case g := <-got:
				if g != sig {
					t.Fatalf("sent %v, fn got %v", sig, g)
				}
			case <-time.After(wait):
				t.Fatalf("sent %v, fn got nothing in %v", sig, wait)
			}
		}
		stop()
		close(got)
		for g := range got {
			t.Errorf("fn got %v more than once", g)
		}
	})

	t.Run("signals that arrive while fn is busy are relayed after it returns", func(t *testing.T) {
		got := make(chan syscall.Signal, 64)
		entered := make(chan struct{})
		release := make(chan struct{})
		first := true
		stop := signals.Relay(func(sig syscall.Signal) {
			if first {
				first = false
				close(entered)
				<-release
			}
			got <- sig
		})
		defer stop()
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		select {
		case <-entered:
		case <-time.After(wait):
			t.Fatal("fn was not called")
		}
		syscall.Kill(os.Getpid(), syscall.SIGUSR1)
		syscall.Kill(os.Getpid(), syscall.SIGUSR2)
		close(release)
		var seq []syscall.Signal
		for len(seq) < 3 {
			select {
			case g := <-got:
				seq = append(seq, g)
			case <-time.After(wait):
				t.Fatalf("fn got only %v", seq)
			}
		}
		// Two signals pending at once reach the process in no defined
		// order (the kernel may hand them to different threads); what
		// matters is that each arrives once.
		if seq[0] != syscall.SIGHUP || seq[1] == seq[2] ||
			(seq[1] != syscall.SIGUSR1 && seq[1] != syscall.SIGUSR2) ||
			(seq[2] != syscall.SIGUSR1 && seq[2] != syscall.SIGUSR2) {
			t.Errorf("fn got %v, want SIGHUP, then SIGUSR1 and SIGUSR2 once each", seq)
		}
	})

	t.Run("stop can be called twice and fn is not called after it", func(t *testing.T) {
		calls := 0
		stop := signals.Relay(func(syscall.Signal) { calls++ })
		stop()
		stop()
		if calls != 0 {
			t.Errorf("fn called %d times", calls)
		}
	})

	t.Run("after stop a signal has its default action again", func(t *testing.T) {
		out, err := runHelper(t, "relay-stop-then-term")
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("helper ended with %v, want killed by SIGTERM; output:\n%s", err, out)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("helper ended with %v, want killed by SIGTERM; output:\n%s", ws, out)
		}
		if strings.Contains(out, "got") {
			t.Errorf("fn was called after stop:\n%s", out)
		}
	})

	t.Run("a signal ignored at start-up stays ignored and the child inherits the ignore", func(t *testing.T) {
		out, err := runHelper(t, "ignore-hup-then-exec", "relay-hup-then-usr1")
		if err != nil {
			t.Fatalf("helper: %v; output:\n%s", err, out)
		}
		if strings.Contains(out, "got hangup") {
			t.Errorf("fn got SIGHUP although it was ignored at start-up:\n%s", out)
		}
		if !strings.Contains(out, "got user defined signal 1") {
			t.Errorf("fn did not get SIGUSR1:\n%s", out)
		}
		var ign uint64
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "child SigIgn "); ok {
				ign, _ = strconv.ParseUint(v, 16, 64)
			}
		}
		if ign&mask(syscall.SIGHUP) == 0 {
			t.Errorf("child does not ignore SIGHUP; output:\n%s", out)
		}
	})
}
