package faultproxy

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A Proxy forwards HTTP requests to one target and injects the faults it is
// told to. Its methods are safe to call from any goroutine, at any time,
// including while requests are in flight.
type Proxy struct {
	target    *url.URL
	listener  net.Listener
	server    *http.Server
	transport *http.Transport
	served    chan struct{} // closed when server.Serve has returned
	trace     func(event)   // nil outside tests

	// ctx is cancelled by Close; every wait inside the proxy ends with it.
	ctx    context.Context
	cancel context.CancelFunc

	// handlers counts running handlers so that Close can wait for them.
	handlers  sync.WaitGroup
	closeOnce sync.Once

	mu           sync.Mutex
	closed       bool
	conns        map[net.Conn]struct{} // open client connections
	latency      time.Duration
	holdUntil    time.Time
	healed       chan struct{} // non-nil while blackholed; closed by Blackhole(false)
	resetNext    int
	dropNext     int
	throttleNext int
	throttleRate float64
	failNext     int
	stats        Stats
}

// Stats counts what the proxy did since it started or since ResetStats.
// A request can count in more than one field: a request held by Hold and
// then forwarded counts in Held and in Forwarded.
type Stats struct {
	// Requests counts every request that reached the proxy, forwarded or
	// faulted, by DynamoDB operation: the part of the X-Amz-Target header
	// after its last dot ("GetItem", "UpdateItem", ...). Requests without
	// that header count under "".
	Requests map[string]int

	Forwarded      int // sent on to the target
	Throttled      int // answered with ThrottlingException instead
	Failed         int // answered with InternalServerError instead
	Reset          int // client connections reset by ResetNext or ResetConnections
	AnswersDropped int // forwarded, then reset instead of answered (DropAnswerNext)
	Blackholed     int // withheld by Blackhole at least once
	Held           int // delayed by Hold
}

// event is what the proxy reports to tests through trace.
type event int

const (
	arrived  event = iota // a request was read and counted
	finished              // its handler returned
)

// New starts a proxy on a free port of 127.0.0.1 that forwards requests to
// target, a URL such as "http://127.0.0.1:8000". It injects no fault until
// told to. Call Close to stop it.
func New(target string) (*Proxy, error) {
	return Listen("127.0.0.1:0", target)
}

// Listen is New on a chosen TCP address, such as "127.0.0.1:8001".
func Listen(addr, target string) (*Proxy, error) {
	return start(addr, target, nil)
}

func start(addr, target string, trace func(event)) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q: want http://host:port", target)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target:   u,
		listener: ln,
		transport: &http.Transport{
			// Bodies and checksums pass through byte for byte.
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
		},
		served: make(chan struct{}),
		trace:  trace,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[net.Conn]struct{}),
		stats:  Stats{Requests: make(map[string]int)},
	}
	p.server = &http.Server{
		Handler:   http.HandlerFunc(p.serveHTTP),
		ConnState: p.track,
	}
	go func() {
		defer close(p.served)
		_ = p.server.Serve(ln) // returns when Close closes the listener
	}()
	return p, nil
}

// URL returns the proxy's base URL, "http://127.0.0.1:PORT", to use as the
// client's endpoint.
func (p *Proxy) URL() string {
	return "http://" + p.listener.Addr().String()
}

// Close stops listening and closes every client connection. Requests the
// proxy is holding, delaying or blackholing end at once without an answer,
// and are not forwarded. Close returns when every request handler has
// returned. Calling it again does nothing and returns nil.
func (p *Proxy) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		// Connections are closed before waits are cancelled, so that no
		// released handler can answer a client that is still connected.
		err = p.server.Close()
		p.cancel()
		<-p.served
		p.handlers.Wait()
		p.transport.CloseIdleConnections()
	})
	return err
}

// SetLatency makes the proxy wait d before forwarding each request that
// arrives from now on; 0 or less means no added latency. A delayed request
// is forwarded even if its client gives up meanwhile, as a slow network
// still delivers what was sent.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = max(d, 0)
}

// Calm turns every fault off: no blackhole (what waited proceeds), no added
// latency, no throttle rate, no hold window, and none of the next requests
// reset, dropped, throttled or failed. Open connections stay open.
func (p *Proxy) Calm() {
	p.Blackhole(false)
	p.SetLatency(0)
	p.SetThrottleRate(0)
	p.ThrottleNext(0)
	p.ResetNext(0)
	p.DropAnswerNext(0)
	p.Fail5xxNext(0)
	p.Hold(0)
}

// Blackhole, while on, withholds every request and every answer: requests
// that arrive, requests that finish a delay, and answers coming back from the
// target all wait, unanswered, on an open connection. When turned off, the
// waiting ones proceed. A request whose client gives up while blackholed is
// dropped, and is never forwarded if it had not been already.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case on && p.healed == nil:
		p.healed = make(chan struct{})
	case !on && p.healed != nil:
		close(p.healed)
		p.healed = nil
	}
}

// Hold makes requests that arrive in the next d wait, unanswered, until d
// has passed, and then forwards them, even those whose clients gave up
// meanwhile. A later Hold replaces the window for requests arriving after it.
func (p *Proxy) Hold(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holdUntil = time.Now().Add(d)
}

// ResetConnections resets every open client connection now, idle or with a
// request in flight: each is closed with SO_LINGER 0, so the client gets a
// TCP RST. Requests on them are treated as if their clients had gone.
func (p *Proxy) ResetConnections() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.stats.Reset += len(conns)
	p.mu.Unlock()
	for _, c := range conns {
		reset(c)
	}
}

// ResetNext makes the next n requests reset their connection instead of
// being forwarded; 0 cancels what is left of an earlier call.
func (p *Proxy) ResetNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetNext = max(n, 0)
}

// DropAnswerNext makes the next n requests be forwarded, and so applied by
// the target, and then reset their connection instead of passing the answer
// on; 0 cancels what is left of an earlier call.
func (p *Proxy) DropAnswerNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropNext = max(n, 0)
}

// ThrottleNext makes the next n requests be answered, without forwarding,
// with DynamoDB's ThrottlingException; 0 cancels what is left of an earlier
// call.
func (p *Proxy) ThrottleNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.throttleNext = max(n, 0)
}

// SetThrottleRate makes each request be answered with ThrottlingException,
// without forwarding, with probability f; values are clamped to 0..1, and 0
// turns random throttling off.
func (p *Proxy) SetThrottleRate(f float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.throttleRate = min(max(f, 0), 1)
}

// Fail5xxNext makes the next n requests be answered, without forwarding,
// with HTTP 500 and DynamoDB's InternalServerError; 0 cancels what is left
// of an earlier call.
func (p *Proxy) Fail5xxNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext = max(n, 0)
}

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Requests = make(map[string]int, len(p.stats.Requests))
	for op, n := range p.stats.Requests {
		s.Requests[op] = n
	}
	return s
}

// ResetStats sets every counter to zero. Faults already asked for stay.
func (p *Proxy) ResetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats = Stats{Requests: make(map[string]int)}
}

// track keeps the set of open client connections for ResetConnections.
func (p *Proxy) track(c net.Conn, state http.ConnState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch state {
	case http.StateNew:
		p.conns[c] = struct{}{}
	case http.StateHijacked, http.StateClosed:
		delete(p.conns, c)
	}
}

// fault is what happens to a request once its delays are over.
type fault int

const (
	deliver fault = iota
	resetConn
	dropAnswer
	throttle
	fail5xx
)

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.enter() {
		abort(w)
		return
	}
	defer p.handlers.Done()

	// client ends when the client goes away (the server's background read
	// sees the connection close) or the proxy closes.
	client, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(p.ctx, cancel)()

	// Reading the whole body also starts the server's background read, which
	// is what notices a client that gives up.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		abort(w)
		return
	}
	op := r.Header.Get("X-Amz-Target")
	op = op[strings.LastIndex(op, ".")+1:]
	p.mu.Lock()
	p.stats.Requests[op]++
	latency, holdUntil := p.latency, p.holdUntil
	held := time.Now().Before(holdUntil)
	if held {
		p.stats.Held++
	}
	p.mu.Unlock()
	if p.trace != nil {
		p.trace(arrived)
		defer p.trace(finished)
	}

	var blackholed bool
	if !p.passBlackhole(client, &blackholed) {
		abort(w)
		return
	}
	// Only Close ends a hold or latency early: delayed requests are
	// delivered late, not lost.
	if held && !sleep(p.ctx, time.Until(holdUntil)) {
		abort(w)
		return
	}
	if !sleep(p.ctx, latency) || !p.passBlackhole(client, &blackholed) {
		abort(w)
		return
	}

	switch f := p.takeFault(); f {
	case resetConn:
		hijack(w, reset)
		return
	case throttle:
		writeDynamoError(w, http.StatusBadRequest, "ThrottlingException", "Rate of requests exceeds the allowed throughput.")
		return
	case fail5xx:
		writeDynamoError(w, http.StatusInternalServerError, "InternalServerError", "Internal server error")
		return
	case dropAnswer, deliver:
		resp, respBody, err := p.forward(r, body)
		if err != nil {
			if client.Err() != nil {
				abort(w)
				return
			}
			http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
			return
		}
		if f == dropAnswer {
			hijack(w, reset)
			return
		}
		if !p.passBlackhole(client, &blackholed) {
			abort(w)
			return
		}
		copyHeader(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(respBody)
	}
}

// enter registers a handler unless the proxy is closing, so that Close's
// wait never races with a new handler.
func (p *Proxy) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.handlers.Add(1)
	return true
}

// passBlackhole waits while the proxy is blackholed and reports whether the
// request may go on: false if ctx ended while it waited. It counts the
// request as blackholed the first time. A request that meets no blackhole
// goes on even if its client has gone, as delays deliver late.
func (p *Proxy) passBlackhole(ctx context.Context, counted *bool) bool {
	for {
		p.mu.Lock()
		healed := p.healed
		if healed != nil && !*counted {
			*counted = true
			p.stats.Blackholed++
		}
		p.mu.Unlock()
		if healed == nil {
			return true
		}
		select {
		case <-healed:
			// Loop: the blackhole may have been turned on again already.
		case <-ctx.Done():
			return false
		}
	}
}

// takeFault decides, in the order requests finish their delays, which
// fault a request gets, and counts it.
func (p *Proxy) takeFault() fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.resetNext > 0:
		p.resetNext--
		p.stats.Reset++
		return resetConn
	case p.throttleNext > 0:
		p.throttleNext--
		p.stats.Throttled++
		return throttle
	case p.throttleRate > 0 && rand.Float64() < p.throttleRate:
		p.stats.Throttled++
		return throttle
	case p.failNext > 0:
		p.failNext--
		p.stats.Failed++
		return fail5xx
	case p.dropNext > 0:
		p.dropNext--
		p.stats.Forwarded++
		p.stats.AnswersDropped++
		return dropAnswer
	}
	p.stats.Forwarded++
	return deliver
}

// forward sends the request to the target and reads the whole answer. It
// runs until the proxy closes, not until the client goes, because a request
// on its way to DynamoDB is applied whether or not anyone waits for the
// answer.
func (p *Proxy) forward(r *http.Request, body []byte) (*http.Response, []byte, error) {
	u := *p.target
	u.Path = strings.TrimSuffix(u.Path, "/") + r.URL.Path
	u.RawPath = ""
	u.RawQuery = r.URL.RawQuery
	out, err := http.NewRequestWithContext(p.ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	copyHeader(out.Header, r.Header)
	// The client signed its request for the Host it sent; keep it.
	out.Host = r.Host
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp, respBody, nil
}

// hopHeaders are the headers that describe one connection, not the message,
// so a proxy must not pass them on (RFC 9110, section 7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
	for _, f := range src.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			dst.Del(strings.TrimSpace(name))
		}
	}
	for _, h := range hopHeaders {
		dst.Del(h)
	}
}

// writeDynamoError answers the way DynamoDB does, with the headers the AWS
// SDKs read: the JSON error type, a request id and the body's CRC32.
func writeDynamoError(w http.ResponseWriter, status int, code, message string) {
	body := fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, code, message)
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amzn-Requestid", "FAULTPROXY"+strconv.FormatUint(rand.Uint64(), 36))
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// abort ends a request without an answer by closing its connection;
// returning from the handler instead would send an empty 200.
func abort(w http.ResponseWriter) {
	hijack(w, func(c net.Conn) { _ = c.Close() })
}

// hijack takes the connection from the HTTP server and passes it to end.
func hijack(w http.ResponseWriter, end func(net.Conn)) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Cannot happen on the proxy's HTTP/1 server; if it ever does,
		// this still closes the connection without answering.
		panic(http.ErrAbortHandler)
	}
	end(c)
}

// reset closes c so that the peer gets a TCP RST, not a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// sleep waits d, or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
