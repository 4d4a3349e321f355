package lock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// A ForeignItemError reports that the item of Key was not written by
// locked-run, so it is left alone. It matches ErrForeignItem and ErrHeld.
type ForeignItemError struct {
	Key string
	// Newer is set when the item is a lock of a later locked-run version.
	Newer bool
}

func (e *ForeignItemError) Error() string {
	if e.Newer {
		return fmt.Sprintf("the lock item of key %q was written by a newer locked-run; upgrade this one", e.Key)
	}
	return fmt.Sprintf("%s (no locked-run %s); use another --key", ErrForeignItem, attrSchema)
}

// Is reports whether target is ErrForeignItem or ErrHeld.
func (e *ForeignItemError) Is(target error) bool {
	return target == ErrForeignItem || target == ErrHeld
}

// conditionFailedError is a conditional write refused by DynamoDB. Item is
// the item as it was when the condition was checked (ReturnValuesOnConditionCheckFailure
// ALL_OLD): nil when there was no item, or when the endpoint does not send it
// back (ItemKnown is then false).
type conditionFailedError struct {
	Item      map[string]types.AttributeValue
	ItemKnown bool
}

func (e *conditionFailedError) Error() string { return "condition check failed" }

// errResourceInUse is DynamoDB's answer to creating a table that exists.
var errResourceInUse = errors.New("table already exists")

// errValidation is DynamoDB's answer to a request it cannot accept.
var errValidation = errors.New("request refused by DynamoDB")

// transientError is a failure that may go away by trying again: throttling,
// a 5xx, a timeout, a broken connection. cause, when set, says more (a
// *connectError).
type transientError struct {
	msg   string
	cause error
}

func (e *transientError) Error() string { return e.msg }
func (e *transientError) Unwrap() error { return e.cause }

// credentialsMessage is the one line for credentials that cannot be had.
func credentialsMessage(err error) error {
	why := innermost(err).Error()
	if errors.Is(err, context.DeadlineExceeded) {
		why = "their source (such as the instance metadata service) did not answer in time"
	}
	return fmt.Errorf("%w (%s): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run `aws sso login`, or give this host a role",
		ErrCredentials, why)
}

func isTransient(err error) bool {
	var t *transientError
	return errors.As(err, &t)
}

// translate is the one place that looks at SDK errors. It returns nil for
// nil, a *conditionFailedError for a failed condition, an error matching
// ErrTableNotFound or ErrAccessDenied, a *transientError for what may pass,
// and otherwise an error that carries the message only. No SDK error type
// escapes through it. table names the table in ErrTableNotFound.
func translate(err error, table string) error {
	if err == nil {
		return nil
	}
	var credErr *credentialsError
	if errors.As(err, &credErr) {
		return credentialsMessage(credErr.err)
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return &conditionFailedError{Item: ccf.Item, ItemKnown: ccf.Item != nil}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch code := apiErr.ErrorCode(); code {
		case "ResourceNotFoundException":
			return fmt.Errorf("table %q: %w", table, ErrTableNotFound)
		case "ResourceInUseException":
			return fmt.Errorf("%w: %s", errResourceInUse, apiErr.ErrorMessage())
		case "InvalidSignatureException", "SignatureDoesNotMatch", "RequestTimeTooSkewed", "AuthFailure",
			"AccessDeniedException", "RequestExpired", "RequestInTheFuture":
			if probableSkew(err) {
				return &skewError{msg: fmt.Sprintf("%s: %s", code, apiErr.ErrorMessage())}
			}
			return fmt.Errorf("%w: %s: %s", ErrAccessDenied, code, apiErr.ErrorMessage())
		case "ValidationException":
			return fmt.Errorf("%w: %s", errValidation, apiErr.ErrorMessage())
		case "UnrecognizedClientException",
			"ExpiredTokenException", "ExpiredToken", "MissingAuthenticationTokenException",
			"MissingAuthenticationToken", "IncompleteSignatureException", "InvalidClientTokenId",
			"NotAuthorized":
			return fmt.Errorf("%w: %s: %s", ErrAccessDenied, code, apiErr.ErrorMessage())
		case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
			"InternalServerError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException",
			"TransactionConflictException", "RequestTimeout", "RequestTimeoutException":
			return &transientError{msg: fmt.Sprintf("%s: %s", code, apiErr.ErrorMessage())}
		}
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && respErr.Response != nil && respErr.HTTPStatusCode() >= 500 {
		return &transientError{msg: fmt.Sprintf("HTTP %d: %v", respErr.HTTPStatusCode(), innermost(err))}
	}
	var sendErr *smithyhttp.RequestSendError
	var netErr net.Error
	var deserErr *smithy.DeserializationError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		// Our own per-request deadline; the caller's context is checked
		// by the caller before it trusts this.
		return &transientError{msg: "request timed out"}
	case errors.Is(err, context.Canceled):
		return &transientError{msg: "request cancelled"}
	case errors.As(err, &sendErr), errors.As(err, &netErr), errors.As(err, &deserErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		if ce, ok := asConnectError(err); ok {
			return &transientError{msg: ce.err.Error(), cause: ce}
		}
		return &transientError{msg: innermost(err).Error()}
	}
	if apiErr != nil {
		return fmt.Errorf("%s: %s", apiErr.ErrorCode(), apiErr.ErrorMessage())
	}
	return errors.New(innermost(err).Error())
}

// probableSkew reports whether the SDK judged a refused signature to be
// caused by clock skew (the server's Date header disagreed with our clock by
// more than its threshold). It then marks the error retryable and has
// recorded the skew for the next request.
func probableSkew(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if r, ok := e.(interface{ RetryableError() bool }); ok && r.RetryableError() {
			if _, isAPI := e.(smithy.APIError); !isAPI {
				return true
			}
		}
	}
	return false
}

// innermost returns the deepest error in err's chain, whose message is the
// one that says what happened without the SDK's layers of prefixes.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
