package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/sift-chatops/sift/commands"
	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/triage"
)

const triageSynopsis = `sift triage minion ID | dc NAME | group NAME --config FILE [--format text|json] [--input FILE|-] [--quiet]

Triages the scope through the salt-api of each master and prints the report
on stdout, progress on stderr. With --input, triages saved evidence instead:
the output of
  salt -C '<target>' blame.last_failed_states,blame.last_highstate_failure,blame.last_compile_errors ,, --out json --static
or a saved salt-api answer; --config is then optional for a minion or a
datacenter. Exit status: 0 the triage ran (whatever it found), 1 no master
could be reached, 2 bad arguments or configuration.`

func runTriage(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("triage", triageSynopsis, stderr)
	cfgPath := fs.String("config", "", "configuration file (default $SIFT_CONFIG)")
	format := fs.String("format", "text", "report format: text or json")
	input := fs.String("input", "", "triage saved blame output from this file ('-' for stdin) instead of calling salt-api")
	quiet := fs.Bool("quiet", false, "print no progress")
	args, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	render, err := renderer(*format)
	if err != nil {
		return err
	}

	var c *config.Config
	if *input == "" || *cfgPath != "" || os.Getenv("SIFT_CONFIG") != "" {
		if c, err = loadConfig(*cfgPath); err != nil {
			return err
		}
	}
	inv := triage.Inventory{}
	if c != nil {
		inv = inventoryOf(c)
	} else if kind, _ := commands.Kind(firstOr(args, "")); kind == triage.ScopeDatacenter && len(args) == 2 {
		// Saved evidence needs no master: the datacenter is just a name.
		inv.Datacenters = []triage.Datacenter{{Name: args[1]}}
	}
	req, err := commands.Parser{Inventory: inv}.Args(args)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}

	logLevel, logFormat := "warning", "auto"
	if c != nil {
		logLevel, logFormat = c.Log.Level, c.Log.Format
		if logLevel == "info" {
			logLevel = "warning" // the report is the output; logs only when something is wrong
		}
	}
	log := newLogger(logLevel, logFormat, stderr)
	progress := newProgressPrinter(stderr, *quiet)
	opts := triage.Options{Log: log}
	if c != nil {
		opts = triageOptions(c, log)
	}
	opts.Progress = progress.update

	if *input != "" {
		in, closeIn, err := openInput(*input, stdin)
		if err != nil {
			return err
		}
		defer closeIn()
		if os.Getenv("GOMEMLIMIT") == "" {
			// Saved evidence is read in bounded memory: a soft limit keeps
			// the collector from letting garbage double it.
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(triage.InputMemoryLimit))
			if os.Getenv("GOGC") == "" {
				// Under that limit the collector waits for the limit:
				// each collection walks the whole report being built.
				defer debug.SetGCPercent(debug.SetGCPercent(triage.InputGCPercent))
			}
		}
		rep, err := triage.New(inv, nil, opts).TriageInput(ctx, req.Scope, in)
		progress.done()
		if err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", *input, err)}
		}
		_, err = io.WriteString(stdout, render(rep))
		return err
	}
	store, _, err := secretsOf(c, log)
	if err != nil {
		return err
	}
	blamers, err := blamersOf(c, store, log, nil)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	tr := probingTriager{next: triage.New(inv, blamers, opts), prober: proberOf(c)}
	rep, err := printTriage(ctx, tr, req.Scope, progress, render, stdout)
	if err != nil {
		return err
	}
	if !rep.Reached() {
		var reasons []string
		for _, dc := range rep.Datacenters {
			reasons = append(reasons, dc.Name+": "+dc.Error)
		}
		return &exitError{code: exitFailure, err: errors.New("no master could be reached: " + strings.Join(reasons, "; "))}
	}
	return nil
}

// printTriage runs a triage with its progress shown, prints the report,
// and says when the report is partial because the triage was cut short.
func printTriage(ctx context.Context, tr triageRunner, s triage.Scope, progress *progressPrinter,
	render func(*triage.Report) string, stdout io.Writer) (*triage.Report, error) {
	rep, err := tr.Triage(ctx, s)
	progress.done()
	if rep == nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	if _, werr := io.WriteString(stdout, render(rep)); werr != nil {
		return rep, werr
	}
	if err != nil {
		return rep, &exitError{code: exitFailure, err: fmt.Errorf("triage interrupted (%w): the report above is partial", err)}
	}
	return rep, nil
}

func firstOr(args []string, fallback string) string {
	if len(args) == 0 {
		return fallback
	}
	return args[0]
}

// renderer returns the report formatter for --format.
func renderer(format string) (func(*triage.Report) string, error) {
	switch format {
	case "text":
		return formatters.Text, nil
	case "json":
		return func(r *triage.Report) string {
			b, err := formatters.JSON(r)
			if err != nil {
				return fmt.Sprintf("{\"error\": %q}\n", err.Error())
			}
			return string(b)
		}, nil
	}
	return nil, usageErr("--format %q: use text or json", format)
}

func openInput(path string, stdin io.Reader) (io.Reader, func(), error) {
	if path == "-" {
		return stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, &exitError{code: exitUsage, err: fmt.Errorf("--input: %w", err)}
	}
	return f, func() { f.Close() }, nil
}

// progressPrinter shows a triage's progress on stderr: one live line on a
// terminal, a line per datacenter otherwise, nothing when quiet.
type progressPrinter struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	quiet bool
	live  bool
}

func newProgressPrinter(w io.Writer, quiet bool) *progressPrinter {
	return &progressPrinter{w: w, tty: isTerminal(w), quiet: quiet}
}

func (p *progressPrinter) update(ev triage.Progress) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		line := fmt.Sprintf("triaging %s: %d/%d done, %d/%d minions answered, %s",
			ev.Scope, ev.DatacentersDone, ev.DatacentersTotal, ev.MinionsAnswered, ev.MinionsExpected, ev.Elapsed.Round(100*time.Millisecond))
		if len(ev.Running) > 0 {
			line += " (running: " + strings.Join(firstN(ev.Running, 5), ", ") + ")"
		}
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.live = true
		return
	}
	switch ev.Kind {
	case triage.ProgressStarted:
		fmt.Fprintf(p.w, "triaging %s\n", ev.Scope)
	case triage.ProgressDatacenterFinished:
		status := "done"
		if ev.Err != nil {
			status = "failed: " + ev.Err.Error()
		}
		// The datacenter's own counts: the run's totals would read as
		// this datacenter's.
		fmt.Fprintf(p.w, "%s %s (%d/%d), %d/%d minions answered, %s\n", nonEmpty(ev.Datacenter, "minion"), status,
			ev.DatacentersDone, ev.DatacentersTotal, ev.DatacenterAnswered, ev.DatacenterExpected, ev.Elapsed.Round(time.Millisecond))
	}
}

func (p *progressPrinter) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
		p.live = false
	}
}

func firstN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func nonEmpty(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
