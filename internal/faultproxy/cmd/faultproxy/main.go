// Command faultproxy runs a faultproxy.Proxy in front of a DynamoDB endpoint
// for shell scripts and benchmarks. It prints two lines on stdout,
//
//	proxy http://127.0.0.1:PORT
//	control http://127.0.0.1:PORT
//
// and then serves until SIGINT or SIGTERM. The control API is described in
// the faultproxy package documentation.
//
// Usage:
//
//	faultproxy -target http://127.0.0.1:8000 [-listen 127.0.0.1:0] [-control 127.0.0.1:0]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/locked-run/locked-run/internal/faultproxy"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("faultproxy", flag.ContinueOnError)
	flags.SetOutput(stderr)
	target := flags.String("target", "", "URL to forward requests to, such as http://127.0.0.1:8000 (required)")
	listen := flags.String("listen", "127.0.0.1:0", "address the proxy listens on")
	control := flags.String("control", "127.0.0.1:0", "address the control API listens on")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *target == "" || flags.NArg() > 0 {
		fmt.Fprintln(stderr, "faultproxy: -target is required and there are no arguments")
		return 2
	}

	p, err := faultproxy.Listen(*listen, *target)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer p.Close()
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		fmt.Fprintf(stderr, "faultproxy: control: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: p.ControlHandler()}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "proxy %s\ncontrol http://%s\n", p.URL(), ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
		_ = srv.Close()
		<-served
		return 0
	case err := <-served:
		fmt.Fprintf(stderr, "faultproxy: control: %v\n", err)
		return 1
	}
}
