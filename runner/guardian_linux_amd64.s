//go:build linux && amd64

#include "textflag.h"

// The guardian on linux/amd64: forkGuardian (guardian_linux_amd64.go)
// forks this process without exec, and the new process runs the machine
// code below and nothing else, so that the guardian costs a fork and a few
// system calls instead of a second start of this 14 MB Go program
// (BENCHMARKS.md, seventh pass). It is internal/proctree's guardianMain,
// line for line, and speaks the same protocol (runner/guardian.go):
//
//   - fd 3 is the control socket: "M marker", "C pid" and "W" lines, files
//     passed along with them (SCM_RIGHTS) held until exit, end of file when
//     locked-run dies;
//   - fd 4 takes the reports: a 0 byte once signals are caught, then one
//     byte per signal received (SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2,
//     SIGTERM, SIGTSTP);
//   - after "W", every 20 ms: if locked-run is stopped and the child is not,
//     SIGCONT locked-run;
//   - on end of file: SIGKILL the child, then every process whose
//     environment holds the marker entry, sweeping /proc until a sweep finds
//     none or 900 ms have passed.
//
// It is forked with every signal blocked and keeps them blocked: the seven
// above are read from a signalfd, the rest stay pending, so nothing sent to
// the process group stops or kills it (SIGKILL and SIGSTOP aside), and no
// handler of the Go runtime ever runs in it.
//
// What a process forked from a running Go program may touch: only what
// the fork copied and nothing the runtime could have left half-written.
// The code never calls into Go, reads no Go variable and writes only its
// own memory, a region of the parent's set aside for it (R15 holds it
// throughout; layout below), and the arguments and environment on the
// process stack (what ps and /proc show of it). The parent marks everything else it writes MADV_DONTFORK
// first, so that the fork copies almost nothing and the parent's next
// writes fault on no page shared with the guardian. Subroutines return by
// a number in a register (R12 for buildpath, R13 for state) that the
// routine compares to jump back.

// The region, guardianRegionSize bytes: the program's memory, then what
// forkGuardian tells it, then the stack the fork starts on (unused: no
// call is ever made).
#define PARAMS 0x10000
#define PARAM_NULL 0x10000
#define PARAM_CTL 0x10008
#define PARAM_REP 0x10010
#define PARAM_ARGS 0x10018
#define PARAM_ARGSLEN 0x10020
#define PARAM_ENV 0x10028
#define PARAM_ENVLEN 0x10030

#define POLLFDS 0x0
#define TIMEOUT 0x10
#define NOW 0x20
#define SIGSET 0x30
#define SCRATCH 0x38
#define MSG 0x40
#define IOV 0x80
#define PATH 0x90
#define DIGITS 0xc0
#define SIGFD 0x100
#define OWNER 0x108
#define CHILD 0x110
#define MLEN 0x118
#define LLEN 0x120
#define WATCHING 0x128
#define SEEN 0x130
#define NOTYET 0x138
#define NEXTTICK 0x140
#define SELF 0x148
#define DEADLINE 0x150
#define FOUND 0x158
#define DIRFD 0x160
#define DENTN 0x168
#define DOFF 0x170
#define CURPID 0x178
#define ENVFD 0x180
#define POS 0x188
#define MATCH 0x190
#define LSTART 0x198
#define LEND 0x1a0
#define LINE 0x1000
#define LINECAP 0x2000
#define MARKER 0x3000
#define MARKERCAP 0x1000
#define CTRL 0x4000
#define CTRLCAP 0x1000
#define BUF 0x5000
#define BUFCAP 0x1000
#define DENTS 0x6000
#define DENTSCAP 0x8000

// reg = fcntl(the descriptor at param, F_DUPFD_CLOEXEC, 5); exit on a
// failure. Clobbers AX, DX, SI, DI, CX, R11.
#define DUPABOVE(param, reg) \
	MOVQ	param(R15), DI; \
	MOVQ	$1030, SI; \
	MOVQ	$5, DX; \
	MOVQ	$72, AX; \
	SYSCALL; \
	CMPQ	AX, $0xfffffffffffff001; \
	JCC	exit; \
	MOVQ	AX, reg

// dup3(reg, fd, 0); exit on a failure. Clobbers AX, DX, SI, DI, CX, R11.
#define DUPTO(reg, fd) \
	MOVQ	reg, DI; \
	MOVQ	fd, SI; \
	XORQ	DX, DX; \
	MOVQ	$292, AX; \
	SYSCALL; \
	CMPQ	AX, $0xfffffffffffff001; \
	JCC	exit

// Stores the 24 bytes a, b, c (little-endian words) at DI. Clobbers AX.
#define PUT24(a, b, c) \
	MOVQ	a, AX; \
	MOVQ	AX, 0(DI); \
	MOVQ	b, AX; \
	MOVQ	AX, 8(DI); \
	MOVQ	c, AX; \
	MOVQ	AX, 16(DI)

// AX = CLOCK_MONOTONIC in nanoseconds. Clobbers DI, SI, CX, R11.
#define NOWNS \
	MOVQ	$1, DI; \
	LEAQ	NOW(R15), SI; \
	MOVQ	$228, AX; \
	SYSCALL; \
	MOVQ	NOW(R15), AX; \
	IMULQ	$1000000000, AX; \
	ADDQ	(NOW+8)(R15), AX

// func rawForkGuardian(region, stack uintptr) (pid, errno uintptr)
//
// fork() onto stack (the kernel's clone, with only SIGCHLD): the parent
// returns the pid; the child becomes the guardian and never returns.
// Signals must be blocked on the calling thread.
TEXT ·rawForkGuardian(SB), NOSPLIT, $0-32
	MOVQ	region+0(FP), R15
	MOVQ	$17, DI // SIGCHLD
	MOVQ	stack+8(FP), SI
	XORQ	DX, DX
	XORQ	R10, R10
	XORQ	R8, R8
	MOVQ	$56, AX // clone
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	CMPQ	AX, $0xfffffffffffff001
	JLS	parent
	NEGQ	AX
	MOVQ	$0, pid+16(FP)
	MOVQ	AX, errno+24(FP)
	RET
parent:
	MOVQ	AX, pid+16(FP)
	MOVQ	$0, errno+24(FP)
	RET

child:
	// The descriptors, as os/exec would set them for a new program: the
	// null device on 0-2, the control socket on 3, the reports on 4, and
	// nothing else of the parent's (a pipe held open here would keep a
	// reader of locked-run's output waiting). First the three sources to 5
	// and above, so that placing one cannot overwrite another.
	DUPABOVE(PARAM_NULL, R12)
	DUPABOVE(PARAM_CTL, R13)
	DUPABOVE(PARAM_REP, R14)
	DUPTO(R12, $0)
	DUPTO(R12, $1)
	DUPTO(R12, $2)
	DUPTO(R13, $3)
	DUPTO(R14, $4)
	// close_range(5, ~0, 0); before Linux 5.9, one close at a time.
	MOVQ	$5, DI
	MOVQ	$-1, SI
	XORQ	DX, DX
	MOVQ	$436, AX // close_range
	SYSCALL
	CMPQ	AX, $0
	JEQ	closed
	MOVQ	$5, R12
closeone:
	MOVQ	R12, DI
	MOVQ	$3, AX // close
	SYSCALL
	INCQ	R12
	CMPQ	R12, $65536
	JLT	closeone
closed:

	// The arguments and the environment, as ps and /proc show them: those
	// of the guardian started anew, "lockedrun-guardian guard" (a name
	// `pkill -f locked-run` does not match) and "LOCKED_RUN_GUARDIAN=" (a
	// tool that finds a job's processes by a variable it set would count
	// locked-run's), NUL-filled to their old length. They are one block,
	// arguments then environment (forkGuardian passes none otherwise).
	MOVQ	PARAM_ARGS(R15), DI
	CMPQ	DI, $0
	JEQ	renamed
	MOVQ	PARAM_ARGSLEN(R15), CX
	ADDQ	PARAM_ENVLEN(R15), CX
	XORQ	AX, AX
	REP;	STOSB
	CMPQ	PARAM_ARGSLEN(R15), $25
	JLT	argsdone
	MOVQ	PARAM_ARGS(R15), DI
	PUT24($0x757264656b636f6c, $0x6964726175672d6e, $0x6472617567006e61) // "lockedrun-guardian\0guard"
argsdone:
	CMPQ	PARAM_ENVLEN(R15), $24
	JLT	renamed
	MOVQ	PARAM_ENV(R15), DI
	PUT24($0x525f44454b434f4c, $0x44524155475f4e55, $0x000000003d4e4149) // "LOCKED_RUN_GUARDIAN=\0\0\0\0"
renamed:

	// The name in ps -o comm and pkill's default match: "lockedrun-guard".
	MOVQ	$0x757264656b636f6c, AX
	MOVQ	AX, PATH(R15)
	MOVQ	$0x0064726175672d6e, AX
	MOVQ	AX, (PATH+8)(R15)
	MOVQ	$15, DI // PR_SET_NAME
	LEAQ	PATH(R15), SI
	MOVQ	$157, AX // prctl
	SYSCALL

	// Every signal blocked (they were at the fork; this is the guarantee).
	MOVQ	$-1, AX
	MOVQ	AX, SIGSET(R15)
	MOVQ	$0, DI // SIG_BLOCK
	LEAQ	SIGSET(R15), SI
	XORQ	DX, DX
	MOVQ	$8, R10
	MOVQ	$14, AX // rt_sigprocmask
	SYSCALL

	// The reported ones through a signalfd: HUP INT QUIT USR1 USR2 TERM TSTP.
	MOVQ	$0x84a07, AX
	MOVQ	AX, SIGSET(R15)
	MOVQ	$-1, DI
	LEAQ	SIGSET(R15), SI
	MOVQ	$8, DX
	MOVQ	$0x80000, R10 // SFD_CLOEXEC
	MOVQ	$289, AX // signalfd4
	SYSCALL
	CMPQ	AX, $0
	JLT	exit // no witness: forkGuardian's caller starts locked-run instead
	MOVQ	AX, SIGFD(R15)

	// ppoll once without waiting: were it refused (a seccomp policy), the
	// loop below would spin; refused now, locked-run is started instead.
	MOVL	$3, POLLFDS(R15)
	MOVW	$1, (POLLFDS+4)(R15)
	MOVL	AX, (POLLFDS+8)(R15)
	MOVW	$1, (POLLFDS+12)(R15)
	MOVQ	$0, TIMEOUT(R15)
	MOVQ	$0, (TIMEOUT+8)(R15)
	LEAQ	POLLFDS(R15), DI
	MOVQ	$2, SI
	LEAQ	TIMEOUT(R15), DX
	XORQ	R10, R10
	XORQ	R8, R8
	MOVQ	$271, AX // ppoll
	SYSCALL
	CMPQ	AX, $0
	JLT	exit

	// Ready.
	MOVB	$0, SCRATCH(R15)
	MOVQ	$4, DI
	LEAQ	SCRATCH(R15), SI
	MOVQ	$1, DX
	MOVQ	$1, AX // write
	SYSCALL

	MOVQ	$110, AX // getppid
	SYSCALL
	MOVQ	AX, OWNER(R15)

loop:
	MOVL	$3, POLLFDS(R15)
	MOVW	$1, (POLLFDS+4)(R15) // POLLIN
	MOVW	$0, (POLLFDS+6)(R15)
	MOVQ	SIGFD(R15), AX
	MOVL	AX, (POLLFDS+8)(R15)
	MOVW	$1, (POLLFDS+12)(R15)
	MOVW	$0, (POLLFDS+14)(R15)
	XORQ	BX, BX // no timeout
	CMPQ	WATCHING(R15), $0
	JEQ	dopoll
	NOWNS
	MOVQ	NEXTTICK(R15), BX
	SUBQ	AX, BX
	JGE	tickahead
	XORQ	BX, BX
tickahead:
	MOVQ	BX, AX
	XORQ	DX, DX
	MOVQ	$1000000000, CX
	DIVQ	CX
	MOVQ	AX, TIMEOUT(R15)
	MOVQ	DX, (TIMEOUT+8)(R15)
	LEAQ	TIMEOUT(R15), BX
dopoll:
	LEAQ	POLLFDS(R15), DI
	MOVQ	$2, SI
	MOVQ	BX, DX
	XORQ	R10, R10
	XORQ	R8, R8
	MOVQ	$271, AX // ppoll
	SYSCALL

	// Signals: one report byte per signalfd_siginfo (128 bytes, ssi_signo first).
	MOVWLZX	(POLLFDS+14)(R15), AX
	TESTQ	$1, AX
	JEQ	nosig
	MOVQ	SIGFD(R15), DI
	LEAQ	BUF(R15), SI
	MOVQ	$BUFCAP, DX
	MOVQ	$0, AX // read
	SYSCALL
	CMPQ	AX, $128
	JLT	nosig
	MOVQ	AX, R14
	XORQ	R13, R13
sigrecord:
	LEAQ	128(R13), AX
	CMPQ	AX, R14
	JGT	nosig
	MOVL	BUF(R15)(R13*1), AX
	MOVB	AX, SCRATCH(R15)
	MOVQ	$4, DI
	LEAQ	SCRATCH(R15), SI
	MOVQ	$1, DX
	MOVQ	$1, AX // write; an error means locked-run is gone, seen on fd 3
	SYSCALL
	ADDQ	$128, R13
	JMP	sigrecord
nosig:

	// The control socket.
	MOVWLZX	(POLLFDS+6)(R15), AX
	TESTQ	$0x19, AX // POLLIN | POLLERR | POLLHUP
	JEQ	watchstep
	MOVQ	LLEN(R15), AX
	CMPQ	AX, $LINECAP
	JLT	room
	// A line longer than the buffer is dropped (locked-run's are short).
	XORQ	AX, AX
	MOVQ	AX, LLEN(R15)
room:
	LEAQ	LINE(R15)(AX*1), BX
	MOVQ	BX, IOV(R15)
	MOVQ	$LINECAP, BX
	SUBQ	AX, BX
	MOVQ	BX, (IOV+8)(R15)
	MOVQ	$0, MSG(R15)
	MOVQ	$0, (MSG+8)(R15)
	LEAQ	IOV(R15), BX
	MOVQ	BX, (MSG+16)(R15)
	MOVQ	$1, (MSG+24)(R15)
	LEAQ	CTRL(R15), BX
	MOVQ	BX, (MSG+32)(R15)
	MOVQ	$CTRLCAP, (MSG+40)(R15)
	MOVQ	$0, (MSG+48)(R15)
	// The descriptors that come with it are now ours, and held: nothing
	// here ever closes them.
	MOVQ	$3, DI
	LEAQ	MSG(R15), SI
	MOVQ	$0x40000000, DX // MSG_CMSG_CLOEXEC
	MOVQ	$47, AX // recvmsg
	SYSCALL
	CMPQ	AX, $-4 // EINTR
	JEQ	watchstep
	CMPQ	AX, $-11 // EAGAIN
	JEQ	watchstep
	CMPQ	AX, $0
	JLE	sweep // end of file or an error: locked-run died
	ADDQ	AX, LLEN(R15)

lines:
	// R12 = index of the first '\n' in LINE[0:LLEN]
	XORQ	R12, R12
	MOVQ	LLEN(R15), R13
findnl:
	CMPQ	R12, R13
	JGE	watchstep
	MOVBLZX	LINE(R15)(R12*1), AX
	CMPQ	AX, $10
	JEQ	gotline
	INCQ	R12
	JMP	findnl
gotline:
	// Trim the line LINE[0:R12] into [LSTART, LEND).
	XORQ	R8, R8
	MOVQ	R12, R9
trimhead:
	CMPQ	R8, R9
	JGE	trimmed
	MOVBLZX	LINE(R15)(R8*1), AX
	CMPQ	AX, $32
	JEQ	headspace
	SUBQ	$9, AX
	CMPQ	AX, $4
	JHI	trimtail
headspace:
	INCQ	R8
	JMP	trimhead
trimtail:
	CMPQ	R9, R8
	JLE	trimmed
	MOVBLZX	(LINE-1)(R15)(R9*1), AX
	CMPQ	AX, $32
	JEQ	tailspace
	SUBQ	$9, AX
	CMPQ	AX, $4
	JHI	trimmed
tailspace:
	DECQ	R9
	JMP	trimtail
trimmed:
	MOVQ	R8, LSTART(R15)
	MOVQ	R9, LEND(R15)
	CMPQ	R8, R9
	JGE	nextline
	// The command is the first word: one letter, then the end or a space.
	LEAQ	1(R8), R10
	CMPQ	R10, R9
	JEQ	oneword
	MOVBLZX	LINE(R15)(R10*1), AX
	CMPQ	AX, $32
	JNE	nextline
	INCQ	R10 // the argument starts after the space
oneword:
	MOVBLZX	LINE(R15)(R8*1), AX
	CMPQ	AX, $77 // 'M'
	JEQ	cmdmarker
	CMPQ	AX, $67 // 'C'
	JEQ	cmdchild
	CMPQ	AX, $87 // 'W'
	JEQ	cmdwatch
	JMP	nextline

cmdmarker:
	// MARKER = LINE[R10:R9]
	MOVQ	R9, CX
	SUBQ	R10, CX
	JGE	markerlen
	XORQ	CX, CX
markerlen:
	CMPQ	CX, $MARKERCAP
	JLE	markerfits
	XORQ	CX, CX // too long to hold: known as no marker
markerfits:
	MOVQ	CX, MLEN(R15)
	LEAQ	LINE(R15)(R10*1), SI
	LEAQ	MARKER(R15), DI
	REP;	MOVSB
	JMP	nextline

cmdchild:
	// CHILD = LINE[R10:R9] as a decimal number, 0 when it is not one.
	XORQ	AX, AX
	MOVQ	R10, R11
	CMPQ	R11, R9
	JGE	childbad
childdigit:
	CMPQ	R11, R9
	JGE	childdone
	MOVBLZX	LINE(R15)(R11*1), DX
	SUBQ	$48, DX
	CMPQ	DX, $9
	JHI	childbad
	IMULQ	$10, AX
	ADDQ	DX, AX
	INCQ	R11
	JMP	childdigit
childbad:
	XORQ	AX, AX
childdone:
	MOVQ	AX, CHILD(R15)
	JMP	nextline

cmdwatch:
	// Locked-run asks just before it stops; if it has not stopped a
	// second later, it did not (an orphaned group ignores SIGTSTP).
	NOWNS
	MOVQ	AX, NEXTTICK(R15)
	ADDQ	$1000000000, AX
	MOVQ	AX, NOTYET(R15)
	MOVQ	$0, SEEN(R15)
	MOVQ	$1, WATCHING(R15)

nextline:
	// LINE = LINE[R12+1:LLEN], copied forward onto itself.
	LEAQ	1(R12), SI
	MOVQ	LLEN(R15), CX
	SUBQ	SI, CX
	MOVQ	CX, LLEN(R15)
	LEAQ	LINE(R15)(SI*1), SI
	LEAQ	LINE(R15), DI
	REP;	MOVSB
	JMP	lines

watchstep:
	// After "W": continue locked-run when it is stopped and the child is
	// not; done once locked-run is seen running again after a stop, or gone.
	CMPQ	WATCHING(R15), $0
	JEQ	loop
	NOWNS
	CMPQ	AX, NEXTTICK(R15)
	JLT	loop
	ADDQ	$20000000, AX
	MOVQ	AX, NEXTTICK(R15)
	MOVQ	OWNER(R15), DI
	MOVQ	$1, R13
	JMP	state
ownerstate:
	CMPQ	AX, $0
	JEQ	watchdone
	CMPQ	AX, $90 // 'Z'
	JEQ	watchdone
	CMPQ	AX, $84 // 'T'
	JEQ	ownerstopped
	CMPQ	SEEN(R15), $0
	JNE	watchdone
	NOWNS
	CMPQ	AX, NOTYET(R15)
	JGT	watchdone
	JMP	loop
ownerstopped:
	MOVQ	$1, SEEN(R15)
	MOVQ	CHILD(R15), DI
	MOVQ	$2, R13
	JMP	state
childstate:
	CMPQ	AX, $84 // 'T'
	JEQ	loop
	CMPQ	AX, $116 // 't'
	JEQ	loop
	MOVQ	OWNER(R15), DI
	MOVQ	$18, SI // SIGCONT
	MOVQ	$62, AX // kill
	SYSCALL
watchdone:
	MOVQ	$0, WATCHING(R15)
	JMP	loop

state:
	// AX = the state letter of /proc/DI/stat, 0 when there is none;
	// returns to ownerstate (R13 = 1) or childstate.
	MOVQ	$1, SI
	MOVQ	$1, R12
	JMP	buildpath
statepath:
	MOVQ	$-100, DI // AT_FDCWD
	LEAQ	PATH(R15), SI
	MOVQ	$0x80000, DX // O_RDONLY | O_CLOEXEC
	XORQ	R10, R10
	MOVQ	$257, AX // openat
	SYSCALL
	CMPQ	AX, $0
	JLT	statenone
	MOVQ	AX, R14
	MOVQ	R14, DI
	LEAQ	BUF(R15), SI
	MOVQ	$BUFCAP, DX
	MOVQ	$0, AX // read
	SYSCALL
	MOVQ	AX, R9
	MOVQ	R14, DI
	MOVQ	$3, AX // close
	SYSCALL
	CMPQ	R9, $0
	JLE	statenone
	// "pid (comm) S ...": comm may hold spaces and parentheses, so the
	// state is two bytes after the last ')'.
	MOVQ	R9, R8
lastparen:
	DECQ	R8
	JLT	statenone
	MOVBLZX	BUF(R15)(R8*1), AX
	CMPQ	AX, $41 // ')'
	JNE	lastparen
	LEAQ	2(R8), AX
	CMPQ	AX, R9
	JGE	statenone
	MOVBLZX	BUF(R15)(AX*1), AX
	JMP	statereturn
statenone:
	XORQ	AX, AX
statereturn:
	CMPQ	R13, $1
	JEQ	ownerstate
	JMP	childstate

buildpath:
	// PATH = "/proc/<DI>/stat" (SI = 1) or "/proc/<DI>/environ" (SI = 2),
	// returns to statepath (R12 = 1) or environpath.
	MOVQ	$0x2f636f72702f, AX // "/proc/"
	MOVQ	AX, PATH(R15)
	MOVQ	DI, AX
	XORQ	R9, R9
	MOVQ	$10, R10
todigits:
	XORQ	DX, DX
	DIVQ	R10
	ADDQ	$48, DX
	MOVB	DX, DIGITS(R15)(R9*1)
	INCQ	R9
	CMPQ	AX, $0
	JNE	todigits
	LEAQ	(PATH+6)(R15), R8
copydigits:
	DECQ	R9
	MOVBLZX	DIGITS(R15)(R9*1), AX
	MOVB	AX, (R8)
	INCQ	R8
	CMPQ	R9, $0
	JNE	copydigits
	CMPQ	SI, $1
	JNE	environsuffix
	MOVQ	$0x746174732f, AX // "/stat\0"
	MOVQ	AX, (R8)
	JMP	pathreturn
environsuffix:
	MOVQ	$0x6e6f7269766e652f, AX // "/environ"
	MOVQ	AX, (R8)
	MOVB	$0, 8(R8)
pathreturn:
	CMPQ	R12, $1
	JEQ	statepath
	JMP	environpath

sweep:
	// Locked-run died without saying it was done.
	MOVQ	CHILD(R15), DI
	CMPQ	DI, $0
	JLE	nochild
	MOVQ	$9, SI // SIGKILL
	MOVQ	$62, AX // kill
	SYSCALL
nochild:
	CMPQ	MLEN(R15), $0
	JEQ	exit
	MOVQ	$39, AX // getpid
	SYSCALL
	MOVQ	AX, SELF(R15)
	NOWNS
	ADDQ	$900000000, AX
	MOVQ	AX, DEADLINE(R15)
sweeponce:
	MOVQ	$0, FOUND(R15)
	MOVQ	$0x636f72702f, AX // "/proc\0"
	MOVQ	AX, PATH(R15)
	MOVQ	$-100, DI
	LEAQ	PATH(R15), SI
	MOVQ	$0x90000, DX // O_RDONLY | O_DIRECTORY | O_CLOEXEC
	XORQ	R10, R10
	MOVQ	$257, AX // openat
	SYSCALL
	CMPQ	AX, $0
	JLT	exit
	MOVQ	AX, DIRFD(R15)
dents:
	MOVQ	DIRFD(R15), DI
	LEAQ	DENTS(R15), SI
	MOVQ	$DENTSCAP, DX
	MOVQ	$217, AX // getdents64
	SYSCALL
	CMPQ	AX, $0
	JLE	swept
	MOVQ	AX, DENTN(R15)
	MOVQ	$0, DOFF(R15)
dent:
	// struct linux_dirent64: d_reclen at 16, d_name at 19.
	MOVQ	DOFF(R15), BX
	CMPQ	BX, DENTN(R15)
	JGE	dents
	MOVWLZX	(DENTS+16)(R15)(BX*1), AX
	ADDQ	AX, DOFF(R15)
	LEAQ	(DENTS+19)(R15)(BX*1), R8
	XORQ	AX, AX
	XORQ	R9, R9
namedigit:
	MOVBLZX	(R8)(R9*1), DX
	CMPQ	DX, $0
	JEQ	nameend
	SUBQ	$48, DX
	CMPQ	DX, $9
	JHI	dent // not a process
	IMULQ	$10, AX
	ADDQ	DX, AX
	INCQ	R9
	JMP	namedigit
nameend:
	CMPQ	R9, $0
	JEQ	dent
	CMPQ	AX, SELF(R15)
	JEQ	dent
	MOVQ	AX, CURPID(R15)
	MOVQ	AX, DI
	MOVQ	$2, SI
	MOVQ	$2, R12
	JMP	buildpath
environpath:
	// Does /proc/CURPID/environ hold the entry MARKER[0:MLEN] exactly?
	MOVQ	$-100, DI
	LEAQ	PATH(R15), SI
	MOVQ	$0x80000, DX
	XORQ	R10, R10
	MOVQ	$257, AX // openat
	SYSCALL
	CMPQ	AX, $0
	JLT	dent
	MOVQ	AX, ENVFD(R15)
	MOVQ	$0, POS(R15) // bytes of the marker matched so far; -1: not this entry
	MOVQ	$0, MATCH(R15)
envread:
	MOVQ	ENVFD(R15), DI
	LEAQ	BUF(R15), SI
	MOVQ	$BUFCAP, DX
	MOVQ	$0, AX // read
	SYSCALL
	CMPQ	AX, $0
	JLE	envend
	MOVQ	AX, R9
	XORQ	R8, R8
	MOVQ	POS(R15), R10
	MOVQ	MLEN(R15), BX
envbyte:
	CMPQ	R8, R9
	JGE	envsave
	MOVBLZX	BUF(R15)(R8*1), AX
	INCQ	R8
	CMPQ	AX, $0
	JNE	envchar
	CMPQ	R10, BX
	JEQ	envmatch
	XORQ	R10, R10
	JMP	envbyte
envchar:
	CMPQ	R10, $0
	JLT	envbyte
	CMPQ	R10, BX
	JGE	envmiss
	MOVBLZX	MARKER(R15)(R10*1), DX
	CMPQ	AX, DX
	JNE	envmiss
	INCQ	R10
	JMP	envbyte
envmiss:
	MOVQ	$-1, R10
	JMP	envbyte
envsave:
	MOVQ	R10, POS(R15)
	JMP	envread
envend:
	// The last entry may have no NUL after it.
	MOVQ	POS(R15), R10
	CMPQ	R10, MLEN(R15)
	JNE	envclose
envmatch:
	MOVQ	$1, MATCH(R15)
envclose:
	MOVQ	ENVFD(R15), DI
	MOVQ	$3, AX // close
	SYSCALL
	CMPQ	MATCH(R15), $0
	JEQ	dent
	MOVQ	CURPID(R15), DI
	MOVQ	$9, SI // SIGKILL
	MOVQ	$62, AX // kill
	SYSCALL
	INCQ	FOUND(R15)
	JMP	dent
swept:
	MOVQ	DIRFD(R15), DI
	MOVQ	$3, AX // close
	SYSCALL
	// Forks racing with the kill are caught by the next sweep.
	CMPQ	FOUND(R15), $0
	JEQ	exit
	NOWNS
	CMPQ	AX, DEADLINE(R15)
	JGT	exit
	MOVQ	$0, TIMEOUT(R15)
	MOVQ	$5000000, (TIMEOUT+8)(R15)
	LEAQ	TIMEOUT(R15), DI
	XORQ	SI, SI
	MOVQ	$35, AX // nanosleep
	SYSCALL
	JMP	sweeponce

exit:
	XORQ	DI, DI
	MOVQ	$231, AX // exit_group
	SYSCALL
	JMP	exit
