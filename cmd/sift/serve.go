package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/commands"
	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/secretstore"
	"github.com/sift-chatops/sift/triage"
)

const serveSynopsis = `sift serve --config FILE

Runs Sift in Slack: connects in socket mode with slack.app_token and
slack.bot_token, takes the slash commands and @sift mentions, and posts the
reports in threads. Logs go to stderr; the audit log to slack.audit_log
(stdout by default). On SIGTERM or SIGINT it takes no new command, lets
running triages finish within slack.shutdown_grace, and exits. With a halts
section it also posts pipeline halts (docs/halts.md); with metrics.listen it
serves /metrics, /healthz and /readyz.`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", serveSynopsis, stderr)
	cfgPath := fs.String("config", "", "configuration file (default $SIFT_CONFIG)")
	args, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usageErr("serve: unexpected arguments %q (serve takes only flags)", args)
	}
	c, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if c.Slack == nil {
		return usageErr("serve: the configuration has no slack section (add one with app_token and bot_token, or export SIFT_SLACK_APP_TOKEN and SIFT_SLACK_BOT_TOKEN)")
	}
	log := newLogger(c.Log.Level, c.Log.Format, stderr)
	store, vc, err := secretsOf(c, log)
	if err != nil {
		return err
	}
	if err := preloadSecrets(ctx, store, servedSecrets(c)); err != nil {
		return err
	}
	if c.Halts != nil && c.Halts.Pipeline.Enabled {
		// The hook holds the HMAC secret it was given; a rotated one
		// takes a restart.
		if c.Halts.Pipeline.Secret, err = store.Get(ctx, config.PipelineSecretKey); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	if c.Halts != nil && c.Halts.Alertmanager.Enabled {
		// The same for the Alertmanager hook's credentials.
		am := &c.Halts.Alertmanager
		for key, dst := range map[string]*config.Secret{config.AlertmanagerBearerKey: &am.BearerToken, config.AlertmanagerPasswordKey: &am.BasicAuth.Password} {
			if ref, ok := c.SecretRef(key); !ok || !ref.Set() {
				continue
			}
			if *dst, err = store.Get(ctx, key); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
		}
	}
	audit, closeAudit, err := openAuditLog(c.Slack.AuditLog, stdout)
	if err != nil {
		return err
	}
	defer closeAudit()

	a, err := newAutomation(ctx, c, store, log)
	if err != nil {
		return err
	}
	defer a.close()
	b, err := newBot(c, store, log, audit, a)
	if err != nil {
		return err
	}
	a.metrics.Registry().MustRegister(store)
	a.metrics.AddReadiness(store.Ready)
	g, gctx := errgroup.WithContext(ctx)
	if err := a.start(gctx, g, b); err != nil {
		return err
	}
	// Started once nothing can fail any more: a return above would leave
	// its goroutines running.
	runSecrets(gctx, g, c, store, vc)
	g.Go(func() error { return b.Run(gctx) })
	log.WithFields(logrus.Fields{
		"version": version, "api_url": c.Slack.APIURL, "datacenters": len(c.Datacenters), "groups": len(c.Groups),
	}).Info("sift serving in slack")
	err = g.Wait()
	log.Info("sift stopped")
	return err
}

// newBot wires the configuration into a Slack bot: one salt-api client per
// master, shared by the Triager each command gets.
func newBot(c *config.Config, store *secretstore.Store, log logrus.FieldLogger, audit io.Writer, a *automation) (*bot.Bot, error) {
	blamers, err := blamersOf(c, store, log, a.saltResponse)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	inv := inventoryOf(c)
	opts := triageOptions(c, log)
	opts.Rerun = slackRerun(commands.SlashNames{Minion: c.Slack.Commands.Minion, Datacenter: c.Slack.Commands.Datacenter, Group: c.Slack.Commands.Group})
	prober := proberOf(c)
	a.useTriager(probingTriager{next: triage.New(inv, blamers, opts), prober: prober})
	s := c.Slack
	return bot.New(bot.Config{
		// The bot holds placeholders; its HTTP client puts the current
		// tokens on each call, so a rotated token needs no restart.
		AppToken: appTokenPlaceholder, BotToken: botTokenPlaceholder, APIURL: s.APIURL,
		Channels: s.Channels, Authz: s.Authz,
		ProgressInterval: s.ProgressInterval, ShutdownGrace: s.ShutdownGrace,
		MentionAuthors: formatters.MentionPolicy(s.MentionAuthors),
	}, bot.Deps{
		Triagers: func(progress func(triage.Progress)) bot.Triager {
			o := opts
			o.Progress = progress
			return probingTriager{next: triage.New(inv, blamers, o), prober: prober}
		},
		Parser: commands.Parser{Inventory: inv, Names: commands.SlashNames{
			Minion: s.Commands.Minion, Datacenter: s.Commands.Datacenter, Group: s.Commands.Group,
		}},
		Log:          log,
		Audit:        audit,
		HTTPClient:   slackHTTPClient(store),
		OnSlackError: a.slackError,
		OnTriage:     a.slackTriage,
	})
}

// openAuditLog opens the audit log: stdout, or a file appended to.
func openAuditLog(path string, stdout io.Writer) (io.Writer, func(), error) {
	if path == "stdout" {
		return stdout, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	return f, func() { _ = f.Close() }, nil
}
