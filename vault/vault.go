// Package vault reads Sift's secrets from HashiCorp Vault's KV version 2
// engine, with the official client. It logs in with the configured method
// (token, approle, kubernetes, jwt), keeps its token renewed with the
// client's LifetimeWatcher, and logs in again when renewal is no longer
// possible. Errors name paths and Vault's answer, never a value or a token.
package vault

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/config"
)

// requestTimeout bounds one request to Vault, so a Vault that hangs cannot
// hold a secret read (and what waits on it) for long.
const requestTimeout = 10 * time.Second

// Client reads KV v2 secrets. It is safe for concurrent use.
type Client struct {
	api  *vaultapi.Client
	cfg  config.Vault
	env  func(string) (string, bool)
	log  logrus.FieldLogger
	now  func() time.Time
	auth func(ctx context.Context) (*vaultapi.Secret, error)

	// loginMu serialises logins; mu guards the fields below.
	loginMu sync.Mutex
	mu      sync.Mutex
	// login is the answer of the last login (nil for a static token), for
	// the LifetimeWatcher; loggedIn is false until the first one.
	login    *vaultapi.Secret
	loggedIn bool
	// gen counts logins, so a watcher knows when a newer one replaced it.
	gen uint64
	// renewed is signalled when a new login needs a new watcher.
	renewed chan struct{}
}

// Options are New's optional dependencies.
type Options struct {
	// Env looks up environment variables (os.LookupEnv); for token_env.
	Env func(string) (string, bool)
	Log logrus.FieldLogger
	// HTTPClient replaces the client's transport (tests); TLS settings of
	// the configuration are applied to it when it is an *http.Transport.
	HTTPClient *http.Client
}

// New builds a client for cfg; it does not contact Vault.
func New(cfg config.Vault, opts Options) (*Client, error) {
	// Not vaultapi.DefaultConfig: it reads VAULT_ADDR, VAULT_SKIP_VERIFY
	// and friends from the process, and Sift's configuration is the only
	// source of how it reaches Vault.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	hc := &http.Client{Transport: tr,
		// The client follows Vault's redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if opts.HTTPClient != nil {
		hc = opts.HTTPClient
	}
	vc := &vaultapi.Config{
		Address: cfg.Address, HttpClient: hc, Timeout: requestTimeout,
		// One retry: Sift keeps its last good values when Vault is down,
		// so a long retry chain only delays the answer.
		MaxRetries: 1, MinRetryWait: 500 * time.Millisecond, MaxRetryWait: 1500 * time.Millisecond,
	}
	if cfg.CAFile != "" || cfg.ServerName != "" {
		if err := vc.ConfigureTLS(&vaultapi.TLSConfig{CACert: cfg.CAFile, TLSServerName: cfg.ServerName}); err != nil {
			return nil, fmt.Errorf("vault: tls: %w", err)
		}
	}
	api, err := vaultapi.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	// The client reads VAULT_TOKEN and friends from the process; Sift's
	// configuration is the only source of its credentials.
	api.ClearToken()
	if cfg.Namespace != "" {
		api.SetNamespace(cfg.Namespace)
	} else {
		api.ClearNamespace()
	}
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.Out = discard{}
		log = l
	}
	c := &Client{api: api, cfg: cfg, env: opts.Env, log: log.WithField("vault", cfg.Address), now: time.Now,
		renewed: make(chan struct{}, 1)}
	c.auth, err = c.method()
	if err != nil {
		return nil, err
	}
	return c, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// method returns the login of the configured auth method.
func (c *Client) method() (func(ctx context.Context) (*vaultapi.Secret, error), error) {
	a := c.cfg.Auth
	switch a.Method {
	case "token":
		return func(context.Context) (*vaultapi.Secret, error) {
			tok, err := c.staticToken()
			if err != nil {
				return nil, err
			}
			c.api.SetToken(tok)
			// Look the token up so a bad one fails here, named, and so its
			// TTL is known to the watcher.
			s, err := c.api.Auth().Token().LookupSelf()
			if err != nil {
				return nil, err
			}
			return s, nil
		}, nil
	case "approle":
		return func(ctx context.Context) (*vaultapi.Secret, error) {
			roleID := a.RoleID
			if a.RoleIDFile != "" {
				v, _, err := config.ReadSecretFile(a.RoleIDFile)
				if err != nil {
					return nil, fmt.Errorf("role_id_file: %w", err)
				}
				roleID = v
			}
			var opts []approle.LoginOption
			opts = append(opts, approle.WithMountPath(a.Mount))
			if a.SecretIDWrapped {
				opts = append(opts, approle.WithWrappingToken())
			}
			secretID := &approle.SecretID{}
			if a.SecretIDFile != "" {
				// Checked here too: the module reads the file without the
				// size and type checks of ReadSecretFile.
				v, _, err := config.ReadSecretFile(a.SecretIDFile)
				if err != nil {
					return nil, fmt.Errorf("secret_id_file: %w", err)
				}
				secretID.FromString = v
			} else {
				// A role with bind_secret_id=false takes the role_id alone.
				s, err := c.api.Logical().WriteWithContext(ctx, "auth/"+a.Mount+"/login", map[string]any{"role_id": roleID})
				return s, err
			}
			auth, err := approle.NewAppRoleAuth(roleID, secretID, opts...)
			if err != nil {
				return nil, err
			}
			return c.api.Auth().Login(ctx, auth)
		}, nil
	case "kubernetes":
		return func(ctx context.Context) (*vaultapi.Secret, error) {
			jwt, _, err := config.ReadSecretFile(a.JWTFile)
			if err != nil {
				return nil, fmt.Errorf("jwt_file: %w", err)
			}
			auth, err := kubernetes.NewKubernetesAuth(a.Role, kubernetes.WithServiceAccountToken(jwt), kubernetes.WithMountPath(a.Mount))
			if err != nil {
				return nil, err
			}
			return c.api.Auth().Login(ctx, auth)
		}, nil
	case "jwt":
		return func(ctx context.Context) (*vaultapi.Secret, error) {
			jwt, _, err := config.ReadSecretFile(a.JWTFile)
			if err != nil {
				return nil, fmt.Errorf("jwt_file: %w", err)
			}
			s, err := c.api.Logical().WriteWithContext(ctx, "auth/"+a.Mount+"/login", map[string]any{"role": a.Role, "jwt": jwt})
			if err != nil {
				return nil, err
			}
			if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
				return nil, errors.New("the login answer holds no token")
			}
			c.api.SetToken(s.Auth.ClientToken)
			return s, nil
		}, nil
	}
	return nil, fmt.Errorf("vault: auth method %q is not supported", a.Method)
}

// staticToken reads the token method's token: from the file each time,
// so a Vault Agent's new sink is picked up.
func (c *Client) staticToken() (string, error) {
	a := c.cfg.Auth
	if a.TokenFile != "" {
		v, _, err := config.ReadSecretFile(a.TokenFile)
		if err != nil {
			return "", fmt.Errorf("token_file: %w", err)
		}
		return v, nil
	}
	if c.env != nil {
		if v, ok := c.env(a.TokenEnv); ok && v != "" {
			return v, nil
		}
	}
	return "", fmt.Errorf("token_env: environment variable %s is not set or empty (export it, or use token_file)", a.TokenEnv)
}

// Login logs in with the configured method, replacing the current token.
func (c *Client) Login(ctx context.Context) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	return c.loginLocked(ctx)
}

func (c *Client) loginLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	s, err := c.auth(ctx)
	if err != nil {
		return fmt.Errorf("vault: login with %s at auth/%s: %w", c.cfg.Auth.Method, c.cfg.Auth.Mount, describe(err))
	}
	if s != nil && s.Auth != nil && s.Auth.ClientToken != "" {
		c.api.SetToken(s.Auth.ClientToken)
	}
	c.mu.Lock()
	c.login, c.loggedIn = s, true
	c.gen++
	c.mu.Unlock()
	select {
	case c.renewed <- struct{}{}:
	default:
	}
	c.log.WithField("method", c.cfg.Auth.Method).Info("logged in to vault")
	return nil
}

// ensureLogin logs in unless a login already happened.
func (c *Client) ensureLogin(ctx context.Context) error {
	c.mu.Lock()
	ok := c.loggedIn
	c.mu.Unlock()
	if ok {
		return nil
	}
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	ok = c.loggedIn
	c.mu.Unlock()
	if ok {
		return nil
	}
	return c.loginLocked(ctx)
}

// ReadKV reads the latest version of the KV v2 secret at mount/path. A 403
// may be an expired token: it logs in once more and retries before
// reporting config.ErrVaultForbidden.
func (c *Client) ReadKV(ctx context.Context, mount, path string) (config.KV, error) {
	if err := c.ensureLogin(ctx); err != nil {
		return config.KV{}, err
	}
	kv, err := c.read(ctx, mount, path)
	if errors.Is(err, config.ErrVaultForbidden) {
		if lerr := c.Login(ctx); lerr != nil {
			return config.KV{}, fmt.Errorf("%w; %w", err, lerr)
		}
		kv, err = c.read(ctx, mount, path)
	}
	return kv, err
}

func (c *Client) read(ctx context.Context, mount, path string) (config.KV, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	where := mount + "/" + path
	s, err := c.api.KVv2(mount).Get(ctx, path)
	var re *vaultapi.ResponseError
	switch {
	case errors.Is(err, vaultapi.ErrSecretNotFound):
		return config.KV{}, fmt.Errorf("vault: %s: %w (write it with `vault kv put -mount=%s %s …`)", where, config.ErrVaultNotFound, mount, path)
	case errors.As(err, &re) && re.StatusCode == http.StatusForbidden:
		return config.KV{}, fmt.Errorf("vault: %s: %w (grant read on %s/data/%s to Sift's policy)", where, config.ErrVaultForbidden, mount, path)
	case err != nil:
		return config.KV{}, fmt.Errorf("vault: %s: %w", where, describe(err))
	case s.Data == nil:
		// The latest version is deleted or destroyed.
		return config.KV{}, fmt.Errorf("vault: %s: %w (its latest version is deleted; undelete it or write a new one)", where, config.ErrVaultNotFound)
	}
	version := 0
	if s.VersionMetadata != nil {
		version = s.VersionMetadata.Version
	}
	return config.KV{Data: s.Data, Version: version}, nil
}

// describe shortens the client's errors: a ResponseError's own text spans
// lines; keep the status and Vault's messages.
func describe(err error) error {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		if msg == "" {
			msg = http.StatusText(re.StatusCode)
		}
		return fmt.Errorf("Vault answered %d: %s", re.StatusCode, msg)
	}
	return err
}

// Run keeps the token alive until ctx ends: the LifetimeWatcher renews a
// renewable token; when renewal stops (max TTL reached, token revoked, a
// secret_id expired) it logs in again, backing off while that fails.
func (c *Client) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		if err := c.ensureLogin(ctx); err != nil {
			c.log.WithError(err).Warn("vault login failed, retrying")
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		backoff = time.Second
		c.mu.Lock()
		login, gen := c.login, c.gen
		c.mu.Unlock()
		ended, err := c.watch(ctx, login, gen)
		if ctx.Err() != nil {
			return nil
		}
		if ended {
			c.log.WithError(err).Info("vault token can no longer be renewed, logging in again")
			c.mu.Lock()
			if c.gen == gen {
				c.loggedIn = false
			}
			c.mu.Unlock()
		}
	}
}

// watch renews the token of login number gen until it cannot be renewed
// any more (ended) or a newer login replaced it.
func (c *Client) watch(ctx context.Context, login *vaultapi.Secret, gen uint64) (ended bool, err error) {
	replaced := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.gen != gen
	}
	renewable := login != nil && ((login.Auth != nil && login.Auth.Renewable) || c.tokenRenewable(login))
	if !renewable {
		// A token that cannot be renewed: wait for a new login (a 403
		// makes ReadKV log in again) or the end.
		for {
			select {
			case <-ctx.Done():
				return false, nil
			case <-c.renewed:
				if replaced() {
					return false, nil
				}
			}
		}
	}
	w, err := c.api.NewLifetimeWatcher(&vaultapi.LifetimeWatcherInput{Secret: login})
	if err != nil {
		return true, err
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case err := <-w.DoneCh():
			if err == nil {
				err = errors.New("token reached its maximum TTL")
			}
			return true, err
		case r := <-w.RenewCh():
			c.log.WithField("ttl_seconds", ttlOf(r.Secret)).Debug("vault token renewed")
		case <-c.renewed:
			if replaced() {
				return false, nil
			}
		}
	}
}

// tokenRenewable reads a token lookup's answer (the token method), where
// the TTL sits in Data rather than Auth.
func (c *Client) tokenRenewable(s *vaultapi.Secret) bool {
	if s == nil || s.Auth != nil {
		return false
	}
	r, _ := s.TokenIsRenewable()
	if !r {
		return false
	}
	// The watcher renews from Auth; make the lookup look like a login.
	ttl, _ := s.TokenTTL()
	s.Auth = &vaultapi.SecretAuth{ClientToken: c.api.Token(), Renewable: true, LeaseDuration: int(ttl.Seconds())}
	return true
}

func ttlOf(s *vaultapi.Secret) int {
	if s != nil && s.Auth != nil {
		return s.Auth.LeaseDuration
	}
	return 0
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
