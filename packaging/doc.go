// Package packaging holds what ships locked-run besides the binary, and
// the tests that run it as users will: install.sh (the GitHub Action's
// installer: a release archive, checksum verified) and action-run.sh (the
// Action's step that runs a command under the lock), and tests that build
// the container image (../Dockerfile) and run locked-run in it as PID 1.
package packaging
