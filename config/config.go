// Package config loads Sift's one YAML file: defaults first, then the file
// (decoded strictly, so a misspelt key is an error and not a silently ignored
// setting), then environment overrides, then validation that reports every
// problem at once, each naming the key and the fix.
//
// Secrets (salt-api passwords, Slack tokens, the hooks' secrets) are given
// by reference: for a secret key X the file sets exactly one of X (inline),
// X_file (a path; relative paths are relative to the config file), X_env
// (the name of an environment variable) or X_vault (a field of a Vault KV v2
// secret). Loading reads none of them: a command reads the ones it uses
// with Resolve or ResolveSecret, so an override variable wins even over a
// file that is missing here. They end up in Secret fields, which never print.
//
// Environment overrides, applied after the file (an empty variable counts
// as unset):
//
//	SIFT_TRIAGE_TIMEOUT                   triage.timeout
//	SIFT_TRIAGE_GATHER_JOB_TIMEOUT        triage.gather_job_timeout
//	SIFT_TRIAGE_MAX_PARALLEL_DATACENTERS  triage.max_parallel_datacenters
//	SIFT_SLACK_API_URL                    slack.api_url
//	SIFT_SLACK_APP_TOKEN                  slack.app_token
//	SIFT_SLACK_BOT_TOKEN                  slack.bot_token
//	SIFT_METRICS_LISTEN                   metrics.listen
//	SIFT_LOG_LEVEL                        log.level
//	SIFT_LOG_FORMAT                       log.format
//	SIFT_MASTER_<NAME>_PASSWORD           masters[].password, NAME upper-cased, '-' → '_'
//
// A SIFT_SLACK_* variable creates the slack section when the file has none,
// so a deployment can keep the whole Slack setup out of the file.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Config is Sift's whole configuration.
type Config struct {
	// Masters are the salt-api endpoints Sift calls.
	Masters []Master
	// Datacenters map each datacenter to its master and target.
	Datacenters []Datacenter
	// Groups name sets of datacenters triaged together.
	Groups []Group
	// Triage holds the fan-out's timeouts and bounds.
	Triage Triage
	// Links are templates for links in reports.
	Links Links
	// Slack configures the bot; nil when the file has no slack section.
	Slack *Slack
	// Halts configures the pipeline-halt detector; nil when absent.
	Halts *Halts
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics
	// Log configures logging.
	Log Log
	// Vault is where secrets given by *_vault references are read; nil
	// when the file has no vault section.
	Vault *Vault
	// Probes configures the live checks of external services named by a
	// triage's causes; off unless origins are allowed.
	Probes Probes

	// secrets holds every secret reference, resolved only on demand. A
	// pointer, so fmt prints an address and never an inline secret: it
	// cannot call Secret's Format through an unexported field.
	secrets *secretTable
	// warnings are the non-fatal problems met while resolving secrets.
	warnings []string
	// env is the environment lookup secrets are resolved with.
	env func(string) (string, bool)

	// overrides maps a key path to the SIFT_* variable that set it, so a
	// validation error on that key names the variable the user must fix.
	overrides map[string]string
	// secretFrom maps a secret's key path to where it was read from, for Summary.
	secretFrom map[string]string
	// reported holds key paths whose problem was already reported while
	// loading, so Validate does not report them twice.
	reported map[string]bool
}

// Master is one salt-api endpoint.
type Master struct {
	// Name identifies the master in datacenters[].master.
	Name string
	// URL is the salt-api base URL, http or https.
	URL string
	// Eauth is salt-api's external auth backend: pam, ldap, sharedsecret, auto, ...
	Eauth    string
	Username string
	Password Secret
	// TLSCAFile is a PEM bundle to verify salt-api's certificate; empty
	// means the system roots.
	TLSCAFile             string
	TLSInsecureSkipVerify bool
}

// Datacenter is one datacenter and the master that serves it.
type Datacenter struct {
	Name   string
	Master string
	// Target is the Salt compound target of the datacenter's minions;
	// defaults to G@datacenter:<name>.
	Target string
	// Minions is an optional inventory of expected minion ids, so minions
	// that do not answer at all are still counted.
	Minions []string
}

// Group is a named set of datacenters.
type Group struct {
	Name        string
	Datacenters []string
}

// Triage holds the timeouts and bounds of the triage fan-out.
type Triage struct {
	// Timeout is salt's `timeout` for one blame call.
	Timeout time.Duration
	// GatherJobTimeout is salt's `gather_job_timeout`.
	GatherJobTimeout time.Duration
	// MaxParallelDatacenters bounds how many datacenters are asked at once.
	MaxParallelDatacenters int
	// PollInterval is how often GET /jobs/<jid> is polled.
	PollInterval time.Duration
	// Deadline bounds one datacenter's whole triage; it defaults to
	// Timeout + GatherJobTimeout + 15s, the time salt itself may take.
	Deadline time.Duration
}

// Links are URL templates used in reports.
type Links struct {
	// CommitURL is a template with {commit}, e.g.
	// https://git.example.com/salt/-/commit/{commit}; empty means no links.
	CommitURL string
}

// Slack configures the socket-mode bot.
type Slack struct {
	// AppToken is the app-level token (xapp-…) that opens the socket.
	AppToken Secret
	// BotToken is the bot user OAuth token (xoxb-…) used for Web API calls.
	BotToken Secret
	// APIURL is the Web API base URL, ending in "/" (https://slack-gov.com/api/ for GovSlack).
	APIURL   string
	Commands Commands
	// Channels are the channel ids where commands are accepted; empty
	// means every channel the bot is in.
	Channels []string
	Authz    Authz
	// AuditLog is "stdout" or a file path.
	AuditLog string
	// ShutdownGrace is how long in-flight triages may finish on shutdown.
	ShutdownGrace time.Duration
	// ProgressInterval is the minimum interval between chat.update calls
	// on one message, to stay inside Slack's rate limits.
	ProgressInterval time.Duration
	// MentionAuthors says which commit authors a report @-mentions: "top"
	// (the top cause's), "all", or "none"; each at most once a report.
	MentionAuthors string
}

// Commands are the slash command names, one per scope kind.
type Commands struct {
	Minion     string
	Datacenter string
	Group      string
}

// Authz restricts each command kind to some users and user groups.
type Authz struct {
	Minion     Access
	Datacenter Access
	Group      Access
}

// Access lists who may run a command; both empty means everyone.
type Access struct {
	// Users are Slack user ids (U…, W…).
	Users []string
	// Usergroups are Slack user group ids (S…).
	Usergroups []string
}

// Open reports whether a means everyone.
func (a Access) Open() bool { return len(a.Users) == 0 && len(a.Usergroups) == 0 }

// Halts configures the pipeline-halt detector and where it posts.
type Halts struct {
	// Channel is the Slack channel id halts are posted to.
	Channel string
	// Store is the SQLite path that remembers open halts across restarts,
	// or a postgres:// URL of the database several replicas share.
	Store string
	// StorePassword is the PostgreSQL user's password, by reference
	// (store_password_file, _env, _vault); never in the URL.
	StorePassword Secret
	// StillFailingInterval is how often an open halt is re-announced.
	StillFailingInterval time.Duration
	// Listen is the webhook listener address; defaults to Metrics.Listen.
	Listen string
	// PrometheusURL is queried by Rules.
	PrometheusURL string
	Rules         []HaltRule
	Alertmanager  AlertmanagerHalts
	Pipeline      PipelineHalts
	// CoalesceWindow is how long after its post a halt still takes in the
	// new halts of its scope (it always does while it is being triaged).
	CoalesceWindow time.Duration
	// MaxPostsPerHour bounds the halts posted in any hour; the others are
	// stored and counted in one "suppressed" note per interval.
	MaxPostsPerHour int
	// StoreRetention is how long triages, cleared halts and webhook
	// deliveries are kept.
	StoreRetention time.Duration
}

// Active reports whether any halt source is configured.
func (h *Halts) Active() bool {
	return h != nil && (len(h.Rules) > 0 || h.Alertmanager.Enabled || h.Pipeline.Enabled)
}

// HaltRule is a scheduled PromQL check: each series the query returns is a
// halt of the scope named by its ScopeLabel.
type HaltRule struct {
	Name string
	// Schedule is a robfig/cron standard spec or descriptor ("@every 1m").
	Schedule string
	Query    string
	// ScopeLabel is the series label that holds the scope's name.
	ScopeLabel string
	// ScopeKind is "datacenter", "group" or "minion".
	ScopeKind string
}

// AlertmanagerHalts accepts Alertmanager webhooks as halts.
type AlertmanagerHalts struct {
	Enabled bool
	// ScopeLabel is the alert label that holds the scope's name.
	ScopeLabel string
	// ScopeKind is "datacenter", "group" or "minion".
	ScopeKind string
	// BearerToken, or BasicAuth, is what Alertmanager's http_config must
	// send; a hook with neither is refused unless InsecureNoAuth.
	BearerToken Secret
	BasicAuth   BasicAuth
	// InsecureNoAuth lets a hook without credentials start: anyone who
	// reaches the port can then post halts.
	InsecureNoAuth bool
}

// BasicAuth is a username and password.
type BasicAuth struct {
	Username string
	Password Secret
}

// PipelineHalts accepts HMAC-signed halt notices from the release pipeline.
type PipelineHalts struct {
	Enabled bool
	// Secret is the HMAC shared secret.
	Secret Secret
	// MaxSkew is how far a notice's timestamp may be from now, against replays.
	MaxSkew time.Duration
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is host:port; empty turns metrics off.
	Listen string
}

// Log configures logging.
type Log struct {
	// Level is a logrus level name.
	Level string
	// Format is "auto" (text on a terminal, JSON otherwise), "json" or "text".
	Format string
}

// Scope kinds accepted by halt sources.
var scopeKinds = []string{"datacenter", "group", "minion"}

// Default returns the configuration with every default set and nothing
// else; Parse starts from it.
func Default() *Config {
	return &Config{
		Triage: Triage{
			Timeout:                30 * time.Second,
			GatherJobTimeout:       10 * time.Second,
			MaxParallelDatacenters: 16,
			PollInterval:           time.Second,
		},
		Log:    Log{Level: "info", Format: "auto"},
		Probes: defaultProbes(),
	}
}

// defaultSlack is the slack section's defaults, applied when it is present.
func defaultSlack() *Slack {
	return &Slack{
		APIURL:           "https://slack.com/api/",
		Commands:         Commands{Minion: "/blame-minion", Datacenter: "/blame-dc", Group: "/blame-group"},
		AuditLog:         "stdout",
		ShutdownGrace:    30 * time.Second,
		ProgressInterval: time.Second,
		MentionAuthors:   "top",
	}
}

// defaultHalts is the halts section's defaults, applied when it is present.
func defaultHalts() *Halts {
	return &Halts{
		Store:                "sift.db",
		StillFailingInterval: 30 * time.Minute,
		Alertmanager:         AlertmanagerHalts{ScopeLabel: "datacenter", ScopeKind: "datacenter"},
		Pipeline:             PipelineHalts{MaxSkew: 5 * time.Minute},
		CoalesceWindow:       10 * time.Minute,
		MaxPostsPerHour:      30,
		StoreRetention:       90 * 24 * time.Hour,
	}
}

// deadlineSlack is added to salt's own timeouts for the default deadline:
// room for the HTTP round trips and job polling around the blame call.
const deadlineSlack = 15 * time.Second

// Load reads the file at path and returns the validated configuration.
// env looks up environment variables (os.LookupEnv in production); nil
// means an empty environment. Relative *_file and tls_ca_file paths are
// resolved against the file's directory.
func Load(path string, env func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(data, filepath.Dir(path), env)
}

// Parse decodes data as a configuration file and returns the validated
// configuration. Relative paths in it are relative to the working directory.
func Parse(data []byte, env func(string) (string, bool)) (*Config, error) {
	return parse(data, "", env)
}

func parse(data []byte, dir string, env func(string) (string, bool)) (*Config, error) {
	f, err := decode(data)
	if err != nil {
		return nil, err
	}
	c := Default()
	c.overrides = map[string]string{}
	c.secretFrom = map[string]string{}
	c.reported = map[string]bool{}
	c.env = env
	c.secrets = &secretTable{}
	var errs []error
	errs = append(errs, f.apply(c, dir)...)
	errs = append(errs, c.applyEnv(env)...)
	c.derive()
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// derive fills defaults that depend on other settings, after the
// environment had its say.
func (c *Config) derive() {
	for i := range c.Datacenters {
		if c.Datacenters[i].Target == "" && c.Datacenters[i].Name != "" {
			c.Datacenters[i].Target = "G@datacenter:" + c.Datacenters[i].Name
		}
	}
	if c.Triage.Deadline == 0 {
		c.Triage.Deadline = c.Triage.Timeout + c.Triage.GatherJobTimeout + deadlineSlack
	}
	if c.Halts != nil && c.Halts.Listen == "" {
		c.Halts.Listen = c.Metrics.Listen
	}
}

// Master returns the master called name.
func (c *Config) Master(name string) (*Master, bool) {
	for i := range c.Masters {
		if c.Masters[i].Name == name {
			return &c.Masters[i], true
		}
	}
	return nil, false
}

// Datacenter returns the datacenter called name.
func (c *Config) Datacenter(name string) (*Datacenter, bool) {
	for i := range c.Datacenters {
		if c.Datacenters[i].Name == name {
			return &c.Datacenters[i], true
		}
	}
	return nil, false
}

// Group returns the group called name.
func (c *Config) Group(name string) (*Group, bool) {
	for i := range c.Groups {
		if c.Groups[i].Name == name {
			return &c.Groups[i], true
		}
	}
	return nil, false
}

// DatacenterNames returns the datacenters' names, sorted.
func (c *Config) DatacenterNames() []string {
	names := make([]string, 0, len(c.Datacenters))
	for _, dc := range c.Datacenters {
		names = append(names, dc.Name)
	}
	slices.Sort(names)
	return names
}

// GroupNames returns the groups' names, sorted.
func (c *Config) GroupNames() []string {
	names := make([]string, 0, len(c.Groups))
	for _, g := range c.Groups {
		names = append(names, g.Name)
	}
	slices.Sort(names)
	return names
}

// MasterNames returns the masters' names, sorted.
func (c *Config) MasterNames() []string {
	names := make([]string, 0, len(c.Masters))
	for _, m := range c.Masters {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names
}

// Keys of the Alertmanager hook's credentials.
const (
	AlertmanagerBearerKey   = "halts.alertmanager.bearer_token"
	AlertmanagerPasswordKey = "halts.alertmanager.basic_auth.password"
)
