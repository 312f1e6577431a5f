// Command sift finds the root cause of failing Salt highstates: in Slack
// (sift serve), in a terminal (sift triage), or on a simulated fleet (sift demo).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ex *exitError
		if errors.As(err, &ex) && ex.err == nil {
			os.Exit(ex.code)
		}
		fmt.Fprintln(os.Stderr, "sift:", err)
		os.Exit(exitCode(err))
	}
}
