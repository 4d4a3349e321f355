//go:build (linux && !amd64) || darwin

package runner

import "errors"

// tinyGuardian is linux/amd64's guardian program (tinyguard_linux_amd64.go);
// elsewhere the guardian is locked-run started again.
func tinyGuardian() (string, error) { return "", errors.ErrUnsupported }
