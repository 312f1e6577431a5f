package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
)

// Exit codes of sift triage and friends.
const (
	exitFailure = 1 // the work could not be done: no master reachable
	exitUsage   = 2 // bad arguments or configuration
)

// exitError carries an exit code with the error that caused it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

func exitCode(err error) int {
	var ex *exitError
	if errors.As(err, &ex) {
		return ex.code
	}
	return exitFailure
}

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `sift finds the grain of sand in a heap of Salt: the root cause of failing highstates.

Usage:
  sift serve --config FILE                       run the Slack bot (socket mode)
  sift demo [--format text|json] [--quiet]       triage a built-in simulated incident (no Slack, no Salt)
  sift triage KIND NAME --config FILE [flags]    triage minion ID, dc NAME or group NAME
  sift check-config --config FILE                validate a configuration and summarise it
  sift history --config FILE [-n N] [flags]      list the last triages (halts and Slack) from the store
  sift healthcheck [--url URL]                   exit 0 when a running sift serve answers its health URL
  sift version                                   print the version

Run 'sift COMMAND --help' for a command's flags.
`

// run is sift's whole program; main only maps its error to an exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	// The logger and the progress lines write to stderr from different
	// goroutines: one write at a time, whatever the writer is.
	stderr = &syncWriter{w: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: exitUsage}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "triage":
		return runTriage(ctx, rest, stdin, stdout, stderr)
	case "history":
		return runHistory(ctx, rest, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, rest, stdout, stderr)
	case "check-config":
		return runCheckConfig(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "sift", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageErr("unknown command %q", cmd)
	}
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses flags that may come before or after the positional
// arguments ("triage dc ams01 --config f" and "triage --config f dc ams01").
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &exitError{code: 0}
			}
			return nil, &exitError{code: exitUsage, err: err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// syncWriter makes one writer safe for concurrent use: each Write is
// whole, never interleaved with another.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
