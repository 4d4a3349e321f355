package runner

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/locked-run/locked-run/internal/proctree"
)

// Finding the tree on macOS, which has no subreaper: a descendant whose
// parent exits is re-parented to launchd (pid 1), out of our subtree. The
// tree is found in one read of the process table (kern.proc.all) as:
//
//   - our children that are the child, were seen in the tree before, or
//     carry the marker, and their subtrees (as on Linux);
//   - any process re-parented to launchd whose environment holds the
//     tree's marker (kern.procargs2; only our own user's processes, or
//     everyone's as root, can be read), and its subtree;
//   - any process in a process group whose leader was seen in the tree (a
//     member that called setsid or setpgid; the subtree is looked at every
//     treeWatch while the child runs, and at every look while finishing),
//     and its subtree: the job of a job-control subshell, or a daemon's
//     worker whose group leader lived long enough to be seen.
//
// A group is remembered only while it has members at each look: setpgid(2)
// keeps a group id from being reused while the group exists, and macOS
// hands out pids in sequence, so a group that vanishes is forgotten long
// before its number could come back. What escapes: a process whose parent
// exited, that does not carry the marker (scrubbed environment, or another
// user's process we may not read) and is not in a group whose leader was
// seen: a daemon that double-forks within a second and clears its
// environment, or a background job of a script (it stays in our own group,
// which is the caller's job and not ours to sweep) started with env -i.

// treeWatch is how often the tree is looked at while the child runs, so
// that the process groups its members create are known when an orphan is
// left in one: one kern.proc.all read, a fraction of a millisecond.
const treeWatch = time.Second

// watchTree looks at the child's subtree every treeWatch until exited is
// closed, remembering its members and the groups they lead. It reads no
// environments: the marker finds orphans whenever members runs.
func (p *Process) watchTree(exited <-chan struct{}) {
	tick := time.NewTicker(treeWatch)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return
		case <-tick.C:
		}
		p.walkTable(false)
	}
}

// treeState is what members keeps beyond seen: the groups created in the
// tree.
type treeState struct {
	groups map[int]bool
}

// members returns the pids of the tree's processes that are still running
// (zombies excluded). It remembers every member it finds, and the groups
// they lead.
func (p *Process) members() []int { return p.walkTable(true) }

// walkTable is members; without sweep it only follows parents from our
// children and the known groups, reading no process's environment.
func (p *Process) walkTable(sweep bool) []int {
	p.treeMu.Lock()
	defer p.treeMu.Unlock()
	if p.treeOS.groups == nil {
		p.treeOS.groups = map[int]bool{}
	}
	w := treeWalk{
		table:    proctree.Table(),
		self:     os.Getpid(),
		guardian: p.guardianPid(),
		ownGroup: unix.Getpgrp(),
		child:    p.pid,
		uid:      uint32(os.Geteuid()),
		seen:     p.seen,
		groups:   p.treeOS.groups,
	}
	if sweep {
		w.hasMarker = func(pid int) bool { return proctree.HasMarker(pid, p.marker) }
	}
	return w.run()
}
