//go:build linux || darwin

package proctree

import (
	"errors"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Deferred are blocked in the guardian from its first instruction
// and stay blocked for its whole life: it reads them from its pending set
// (readDeferred), so one sent to the group while it starts is reported
// late rather than acting on it (stopping it, in the case of SIGTSTP, or
// killing it). SIGINT, SIGTERM, SIGHUP and SIGQUIT cannot be deferred: the
// Go runtime unblocks them as it starts; one of those kills the starting
// guardian, which its exit status reports instead.
var Deferred = []syscall.Signal{syscall.SIGTSTP, syscall.SIGUSR1, syscall.SIGUSR2}

// caught are those the guardian catches with os/signal and reports;
// catching them also keeps it from dying with the group. The
// Deferred are read from their pending set instead (see
// readDeferred).
var caught = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// guardianMain is the guardian's program: marker names the tree, until a
// command on the control socket names it.
//
// The control socket (fd 3) carries one command a line: "M marker" (the
// tree's marker), "C pid" (the child's pid), "W" (watch for the child
// being continued while locked-run is stopped). Files sent with a line
// (SCM_RIGHTS) are held, unread, for as long as the guardian lives. Its end
// of file is locked-run's death.
func guardianMain(marker string) int {
	child := 0
	owner := os.Getppid()
	rep := os.NewFile(4, "reports")
	var repMu sync.Mutex
	report := func(sig syscall.Signal) {
		repMu.Lock()
		defer repMu.Unlock()
		rep.Write([]byte{byte(sig)}) //nolint:errcheck // a dead owner is noticed on ctl
	}
	// A background read or write of the terminal by the job stops the
	// whole group with SIGTTIN or SIGTTOU; the guardian must not stop with
	// it, or it could not act if locked-run died meanwhile. It never uses
	// the terminal, and has no children to inherit the ignore.
	signal.Ignore(syscall.SIGTTIN, syscall.SIGTTOU)
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, caught...)
	if err := readDeferred(Deferred, report); err != nil {
		// Then they are caught like the others; one that arrives before
		// that acts on us, as it does on the whole group.
		for _, sig := range Deferred {
			signal.Notify(sigs, sig)
		}
	}
	report(0)
	go func() {
		for s := range sigs {
			report(s.(syscall.Signal))
		}
	}()
	var watchStop chan struct{}
	readControl(3, func(cmd, arg string) {
		switch cmd {
		case "M":
			marker = arg
		case "C":
			child, _ = strconv.Atoi(arg)
		case "W":
			if watchStop != nil {
				close(watchStop)
			}
			watchStop = make(chan struct{})
			go watchStopped(owner, child, watchStop)
		}
	})
	// The owner died without saying it was done.
	killMarked(marker, child)
	return 0
}

// readControl reads commands from the control socket fd until its end of
// file, calling do for each line, and keeps every file descriptor that comes
// with them open.
func readControl(fd int, do func(cmd, arg string)) {
	buf := make([]byte, 512)
	oob := make([]byte, syscall.CmsgSpace(4*16))
	var line []byte
	for {
		n, oobn, _, _, err := syscall.Recvmsg(fd, buf, oob, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if oobn > 0 {
			// The descriptors are now ours; holding them is the point.
			holdRights(oob[:oobn])
		}
		if err != nil || n == 0 {
			return
		}
		line = append(line, buf[:n]...)
		for {
			i := indexByte(line, '\n')
			if i < 0 {
				break
			}
			cmd, arg := splitCommand(line[:i])
			line = line[i+1:]
			do(cmd, arg)
		}
	}
}

// indexByte is bytes.IndexByte, and splitCommand strings.Cut(strings.TrimSpace(line), " "):
// this package imports neither bytes nor strings (see init).
func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func splitCommand(line []byte) (cmd, arg string) {
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f' }
	for len(line) > 0 && space(line[0]) {
		line = line[1:]
	}
	for len(line) > 0 && space(line[len(line)-1]) {
		line = line[:len(line)-1]
	}
	if i := indexByte(line, ' '); i >= 0 {
		return string(line[:i]), string(line[i+1:])
	}
	return string(line), ""
}

// held are the descriptors received on the control socket; kept reachable
// so nothing ever closes them.
var held []int

// holdRights keeps the descriptors of the SCM_RIGHTS messages in oob.
func holdRights(oob []byte) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		if fds, err := syscall.ParseUnixRights(&m); err == nil {
			held = append(held, fds...)
		}
	}
}

// watchPoll is how often a watch looks at the owner and the child: a
// person who continued the child sees locked-run follow within this.
const watchPoll = 20 * time.Millisecond

// watchStopped continues owner when it is stopped and child is not (or is
// gone): the child was continued by someone other than the owner's job
// control. It returns once the owner runs again after having been seen
// stopped, or when stop is closed.
func watchStopped(owner, child int, stop <-chan struct{}) {
	tick := time.NewTicker(watchPoll)
	defer tick.Stop()
	seenStopped := false
	// The owner asks just before stopping; if it has not stopped a second
	// later, it did not (an orphaned group ignores SIGTSTP).
	notYet := time.Now().Add(time.Second)
	for {
		o := State(owner)
		switch {
		case o == 0 || o == 'Z':
			return
		case o != 'T' && !seenStopped && time.Now().After(notYet):
			return
		case o == 'T':
			seenStopped = true
			if c := State(child); c != 'T' && c != 't' {
				syscall.Kill(owner, syscall.SIGCONT) //nolint:errcheck // the owner may have just died
				return
			}
		case seenStopped:
			return
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// killDeadline bounds how long the guardian hunts for processes of the
// tree after the owner died: forks racing with the kill are caught by the
// next sweep, and the contract is that everything is gone within a second.
const killDeadline = 900 * time.Millisecond

// killMarked SIGKILLs the child and every process whose environment holds
// marker, sweeping again until a sweep finds none.
func killMarked(marker string, child int) {
	if child > 0 {
		// On Linux usually already dead of the parent-death signal; on
		// macOS, which has none, this is what kills it.
		syscall.Kill(child, syscall.SIGKILL) //nolint:errcheck // it may be gone
	}
	if marker == "" {
		return
	}
	self := os.Getpid()
	deadline := time.Now().Add(killDeadline)
	for {
		found := 0
		for _, pid := range All() {
			if pid != self && HasMarker(pid, marker) {
				syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // it may have exited meanwhile
				found++
			}
		}
		if found == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
