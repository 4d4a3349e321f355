//go:build linux || darwin

package runner

import "github.com/locked-run/locked-run/internal/proctree"

// treeWalk finds the tree in one read of the process table, the way macOS
// must (tree_darwin.go says why and what escapes). It is a plain function
// of the table so that it is tested on Linux too (treewalk_test.go).
type treeWalk struct {
	table    []proctree.Proc
	self     int // this process
	guardian int // our guardian, never part of the tree
	ownGroup int // our process group: the caller's job, never swept
	child    int
	uid      uint32 // whose orphans' environments may be read (0: all)
	// hasMarker reports whether a process carries the tree's marker; nil
	// means not to look (the watch while the child runs).
	hasMarker func(pid int) bool
	seen      map[int]bool // updated: every member found
	groups    map[int]bool // updated: groups led by a member, while they exist
}

// run returns the pids of the tree's processes that are not zombies.
func (w treeWalk) run() []int {
	kids := map[int][]proctree.Proc{}
	present := map[int]bool{}
	for _, pr := range w.table {
		kids[pr.Ppid] = append(kids[pr.Ppid], pr)
		present[pr.Pgid] = true
	}
	// A group is forgotten once it has no members: only then can its
	// number be handed out again (setpgid(2)).
	for g := range w.groups {
		if !present[g] {
			delete(w.groups, g)
		}
	}
	ours := func(pr proctree.Proc) bool {
		return pr.Pid != w.self && pr.Pid != w.guardian && pr.Pid > 1
	}
	found := map[int]bool{}
	var out []int
	var walk func(pr proctree.Proc)
	walk = func(pr proctree.Proc) {
		if found[pr.Pid] || !ours(pr) {
			return
		}
		found[pr.Pid] = true
		w.seen[pr.Pid] = true
		if pr.Pgid == pr.Pid && pr.Pgid != w.ownGroup {
			w.groups[pr.Pgid] = true
		}
		if pr.State != 'Z' {
			out = append(out, pr.Pid)
		}
		for _, c := range kids[pr.Pid] {
			walk(c)
		}
	}
	for _, pr := range w.table {
		switch {
		case !ours(pr):
		case pr.Ppid == w.self && (pr.Pid == w.child || w.seen[pr.Pid]):
			walk(pr)
		case w.hasMarker != nil && (pr.Ppid == w.self || pr.Ppid == 1) &&
			(w.uid == 0 || pr.Uid == w.uid) && w.hasMarker(pr.Pid):
			walk(pr)
		}
	}
	// Groups found in this walk count at once; walk again until no group
	// adds members.
	for more := true; more; {
		more = false
		for _, pr := range w.table {
			if !found[pr.Pid] && ours(pr) && w.groups[pr.Pgid] {
				walk(pr)
				more = true
			}
		}
	}
	return out
}
