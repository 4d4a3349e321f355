package integration

// The differential harness's own child programs. The test binary, re-run
// with envDiffChild set, becomes one of them; each one appends what happens
// to it to the events file $DIFF_EV, one line per event:
//
//	<unix nanoseconds> <label> <pid> <event...>
//
// Lines are short and written with a single write(2) on an O_APPEND file, so
// the lines of several processes never mix.
//
// Counting signals has one blind spot, shared with any program: two copies
// of a standard signal that arrive before the first is handled are one (the
// kernel keeps one pending, and Go's runtime hands signals over as a set).
// A count of two is proof of a duplicate; a count of one is proof only that
// no duplicate came late. In practice a wrapper's forwarded copy comes after
// the child has handled the kernel's, and the scenarios see it.

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	envDiffChild  = "LOCKED_RUN_DIFF_CHILD" // "1" runs the test binary as a child program
	envDiffEvents = "DIFF_EV"               // the events file children append to
)

func init() {
	if os.Getenv(envDiffChild) != "1" {
		return
	}
	os.Exit(diffChildMain(os.Args[1:]))
}

// diffLog appends events for one process.
type diffLog struct {
	f     *os.File
	label string
}

func (l *diffLog) event(format string, args ...any) {
	if l.f == nil {
		return
	}
	line := fmt.Sprintf("%d %s %d %s\n", time.Now().UnixNano(), l.label, os.Getpid(), fmt.Sprintf(format, args...))
	l.f.Write([]byte(line)) //nolint:errcheck // nothing to do about a lost event; the test notices
}

// sigName is a signal's short name without "SIG", as the events spell it.
func sigName(s syscall.Signal) string {
	return strings.TrimPrefix(unix.SignalName(s), "SIG")
}

func sigByName(name string) (syscall.Signal, error) {
	s := unix.SignalNum("SIG" + strings.TrimPrefix(strings.ToUpper(name), "SIG"))
	if s == 0 {
		return 0, fmt.Errorf("unknown signal %q", name)
	}
	return s, nil
}

// diffChildMain runs the child program named by args[0]. Programs:
//
//	sig [flags]   log every catchable signal but the job-control stops
//	              (INT TERM HUP QUIT USR1 USR2 CONT WINCH); SIGTSTP, SIGTTIN
//	              and SIGTTOU keep their default action, so it stops like
//	              any program. Flags say when it ends.
//	emit          write "1\n2\n..." to stdout until the pipe closes, then die
//	              of SIGPIPE, as seq does.
//	pager         what less does with a terminal: read stdin, open /dev/tty,
//	              put it in raw mode (SIGTTOU stops a background job here),
//	              read one key from it, restore the mode, exit 0.
//	ttyprompt     write "pw: " to /dev/tty, read a line from it, exit 0.
//	mark NAME     log "mark NAME" and exit 0 (scripts say how far they got).
//	badwrap CMD ARG...
//	              a wrapper as naive as locked-run once was, to show that
//	              the harness tells: it runs CMD in its own process group,
//	              forwards the signals it gets, exits 128+N when CMD dies
//	              of signal N, and runs CMD with exec, not execvp.
//	shell-exec PATH ARG...
//	              execute PATH with every signal's action the default and
//	              none blocked, as a terminal emulator starts a shell,
//	              whatever the test process inherited (a CI runner may
//	              start it with SIGINT or SIGHUP ignored, which bash and
//	              everything it runs would inherit).
func diffChildMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "diff child: no program")
		return 2
	}
	prog, args := args[0], args[1:]
	switch prog {
	case "shell-exec":
		return shellExec(args)
	case "badwrap":
		return badWrap(args)
	}
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	label := fs.String("label", prog, "name in the events file")
	exitOn := fs.String("exit-on", "", "comma-separated signals after which to end (after -linger)")
	dieOn := fs.String("die-on", "", "comma-separated signals that kill at once, as their default action would")
	die := fs.Bool("die", false, "end by dying of the -exit-on signal instead of exiting")
	code := fs.Int("code", 0, "exit code when ending by -exit-on or -read")
	// A forwarded copy of a signal the child already got comes from
	// locked-run within milliseconds, or up to its witness window (150 ms
	// in the runner's design) later; half a second covers both on a
	// loaded machine.
	linger := fs.Duration("linger", 500*time.Millisecond, "how long to keep counting signals after an -exit-on one")
	life := fs.Duration("life", 30*time.Second, "safety net: exit 99 after this long")
	read := fs.Bool("read", false, "read one line from stdin, log it, and exit -code")
	prompt := fs.String("prompt", "", "with -read, print this on stdout first")
	noecho := fs.Bool("noecho", false, "turn the terminal's echo off first, as a password prompt does, and leave it off")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := &diffLog{label: *label}
	if p := os.Getenv(envDiffEvents); p != "" {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "diff child:", err)
			return 2
		}
		log.f = f
	}
	switch prog {
	case "sig":
		if *noecho {
			if err := ttyNoEcho(); err != nil {
				fmt.Fprintln(os.Stderr, "diff child:", err)
				return 2
			}
		}
		if *read && *prompt != "" {
			os.Stdout.WriteString(*prompt)
		}
		return diffSig(log, *exitOn, *dieOn, *die, *code, *linger, *life, *read)
	case "emit":
		return diffEmit(log)
	case "pager":
		return diffPager(log)
	case "ttyprompt":
		return diffTTYPrompt(log)
	case "mark":
		log.event("mark %s", strings.Join(fs.Args(), " "))
		return 0
	}
	fmt.Fprintln(os.Stderr, "diff child: unknown program", prog)
	return 2
}

func parseSigs(list string) (map[syscall.Signal]bool, error) {
	m := map[syscall.Signal]bool{}
	for _, n := range strings.Split(list, ",") {
		if n == "" {
			continue
		}
		s, err := sigByName(n)
		if err != nil {
			return nil, err
		}
		m[s] = true
	}
	return m, nil
}

func diffSig(log *diffLog, exitOn, dieOn string, die bool, code int, linger, life time.Duration, read bool) int {
	ends, err := parseSigs(exitOn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "diff child:", err)
		return 2
	}
	dies, err := parseSigs(dieOn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "diff child:", err)
		return 2
	}
	ch := make(chan os.Signal, 64)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGCONT, syscall.SIGWINCH)
	log.event("start pgid=%d tpgid=%d", unix.Getpgrp(), ttyForeground())
	// Ready before reading: a read from the terminal in the background
	// stops the whole process at once (SIGTTIN).
	log.event("ready")
	lines := make(chan string, 1)
	if read {
		go func() {
			l, _ := bufio.NewReader(os.Stdin).ReadString('\n')
			lines <- strings.TrimRight(l, "\r\n")
		}()
	}
	var (
		lingering <-chan time.Time
		ending    syscall.Signal
	)
	safety := time.After(life)
	for {
		select {
		case s := <-ch:
			sig := s.(syscall.Signal)
			if sig == syscall.SIGWINCH {
				log.event("sig WINCH %s", ttySize())
			} else {
				log.event("sig %s", sigName(sig))
			}
			if dies[sig] {
				dieOf(log, sig)
			}
			if ends[sig] && lingering == nil {
				// Keep counting for a while: a duplicate (a forwarded copy of
				// a signal the kernel already delivered) arrives within
				// milliseconds, and nothing else tells us none is coming.
				ending = sig
				lingering = time.After(linger)
			}
		case l := <-lines:
			log.event("line %s", l)
			log.event("exit %d", code)
			return code
		case <-lingering:
			if die {
				dieOf(log, ending)
			}
			log.event("exit %d", code)
			return code
		case <-safety:
			log.event("exit 99 life")
			return 99
		}
	}
}

// dieOf ends the process by sig with its default action, as a program that
// does not handle sig would end, without a Go runtime dump (the runtime's own
// SIGQUIT handler would print one) and without a core file.
func dieOf(log *diffLog, sig syscall.Signal) {
	log.event("die %s", sigName(sig))
	signal.Reset()
	unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}) //nolint:errcheck // a core file is only litter
	// struct kernel_sigaction with sa_handler SIG_DFL (0).
	var sa struct {
		handler  uintptr
		flags    uint64
		restorer uintptr
		mask     uint64
	}
	unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0)
	var set unix.Sigset_t
	n := uint(sig) - 1
	set.Val[n/64] |= 1 << (n % 64)
	unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil) //nolint:errcheck // best effort; tgkill below still targets this thread
	unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)   //nolint:errcheck
	time.Sleep(5 * time.Second)
	os.Exit(100)
}

// ttyForeground is the foreground process group of the controlling
// terminal, or -1 without one.
func ttyForeground() int {
	f, err := os.Open("/dev/tty")
	if err != nil {
		return -1
	}
	defer f.Close()
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	if err != nil {
		return -1
	}
	return pgrp
}

// ttySize is the controlling terminal's size as ROWSxCOLS.
func ttySize() string {
	f, err := os.Open("/dev/tty")
	if err != nil {
		return "none"
	}
	defer f.Close()
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return "none"
	}
	return fmt.Sprintf("%dx%d", ws.Row, ws.Col)
}

func diffEmit(log *diffLog) int {
	// With SIGPIPE caught, a write to a closed pipe fails with EPIPE
	// instead of killing us, so we can say so before dying of it.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	log.event("start pgid=%d tpgid=%d", unix.Getpgrp(), ttyForeground())
	w := bufio.NewWriterSize(os.Stdout, 4096)
	for i := 1; i <= 1000000; i++ {
		if _, err := w.WriteString(strconv.Itoa(i) + "\n"); err != nil {
			dieOf(log, syscall.SIGPIPE)
		}
	}
	if err := w.Flush(); err != nil {
		dieOf(log, syscall.SIGPIPE)
	}
	log.event("exit 0")
	return 0
}

func diffPager(log *diffLog) int {
	log.event("start pgid=%d tpgid=%d", unix.Getpgrp(), ttyForeground())
	first, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		log.event("exit 3 stdin")
		return 3
	}
	log.event("stdin %s", strings.TrimSpace(first))
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		log.event("exit 4 no-tty")
		return 4
	}
	defer tty.Close()
	fd := int(tty.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		log.event("exit 5 tcgetattr")
		return 5
	}
	raw := *saved
	raw.Lflag &^= unix.ICANON | unix.ECHO | unix.ISIG | unix.IEXTEN
	raw.Iflag &^= unix.ICRNL | unix.IXON
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	// Like less: a background process changing the terminal's mode gets
	// SIGTTOU, whose default action stops it (and its job) here.
	if err := unix.IoctlSetTermios(fd, unix.TCSETSW, &raw); err != nil {
		log.event("exit 6 tcsetattr")
		return 6
	}
	log.event("raw")
	tty.WriteString("pager> ")
	var key [1]byte
	if _, err := tty.Read(key[:]); err != nil {
		unix.IoctlSetTermios(fd, unix.TCSETSW, saved)
		log.event("exit 7 read")
		return 7
	}
	log.event("key %q", key[0])
	if err := unix.IoctlSetTermios(fd, unix.TCSETSW, saved); err != nil {
		log.event("exit 8 restore")
		return 8
	}
	tty.WriteString("\r\n")
	log.event("exit 0")
	return 0
}

func diffTTYPrompt(log *diffLog) int {
	log.event("start pgid=%d tpgid=%d", unix.Getpgrp(), ttyForeground())
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		log.event("exit 4 no-tty")
		return 4
	}
	defer tty.Close()
	tty.WriteString("pw: ")
	log.event("prompted")
	l, err := bufio.NewReader(tty).ReadString('\n')
	if err != nil {
		log.event("exit 7 read")
		return 7
	}
	log.event("line %s", strings.TrimRight(l, "\r\n"))
	log.event("exit 0")
	return 0
}

// ttyNoEcho turns the controlling terminal's echo off.
func ttyNoEcho() error {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer tty.Close()
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Lflag &^= unix.ECHO
	return unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETSW, tio)
}

func shellExec(args []string) int {
	if len(args) == 0 {
		return 2
	}
	// The thread that calls execve passes its signal mask on, so the
	// mask set here is the one the shell gets.
	runtime.LockOSThread()
	var sa struct {
		handler  uintptr
		flags    uint64
		restorer uintptr
		mask     uint64
	}
	for sig := 1; sig < 65; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0)
	}
	var none unix.Sigset_t
	unix.PthreadSigmask(unix.SIG_SETMASK, &none, nil) //nolint:errcheck // an empty mask is always valid
	err := unix.Exec(args[0], args, os.Environ())
	fmt.Fprintln(os.Stderr, "diff child: exec", args[0], err)
	return 127
}

func badWrap(args []string) int {
	if len(args) == 0 {
		return 2
	}
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "badwrap:", err)
		return 126
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				cmd.Process.Signal(s) //nolint:errcheck // gone is fine
			case <-done:
				return
			}
		}
	}()
	cmd.Wait() //nolint:errcheck // the status says it
	close(done)
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
