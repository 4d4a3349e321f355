package integration

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ptyOutput collects what the terminal shows, safely for concurrent reads.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *ptyOutput) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *ptyOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// startOnPty starts locked-run as the foreground job of a new pseudo-
// terminal (its own session, the pty as controlling terminal), as a shell
// would, and returns the terminal's master side and what it shows.
func startOnPty(t *testing.T, env []string, args ...string) (*exec.Cmd, *os.File, *ptyOutput) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = env
	master, err := pty.StartWithAttrs(cmd, &pty.Winsize{Rows: 24, Cols: 80}, &syscall.SysProcAttr{Setsid: true, Setctty: true})
	if err != nil {
		t.Fatal(err)
	}
	out := &ptyOutput{}
	copied := make(chan struct{})
	go func() {
		io.Copy(out, master)
		close(copied)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		master.Close()
		<-copied
	})
	return cmd, master, out
}

func TestTerminal(t *testing.T) {
	t.Run("a typed Ctrl-C reaches the child exactly once", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "signals")
		env := append(localEnv(t), envChild+"=signals", "OUT="+out)
		cmd, master, screen := startOnPty(t, env, "--local", "--", testExe(t))
		waitFor(t, 10*time.Second, "the child to be ready", func() bool {
			data, _ := os.ReadFile(out)
			return strings.HasPrefix(string(data), "ready")
		})
		master.Write([]byte{0x03})
		if code := exitCode(t, cmd, 10*time.Second); code != 0 {
			t.Fatalf("exit %d, want the child's 0; terminal:\n%s", code, screen.String())
		}
		data, _ := os.ReadFile(out)
		if got := strings.Fields(string(data))[1:]; len(got) != 1 || got[0] != "interrupt" {
			t.Fatalf("child received %q, want exactly one interrupt", got)
		}
		if !strings.Contains(screen.String(), "released lock") {
			t.Fatalf("no release after Ctrl-C:\n%s", screen.String())
		}
	})
	t.Run("a prompt reads the line typed at the terminal", func(t *testing.T) {
		env := append(localEnv(t), envChild+"=readline")
		cmd, master, screen := startOnPty(t, env, "--local", "--quiet", "--", testExe(t))
		waitFor(t, 10*time.Second, "the prompt", func() bool { return strings.Contains(screen.String(), "prompt> ") })
		master.Write([]byte("yes\r"))
		if code := exitCode(t, cmd, 10*time.Second); code != 0 {
			t.Fatalf("exit %d; terminal:\n%s", code, screen.String())
		}
		waitFor(t, 2*time.Second, "the echo", func() bool { return strings.Contains(screen.String(), "got: yes") })
	})
}

func TestWrapperKilled(t *testing.T) {
	t.Run("a locked-run killed with SIGKILL takes its child with it within a second", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		env := append(localEnv(t), envChild+"=sleep", "OUT="+pidFile)
		cmd := startBin(t, env, nil, nil, "--local", "--", testExe(t))
		var childPid int
		waitFor(t, 10*time.Second, "the child's pid", func() bool {
			data, _ := os.ReadFile(pidFile)
			childPid, _ = strconv.Atoi(string(data))
			return childPid > 0
		})
		cmd.Process.Kill()
		cmd.Wait()
		waitFor(t, time.Second, "the child to die", func() bool {
			return errors.Is(syscall.Kill(childPid, 0), syscall.ESRCH) || isZombie(childPid)
		})
	})
}

// isZombie reports whether pid has exited and only awaits reaping by init.
func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}
