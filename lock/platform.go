package lock

// A build on an operating system other than Linux or macOS stops here with
// one message (see internal/platform); the flock backend is Unix-only.
import _ "github.com/locked-run/locked-run/internal/platform"
