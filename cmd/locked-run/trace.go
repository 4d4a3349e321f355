package main

import (
	"context"
	"errors"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/hashicorp/go-hclog"
)

// attemptsKey carries, through one operation's middleware, the count of
// the HTTP attempts made for it so far.
type attemptsKey struct{}

// traceRequests returns a client option that logs one trace line per HTTP
// attempt of every DynamoDB request, as `aws --debug` lets people see what
// is sent and retried: operation, HTTP status, latency, attempt number and
// the error. It logs nothing of the request itself, so neither credentials
// nor signatures can reach the log. The line is written after the SDK's
// retry middleware, so each retry the SDK makes is its own line. lock/
// turns the SDK's retries off and retries itself: its retries are separate
// operations, each at attempt 1, with lock's own debug line between them.
func traceRequests(logger hclog.Logger) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		start := middleware.InitializeMiddlewareFunc("locked-run/trace-operation",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				return next.HandleInitialize(context.WithValue(ctx, attemptsKey{}, new(int)), in)
			})
		if err := stack.Initialize.Add(start, middleware.Before); err != nil {
			return err
		}
		attempt := middleware.FinalizeMiddlewareFunc("locked-run/trace-attempt",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				n := 1
				if p, ok := ctx.Value(attemptsKey{}).(*int); ok {
					*p++
					n = *p
				}
				began := time.Now()
				out, md, err := next.HandleFinalize(ctx, in)
				status := 0
				if resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok && resp != nil {
					status = resp.StatusCode
				}
				var respErr *smithyhttp.ResponseError
				if status == 0 && errors.As(err, &respErr) {
					status = respErr.HTTPStatusCode()
				}
				args := []any{"operation", middleware.GetOperationName(ctx), "status", status,
					"latency", time.Since(began).Round(100 * time.Microsecond).String(), "attempt", n}
				if err != nil {
					args = append(args, "error", oneLine(innermostError(err).Error()))
				}
				logger.Trace("dynamodb request", args...)
				return out, md, err
			})
		if err := stack.Finalize.Insert(attempt, "Retry", middleware.After); err != nil {
			return stack.Finalize.Add(attempt, middleware.Before)
		}
		return nil
	}
}

// innermostError returns the deepest error of err's chain: the words that
// say what happened, without the SDK's layers of prefixes.
func innermostError(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
