package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EnvOverrides lists the environment variables that override the file, in
// the order they are applied; see the package documentation.
var EnvOverrides = []string{
	"SIFT_TRIAGE_TIMEOUT",
	"SIFT_TRIAGE_GATHER_JOB_TIMEOUT",
	"SIFT_TRIAGE_MAX_PARALLEL_DATACENTERS",
	"SIFT_SLACK_API_URL",
	"SIFT_SLACK_APP_TOKEN",
	"SIFT_SLACK_BOT_TOKEN",
	"SIFT_METRICS_LISTEN",
	"SIFT_LOG_LEVEL",
	"SIFT_LOG_FORMAT",
	"SIFT_MASTER_<NAME>_PASSWORD",
}

// MasterPasswordEnv returns the variable that overrides the password of the
// master called name: SIFT_MASTER_<NAME>_PASSWORD, upper-cased, '-' → '_'.
func MasterPasswordEnv(name string) string {
	return "SIFT_MASTER_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_PASSWORD"
}

// applyEnv applies the SIFT_* overrides. A value that cannot be converted
// is reported by variable name; values that convert but are out of range
// are left to Validate, which names the variable through c.overrides.
func (c *Config) applyEnv(env func(string) (string, bool)) []error {
	var errs []error
	str := func(name, key string, dst *string) {
		if v, ok := lookup(env, name); ok {
			*dst = v
			c.overrides[key] = name
		}
	}
	dur := func(name, key string, dst *time.Duration) {
		v, ok := lookup(env, name)
		if !ok {
			return
		}
		d, err := parseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("config: %s: %w", name, err))
			c.reported[key] = true
			return
		}
		*dst = d
		c.overrides[key] = name
	}
	// A secret override is only noted here; it is read, like every
	// secret, when a command resolves it, and it wins over the file's
	// reference even when that names a file that does not exist.
	secret := func(name, key string, field func(*Config) *Secret) {
		if _, ok := lookup(env, name); !ok {
			return
		}
		c.overrides[key] = name
		if s := c.slot(key); s != nil {
			s.ref.Override = name
			return
		}
		c.addSecret(SecretRef{Key: key, Override: name}, field)
	}

	dur("SIFT_TRIAGE_TIMEOUT", "triage.timeout", &c.Triage.Timeout)
	dur("SIFT_TRIAGE_GATHER_JOB_TIMEOUT", "triage.gather_job_timeout", &c.Triage.GatherJobTimeout)
	if v, ok := lookup(env, "SIFT_TRIAGE_MAX_PARALLEL_DATACENTERS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("config: SIFT_TRIAGE_MAX_PARALLEL_DATACENTERS: %q is not a whole number (use e.g. 16)", v))
			c.reported["triage.max_parallel_datacenters"] = true
		} else {
			c.Triage.MaxParallelDatacenters = n
			c.overrides["triage.max_parallel_datacenters"] = "SIFT_TRIAGE_MAX_PARALLEL_DATACENTERS"
		}
	}

	if c.Slack == nil {
		for _, name := range []string{"SIFT_SLACK_API_URL", "SIFT_SLACK_APP_TOKEN", "SIFT_SLACK_BOT_TOKEN"} {
			if _, ok := lookup(env, name); ok {
				c.Slack = defaultSlack()
				break
			}
		}
	}
	if c.Slack != nil {
		str("SIFT_SLACK_API_URL", "slack.api_url", &c.Slack.APIURL)
		secret("SIFT_SLACK_APP_TOKEN", SlackAppTokenKey, func(c *Config) *Secret { return &c.Slack.AppToken })
		secret("SIFT_SLACK_BOT_TOKEN", SlackBotTokenKey, func(c *Config) *Secret { return &c.Slack.BotToken })
	}

	str("SIFT_METRICS_LISTEN", "metrics.listen", &c.Metrics.Listen)
	str("SIFT_LOG_LEVEL", "log.level", &c.Log.Level)
	str("SIFT_LOG_FORMAT", "log.format", &c.Log.Format)

	for i := range c.Masters {
		if c.Masters[i].Name == "" {
			continue
		}
		secret(MasterPasswordEnv(c.Masters[i].Name), fmt.Sprintf("masters[%d].password", i),
			func(c *Config) *Secret { return &c.Masters[i].Password })
	}
	return errs
}
