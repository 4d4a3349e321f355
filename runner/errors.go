//go:build linux || darwin

package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Sentinel errors returned by Start. Callers branch on them with errors.Is;
// the error also says which command and the system's reason.
var (
	// ErrNotFound means the command does not exist: no such file, or no
	// executable of that name on PATH. A shell exits 127 for it.
	ErrNotFound = errors.New("command not found")

	// ErrNotExecutable means the command was found but cannot be run:
	// permission denied, a directory, an exec format error, a missing
	// interpreter. A shell exits 126 for it.
	ErrNotExecutable = errors.New("command not executable")
)

// resolve finds the program for name the way a shell does: a name with a
// slash is used as it is, any other name is looked up on PATH.
func resolve(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("start %q: %w", name, ErrNotFound)
	}
	path, err := exec.LookPath(name)
	switch {
	case err == nil:
		return path, nil
	case errors.Is(err, exec.ErrDot):
		// PATH holds "." or another relative directory. Go refuses such
		// matches by default to protect programs that run helper tools
		// behind the user's back; here the user named the command, and a
		// shell would run it, so we do too.
		return path, nil
	case errors.Is(err, exec.ErrNotFound):
		// Like bash, a file of that name on PATH that cannot be executed
		// makes it "permission denied" (126) rather than "not found".
		if p := firstOnPath(name); p != "" {
			return "", fmt.Errorf("start %q: %w: %s: %w", name, ErrNotExecutable, p, fs.ErrPermission)
		}
		return "", fmt.Errorf("start %q: %w", name, ErrNotFound)
	}
	return "", classify(name, path, err)
}

// firstOnPath returns the first file named name in a PATH directory, whether
// or not it can be executed, or "" when there is none.
func firstOnPath(name string) string {
	if strings.Contains(name, "/") {
		return ""
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// classify turns the error of looking up or executing the command into
// ErrNotFound, ErrNotExecutable, or (for failures that say nothing about the
// command, such as fork running out of memory) a plain wrapped error. It
// follows the shell: ENOENT is "not found" unless the file is there (then the
// missing file is the interpreter named by its #! line); any other reason the
// kernel refuses to execute it is "not executable".
func classify(name, path string, err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("start %q: %w", name, ErrNotFound)
		}
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("start %q: %w: %w", name, ErrNotExecutable, err)
		}
		return fmt.Errorf("start %q: %w", name, err)
	}
	switch errno {
	case syscall.ENOENT:
		if _, statErr := os.Stat(path); path != "" && statErr == nil {
			return fmt.Errorf("start %q: %w: bad interpreter: %w", name, ErrNotExecutable, errno)
		}
		return fmt.Errorf("start %q: %w", name, ErrNotFound)
	case syscall.EACCES, syscall.EPERM, syscall.ENOEXEC, syscall.EISDIR, syscall.ETXTBSY,
		syscall.ENOTDIR, syscall.ELOOP, syscall.ENAMETOOLONG, syscall.E2BIG:
		return fmt.Errorf("start %q: %w: %w", name, ErrNotExecutable, errno)
	}
	if notExecutable(errno) {
		return fmt.Errorf("start %q: %w: %w", name, ErrNotExecutable, errno)
	}
	return fmt.Errorf("start %q: %w", name, err)
}

// LookPath finds the program Start would run for name, the way a shell
// does, without starting anything. Its errors match ErrNotFound or
// ErrNotExecutable like Start's, so a caller can refuse a command that
// cannot run before it waits for anything on its behalf.
func LookPath(name string) (string, error) { return resolve(name) }
