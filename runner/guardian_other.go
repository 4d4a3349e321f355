//go:build (linux && !amd64) || darwin

package runner

import (
	"errors"
	"os"
)

// forkGuardian is linux/amd64's guardian (guardian_linux_amd64.go);
// elsewhere the guardian is locked-run started again.
func forkGuardian(*os.File, *os.File) (int, error) { return 0, errors.ErrUnsupported }
