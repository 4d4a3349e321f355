//go:build !linux && !darwin

package platform

// The deliberate compile error below is the message a build on an
// unsupported GOOS prints: locked-run needs flock(2), process groups and
// POSIX signals and terminals (see README, Platforms).
var _ = locked_run_builds_only_on_linux_and_darwin__see_README_Platforms
