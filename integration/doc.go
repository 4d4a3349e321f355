// Package integration holds end-to-end tests of the built locked-run binary
// against DynamoDB Local (started by internal/ddblocal) and the host-local
// backend, with faults injected through internal/faultproxy and real
// signals, process kills and pseudo-terminals. It has no non-test code
// beyond this comment.
package integration
