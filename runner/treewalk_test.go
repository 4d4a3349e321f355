package runner

import (
	"slices"
	"testing"

	"github.com/locked-run/locked-run/internal/proctree"
)

// The macOS tree walk (tree_darwin.go) on made-up process tables: which
// processes it counts as the tree's, which groups it remembers and for how
// long, and whose environment it reads.

const (
	tSelf     = 100
	tGuardian = 101
	tChild    = 102
	tOwnGroup = 90 // the caller's job: us, the guardian, the child
	tUID      = 501
)

func row(pid, ppid, pgid int, st byte) proctree.Proc {
	return proctree.Proc{Pid: pid, Ppid: ppid, Pgid: pgid, Uid: tUID, State: st}
}

// base is a table with launchd, us, the guardian, the child and an
// unrelated process of the same user in our group (the other end of a
// pipeline).
func base() []proctree.Proc {
	return []proctree.Proc{
		{Pid: 0, Ppid: 0, Pgid: 0, State: 'R'},
		{Pid: 1, Ppid: 0, Pgid: 1, State: 'R'},
		row(tSelf, 50, tOwnGroup, 'R'),
		row(tGuardian, tSelf, tOwnGroup, 'R'),
		row(tChild, tSelf, tOwnGroup, 'R'),
		row(95, 50, tOwnGroup, 'R'),
	}
}

type walker struct {
	seen, groups map[int]bool
	marked       map[int]bool
	asked        []int
}

func newWalker(marked ...int) *walker {
	w := &walker{seen: map[int]bool{}, groups: map[int]bool{}, marked: map[int]bool{}}
	for _, pid := range marked {
		w.marked[pid] = true
	}
	return w
}

func (w *walker) walk(table []proctree.Proc, sweep bool) []int {
	tw := treeWalk{
		table: table, self: tSelf, guardian: tGuardian, ownGroup: tOwnGroup,
		child: tChild, uid: tUID, seen: w.seen, groups: w.groups,
	}
	if sweep {
		tw.hasMarker = func(pid int) bool {
			w.asked = append(w.asked, pid)
			return w.marked[pid]
		}
	}
	got := tw.run()
	slices.Sort(got)
	return got
}

func wantPids(t *testing.T, what string, got []int, want ...int) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: members %v, want %v", what, got, want)
	}
}

func TestTreeWalkFindsTheChildsSubtreeOnly(t *testing.T) {
	w := newWalker()
	table := append(base(),
		row(200, tChild, tOwnGroup, 'R'), // a background job of the child
		row(201, 200, tOwnGroup, 'R'),
		row(202, 200, tOwnGroup, 'Z'), // a zombie is no longer running
		row(300, 1, 300, 'R'),         // someone else's daemon
	)
	wantPids(t, "subtree", w.walk(table, true), tChild, 200, 201)
	if !w.seen[202] || w.seen[300] || w.seen[tGuardian] || w.seen[95] {
		t.Errorf("seen %v: want the subtree, zombie included, nothing else", w.seen)
	}
}

func TestTreeWalkFindsMarkedOrphansOfOurUserOnly(t *testing.T) {
	w := newWalker(300, 400)
	table := append(base(),
		row(300, 1, tOwnGroup, 'R'), // orphan with the marker, in our group
		row(301, 300, tOwnGroup, 'R'),
		row(310, 1, 310, 'R'),                                           // orphan without it
		proctree.Proc{Pid: 400, Ppid: 1, Pgid: 400, Uid: 0, State: 'R'}, // root's: cannot be read
		row(500, 77, 500, 'R'),                                          // marked? never asked: not an orphan nor our child
	)
	wantPids(t, "sweep", w.walk(table, true), tChild, 300, 301)
	for _, pid := range w.asked {
		if pid == 400 || pid == 500 || pid == tGuardian || pid == 1 {
			t.Errorf("read the environment of %d", pid)
		}
	}
	w2 := newWalker(300)
	wantPids(t, "watch (no sweep)", w2.walk(table, false), tChild)
	if len(w2.asked) != 0 {
		t.Errorf("the watch read environments: %v", w2.asked)
	}
}

func TestTreeWalkKeepsGroupsLedByMembersWhileTheyExist(t *testing.T) {
	w := newWalker()
	// The child starts a process that calls setsid (leader of group 210)
	// and forks a worker in that group.
	t1 := append(base(),
		row(210, tChild, 210, 'R'),
		row(211, 210, 210, 'R'),
	)
	wantPids(t, "while the leader lives", w.walk(t1, false), tChild, 210, 211)
	if !w.groups[210] {
		t.Fatalf("group 210 not remembered: %v", w.groups)
	}
	// The leader exits; its worker, re-parented to launchd, with its
	// environment scrubbed, forks again.
	t2 := append(base(),
		row(211, 1, 210, 'R'),
		row(212, 211, 210, 'R'),
	)
	wantPids(t, "orphaned worker", w.walk(t2, true), tChild, 211, 212)
	// The group empties: it is forgotten, so a later group that happens
	// to get the same number is not ours.
	wantPids(t, "group gone", w.walk(base(), true), tChild)
	if w.groups[210] {
		t.Errorf("an empty group is still remembered")
	}
	t4 := append(base(), row(210, 1, 210, 'R'))
	wantPids(t, "a new group 210", w.walk(t4, true), tChild)
}

func TestTreeWalkNeverSweepsOurOwnGroup(t *testing.T) {
	w := newWalker()
	// A member in our group, and an orphan without the marker left in
	// our group: the group is the caller's job (a pipeline's other end, 95,
	// is in it), so neither makes the group the tree's.
	t1 := append(base(), row(220, tChild, tOwnGroup, 'R'))
	w.walk(t1, true)
	if w.groups[tOwnGroup] || w.groups[tSelf] {
		t.Errorf("our own group was remembered: %v", w.groups)
	}
	t2 := append(base(), row(220, 1, tOwnGroup, 'R'))
	wantPids(t, "orphan in our group, no marker", w.walk(t2, true), tChild)
}

func TestTreeWalkKeepsChildrenSeenBefore(t *testing.T) {
	w := newWalker()
	// A grandchild whose parent (the child) exited is, on macOS, launchd's;
	// one that was our own child (seen before) stays found without the
	// marker.
	t1 := append(base(), row(230, tSelf, 230, 'R'))
	wantPids(t, "unknown child of ours", w.walk(t1, true), tChild)
	w.seen[230] = true
	wantPids(t, "known child of ours", w.walk(t1, true), tChild, 230)
}
