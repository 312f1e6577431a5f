package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sift-chatops/sift/commands"
	"github.com/sift-chatops/sift/demo"
	"github.com/sift-chatops/sift/secretstore"
	"github.com/sift-chatops/sift/triage"
)

const demoSynopsis = `sift demo [KIND NAME] [--format text|json] [--quiet]

Starts fake salt-api masters on 127.0.0.1 serving a simulated fleet in the
middle of an incident (a bad commit in two datacenters, a Vault outage in a
third, a rollback, a package failure that breaks the states requiring it,
unreachable minions, minions without the blame module) and triages it like
'sift triage' would: by default the group europe. No Slack, no Salt.`

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", demoSynopsis, stderr)
	format := fs.String("format", "text", "report format: text or json")
	quiet := fs.Bool("quiet", false, "print no progress")
	args, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	render, err := renderer(*format)
	if err != nil {
		return err
	}
	lab, err := demo.Start()
	if err != nil {
		return err
	}
	defer lab.Close()

	inv := inventoryOf(lab.Config)
	if len(args) == 0 {
		args = []string{"group", "europe"}
	}
	req, err := commands.Parser{Inventory: inv}.Args(args)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	log := newLogger("error", "text", stderr)
	blamers, err := blamersOf(lab.Config, secretstore.New(lab.Config, secretstore.Options{}), log, nil)
	if err != nil {
		return err
	}
	if !*quiet {
		var urls []string
		for _, m := range lab.Config.Masters {
			urls = append(urls, m.Name+" at "+m.URL)
		}
		fmt.Fprintf(stderr, "demo: %d simulated minions behind fake salt-api masters (%s)\n", lab.Minions(), strings.Join(urls, ", "))
	}
	progress := newProgressPrinter(stderr, *quiet)
	opts := triageOptions(lab.Config, log)
	opts.Progress = progress.update
	_, err = printTriage(ctx, triage.New(inv, blamers, opts), req.Scope, progress, render, stdout)
	return err
}
