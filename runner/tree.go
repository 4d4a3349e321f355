//go:build linux || darwin

package runner

import (
	"errors"
	"maps"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/locked-run/locked-run/internal/proctree"
)

// The tree is the child and everything it started. Nothing of it may run
// once the lock is released, so the runner finds all of it, stops it, and
// waits until it is gone before Done is closed.
//
// Finding it is the platform's part, members (tree_linux.go,
// tree_darwin.go): on Linux this process is a subreaper and the tree is
// found among its children; macOS has no subreaper and finds orphans by
// the tree's marker and process groups.

// treePoll is how often the tree is looked at while waiting for it to go:
// often enough that the lock is released promptly after the last process
// exits, rarely enough to cost nothing.
const treePoll = 20 * time.Millisecond

// treeKillWait bounds the wait after SIGKILL. Only a process stuck in the
// kernel (uninterruptible I/O) can survive SIGKILL for long; we say so
// rather than hold the lock forever.
const treeKillWait = 5 * time.Second

// treeGone reports whether nothing of the tree runs. One walk that finds
// only zombies is not proof: a process that forks and exits between our
// read of its parent's children and our look at it leaves its successor
// re-parented to us, after our own children were read. So a second walk must
// find nothing running either, through the same processes (every child of
// ours among them): a process that died after the first walk began was
// running then, so it was visited (or its running parent was); a second
// walk through the very same processes, all dead, finds whatever they left.
func (p *Process) treeGone() bool {
	if len(p.members()) > 0 {
		return false
	}
	p.treeMu.Lock()
	first := p.visited
	p.treeMu.Unlock()
	if len(p.members()) > 0 {
		return false
	}
	p.treeMu.Lock()
	defer p.treeMu.Unlock()
	return maps.Equal(first, p.visited)
}

// reapOrphans reaps our children that have exited and belong to the tree
// (or all but the child and the guardian, as PID 1), leaving the child to
// cmd.Wait.
func (p *Process) reapOrphans(all bool) {
	gpid := p.guardianPid()
	for _, c := range ownChildren(p.forker) {
		if c == p.pid || c == gpid {
			continue
		}
		p.treeMu.Lock()
		ours := p.seen[c]
		p.treeMu.Unlock()
		if !ours && !all {
			continue
		}
		if proctree.State(c) != 'Z' {
			continue
		}
		var ws unix.WaitStatus
		unix.Wait4(c, &ws, unix.WNOHANG, nil) //nolint:errcheck // another reaper (PID 1 loop) may have been first
	}
}

// terminate sends SIGTERM, and SIGCONT so that a stopped process acts on
// it, to every member of the tree that has not had it yet, and starts the
// kill-after clock if it is not running.
func (p *Process) terminate() {
	pids := p.members()
	p.treeMu.Lock()
	defer p.treeMu.Unlock()
	if p.killAt.IsZero() {
		p.killAt = time.Now().Add(p.killAfter)
	}
	for _, pid := range pids {
		if p.termed[pid] {
			continue
		}
		p.termed[pid] = true
		p.log.Debug("stopping", "pid", pid, "signal", "SIGTERM")
		signalPid(pid, syscall.SIGTERM)
		signalPid(pid, syscall.SIGCONT)
	}
}

// signalPid sends sig to pid; a process that is already gone is not an
// error. Pids come from a walk of our own tree moments before: a pid can be
// reused only after its zombie was reaped, by its parent, inside the tree.
func signalPid(pid int, sig syscall.Signal) {
	if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return
	}
}

// finishTree returns once no member of the tree but the child's zombie is
// left: those still running get SIGTERM, then SIGKILL at the kill-after
// deadline (which a stop on the context may have started already).
func (p *Process) finishTree(pid1 bool) {
	if p.treeGone() {
		p.reapOrphans(pid1)
		return
	}
	p.log.Info("stopping what the command left running", "pid", p.pid, "kill_after", p.killAfter)
	p.terminate()
	tick := time.NewTicker(treePoll)
	defer tick.Stop()
	killed := time.Time{}
	for {
		p.reapOrphans(pid1)
		if p.treeGone() {
			return
		}
		left := p.members()
		p.treeMu.Lock()
		killAt := p.killAt
		p.treeMu.Unlock()
		now := time.Now()
		switch {
		case !killed.IsZero() && now.Sub(killed) > treeKillWait:
			p.log.Error("processes survive SIGKILL; giving up on them", "pids", left)
			return
		case now.After(killAt):
			if killed.IsZero() {
				p.log.Warn("still running after kill-after, killing", "pids", left, "kill_after", p.killAfter)
				killed = now
			}
			for _, pid := range left {
				signalPid(pid, syscall.SIGKILL)
			}
		default:
			// New processes forked meanwhile get their SIGTERM too.
			p.terminate()
		}
		<-tick.C
	}
}
