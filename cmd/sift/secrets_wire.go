package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/saltapi"
	"github.com/sift-chatops/sift/secretstore"
	"github.com/sift-chatops/sift/triage"
	"github.com/sift-chatops/sift/vault"
)

// secretsOf builds the store every command reads its secrets through: each
// secret is read on first use only, so `sift triage` never reads the Slack
// tokens. The Vault client is built when the configuration has a vault
// section; it logs in on the first read.
func secretsOf(c *config.Config, log logrus.FieldLogger) (*secretstore.Store, *vault.Client, error) {
	opts := secretstore.Options{Log: log}
	var vc *vault.Client
	if c.Vault != nil {
		var err error
		vc, err = vault.New(*c.Vault, vault.Options{Env: os.LookupEnv, Log: log})
		if err != nil {
			return nil, nil, &exitError{code: exitUsage, err: err}
		}
		opts.Vault = vc
		opts.MaxStaleness = c.Vault.MaxStaleness
	}
	return secretstore.New(c, opts), vc, nil
}

// runSecrets keeps the secrets of a long-running process fresh in g: the
// Vault token renewed, every secret read again each refresh interval and on
// SIGHUP.
func runSecrets(ctx context.Context, g *errgroup.Group, c *config.Config, store *secretstore.Store, vc *vault.Client) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	g.Go(func() error {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	})
	var tick <-chan time.Time
	if c.Vault != nil {
		t := time.NewTicker(c.Vault.RefreshInterval)
		tick = t.C
		g.Go(func() error {
			<-ctx.Done()
			t.Stop()
			return nil
		})
	}
	if vc != nil {
		g.Go(func() error { return vc.Run(ctx) })
	}
	g.Go(func() error {
		store.Run(ctx, tick, reload)
		return nil
	})
}

// preloadSecrets reads the secrets at keys at start, so a missing one is a
// configuration error (exit 2) rather than a failure later.
func preloadSecrets(ctx context.Context, store *secretstore.Store, keys []string) error {
	var errs []error
	for _, k := range keys {
		if _, err := store.Get(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	return nil
}

// rotatingBlamer is a salt-api client whose password comes from the
// secret store: a new password builds a new client (and so a new login),
// and a login the master refuses makes the store read the password once
// more before the refusal is reported, in case it was rotated.
type rotatingBlamer struct {
	key   string
	store *secretstore.Store
	build func(password string) (triage.Blamer, error)

	mu     sync.Mutex
	client triage.Blamer
	pw     config.Secret
}

func (r *rotatingBlamer) current(ctx context.Context) (triage.Blamer, config.Secret, error) {
	pw, err := r.store.Get(ctx, r.key)
	if err != nil {
		return nil, "", err
	}
	return r.clientFor(pw)
}

func (r *rotatingBlamer) clientFor(pw config.Secret) (triage.Blamer, config.Secret, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client != nil && r.pw == pw {
		return r.client, pw, nil
	}
	cl, err := r.build(pw.Reveal())
	if err != nil {
		return nil, "", err
	}
	r.client, r.pw = cl, pw
	return cl, pw, nil
}

// Blame implements triage.Blamer.
func (r *rotatingBlamer) Blame(ctx context.Context, t triage.Target, sink triage.Sink) error {
	cl, pw, err := r.current(ctx)
	if err != nil {
		return err
	}
	err = cl.Blame(ctx, t, sink)
	if !loginRefused(err) {
		return err
	}
	// The login failed, so no job started and nothing reached sink:
	// calling again is safe.
	fresh, changed, rerr := r.store.Reread(ctx, r.key)
	if rerr != nil || (!changed && fresh == pw) {
		return err
	}
	cl, _, berr := r.clientFor(fresh)
	if berr != nil {
		return err
	}
	return cl.Blame(ctx, t, sink)
}

// loginRefused reports a salt-api login refused with 401.
func loginRefused(err error) bool {
	var he *saltapi.HTTPError
	return errors.As(err, &he) && he.Endpoint == "login" && he.Status == http.StatusUnauthorized
}

// Placeholders the bot is built with instead of its tokens (see
// slackHTTPClient). They carry the real prefixes, which is all the bot checks.
const (
	appTokenPlaceholder config.Secret = "xapp-sift-placeholder-app-token"
	botTokenPlaceholder config.Secret = "xoxb-sift-placeholder-bot-token"
)

// slackHTTPClient is the bot's HTTP client: it replaces the placeholder
// tokens with the store's current ones on every call, including the
// apps.connections.open of each socket-mode reconnection.
func slackHTTPClient(store *secretstore.Store) *http.Client {
	return &http.Client{
		Timeout: bot.DefaultCallTimeout,
		Transport: &secretstore.Transport{Store: store, Placeholders: map[string]string{
			appTokenPlaceholder.Reveal(): config.SlackAppTokenKey,
			botTokenPlaceholder.Reveal(): config.SlackBotTokenKey,
		}},
	}
}

// servedSecrets are the secrets sift serve uses: every master's password,
// the Slack tokens, and the pipeline secret when the pipeline hook is on.
func servedSecrets(c *config.Config) []string {
	var keys []string
	for _, m := range c.Masters {
		keys = append(keys, c.MasterPasswordKey(m.Name))
	}
	keys = append(keys, config.SlackAppTokenKey, config.SlackBotTokenKey)
	if c.Halts != nil && c.Halts.Pipeline.Enabled {
		keys = append(keys, config.PipelineSecretKey)
	}
	return keys
}
