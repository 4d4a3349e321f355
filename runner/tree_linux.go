package runner

import "github.com/locked-run/locked-run/internal/proctree"

// Finding the tree on Linux: this process is a subreaper, so a descendant
// whose parent exits (a background job of a script that ended, a daemon
// that forked twice or called setsid) is re-parented to us and not to init.
// The tree is then the child's subtree plus those of our other children
// that belong to it: one seen in the tree before, one whose environment
// holds the tree's marker (Config.Marker), or one that shows no environment
// at all. Other children of ours (the guardian, a helper some library
// started) are left alone.

// treeState is what members keeps beyond seen: nothing, on Linux.
type treeState struct{}

// members returns the pids of the tree's processes that are still running
// (zombies excluded), the child first when it runs. It remembers every
// member it finds, for when their parents exit.
func (p *Process) members() []int {
	p.treeMu.Lock()
	defer p.treeMu.Unlock()
	var out []int
	p.visited = map[int]bool{}
	var walk func(pid int)
	walk = func(pid int) {
		p.seen[pid] = true
		p.visited[pid] = true
		if st := proctree.State(pid); st != 0 && st != 'Z' && st != 'X' {
			out = append(out, pid)
		}
		for _, c := range children(pid) {
			walk(c)
		}
	}
	for _, c := range ownChildren(p.forker) {
		if c != p.guardianPid() {
			// Every child counts for treeGone, member or not: a zombie's
			// environment is empty, so a member that died before it was
			// first seen does not look like one.
			p.visited[c] = true
		}
		switch {
		case c == p.guardianPid():
		case c == p.pid, p.seen[c], proctree.HasMarker(c, p.marker):
			walk(c)
		case p.marker != "" && proctree.Anonymous(c):
			// A child of ours with no environment to show: one in the
			// middle of an exec, whose marker is not readable yet, or
			// one started with a scrubbed environment. Only the tree
			// leaves orphans to us, so it belongs to it.
			walk(c)
		}
	}
	return out
}

// watchTree is nothing on Linux: orphans stay our children, so the tree can
// be found whenever it is needed.
func (p *Process) watchTree(<-chan struct{}) {}
