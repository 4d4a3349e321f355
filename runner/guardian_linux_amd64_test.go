//go:build linux && amd64

package runner

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/locked-run/locked-run/internal/proctree"
)

// sleeperEnv makes this test binary sleep until it is killed: the
// processes the guardian has to find and kill.
const sleeperEnv = "RUNNER_TEST_SLEEPER"

func init() {
	if os.Getenv(sleeperEnv) == "1" {
		time.Sleep(time.Hour)
		os.Exit(0)
	}
}

func TestForkedGuardianLooksLikeOneStartedAnew(t *testing.T) {
	g := startTestGuardian(t, true)
	proc := "/proc/" + strconv.Itoa(g.pid)
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	// Our arguments' room, NUL-filled after the new ones.
	if want := "lockedrun-guardian\x00guard\x00"; !bytes.HasPrefix(cmdline, []byte(want)) || len(bytes.Trim(cmdline[len(want):], "\x00")) != 0 {
		t.Errorf("cmdline %q, want %q and NULs", cmdline, want)
	}
	environ, err := os.ReadFile(proc + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	if want := "LOCKED_RUN_GUARDIAN=\x00"; !bytes.HasPrefix(environ, []byte(want)) || len(bytes.Trim(environ[len(want):], "\x00")) != 0 {
		t.Errorf("environ %q, want %q and NULs", environ, want)
	}
	if comm, _ := os.ReadFile(proc + "/comm"); string(comm) != "lockedrun-guard\n" {
		t.Errorf("comm %q, want lockedrun-guard", comm)
	}
	fds, err := os.ReadDir(proc + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"0": os.DevNull, "1": os.DevNull, "2": os.DevNull, "3": "socket:", "4": "pipe:", "5": "anon_inode:[signalfd]"}
	for _, fd := range fds {
		target, _ := os.Readlink(proc + "/fd/" + fd.Name())
		if w, ok := want[fd.Name()]; !ok || !strings.HasPrefix(target, w) {
			t.Errorf("fd %s -> %s, want only %v", fd.Name(), target, want)
		}
	}
	status, _ := os.ReadFile(proc + "/status")
	for _, line := range strings.Split(string(status), "\n") {
		// Every signal blocked but SIGKILL and SIGSTOP, which cannot be.
		if strings.HasPrefix(line, "SigBlk:") && !strings.HasSuffix(line, "fffffffffffbfeff") {
			t.Errorf("%s, want every signal blocked", line)
		}
	}
}

// A forked guardian that dies before it says it is ready is replaced by
// locked-run started again.
func TestForkedGuardianThatDiesStartingIsReplaced(t *testing.T) {
	defer func() { breakForkedGuardian = false }()
	breakForkedGuardian = true
	startTestGuardian(t, false)
}

// Both guardians, this process forked and locked-run started again, speak
// one protocol; these run each through it.
func TestGuardianProtocol(t *testing.T) {
	for _, forked := range []bool{true, false} {
		name := "locked-run started again"
		if forked {
			name = "this process forked"
		}
		t.Run(name, func(t *testing.T) {
			defer func(old bool) { forkGuardians = old }(forkGuardians)
			forkGuardians = forked
			t.Run("it reports each signal it receives and neither stops nor dies of one", func(t *testing.T) {
				g := startTestGuardian(t, forked)
				sent := []syscall.Signal{syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGTSTP, syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR2}
				for _, sig := range sent {
					if err := syscall.Kill(g.pid, sig); err != nil {
						t.Fatal(err)
					}
					waitGuardian(t, g, fmt.Sprintf("a report of %v", sig), func() bool {
						for _, h := range g.heard {
							if h.sig == sig {
								return true
							}
						}
						return false
					})
				}
				if st := proctree.State(g.pid); st != 'S' && st != 'R' {
					t.Errorf("guardian state %q after the signals, want it running", st)
				}
				// Signals it does not report are left pending, not acted on.
				for _, sig := range []syscall.Signal{syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGPIPE, syscall.SIGALRM} {
					syscall.Kill(g.pid, sig) //nolint:errcheck // checked below
				}
				time.Sleep(50 * time.Millisecond)
				if st := proctree.State(g.pid); st != 'S' && st != 'R' {
					t.Errorf("guardian state %q after SIGTTIN, SIGTTOU, SIGPIPE, SIGALRM, want it running", st)
				}
			})
			t.Run("at our end of file it kills the child and the marked, holding the files until it exits", func(t *testing.T) {
				g := startTestGuardian(t, forked)
				marker := fmt.Sprintf("LOCKED_RUN_OWNER=protocol-%d-%d", os.Getpid(), time.Now().UnixNano())
				child := startSleeper(t)
				marked := startSleeper(t, marker)
				longer := startSleeper(t, marker+"x")
				within := startSleeper(t, "X"+marker)
				heldR, heldW, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer heldR.Close()
				if err := g.adopt(marker, []*os.File{heldW}, hclog.NewNullLogger()); err != nil {
					t.Fatal(err)
				}
				heldW.Close()
				g.setChild(child.cmd.Process.Pid)
				// What locked-run's death looks like to the guardian.
				start := time.Now()
				g.ctl.Close()
				for _, s := range []*sleeper{child, marked} {
					if !s.killedWithin(2 * time.Second) {
						t.Errorf("pid %d was not killed", s.cmd.Process.Pid)
					}
				}
				t.Logf("killed within %v", time.Since(start))
				// The held pipe's end of file says the guardian exited.
				done := make(chan error, 1)
				go func() {
					_, err := heldR.Read(make([]byte, 1))
					done <- err
				}()
				select {
				case err := <-done:
					if err != io.EOF {
						t.Errorf("held pipe: %v, want end of file", err)
					}
				case <-time.After(3 * time.Second):
					t.Errorf("the held pipe is still open 3 s after our end of file")
				}
				for _, s := range []*sleeper{longer, within} {
					select {
					case <-s.done:
						t.Errorf("pid %d, whose environment does not hold the marker exactly, ended: %v", s.cmd.Process.Pid, s.err)
					default:
					}
				}
			})
			t.Run("a command split across writes, and several in one write, are read alike", func(t *testing.T) {
				g := startTestGuardian(t, forked)
				marker := fmt.Sprintf("LOCKED_RUN_OWNER=split-%d-%d", os.Getpid(), time.Now().UnixNano())
				child := startSleeper(t)
				marked := startSleeper(t, marker)
				half := len(marker) / 2
				for _, part := range []string{
					"  M " + marker[:half],
					marker[half:] + " \n\nX ignored\nC " + strconv.Itoa(child.cmd.Process.Pid),
					"\n",
				} {
					if _, err := g.ctl.WriteString(part); err != nil {
						t.Fatal(err)
					}
					time.Sleep(20 * time.Millisecond)
				}
				g.ctl.Close()
				for _, s := range []*sleeper{child, marked} {
					if !s.killedWithin(2 * time.Second) {
						t.Errorf("pid %d was not killed", s.cmd.Process.Pid)
					}
				}
			})
		})
	}
}

func startTestGuardian(t *testing.T, forked bool) *guardian {
	t.Helper()
	g, err := startGuardian()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Gone and reaped before the next test, which may count ours.
		g.close()
		waitGuardian(t, g, "its exit after SIGKILL", func() bool { return g.gone })
	})
	waitGuardian(t, g, "ready", func() bool { return g.ready })
	// A forked guardian names itself before it says it is ready; one
	// started anew is named after the file it runs.
	comm, _ := os.ReadFile("/proc/" + strconv.Itoa(g.pid) + "/comm")
	if isForked := string(comm) == "lockedrun-guard\n"; isForked != forked {
		t.Fatalf("guardian's comm %q: forked %v, want %v", comm, isForked, forked)
	}
	return g
}

// waitGuardian waits until cond, called with g.mu held, holds.
func waitGuardian(t *testing.T, g *guardian, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		g.mu.Lock()
		ok, gone, wake := cond(), g.gone, g.wake
		g.mu.Unlock()
		if ok {
			return
		}
		if gone {
			t.Fatalf("the guardian exited before %s", what)
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("waited 10 s for %s from the guardian", what)
		}
	}
}

// A sleeper is this test binary sleeping until it is killed.
type sleeper struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited and err is set
	err  error
}

// startSleeper starts a sleeper in a session of its own (as a daemon would
// be), with env added to its environment.
func startSleeper(t *testing.T, env ...string) *sleeper {
	t.Helper()
	s := &sleeper{cmd: exec.Command(os.Args[0]), done: make(chan struct{})}
	s.cmd.Env = append(append(os.Environ(), sleeperEnv+"=1"), env...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill() //nolint:errcheck // it may be dead already
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			t.Errorf("pid %d still runs 5 s after SIGKILL", s.cmd.Process.Pid)
		}
	})
	return s
}

// killedWithin reports whether the sleeper dies of SIGKILL within d.
func (s *sleeper) killedWithin(d time.Duration) bool {
	select {
	case <-s.done:
		ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus)
		return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
	case <-time.After(d):
		return false
	}
}
