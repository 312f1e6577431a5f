package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The file* types mirror the YAML file. They are kept apart from Config
// because the file speaks in strings and secret references (password,
// password_file, password_env) while the rest of Sift wants durations and
// resolved Secrets; an empty string means "not set, keep the default".

type fileConfig struct {
	Masters     []fileMaster     `yaml:"masters"`
	Datacenters []fileDatacenter `yaml:"datacenters"`
	Groups      []fileGroup      `yaml:"groups"`
	Triage      fileTriage       `yaml:"triage"`
	Links       fileLinks        `yaml:"links"`
	Slack       *fileSlack       `yaml:"slack"`
	Halts       *fileHalts       `yaml:"halts"`
	Metrics     fileMetrics      `yaml:"metrics"`
	Log         fileLog          `yaml:"log"`
	Vault       *fileVault       `yaml:"vault"`
	Probes      fileProbes       `yaml:"probes"`
}

// fileVaultRef is a *_vault reference: one field of a KV v2 secret.
type fileVaultRef struct {
	Mount string `yaml:"mount"`
	Path  string `yaml:"path"`
	Field string `yaml:"field"`
}

type fileMaster struct {
	Name                  string        `yaml:"name"`
	URL                   string        `yaml:"url"`
	Eauth                 string        `yaml:"eauth"`
	Username              string        `yaml:"username"`
	Password              string        `yaml:"password"`
	PasswordFile          string        `yaml:"password_file"`
	PasswordEnv           string        `yaml:"password_env"`
	PasswordVault         *fileVaultRef `yaml:"password_vault"`
	TLSCAFile             string        `yaml:"tls_ca_file"`
	TLSInsecureSkipVerify bool          `yaml:"tls_insecure_skip_verify"`
}

type fileDatacenter struct {
	Name    string   `yaml:"name"`
	Master  string   `yaml:"master"`
	Target  string   `yaml:"target"`
	Minions []string `yaml:"minions"`
}

type fileGroup struct {
	Name        string   `yaml:"name"`
	Datacenters []string `yaml:"datacenters"`
}

type fileTriage struct {
	Timeout                string `yaml:"timeout"`
	GatherJobTimeout       string `yaml:"gather_job_timeout"`
	MaxParallelDatacenters *int   `yaml:"max_parallel_datacenters"`
	PollInterval           string `yaml:"poll_interval"`
	Deadline               string `yaml:"deadline"`
}

type fileLinks struct {
	CommitURL string `yaml:"commit_url"`
}

type fileSlack struct {
	AppToken         string        `yaml:"app_token"`
	AppTokenFile     string        `yaml:"app_token_file"`
	AppTokenEnv      string        `yaml:"app_token_env"`
	AppTokenVault    *fileVaultRef `yaml:"app_token_vault"`
	BotToken         string        `yaml:"bot_token"`
	BotTokenFile     string        `yaml:"bot_token_file"`
	BotTokenEnv      string        `yaml:"bot_token_env"`
	BotTokenVault    *fileVaultRef `yaml:"bot_token_vault"`
	APIURL           string        `yaml:"api_url"`
	Commands         fileCommands  `yaml:"commands"`
	Channels         []string      `yaml:"channels"`
	Authz            fileAuthz     `yaml:"authz"`
	AuditLog         *string       `yaml:"audit_log"`
	ShutdownGrace    string        `yaml:"shutdown_grace"`
	ProgressInterval string        `yaml:"progress_interval"`
	MentionAuthors   string        `yaml:"mention_authors"`
}

type fileCommands struct {
	Minion     string `yaml:"minion"`
	Datacenter string `yaml:"datacenter"`
	Group      string `yaml:"group"`
}

type fileAuthz struct {
	Minion     fileAccess `yaml:"minion"`
	Datacenter fileAccess `yaml:"datacenter"`
	Group      fileAccess `yaml:"group"`
}

type fileAccess struct {
	Users      []string `yaml:"users"`
	Usergroups []string `yaml:"usergroups"`
}

type fileHalts struct {
	Channel              string           `yaml:"channel"`
	Store                string           `yaml:"store"`
	StillFailingInterval string           `yaml:"still_failing_interval"`
	Listen               string           `yaml:"listen"`
	PrometheusURL        string           `yaml:"prometheus_url"`
	Rules                []fileHaltRule   `yaml:"rules"`
	Alertmanager         fileAlertmanager `yaml:"alertmanager"`
	Pipeline             filePipeline     `yaml:"pipeline"`
	CoalesceWindow       string           `yaml:"coalesce_window"`
	MaxPostsPerHour      *int             `yaml:"max_posts_per_hour"`
	StoreRetention       string           `yaml:"store_retention"`
	StorePassword        string           `yaml:"store_password"`
	StorePasswordFile    string           `yaml:"store_password_file"`
	StorePasswordEnv     string           `yaml:"store_password_env"`
	StorePasswordVault   *fileVaultRef    `yaml:"store_password_vault"`
}

type fileHaltRule struct {
	Name       string `yaml:"name"`
	Schedule   string `yaml:"schedule"`
	Query      string `yaml:"query"`
	ScopeLabel string `yaml:"scope_label"`
	ScopeKind  string `yaml:"scope_kind"`
}

type fileAlertmanager struct {
	Enabled          bool          `yaml:"enabled"`
	ScopeLabel       string        `yaml:"scope_label"`
	ScopeKind        string        `yaml:"scope_kind"`
	BearerToken      string        `yaml:"bearer_token"`
	BearerTokenFile  string        `yaml:"bearer_token_file"`
	BearerTokenEnv   string        `yaml:"bearer_token_env"`
	BearerTokenVault *fileVaultRef `yaml:"bearer_token_vault"`
	BasicAuth        fileBasicAuth `yaml:"basic_auth"`
	InsecureNoAuth   bool          `yaml:"insecure_no_auth"`
}

type fileBasicAuth struct {
	Username      string        `yaml:"username"`
	Password      string        `yaml:"password"`
	PasswordFile  string        `yaml:"password_file"`
	PasswordEnv   string        `yaml:"password_env"`
	PasswordVault *fileVaultRef `yaml:"password_vault"`
}

type filePipeline struct {
	Enabled     bool          `yaml:"enabled"`
	Secret      string        `yaml:"secret"`
	SecretFile  string        `yaml:"secret_file"`
	SecretEnv   string        `yaml:"secret_env"`
	SecretVault *fileVaultRef `yaml:"secret_vault"`
	MaxSkew     string        `yaml:"max_skew"`
}

type fileMetrics struct {
	Listen string `yaml:"listen"`
}

type fileLog struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// decode parses data strictly. The shape check runs first because it can
// name the full key path (masters[1].pasword) and report every bad key at
// once, where the decoder names only a Go type and a line; the strict
// decoder stays as the backstop.
func decode(data []byte) (*fileConfig, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var errs []error
	checkShape(&root, reflect.TypeFor[fileConfig](), "", &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var f fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("config: %w", err)
		}
		// Only keys merged in with "<<:" get here; the decoder names a Go
		// type the user has never seen, so say it in the file's terms.
		for _, msg := range te.Errors {
			if m := unknownField.FindStringSubmatch(msg); m != nil {
				msg = fmt.Sprintf("%s: unknown key %q in a mapping merged with <<: (check its spelling)", m[1], m[2])
			}
			errs = append(errs, errors.New("config: "+msg))
		}
		return nil, errors.Join(errs...)
	}
	return &f, nil
}

// unknownField matches the strict decoder's message for an unknown key.
var unknownField = regexp.MustCompile(`^(line \d+): field (\S+) not found in type \S+$`)

// checkShape walks the parsed document against the file types and reports
// unknown and duplicate keys and values of the wrong kind, by key path and
// line. It never quotes a string value: the value might be a secret.
func checkShape(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	// Aliases are left to the strict decoder: it checks them too, and it
	// guards against alias bombs, which following them here would not.
	if n.Kind == 0 || n.Kind == yaml.AliasNode || n.ShortTag() == "!!null" {
		return
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	where := path
	if where == "" {
		where = "the file"
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, fmt.Errorf("config: %s: line %d: expected a mapping of keys, found %s (write key: value pairs under it)",
				where, n.Line, kindName(n)))
			return
		}
		keys := yamlKeys(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.ShortTag() == "!!merge" {
				continue // "<<: *defaults": merged keys are the decoder's to check
			}
			child := join(path, k.Value)
			if first, dup := seen[k.Value]; dup {
				*errs = append(*errs, fmt.Errorf("config: %s: duplicate key on line %d (first set on line %d; keep one)",
					child, k.Line, first))
				continue
			}
			seen[k.Value] = k.Line
			field, ok := keys[k.Value]
			if !ok {
				*errs = append(*errs, fmt.Errorf("config: %s: unknown key on line %d (%s)",
					child, k.Line, suggest(k.Value, t)))
				continue
			}
			checkShape(v, field, child, errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			*errs = append(*errs, fmt.Errorf("config: %s: line %d: expected a list, found %s (write [a, b] or one \"- item\" per line)",
				where, n.Line, kindName(n)))
			return
		}
		for i, item := range n.Content {
			checkShape(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			*errs = append(*errs, fmt.Errorf("config: %s: line %d: expected a single value, found %s",
				where, n.Line, kindName(n)))
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			*errs = append(*errs, fmt.Errorf("config: %s: line %d: %s is not a whole number (write e.g. 16)",
				where, n.Line, describe(n)))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			*errs = append(*errs, fmt.Errorf("config: %s: line %d: %s is not a boolean (write true or false)",
				where, n.Line, describe(n)))
		}
	}
}

// yamlKeys maps each YAML key of struct type t to its field's type.
func yamlKeys(t reflect.Type) map[string]reflect.Type {
	keys := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			keys[name] = f.Type
		}
	}
	return keys
}

// suggest is the fix for an unknown key: the closest known key when the
// key looks like a typo of it, else the list of known keys.
func suggest(key string, t reflect.Type) string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		names = append(names, name)
	}
	best, bestDist := "", 3
	for _, name := range names {
		if d := editDistance(key, name); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "known keys here: " + strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}

// describe names a value for a number or boolean key. Those keys never hold
// secrets, so quoting a scalar is safe here.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%q", n.Value)
	}
	return kindName(n)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// apply copies the file's settings over the defaults in c, converting
// durations and recording secret references (read later, by Resolve); it
// returns every problem it met.
func (f *fileConfig) apply(c *Config, dir string) []error {
	var errs []error
	dur := func(key, s string, dst *time.Duration) {
		if s == "" {
			return
		}
		d, err := parseDuration(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("config: %s: %w", key, err))
			c.reported[key] = true
			return
		}
		*dst = d
	}
	secret := func(key string, fr fileRef, field func(*Config) *Secret) {
		ref, err := fr.ref(key, dir)
		if err != nil {
			errs = append(errs, err)
			c.reported[key] = true
			ref = SecretRef{Key: key}
		}
		c.addSecret(ref, field)
	}
	path := func(p string) string {
		if p != "" && dir != "" && !filepath.IsAbs(p) {
			return filepath.Join(dir, p)
		}
		return p
	}

	for i, m := range f.Masters {
		key := fmt.Sprintf("masters[%d]", i)
		cm := Master{
			Name:                  m.Name,
			URL:                   m.URL,
			Eauth:                 m.Eauth,
			Username:              m.Username,
			TLSCAFile:             path(m.TLSCAFile),
			TLSInsecureSkipVerify: m.TLSInsecureSkipVerify,
		}
		secret(key+".password", fileRef{m.Password, m.PasswordFile, m.PasswordEnv, m.PasswordVault},
			func(c *Config) *Secret { return &c.Masters[i].Password })
		c.Masters = append(c.Masters, cm)
	}
	for _, d := range f.Datacenters {
		c.Datacenters = append(c.Datacenters, Datacenter(d))
	}
	for _, g := range f.Groups {
		c.Groups = append(c.Groups, Group(g))
	}

	dur("triage.timeout", f.Triage.Timeout, &c.Triage.Timeout)
	dur("triage.gather_job_timeout", f.Triage.GatherJobTimeout, &c.Triage.GatherJobTimeout)
	if f.Triage.MaxParallelDatacenters != nil {
		c.Triage.MaxParallelDatacenters = *f.Triage.MaxParallelDatacenters
	}
	dur("triage.poll_interval", f.Triage.PollInterval, &c.Triage.PollInterval)
	dur("triage.deadline", f.Triage.Deadline, &c.Triage.Deadline)
	c.Links.CommitURL = f.Links.CommitURL

	if s := f.Slack; s != nil {
		cs := defaultSlack()
		secret(SlackAppTokenKey, fileRef{s.AppToken, s.AppTokenFile, s.AppTokenEnv, s.AppTokenVault},
			func(c *Config) *Secret { return &c.Slack.AppToken })
		secret(SlackBotTokenKey, fileRef{s.BotToken, s.BotTokenFile, s.BotTokenEnv, s.BotTokenVault},
			func(c *Config) *Secret { return &c.Slack.BotToken })
		setString(&cs.APIURL, s.APIURL)
		setString(&cs.Commands.Minion, s.Commands.Minion)
		setString(&cs.Commands.Datacenter, s.Commands.Datacenter)
		setString(&cs.Commands.Group, s.Commands.Group)
		cs.Channels = s.Channels
		cs.Authz = Authz{
			Minion:     Access(s.Authz.Minion),
			Datacenter: Access(s.Authz.Datacenter),
			Group:      Access(s.Authz.Group),
		}
		if s.AuditLog != nil {
			// A pointer, so `audit_log: ""` is reported rather than
			// quietly turned back into stdout.
			cs.AuditLog = *s.AuditLog
		}
		dur("slack.shutdown_grace", s.ShutdownGrace, &cs.ShutdownGrace)
		dur("slack.progress_interval", s.ProgressInterval, &cs.ProgressInterval)
		setString(&cs.MentionAuthors, s.MentionAuthors)
		c.Slack = cs
	}

	if h := f.Halts; h != nil {
		ch := defaultHalts()
		ch.Channel = h.Channel
		setString(&ch.Store, h.Store)
		secret(StorePasswordKey, fileRef{h.StorePassword, h.StorePasswordFile, h.StorePasswordEnv, h.StorePasswordVault},
			func(c *Config) *Secret { return &c.Halts.StorePassword })
		dur("halts.still_failing_interval", h.StillFailingInterval, &ch.StillFailingInterval)
		ch.Listen = h.Listen
		ch.PrometheusURL = h.PrometheusURL
		for _, r := range h.Rules {
			ch.Rules = append(ch.Rules, HaltRule(r))
		}
		ch.Alertmanager.Enabled = h.Alertmanager.Enabled
		setString(&ch.Alertmanager.ScopeLabel, h.Alertmanager.ScopeLabel)
		setString(&ch.Alertmanager.ScopeKind, h.Alertmanager.ScopeKind)
		am := h.Alertmanager
		ch.Alertmanager.InsecureNoAuth = am.InsecureNoAuth
		ch.Alertmanager.BasicAuth.Username = am.BasicAuth.Username
		secret(AlertmanagerBearerKey, fileRef{am.BearerToken, am.BearerTokenFile, am.BearerTokenEnv, am.BearerTokenVault},
			func(c *Config) *Secret { return &c.Halts.Alertmanager.BearerToken })
		secret(AlertmanagerPasswordKey, fileRef{am.BasicAuth.Password, am.BasicAuth.PasswordFile, am.BasicAuth.PasswordEnv, am.BasicAuth.PasswordVault},
			func(c *Config) *Secret { return &c.Halts.Alertmanager.BasicAuth.Password })
		dur("halts.coalesce_window", h.CoalesceWindow, &ch.CoalesceWindow)
		dur("halts.store_retention", h.StoreRetention, &ch.StoreRetention)
		if h.MaxPostsPerHour != nil {
			ch.MaxPostsPerHour = *h.MaxPostsPerHour
		}
		ch.Pipeline.Enabled = h.Pipeline.Enabled
		secret(PipelineSecretKey, fileRef{h.Pipeline.Secret, h.Pipeline.SecretFile, h.Pipeline.SecretEnv, h.Pipeline.SecretVault},
			func(c *Config) *Secret { return &c.Halts.Pipeline.Secret })
		dur("halts.pipeline.max_skew", h.Pipeline.MaxSkew, &ch.Pipeline.MaxSkew)
		c.Halts = ch
	}

	errs = append(errs, f.applyVault(c, path, dur)...)
	c.Metrics.Listen = f.Metrics.Listen
	setString(&c.Log.Level, f.Log.Level)
	setString(&c.Log.Format, f.Log.Format)
	return errs
}

// setString overwrites *dst with v when v is set.
func setString(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// parseDuration parses a Go duration string with an error that says what
// to write instead; 0 alone is accepted because YAML users write it bare.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (use e.g. 30s or 2m)", s)
	}
	return d, nil
}
