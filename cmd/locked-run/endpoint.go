package main

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"
)

// endpointWait is how long a subcommand waits for an explicitly given
// endpoint that refuses connections: DynamoDB Local takes a few seconds to
// listen after `java -jar ... &`, and a script that starts it and then runs
// `locked-run create-table` should not fail for that. Long enough for a
// JVM on a loaded machine, short enough that a wrong port is said soon.
const endpointWait = 10 * time.Second

// dialTimeout bounds one connection attempt, so that a silent (firewalled)
// endpoint costs at most this before the request reports it.
const dialTimeout = time.Second

// endpointPoll is how often a refused connection is tried again.
const endpointPoll = 100 * time.Millisecond

// explicitEndpoint returns the DynamoDB endpoint the user named, with
// --endpoint-url or the SDK's environment variables, or "" for AWS's own.
func explicitEndpoint(c *cli.Context) string {
	if e := str(c, flagEndpoint); e != "" {
		return e
	}
	if e := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"); e != "" {
		return e
	}
	return os.Getenv("AWS_ENDPOINT_URL")
}

// waitForEndpoint returns once the endpoint accepts a TCP connection, or
// when it answers anything else than "connection refused" (the request
// then says what is wrong), or with an error naming the endpoint after it
// refused connections for endpointWait.
func waitForEndpoint(ctx context.Context, endpoint string, logger hclog.Logger) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil // the SDK says what is wrong with it
	}
	addr := u.Host
	if u.Port() == "" {
		port := "443"
		if u.Scheme == "http" {
			port = "80"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	deadline := time.Now().Add(endpointWait)
	for said := false; ; {
		// A dial that neither connects nor is refused in this time is
		// left to the request and its own deadlines: only a refusal is
		// waited out here.
		d := net.Dialer{Timeout: dialTimeout}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || ctx.Err() != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return usagef("endpoint %s refused connections for %s: is DynamoDB Local (or the proxy) running there? check --endpoint-url and AWS_ENDPOINT_URL_DYNAMODB",
				endpoint, describeDuration(endpointWait))
		}
		if !said {
			logger.Info("waiting for the endpoint to accept connections", "endpoint", endpoint, "for", describeDuration(endpointWait))
			said = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(endpointPoll):
		}
	}
}
