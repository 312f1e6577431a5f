package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"
)

var (
	// namePattern is what datacenter and group names may use: they are typed
	// into chat and compared verbatim, so nothing a shell or Salt would
	// expand.
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	// masterNamePattern leaves out '.', because a master's name becomes part
	// of the SIFT_MASTER_<NAME>_PASSWORD variable and '.' cannot.
	masterNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	// minionIDPattern matches what Salt minion ids use in practice and
	// nothing a target expression could read as a glob or operator.
	minionIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	// Slack ids: channels (public C, private G, DM D), users (U, or W on
	// Enterprise Grid), user groups (S).
	channelIDPattern   = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)
	userIDPattern      = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	usergroupIDPattern = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
)

const (
	// maxMinionIDLen is Salt's limit: a minion id is a file name on the master.
	maxMinionIDLen = 255
	// maxParallelDatacenters caps the fan-out; more than this would only
	// queue on the masters' event buses.
	maxParallelDatacenters = 1024
	// maxListed bounds the "(defined: …)" lists in messages for big fleets.
	maxListed = 10
)

// problems collects validation errors in the "config: <key>: <problem>
// (<fix>)" form.
type problems struct {
	c    *Config
	errs []error
}

// add records a problem with key unless loading already reported it; a key
// set from the environment is shown with its variable, since that is what
// the user has to change.
func (p *problems) add(key, format string, args ...any) {
	if p.c.reported[key] {
		return
	}
	if name, ok := p.c.overrides[key]; ok {
		key += " (from " + name + ")"
	}
	p.errs = append(p.errs, fmt.Errorf("config: "+key+": "+format, args...))
}

// Validate reports every problem in c at once, joined with errors.Join;
// each names the key path and the fix. It reads tls_ca_file to check it.
func (c *Config) Validate() error {
	p := &problems{c: c}
	c.validateMasters(p)
	c.validateDatacenters(p)
	c.validateGroups(p)
	c.validateTriage(p)
	if u := c.Links.CommitURL; u != "" {
		probe := strings.ReplaceAll(u, "{commit}", "0123abc")
		if !strings.Contains(u, "{commit}") {
			p.add("links.commit_url", "%q has no {commit} placeholder (write e.g. https://git.example.com/salt/-/commit/{commit})", u)
		} else if !isHTTPURL(probe) {
			p.add("links.commit_url", "%q is not an http or https URL (write e.g. https://git.example.com/salt/-/commit/{commit})", u)
		}
	}
	if c.Slack != nil {
		c.validateSlack(p)
	}
	if c.Halts != nil {
		c.validateHalts(p)
	}
	c.validateVault(p)
	c.validateProbes(p)
	if c.Metrics.Listen != "" {
		if msg := checkListen(c.Metrics.Listen); msg != "" {
			p.add("metrics.listen", "%s (write host:port, e.g. 127.0.0.1:9184, or leave it empty to turn metrics off)", msg)
		}
	}
	if _, err := logrus.ParseLevel(c.Log.Level); err != nil {
		p.add("log.level", "%q is not a log level (use one of trace, debug, info, warn, error, fatal, panic)", c.Log.Level)
	}
	if !slices.Contains([]string{"auto", "json", "text"}, c.Log.Format) {
		p.add("log.format", "%q is not a log format (use auto, json or text)", c.Log.Format)
	}
	return errors.Join(p.errs...)
}

func (c *Config) validateMasters(p *problems) {
	if len(c.Masters) == 0 {
		p.add("masters", "none defined (add at least one salt-api master with name, url, eauth, username and password)")
		return
	}
	seen := map[string]int{}
	seenEnv := map[string]int{}
	for i, m := range c.Masters {
		key := fmt.Sprintf("masters[%d]", i)
		switch j, dup := seen[m.Name]; {
		case m.Name == "":
			p.add(key+".name", "empty (name the master, e.g. salt-eu)")
		case !masterNamePattern.MatchString(m.Name):
			p.add(key+".name", "%q is not a valid master name (use letters, digits, '-' and '_'; it becomes part of %s)", m.Name, "SIFT_MASTER_<NAME>_PASSWORD")
		case dup:
			p.add(key+".name", "%q is already the name of masters[%d] (give each master its own name)", m.Name, j)
		default:
			seen[m.Name] = i
			env := MasterPasswordEnv(m.Name)
			if j, dup := seenEnv[env]; dup {
				p.add(key+".name", "%q and masters[%d] share the override variable %s (rename one)", m.Name, j, env)
			}
			seenEnv[env] = i
		}

		u, err := url.Parse(m.URL)
		switch {
		case m.URL == "":
			p.add(key+".url", "not set (set the salt-api base URL, e.g. https://salt-eu.example.com:8000)")
		case err != nil:
			// The parse error quotes the URL, which may hold credentials.
			p.add(key+".url", "not a valid URL (write the salt-api base URL, e.g. https://salt-eu.example.com:8000)")
		case u.User != nil:
			p.add(key+".url", "holds credentials (move them to username and password_file)")
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			p.add(key+".url", "%q is not an http or https URL with a host (write e.g. https://salt-eu.example.com:8000)", m.URL)
		}
		if m.Eauth == "" {
			p.add(key+".eauth", "not set (set salt-api's eauth backend, e.g. pam, ldap or sharedsecret)")
		}
		if m.Username == "" {
			p.add(key+".username", "not set (set the salt-api user Sift logs in as)")
		}
		if !c.secretSet(key+".password", m.Password) {
			fix := "set one of password, password_file, password_env or password_vault"
			if m.Name != "" {
				fix += ", or export " + MasterPasswordEnv(m.Name)
			}
			p.add(key+".password", "not set (%s)", fix)
		}
		if m.TLSCAFile != "" {
			if err == nil && u.Scheme == "http" {
				p.add(key+".tls_ca_file", "set but url is http (use an https url, or remove tls_ca_file)")
			}
			if pem, _, err := readRegularFile(m.TLSCAFile, maxCAFileSize, "a CA bundle"); err != nil {
				p.add(key+".tls_ca_file", "%v (point it at a readable PEM bundle, or remove it to use the system roots)", err)
			} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				p.add(key+".tls_ca_file", "%q holds no PEM certificate (point it at the CA bundle that signed salt-api's certificate)", m.TLSCAFile)
			}
		}
	}
}

func (c *Config) validateDatacenters(p *problems) {
	masters := listed(c.MasterNames())
	seen := map[string]int{}
	for i, dc := range c.Datacenters {
		key := fmt.Sprintf("datacenters[%d]", i)
		switch j, dup := seen[dc.Name]; {
		case dc.Name == "":
			p.add(key+".name", "empty (name the datacenter, e.g. ams01)")
		case !namePattern.MatchString(dc.Name):
			p.add(key+".name", "%q is not a valid datacenter name (use letters, digits, '.', '_' and '-', starting with a letter or digit)", dc.Name)
		case dup:
			p.add(key+".name", "%q is already the name of datacenters[%d] (give each datacenter its own name)", dc.Name, j)
		default:
			seen[dc.Name] = i
		}
		if dc.Master == "" {
			p.add(key+".master", "not set (name the master that serves it; defined: %s)", masters)
		} else if _, ok := c.Master(dc.Master); !ok {
			p.add(key+".master", "%q is not a master defined under masters (defined: %s)", dc.Master, masters)
		}
		if strings.TrimSpace(dc.Target) == "" {
			p.add(key+".target", "empty (write a compound target, or remove the key for G@datacenter:<name>)")
		}
		ids := map[string]int{}
		for j, id := range dc.Minions {
			mkey := fmt.Sprintf("%s.minions[%d]", key, j)
			if k, dup := ids[id]; dup {
				p.add(mkey, "%q is already listed at minions[%d] (remove one)", id, k)
				continue
			}
			ids[id] = j
			if len(id) > maxMinionIDLen || !minionIDPattern.MatchString(id) {
				p.add(mkey, "%q is not a minion id (use letters, digits, '.', '_' and '-', starting with a letter or digit, at most %d characters)",
					truncate(id, 80), maxMinionIDLen)
			}
		}
	}
}

func (c *Config) validateGroups(p *problems) {
	dcs := listed(c.DatacenterNames())
	seen := map[string]int{}
	for i, g := range c.Groups {
		key := fmt.Sprintf("groups[%d]", i)
		switch j, dup := seen[g.Name]; {
		case g.Name == "":
			p.add(key+".name", "empty (name the group, e.g. europe)")
		case !namePattern.MatchString(g.Name):
			p.add(key+".name", "%q is not a valid group name (use letters, digits, '.', '_' and '-', starting with a letter or digit)", g.Name)
		case dup:
			p.add(key+".name", "%q is already the name of groups[%d] (give each group its own name)", g.Name, j)
		default:
			seen[g.Name] = i
		}
		if len(g.Datacenters) == 0 {
			p.add(key+".datacenters", "empty (list the group's datacenters; defined: %s)", dcs)
		}
		members := map[string]int{}
		for j, name := range g.Datacenters {
			dkey := fmt.Sprintf("%s.datacenters[%d]", key, j)
			if k, dup := members[name]; dup {
				p.add(dkey, "%q is already listed at datacenters[%d] (remove one)", name, k)
				continue
			}
			members[name] = j
			if _, ok := c.Datacenter(name); !ok {
				p.add(dkey, "%q is not a datacenter defined under datacenters (defined: %s)", name, dcs)
			}
		}
	}
}

func (c *Config) validateTriage(p *problems) {
	t := c.Triage
	positive(p, "triage.timeout", t.Timeout, "30s")
	positive(p, "triage.gather_job_timeout", t.GatherJobTimeout, "10s")
	positive(p, "triage.poll_interval", t.PollInterval, "1s")
	if t.Deadline <= 0 {
		p.add("triage.deadline", "%s is not more than 0 (use e.g. 1m; in the file, 0 means timeout + gather_job_timeout + 15s)", t.Deadline)
	} else if t.Deadline < t.Timeout {
		// Salt would still be waiting for minions when Sift gives up.
		p.add("triage.deadline", "%s is shorter than triage.timeout %s (raise it, or use 0 for timeout + gather_job_timeout + 15s)", t.Deadline, t.Timeout)
	}
	if n := t.MaxParallelDatacenters; n < 1 || n > maxParallelDatacenters {
		p.add("triage.max_parallel_datacenters", "%d is out of range (use 1 to %d)", n, maxParallelDatacenters)
	}
}

func (c *Config) validateSlack(p *problems) {
	s := c.Slack
	const appFix = "the app-level token, xapp-…, from the app's Basic Information → App-Level Tokens, with connections:write"
	const botFix = "the Bot User OAuth Token, xoxb-…, from the app's OAuth & Permissions page"
	// Only the well-known public prefixes are ever quoted, never the tokens.
	// A token not yet read is checked when it is (ResolveSecret).
	if !c.secretSet(SlackAppTokenKey, s.AppToken) {
		p.add(SlackAppTokenKey, "not set (set one of app_token, app_token_file, app_token_env or app_token_vault, or export SIFT_SLACK_APP_TOKEN, to %s)", appFix)
	} else if msg := valueProblem(SlackAppTokenKey, s.AppToken.Reveal()); s.AppToken != "" && msg != "" {
		p.add(SlackAppTokenKey, "%s", msg)
	}
	if !c.secretSet(SlackBotTokenKey, s.BotToken) {
		p.add(SlackBotTokenKey, "not set (set one of bot_token, bot_token_file, bot_token_env or bot_token_vault, or export SIFT_SLACK_BOT_TOKEN, to %s)", botFix)
	} else if msg := valueProblem(SlackBotTokenKey, s.BotToken.Reveal()); s.BotToken != "" && msg != "" {
		p.add(SlackBotTokenKey, "%s", msg)
	}
	if !isHTTPURL(s.APIURL) || !strings.HasSuffix(s.APIURL, "/") {
		p.add("slack.api_url", "%q is not an http or https URL ending in \"/\" (use https://slack.com/api/, or https://slack-gov.com/api/ for GovSlack)", s.APIURL)
	}
	cmds := map[string]string{}
	for _, cmd := range []struct{ key, name string }{
		{"slack.commands.minion", s.Commands.Minion},
		{"slack.commands.datacenter", s.Commands.Datacenter},
		{"slack.commands.group", s.Commands.Group},
	} {
		if !strings.HasPrefix(cmd.name, "/") || len(cmd.name) < 2 || strings.ContainsAny(cmd.name, " \t\n") {
			p.add(cmd.key, "%q is not a slash command (write it as registered with Slack, e.g. /blame-dc)", cmd.name)
		} else if other, dup := cmds[cmd.name]; dup {
			p.add(cmd.key, "%q is also %s (give each command its own name)", cmd.name, other)
		} else {
			cmds[cmd.name] = cmd.key
		}
	}
	for i, ch := range s.Channels {
		if !channelIDPattern.MatchString(ch) {
			p.add(fmt.Sprintf("slack.channels[%d]", i), "%q is not a channel id (use the id, e.g. C0123ABCD, from the bottom of the channel's details)", truncate(ch, 80))
		}
	}
	for _, a := range []struct {
		kind   string
		access Access
	}{{"minion", s.Authz.Minion}, {"datacenter", s.Authz.Datacenter}, {"group", s.Authz.Group}} {
		for i, u := range a.access.Users {
			if !userIDPattern.MatchString(u) {
				p.add(fmt.Sprintf("slack.authz.%s.users[%d]", a.kind, i), "%q is not a user id (use the member id, e.g. U0123ABCD, from the user's profile → ⋮ → Copy member ID)", truncate(u, 80))
			}
		}
		for i, g := range a.access.Usergroups {
			if !usergroupIDPattern.MatchString(g) {
				p.add(fmt.Sprintf("slack.authz.%s.usergroups[%d]", a.kind, i), "%q is not a user group id (use the id, e.g. S0123ABCD, not the @handle)", truncate(g, 80))
			}
		}
	}
	if s.AuditLog == "" {
		p.add("slack.audit_log", "empty (use stdout or a file path)")
	}
	positive(p, "slack.shutdown_grace", s.ShutdownGrace, "30s")
	positive(p, "slack.progress_interval", s.ProgressInterval, "1s")
	switch s.MentionAuthors {
	case "top", "all", "none":
	default:
		p.add("slack.mention_authors", "%q is not a policy (use top, all or none)", truncate(s.MentionAuthors, 40))
	}
}

func (c *Config) validateHalts(p *problems) {
	h := c.Halts
	if h.Store == "" {
		p.add("halts.store", "empty (set the SQLite path, e.g. /var/lib/sift/sift.db)")
	}
	c.validateStore(p)
	positive(p, "halts.still_failing_interval", h.StillFailingInterval, "30m")
	if h.Active() {
		if h.Channel == "" {
			p.add("halts.channel", "not set (halt sources are configured: set the channel id halts are posted to, e.g. C0123ABCD)")
		}
		if c.Slack == nil {
			p.add("halts", "halt sources are configured but there is no slack section (add one: halts are posted to Slack)")
		}
	}
	if h.Channel != "" && !channelIDPattern.MatchString(h.Channel) {
		p.add("halts.channel", "%q is not a channel id (use the id, e.g. C0123ABCD, from the bottom of the channel's details)", truncate(h.Channel, 80))
	}
	webhooks := h.Alertmanager.Enabled || h.Pipeline.Enabled
	if h.Listen == "" && webhooks {
		p.add("halts.listen", "not set (alertmanager or pipeline is enabled: set halts.listen or metrics.listen, e.g. 127.0.0.1:9185)")
	} else if h.Listen != "" {
		if msg := checkListen(h.Listen); msg != "" {
			p.add("halts.listen", "%s (write host:port, e.g. 127.0.0.1:9185)", msg)
		}
	}
	if len(h.Rules) > 0 {
		if h.PrometheusURL == "" {
			p.add("halts.prometheus_url", "not set (rules query Prometheus: set its URL, e.g. http://prometheus:9090)")
		} else if !isHTTPURL(h.PrometheusURL) {
			p.add("halts.prometheus_url", "%q is not an http or https URL (write e.g. http://prometheus:9090)", h.PrometheusURL)
		}
	}
	seen := map[string]int{}
	for i, r := range h.Rules {
		key := fmt.Sprintf("halts.rules[%d]", i)
		rule := fmt.Sprintf("rule %q: ", r.Name)
		switch j, dup := seen[r.Name]; {
		case r.Name == "":
			rule = ""
			p.add(key+".name", "empty (name the rule, e.g. salt-failures-dc)")
		case dup:
			p.add(key+".name", "%q is already the name of halts.rules[%d] (give each rule its own name)", r.Name, j)
		default:
			seen[r.Name] = i
		}
		if r.Schedule == "" {
			p.add(key+".schedule", "%snot set (use a cron spec like \"*/5 * * * *\" or a descriptor like \"@every 1m\")", rule)
		} else if _, err := cron.ParseStandard(r.Schedule); err != nil {
			p.add(key+".schedule", "%s%q is not a cron schedule: %v (use a cron spec like \"*/5 * * * *\" or a descriptor like \"@every 1m\")", rule, r.Schedule, err)
		}
		if strings.TrimSpace(r.Query) == "" {
			p.add(key+".query", "%snot set (write a PromQL query whose series are the halted scopes)", rule)
		}
		if r.ScopeLabel == "" {
			p.add(key+".scope_label", "%snot set (name the series label that holds the scope's name, e.g. datacenter)", rule)
		}
		if !slices.Contains(scopeKinds, r.ScopeKind) {
			p.add(key+".scope_kind", "%s%q is not a scope kind (use datacenter, group or minion)", rule, r.ScopeKind)
		}
	}
	if am := h.Alertmanager; am.Enabled {
		if am.ScopeLabel == "" {
			p.add("halts.alertmanager.scope_label", "empty (name the alert label that holds the scope's name, e.g. datacenter)")
		}
		if !slices.Contains(scopeKinds, am.ScopeKind) {
			p.add("halts.alertmanager.scope_kind", "%q is not a scope kind (use datacenter, group or minion)", am.ScopeKind)
		}
		c.validateAlertmanagerAuth(p, am)
	}
	if h.CoalesceWindow < 0 {
		p.add("halts.coalesce_window", "%s is negative (use e.g. 10m, or 0 to join only halts still being triaged)", h.CoalesceWindow)
	}
	if h.MaxPostsPerHour < 1 || h.MaxPostsPerHour > maxPostsPerHour {
		p.add("halts.max_posts_per_hour", "%d is not between 1 and %d (use e.g. 30)", h.MaxPostsPerHour, maxPostsPerHour)
	}
	if h.StoreRetention < minStoreRetention {
		p.add("halts.store_retention", "%s is less than %s (use e.g. 2160h, 90 days)", h.StoreRetention, minStoreRetention)
	}
	if pl := h.Pipeline; pl.Enabled {
		if !c.secretSet(PipelineSecretKey, pl.Secret) {
			p.add(PipelineSecretKey, "not set (pipeline is enabled: set one of secret, secret_file, secret_env or secret_vault to the HMAC secret shared with the pipeline)")
		}
		positive(p, "halts.pipeline.max_skew", pl.MaxSkew, "5m")
	}
}

// Bounds of the halts' budget and retention: a budget above one post a
// minute floods a channel anyway; a retention under a day would delete
// the history people look at the morning after.
const (
	maxPostsPerHour   = 3600
	minStoreRetention = 24 * time.Hour
)

// validateAlertmanagerAuth checks the hook's credentials: one kind at a
// time, basic auth whole, and none only when asked for.
func (c *Config) validateAlertmanagerAuth(p *problems, am AlertmanagerHalts) {
	bearer := c.secretSet(AlertmanagerBearerKey, am.BearerToken)
	password := c.secretSet(AlertmanagerPasswordKey, am.BasicAuth.Password)
	basic := am.BasicAuth.Username != "" || password
	switch {
	case bearer && basic:
		p.add("halts.alertmanager", "both bearer_token and basic_auth are set (Alertmanager's http_config sends one: keep the one it is configured with)")
	case basic && am.BasicAuth.Username == "":
		p.add("halts.alertmanager.basic_auth.username", "not set (basic_auth has a password: set the username Alertmanager sends)")
	case basic && !password:
		p.add(AlertmanagerPasswordKey, "not set (basic_auth has a username: set one of password, password_file, password_env or password_vault)")
	case !bearer && !basic && !am.InsecureNoAuth:
		p.add("halts.alertmanager", "no credentials (set bearer_token_file, or basic_auth, to what the receiver's http_config sends, see docs/halts.md; "+
			"or set insecure_no_auth: true to let anyone who reaches halts.listen post halts)")
	case (bearer || basic) && am.InsecureNoAuth:
		p.add("halts.alertmanager.insecure_no_auth", "true while credentials are set (remove insecure_no_auth: the credentials are checked)")
	}
	if am.InsecureNoAuth && !bearer && !basic {
		w := "halts.alertmanager.insecure_no_auth is true: anyone who reaches " + c.Halts.Listen + " can post halts to Slack; set bearer_token_file or basic_auth"
		if !slices.Contains(c.warnings, w) {
			c.warnings = append(c.warnings, w)
		}
	}
}

// positive reports a duration that is not above zero.
func positive(p *problems, key string, d time.Duration, example string) {
	if d <= 0 {
		p.add(key, "%s is not more than 0 (use e.g. %s)", d, example)
	}
}

// isHTTPURL reports whether s is an absolute http or https URL with a host.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// checkListen returns what is wrong with a listen address, or "".
func checkListen(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("%q has no numeric port", addr)
	}
	return ""
}

// listed renders names for a "(defined: …)" hint, shortened for big fleets.
func listed(names []string) string {
	names = slices.Compact(names) // sorted by the caller; duplicates are reported elsewhere
	switch {
	case len(names) == 0:
		return "none"
	case len(names) > maxListed:
		return fmt.Sprintf("%s and %d more", strings.Join(names[:maxListed], ", "), len(names)-maxListed)
	default:
		return strings.Join(names, ", ")
	}
}

// truncate shortens s to about n bytes for quoting in a message, without
// cutting a UTF-8 sequence in half.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
