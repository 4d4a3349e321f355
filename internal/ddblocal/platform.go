package ddblocal

// DynamoDB Local runs in its own process group (sysProcAttr), killed as a
// group by stop: Unix only, see internal/platform.
import _ "github.com/locked-run/locked-run/internal/platform"
