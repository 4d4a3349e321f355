// The Go runtime settings below are made in code, not with build flags,
// so that `go install` users get them as `make build` users do.
//
// containermaxprocs=0 and updatemaxprocs=0 make GOMAXPROCS the number of
// CPUs, as it was before Go 1.25, instead of a limit the runtime works out
// from the cgroup files (/proc/self/cgroup, mountinfo, the cpu
// controller's quota) at every start and again every second. That start-up
// reading cost 0.4 ms of CPU per run here, an eighth of `locked-run
// --version` (BENCHMARKS.md). locked-run's own work is a few requests and
// a child to wait for: it never keeps more than one CPU busy, so the cgroup
// limit has nothing to bound. GOMAXPROCS in the environment still wins.

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

package main
