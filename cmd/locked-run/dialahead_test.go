package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestAheadAddr(t *testing.T) {
	for _, v := range []string{"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
		"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		t.Setenv(v, "")
	}
	for _, c := range []struct {
		name, flag string
		env        map[string]string
		want       string
	}{
		{name: "option", flag: "http://127.0.0.1:8000", want: "127.0.0.1:8000"},
		{name: "https default port", flag: "https://vpce-1.dynamodb.us-east-1.vpce.amazonaws.com", want: "vpce-1.dynamodb.us-east-1.vpce.amazonaws.com:443"},
		{name: "http default port", flag: "http://localhost", want: "localhost:80"},
		{name: "IPv6", flag: "http://[::1]:8000/", want: "[::1]:8000"},
		{name: "option before the environment", flag: "http://a:1", env: map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": "http://b:2"}, want: "a:1"},
		{name: "service variable", env: map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": "http://b:2", "AWS_ENDPOINT_URL": "http://c:3"}, want: "b:2"},
		{name: "global variable", env: map[string]string{"AWS_ENDPOINT_URL": "http://c:3"}, want: "c:3"},
		{name: "variables ignored", env: map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": "http://b:2", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, want: ""},
		{name: "option not ignored", flag: "http://a:1", env: map[string]string{"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, want: "a:1"},
		{name: "no endpoint", want: ""},
		{name: "no scheme", flag: "localhost:8000", want: ""},
		{name: "proxy", flag: "https://example.com", env: map[string]string{"HTTPS_PROXY": "http://proxy:3128"}, want: ""},
		{name: "lower-case proxy", flag: "http://example.com", env: map[string]string{"http_proxy": "http://proxy:3128"}, want: ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			if got := aheadAddr(c.flag); got != c.want {
				t.Errorf("aheadAddr(%q) = %q, want %q", c.flag, got, c.want)
			}
		})
	}
}

// countingListener counts the connections a listener accepts.
func countingListener(t *testing.T) (net.Listener, *atomic.Int32, chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	conns := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			conns <- c
		}
	}()
	return ln, &n, conns
}

func TestDialAheadHandsItsConnectionToTheFirstDialOnly(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "")
	ln, accepted, _ := countingListener(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := startDialAhead(ctx, "http://"+ln.Addr().String())
	if d == nil {
		t.Fatal("nothing dialled ahead for an explicit endpoint")
	}
	var nexts atomic.Int32
	next := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nexts.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	dial := d.dialContext(next)
	first, err := dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if nexts.Load() != 0 {
		t.Errorf("the first dial of the address dialled again")
	}
	second, err := dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if nexts.Load() != 1 {
		t.Errorf("the second dial got %d dials of its own, want 1", nexts.Load())
	}
	other, _, _ := countingListener(t)
	third, err := dial(ctx, "tcp", other.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	third.Close()
	if nexts.Load() != 2 {
		t.Errorf("a dial of another address got %d dials, want 2 in all", nexts.Load())
	}
	deadline := time.Now().Add(5 * time.Second)
	for accepted.Load() != 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if accepted.Load() != 2 {
		t.Errorf("the endpoint accepted %d connections, want 2: one dialled ahead, one dialled after", accepted.Load())
	}
}

func TestDialAheadClosesAConnectionNeverTaken(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "")
	ln, _, conns := countingListener(t)
	ctx, cancel := context.WithCancel(context.Background())
	if startDialAhead(ctx, "http://"+ln.Addr().String()) == nil {
		t.Fatal("nothing dialled ahead for an explicit endpoint")
	}
	var server net.Conn
	select {
	case server = <-conns:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection dialled ahead")
	}
	defer server.Close()
	cancel()
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := server.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("after the run ended, the server's read = %v, want EOF: the connection dialled ahead is left open", err)
	}
}

func TestDialAheadThroughTheSDKsHTTPClient(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "")
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := startDialAhead(ctx, srv.URL)
	if d == nil {
		t.Fatal("nothing dialled ahead for an explicit endpoint")
	}
	client := d.httpClient()
	for range 3 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the connection counts
		resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("three requests opened %d connections, want 1: the one dialled ahead, kept alive", n)
	}
}
