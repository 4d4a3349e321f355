// Package faultproxy is an HTTP proxy for tests that sits between the code
// under test and DynamoDB (in practice DynamoDB Local) and injects the
// failures a lock client meets in production: slow and stalled networks,
// partitions, reset connections, throttling, server errors, and writes
// whose answers are lost.
//
// It owns the proxy and its fault switches, and a small control API for
// other processes (ControlHandler, and the faultproxy command in
// cmd/faultproxy). It knows nothing of locks or of locked-run: it sees
// HTTP/1.1 requests, reads the DynamoDB operation from the X-Amz-Target
// header for counting, and forwards bodies and headers unchanged, Host
// included, so SigV4 signatures stay valid.
//
// # Faults and what they stand for
//
// Each request goes through the same steps: Blackhole, Hold, latency,
// Blackhole again, then at most one of reset, throttle, 5xx or dropped
// answer (in that order of precedence when several are armed), else it is
// forwarded; then Blackhole once more before the answer goes back. Faults
// counted with "Next" are taken in the order requests reach that point.
//
//   - SetLatency: a slow path to DynamoDB (a congested link, a far region,
//     a slow partition). Every request waits the latency before it is
//     forwarded. It shows whether per-call deadlines and lease timing hold
//     when each request costs real time.
//   - Hold: a stall that passes, such as a route flap or a middlebox pause
//     during which TCP retransmits. Requests arriving in the window wait
//     until it ends and are then forwarded, even those whose clients have
//     given up, as data already sent is still delivered. It produces the
//     late write: a renewal or acquire applied after its sender stopped
//     waiting, which conditional writes and fencing must make harmless.
//   - Blackhole: a network partition that drops packets. Nothing is
//     answered and connections stay open, so clients see neither an error
//     nor a reset, only silence until their own deadline. Requests whose
//     clients give up meanwhile are never forwarded. Turned off, the
//     partition heals: waiting requests go on and waiting answers come back.
//     Answers from DynamoDB that meet the blackhole are withheld too, so a
//     request can be applied without its client learning it.
//   - ResetConnections: a peer or middlebox that drops its connection state,
//     such as a NAT timeout, a load balancer restart or a crashed host:
//     every open connection, idle or busy, is closed with a TCP RST at once.
//   - ResetNext: the same, for single requests: the connection is reset
//     instead of an answer, and DynamoDB never sees the request.
//   - DropAnswerNext: the ambiguous failure. The request is forwarded and
//     applied, then the connection is reset instead of the answer coming
//     back, so the client cannot tell that its write succeeded (an acquire
//     it believes failed, a release it will retry).
//   - ThrottleNext and SetThrottleRate: DynamoDB refusing a request for
//     throughput (HTTP 400, ThrottlingException), which the AWS SDKs retry
//     with backoff. The request is not forwarded. It shows that retries stay
//     within the caller's deadline and that throttling is not taken for a
//     lost lock.
//   - Fail5xxNext: DynamoDB's own fault (HTTP 500, InternalServerError), also
//     retried by the SDKs. The request is not forwarded; a real 500 may or may
//     not have been applied, for which DropAnswerNext is the harder test.
//
// Close ends everything: held and blackholed requests end without answer and
// without being forwarded, and no goroutine of the proxy outlives it.
//
// # Control API and command
//
// The command runs the proxy for shell scripts and benchmarks:
//
//	go run ./internal/faultproxy/cmd/faultproxy -target http://127.0.0.1:8000
//
// It prints "proxy URL" and "control URL" lines, then serves until SIGINT
// or SIGTERM. Faults are switched through the control URL, for example
//
//	curl -X POST "$control/blackhole?on=true"
//	curl -X POST "$control/throttle-next?n=3"
//	curl "$control/stats"
//
// with the routes listed at ControlHandler.
package faultproxy
