package proctree

// A build on an operating system other than Linux or macOS stops here with
// one message (see internal/platform); the rest of the package is built on
// linux and darwin only.
import _ "github.com/locked-run/locked-run/internal/platform"
