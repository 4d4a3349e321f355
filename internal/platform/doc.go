// Package platform holds no code: it exists so that building locked-run on
// an operating system it does not support fails with one clear message.
//
// locked-run runs on Linux and macOS (darwin). Its contract rests on
// flock(2), process groups, job control on a terminal and POSIX signal
// semantics, which Windows and Plan 9 do not have. Every package with
// platform code imports this one (blank import) and keeps its Unix code
// in files built only on linux or darwin, so that on any other GOOS the
// first and only compile error is the one in unsupported.go:
//
//	undefined: locked_run_builds_only_on_linux_and_darwin__see_README_Platforms
//
// platform_test.go checks, with go list per GOOS, that each platform's
// build selects the files it should.
package platform
