package runner

import (
	"os"

	"github.com/locked-run/locked-run/internal/proctree"
)

// Finding the tree on Linux: this process is a subreaper, so a descendant
// whose parent exits (a background job of a script that ended, a daemon
// that forked twice or called setsid) is re-parented to us and not to init.
// The tree is then the child's subtree plus those of our other children
// that belong to it: one seen in the tree before, or one whose environment
// holds the tree's marker (Config.Marker). Other children of ours (the
// guardian, a helper some library started) are left alone.

// treeState is what members keeps beyond seen: nothing, on Linux.
type treeState struct{}

// members returns the pids of the tree's processes that are still running
// (zombies excluded), the child first when it runs. It remembers every
// member it finds, for when their parents exit.
func (p *Process) members() []int {
	p.treeMu.Lock()
	defer p.treeMu.Unlock()
	self := os.Getpid()
	var out []int
	var walk func(pid int)
	walk = func(pid int) {
		p.seen[pid] = true
		if st := proctree.State(pid); st != 0 && st != 'Z' && st != 'X' {
			out = append(out, pid)
		}
		for _, c := range children(pid) {
			walk(c)
		}
	}
	for _, c := range children(self) {
		switch {
		case c == p.guardianPid():
		case c == p.pid, p.seen[c], proctree.HasMarker(c, p.marker):
			walk(c)
		}
	}
	return out
}

// watchTree is nothing on Linux: orphans stay our children, so the tree can
// be found whenever it is needed.
func (p *Process) watchTree(<-chan struct{}) {}
