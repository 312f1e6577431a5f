package config

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
)

// Summary describes the configuration for `sift check-config`: what Sift
// will talk to and with which settings. Secrets show as <secret> with where
// they were read from; their values are never printed.
func (c *Config) Summary() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	line := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }

	line("Masters (%d):", len(c.Masters))
	for i, m := range c.Masters {
		tls := ""
		switch {
		case m.TLSInsecureSkipVerify:
			tls = "\ttls: insecure-skip-verify"
		case m.TLSCAFile != "":
			tls = "\ttls_ca_file: " + m.TLSCAFile
		}
		line("  %s\turl: %s\teauth: %s\tusername: %s\tpassword: %s%s",
			m.Name, urlShown(m.URL), m.Eauth, m.Username, c.secretShown(fmt.Sprintf("masters[%d].password", i), m.Password), tls)
	}
	line("Datacenters (%d):", len(c.Datacenters))
	for _, dc := range c.Datacenters {
		inv := "no inventory"
		if n := len(dc.Minions); n > 0 {
			inv = fmt.Sprintf("%d minions in inventory", n)
		}
		line("  %s\tmaster: %s\ttarget: %s\t%s", dc.Name, dc.Master, dc.Target, inv)
	}
	line("Groups (%d):", len(c.Groups))
	for _, g := range c.Groups {
		line("  %s\tdatacenters: %s", g.Name, strings.Join(g.Datacenters, ", "))
	}
	tw.Flush()

	t := c.Triage
	fmt.Fprintf(&b, "Triage:\n  timeout: %s\n  gather_job_timeout: %s\n  max_parallel_datacenters: %d\n  poll_interval: %s\n  deadline: %s\n",
		t.Timeout, t.GatherJobTimeout, t.MaxParallelDatacenters, t.PollInterval, t.Deadline)
	if c.Links.CommitURL != "" {
		fmt.Fprintf(&b, "Links:\n  commit_url: %s\n", c.Links.CommitURL)
	}

	if s := c.Slack; s != nil {
		b.WriteString("Slack:\n")
		fmt.Fprintf(&b, "  api_url: %s\n", s.APIURL)
		fmt.Fprintf(&b, "  app_token: %s\n", c.secretShown("slack.app_token", s.AppToken))
		fmt.Fprintf(&b, "  bot_token: %s\n", c.secretShown("slack.bot_token", s.BotToken))
		fmt.Fprintf(&b, "  commands: minion %s, datacenter %s, group %s\n", s.Commands.Minion, s.Commands.Datacenter, s.Commands.Group)
		if len(s.Channels) == 0 {
			b.WriteString("  channels: every channel the bot is in\n")
		} else {
			fmt.Fprintf(&b, "  channels: %s\n", strings.Join(s.Channels, ", "))
		}
		for _, a := range []struct {
			kind   string
			access Access
		}{{"minion", s.Authz.Minion}, {"datacenter", s.Authz.Datacenter}, {"group", s.Authz.Group}} {
			fmt.Fprintf(&b, "  authz %s: %s\n", a.kind, accessShown(a.access))
		}
		fmt.Fprintf(&b, "  audit_log: %s\n  shutdown_grace: %s\n  progress_interval: %s\n", s.AuditLog, s.ShutdownGrace, s.ProgressInterval)
	}
	if h := c.Halts; h != nil {
		b.WriteString("Halts:\n")
		fmt.Fprintf(&b, "  channel: %s\n  store: %s\n  still_failing_interval: %s\n", orNone(h.Channel), h.Store, h.StillFailingInterval)
		fmt.Fprintf(&b, "  listen: %s\n", orNone(h.Listen))
		if h.PrometheusURL != "" {
			fmt.Fprintf(&b, "  prometheus_url: %s\n", h.PrometheusURL)
		}
		for _, r := range h.Rules {
			fmt.Fprintf(&b, "  rule %s: schedule %q, %s from label %q, query %s\n", r.Name, r.Schedule, r.ScopeKind, r.ScopeLabel, r.Query)
		}
		if am := h.Alertmanager; am.Enabled {
			fmt.Fprintf(&b, "  alertmanager: on, %s from label %q\n", am.ScopeKind, am.ScopeLabel)
		} else {
			b.WriteString("  alertmanager: off\n")
		}
		if pl := h.Pipeline; pl.Enabled {
			fmt.Fprintf(&b, "  pipeline: on, secret %s, max_skew %s\n", c.secretShown("halts.pipeline.secret", pl.Secret), pl.MaxSkew)
		} else {
			b.WriteString("  pipeline: off\n")
		}
	}
	if v := c.Vault; v != nil {
		b.WriteString("Vault:\n")
		fmt.Fprintf(&b, "  address: %s\n", urlShown(v.Address))
		if v.Namespace != "" {
			fmt.Fprintf(&b, "  namespace: %s\n", v.Namespace)
		}
		if v.CAFile != "" {
			fmt.Fprintf(&b, "  ca_file: %s\n", v.CAFile)
		}
		if v.ServerName != "" {
			fmt.Fprintf(&b, "  server_name: %s\n", v.ServerName)
		}
		fmt.Fprintf(&b, "  auth: %s at auth/%s%s\n", v.Auth.Method, v.Auth.Mount, authShown(v.Auth))
		fmt.Fprintf(&b, "  refresh_interval: %s\n  max_staleness: %s\n", v.RefreshInterval, v.MaxStaleness)
	}
	if p := c.Probes; p.Enabled() {
		fmt.Fprintf(&b, "Probes:\n  allow: %s\n  timeout: %s\n  max_parallel: %d\n  cache_for: %s\n",
			strings.Join(p.Allow, ", "), p.Timeout, p.MaxParallel, p.CacheFor)
	} else {
		b.WriteString("Probes: off (no probes.allow)\n")
	}
	if c.Metrics.Listen != "" {
		fmt.Fprintf(&b, "Metrics:\n  listen: %s\n", c.Metrics.Listen)
	}
	fmt.Fprintf(&b, "Log:\n  level: %s\n  format: %s\n", c.Log.Level, c.Log.Format)

	var set []string
	for _, key := range slices.Sorted(maps.Keys(c.overrides)) {
		set = append(set, c.overrides[key])
	}
	fmt.Fprintf(&b, "Environment overrides: %s", strings.Join(EnvOverrides, ", "))
	if len(set) > 0 {
		fmt.Fprintf(&b, " (in effect: %s)", strings.Join(set, ", "))
	} else {
		b.WriteString(" (none in effect)")
	}
	b.WriteString("\n")
	for _, w := range c.warnings {
		fmt.Fprintf(&b, "Warning: %s\n", w)
	}
	return b.String()
}

// authShown lists the files and variables a Vault login reads.
func authShown(a VaultAuth) string {
	var parts []string
	for _, kv := range []struct{ k, v string }{
		{"token_file", a.TokenFile}, {"token_env", a.TokenEnv}, {"role_id", a.RoleID}, {"role_id_file", a.RoleIDFile},
		{"secret_id_file", a.SecretIDFile}, {"role", a.Role}, {"jwt_file", a.JWTFile},
	} {
		if kv.v != "" {
			parts = append(parts, kv.k+" "+kv.v)
		}
	}
	if a.SecretIDWrapped {
		parts = append(parts, "secret_id response-wrapped")
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

// CheckSecrets reads every secret the configuration names, as Resolve
// does, and describes each one's status for check-config: where it is read
// from and found (with its Vault version), missing, forbidden or
// unreadable. Values are never shown. The error joins every failure.
func (c *Config) CheckSecrets(ctx context.Context, vault VaultReader) (string, error) {
	refs := c.SecretRefs()
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Secrets (%d):\n", len(refs))
	var errs []error
	for _, ref := range refs {
		err := c.Resolve(ctx, vault, ref.Key)
		status := "found"
		switch {
		case err == nil:
			if ref.IsVault() {
				if from := c.secretFrom[ref.Key]; strings.Contains(from, " version ") {
					status += ", version " + from[strings.LastIndex(from, " ")+1:]
				}
			}
		case errors.Is(err, ErrVaultNotFound):
			status = "missing"
		case errors.Is(err, ErrVaultForbidden):
			status = "forbidden"
		case errors.Is(err, ErrVaultFieldMissing):
			status = "field missing"
		default:
			status = "unreadable"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", ref.Key, ref.Source(), status)
		if err != nil {
			errs = append(errs, err)
		}
	}
	tw.Flush()
	return b.String(), errors.Join(errs...)
}

// secretShown renders a secret as <secret> plus its origin, the source it
// will be read from when it was not read, or "not set".
func (c *Config) secretShown(key string, s Secret) string {
	if s == "" {
		if ref, ok := c.SecretRef(key); ok {
			return "<secret> (" + ref.Source() + ", not read)"
		}
		return "not set"
	}
	if from := c.secretFrom[key]; from != "" {
		return s.String() + " (" + from + ")"
	}
	return s.String()
}

func accessShown(a Access) string {
	if a.Open() {
		return "everyone"
	}
	var parts []string
	if len(a.Users) > 0 {
		parts = append(parts, "users "+strings.Join(a.Users, ", "))
	}
	if len(a.Usergroups) > 0 {
		parts = append(parts, "usergroups "+strings.Join(a.Usergroups, ", "))
	}
	return strings.Join(parts, "; ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// urlShown hides a password in a URL's userinfo; Validate rejects such URLs
// but Summary may be given a Config built in code.
func urlShown(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<invalid URL>"
	}
	return u.Redacted()
}
