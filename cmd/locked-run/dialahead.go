package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// dialAheadIdle is how long a connection dialled ahead waits for the first
// request before it is closed unused. The first request normally comes
// within milliseconds, once the AWS configuration has loaded.
const dialAheadIdle = 10 * time.Second

// A dialAhead opens the TCP connection of the first DynamoDB request while
// the AWS configuration loads, when the endpoint is given explicitly
// (--endpoint-url, AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL): the
// name lookup and the connection's handshake then overlap with the
// configuration's load and the option checks instead of following them.
// The HTTP transport gets the connection from dialContext when it dials
// the same address; any other dial, and every dial after the first, is
// its own. A connection not taken is closed when ctx ends or after
// dialAheadIdle. Without an explicit endpoint nothing is dialled: the
// SDK's endpoint for a region also depends on the profile and on the
// credentials' account (DynamoDB's account-based endpoints), which are
// only known once the configuration has loaded.
type dialAhead struct {
	addr  string        // host:port, as http.Transport names it
	conns chan net.Conn // the connection, once dialled, until taken
	done  chan struct{} // closed once the dial has ended, well or not
}

// startDialAhead starts dialling the endpoint that endpoint (the
// --endpoint-url option) or the environment names, and returns nil when
// there is nothing to dial ahead: no explicit endpoint, or one reached
// through a proxy.
func startDialAhead(ctx context.Context, endpoint string) *dialAhead {
	addr := aheadAddr(endpoint)
	if addr == "" {
		return nil
	}
	d := &dialAhead{addr: addr, conns: make(chan net.Conn, 1), done: make(chan struct{})}
	dialer := awshttp.NewBuildableClient().GetDialer()
	go func() {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			d.conns <- conn
		}
		close(d.done)
		if err != nil {
			return
		}
		idle := time.NewTimer(dialAheadIdle)
		defer idle.Stop()
		select {
		case <-ctx.Done():
		case <-idle.C:
		}
		select {
		case conn := <-d.conns:
			conn.Close()
		default:
		}
	}()
	return d
}

// aheadAddr returns the host:port of the explicit endpoint, as the HTTP
// transport will dial it, or "" when there is none or a proxy stands
// between. The order is the SDK's: the option (BaseEndpoint), then the
// service's variable, then the global one, unless
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS says to ignore both.
func aheadAddr(endpoint string) string {
	if endpoint == "" && !strings.EqualFold(os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		endpoint = os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")
		if endpoint == "" {
			endpoint = os.Getenv("AWS_ENDPOINT_URL")
		}
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	// With a proxy in the environment the transport may dial the proxy
	// instead; NO_PROXY is not worked out here, the dial is just not made.
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if os.Getenv(v) != "" {
			return ""
		}
	}
	port := u.Port()
	switch {
	case port != "":
	case u.Scheme == "https":
		port = "443"
	default:
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// dialContext returns next with the connection dialled ahead handed to the
// first dial of its address. It is the transport's DialContext; d may be
// nil.
func (d *dialAhead) dialContext(next func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if d == nil {
		return next
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if network == "tcp" && addr == d.addr {
			select {
			case <-d.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			select {
			case conn := <-d.conns:
				return conn, nil
			default:
			}
		}
		return next(ctx, network, addr)
	}
}

// httpClient returns the SDK's HTTP client with d's dialContext in its
// transport.
func (d *dialAhead) httpClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		next := tr.DialContext
		if next == nil {
			next = (&net.Dialer{}).DialContext
		}
		tr.DialContext = d.dialContext(next)
	})
}
