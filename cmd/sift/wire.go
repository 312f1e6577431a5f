package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/saltapi"
	"github.com/sift-chatops/sift/secretstore"
	"github.com/sift-chatops/sift/triage"
)

// loadConfig reads the configuration named by --config or $SIFT_CONFIG.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		path = os.Getenv("SIFT_CONFIG")
	}
	if path == "" {
		return nil, usageErr("no configuration: pass --config FILE (or set SIFT_CONFIG)")
	}
	c, err := config.Load(path, os.LookupEnv)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return c, nil
}

// inventoryOf is the triage inventory the configuration describes.
func inventoryOf(c *config.Config) triage.Inventory {
	inv := triage.Inventory{Groups: make(map[string][]string, len(c.Groups))}
	for _, dc := range c.Datacenters {
		inv.Datacenters = append(inv.Datacenters, triage.Datacenter{Name: dc.Name, Master: dc.Master, Target: dc.Target, Minions: dc.Minions})
	}
	for _, g := range c.Groups {
		inv.Groups[g.Name] = g.Datacenters
	}
	return inv
}

// blamersOf builds one salt-api client per configured master. A master's
// password is read from store at its first login, so a command reads only
// the passwords of the masters it talks to, and a rotated one is used
// without a restart.
func blamersOf(c *config.Config, store *secretstore.Store, log logrus.FieldLogger, onResponse func(master string, status int)) (map[string]triage.Blamer, error) {
	out := make(map[string]triage.Blamer, len(c.Masters))
	for i, m := range c.Masters {
		cfg := saltapi.Config{
			Name: m.Name, URL: m.URL, Eauth: m.Eauth, Username: m.Username,
			TLSCAFile: m.TLSCAFile, InsecureSkipVerify: m.TLSInsecureSkipVerify,
			Timeout: c.Triage.Timeout, GatherJobTimeout: c.Triage.GatherJobTimeout, PollInterval: c.Triage.PollInterval,
			Log: log, OnResponse: onResponse,
		}
		build := func(password string) (triage.Blamer, error) {
			cfg := cfg
			cfg.Password = password
			client, err := saltapi.New(cfg)
			if err != nil {
				return nil, fmt.Errorf("master %s: %w", m.Name, err)
			}
			return client, nil
		}
		// Built once here so that a bad URL or CA file is reported now.
		if _, err := build(""); err != nil {
			return nil, err
		}
		out[m.Name] = &rotatingBlamer{key: fmt.Sprintf("masters[%d].password", i), store: store, build: build}
	}
	return out, nil
}

// triageOptions are the triage settings of the configuration.
func triageOptions(c *config.Config, log logrus.FieldLogger) triage.Options {
	return triage.Options{
		MaxParallel: c.Triage.MaxParallelDatacenters,
		Deadline:    c.Triage.Deadline,
		CommitURL:   c.Links.CommitURL,
		Log:         log,
	}
}

// newLogger builds the process logger: JSON in production, text on a
// terminal, at the configured level.
func newLogger(level, format string, w io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(w)
	if lvl, err := logrus.ParseLevel(level); err == nil {
		log.SetLevel(lvl)
	}
	switch format {
	case "json":
		log.SetFormatter(&logrus.JSONFormatter{})
	case "text":
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	default:
		if isTerminal(w) {
			log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
		} else {
			log.SetFormatter(&logrus.JSONFormatter{})
		}
	}
	return log
}

func isTerminal(w io.Writer) bool {
	if s, ok := w.(*syncWriter); ok {
		w = s.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
