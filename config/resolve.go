package config

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Keys of the secrets outside masters.
const (
	SlackAppTokenKey  = "slack.app_token"
	SlackBotTokenKey  = "slack.bot_token"
	PipelineSecretKey = "halts.pipeline.secret"
)

// secretTable holds the secret references of a Config.
type secretTable struct{ slots []secretSlot }

// slots returns the slots; none for a Config built in code.
func (c *Config) slots() []secretSlot {
	if c.secrets == nil {
		return nil
	}
	return c.secrets.slots
}

// secretSlot ties a secret's reference to the Config field it fills.
type secretSlot struct {
	ref   SecretRef
	field func(*Config) *Secret
}

// addSecret records the reference of the secret at key; field finds the
// Config field that Resolve fills.
func (c *Config) addSecret(ref SecretRef, field func(*Config) *Secret) {
	if c.secrets == nil {
		c.secrets = &secretTable{}
	}
	c.secrets.slots = append(c.secrets.slots, secretSlot{ref: ref, field: field})
}

func (c *Config) slot(key string) *secretSlot {
	for i, s := range c.slots() {
		if s.ref.Key == key {
			return &c.secrets.slots[i]
		}
	}
	return nil
}

// SecretRefs returns every secret reference of the configuration, in file
// order; nothing is read.
func (c *Config) SecretRefs() []SecretRef {
	var out []SecretRef
	for _, s := range c.slots() {
		if s.ref.Set() {
			out = append(out, s.ref)
		}
	}
	return out
}

// SecretRef returns the reference of the secret at key.
func (c *Config) SecretRef(key string) (SecretRef, bool) {
	if s := c.slot(key); s != nil && s.ref.Set() {
		return s.ref, true
	}
	return SecretRef{}, false
}

// MasterPasswordKey is the key of the password of the master called name,
// e.g. masters[0].password; empty when there is no such master.
func (c *Config) MasterPasswordKey(name string) string {
	for i, m := range c.Masters {
		if m.Name == name {
			return fmt.Sprintf("masters[%d].password", i)
		}
	}
	return ""
}

// NeedsVault reports whether any of keys (every secret when none) is read
// from Vault.
func (c *Config) NeedsVault(keys ...string) bool {
	for _, s := range c.slots() {
		if (len(keys) == 0 || slices.Contains(keys, s.ref.Key)) && s.ref.IsVault() {
			return true
		}
	}
	return false
}

// ResolveSecret reads the secret at key and checks its value (a Slack
// token's prefix, ...), without storing it: the rotation path calls it
// again and again.
func (c *Config) ResolveSecret(ctx context.Context, key string, vault VaultReader) (Resolved, error) {
	s := c.slot(key)
	if s == nil || !s.ref.Set() {
		// A Config built in code holds its secrets in the fields.
		if f := c.field(key); f != nil && *f != "" {
			return Resolved{Value: *f, From: "set in code"}, nil
		}
		return Resolved{}, fmt.Errorf("config: %s: no such secret in the configuration", key)
	}
	res, err := s.ref.Resolve(ctx, c.env, vault)
	if err != nil {
		return Resolved{}, err
	}
	if msg := valueProblem(key, res.Value.Reveal()); msg != "" {
		where := key
		if s.ref.Override != "" {
			where += " (from " + s.ref.Override + ")"
		}
		return Resolved{}, fmt.Errorf("config: %s: %s", where, msg)
	}
	return res, nil
}

// Resolve reads the secrets at keys (every configured secret when none)
// into the Config's Secret fields, and records their origins and warnings
// for Summary. Secrets are read only here, so a command reads only the
// ones it uses: `sift triage` never needs the Slack tokens. vault may be nil
// when none of the keys is in Vault. Every problem is reported at once.
func (c *Config) Resolve(ctx context.Context, vault VaultReader, keys ...string) error {
	var errs []error
	for i := range c.slots() {
		s := &c.secrets.slots[i]
		if len(keys) > 0 && !slices.Contains(keys, s.ref.Key) {
			continue
		}
		if !s.ref.Set() {
			continue // Validate has reported it when it is required
		}
		res, err := c.ResolveSecret(ctx, s.ref.Key, vault)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*s.field(c) = res.Value
		c.secretFrom[s.ref.Key] = res.From
		for _, w := range res.Warnings {
			if !slices.Contains(c.warnings, w) {
				c.warnings = append(c.warnings, w)
			}
		}
	}
	for _, k := range keys {
		if c.slot(k) == nil {
			errs = append(errs, fmt.Errorf("config: %s: no such secret in the configuration", k))
		}
	}
	return errors.Join(errs...)
}

// Warnings are the problems found while resolving secrets that do not stop
// Sift, such as secret files others can read.
func (c *Config) Warnings() []string { return slices.Clone(c.warnings) }

// field returns the Config field of the secret at key, nil when the
// configuration has no such secret.
func (c *Config) field(key string) *Secret {
	if s := c.slot(key); s != nil {
		return s.field(c)
	}
	switch key {
	case SlackAppTokenKey, SlackBotTokenKey:
		if c.Slack == nil {
			return nil
		}
		if key == SlackAppTokenKey {
			return &c.Slack.AppToken
		}
		return &c.Slack.BotToken
	case PipelineSecretKey:
		if c.Halts == nil {
			return nil
		}
		return &c.Halts.Pipeline.Secret
	}
	var i int
	if n, err := fmt.Sscanf(key, "masters[%d].password", &i); err == nil && n == 1 && i >= 0 && i < len(c.Masters) &&
		key == fmt.Sprintf("masters[%d].password", i) {
		return &c.Masters[i].Password
	}
	return nil
}

// secretSet reports whether the secret at key has a source, or a value
// when the Config was built in code.
func (c *Config) secretSet(key string, v Secret) bool {
	if v != "" {
		return true
	}
	s := c.slot(key)
	return s != nil && s.ref.Set()
}

// valueProblem checks a secret's value where its shape is known: Slack
// tokens carry a public prefix. Only those prefixes are ever quoted.
func valueProblem(key, v string) string {
	const appFix = "the app-level token, xapp-…, from the app's Basic Information → App-Level Tokens, with connections:write"
	const botFix = "the Bot User OAuth Token, xoxb-…, from the app's OAuth & Permissions page"
	switch key {
	case SlackAppTokenKey:
		switch {
		case strings.HasPrefix(v, "xoxb-"):
			return "holds a bot token, xoxb-… (move it to slack.bot_token; slack.app_token takes " + appFix + ")"
		case !strings.HasPrefix(v, "xapp-"):
			return "does not start with \"xapp-\" (use " + appFix + ")"
		}
	case SlackBotTokenKey:
		switch {
		case strings.HasPrefix(v, "xapp-"):
			return "holds an app-level token, xapp-… (move it to slack.app_token; slack.bot_token takes " + botFix + ")"
		case strings.HasPrefix(v, "xoxp-"):
			return "holds a user token, xoxp-… (Sift acts as its bot user: use " + botFix + ")"
		case !strings.HasPrefix(v, "xoxb-"):
			return "does not start with \"xoxb-\" (use " + botFix + ")"
		}
	}
	return ""
}
