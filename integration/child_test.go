package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// envChild switches the test binary into a child program for locked-run
// to run, so tests do not depend on sh for signal behaviour.
const envChild = "LOCKED_RUN_IT_CHILD"

func init() {
	mode := os.Getenv(envChild)
	if mode == "" {
		return
	}
	os.Exit(childMain(mode))
}

// childMain is the child program. Modes:
//
//	signals: write "ready" to $OUT, then one line per signal received
//	         (name), exit 0 on the third SIGTERM-or-SIGINT-or-SIGHUP or
//	         after $SECONDS (default 10) seconds;
//	readline: print "prompt> ", read one line from stdin, echo it back;
//	sleep: write its pid to $OUT, then sleep forever.
func childMain(mode string) int {
	out := os.Getenv("OUT")
	switch mode {
	case "signals":
		ch := make(chan os.Signal, 16)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
		f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return 2
		}
		defer f.Close()
		fmt.Fprintln(f, "ready")
		secs, _ := strconv.Atoi(os.Getenv("SECONDS_TO_LIVE"))
		if secs == 0 {
			secs = 10
		}
		// After the first signal, linger a little to catch duplicates,
		// then exit 0.
		var linger <-chan time.Time
		deadline := time.After(time.Duration(secs) * time.Second)
		for {
			select {
			case s := <-ch:
				fmt.Fprintln(f, strings.ReplaceAll(s.(syscall.Signal).String(), " ", "_"))
				if linger == nil {
					linger = time.After(500 * time.Millisecond)
				}
			case <-linger:
				return 0
			case <-deadline:
				return 0
			}
		}
	case "readline":
		fmt.Print("prompt> ")
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		fmt.Printf("got: %s", line)
		return 0
	case "sleep":
		if out != "" {
			os.WriteFile(out, []byte(strconv.Itoa(os.Getpid())), 0o644)
		}
		select {}
	}
	return 2
}
