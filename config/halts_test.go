package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sift-chatops/sift/config"
)

const haltsBase = `masters:
  - {name: salt-eu, url: "http://127.0.0.1:8000", eauth: sharedsecret, username: sift, password: pw}
slack: {app_token: xapp-1-A0-1-x, bot_token: xoxb-1-2-x}
halts:
  channel: C0INCIDENT
  listen: 127.0.0.1:9185
`

// TestAlertmanagerWithoutCredentials: an open hook is refused unless asked
// for, and then check-config's summary warns about it.
func TestAlertmanagerWithoutCredentials(t *testing.T) {
	if _, err := config.Parse([]byte(haltsBase+"  alertmanager: {enabled: true}\n"), nil); err == nil ||
		!strings.Contains(err.Error(), "halts.alertmanager: no credentials") {
		t.Fatalf("Parse = %v, want the missing credentials refused", err)
	}
	c, err := config.Parse([]byte(haltsBase+"  alertmanager: {enabled: true, insecure_no_auth: true}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "halts.alertmanager.insecure_no_auth is true: anyone who reaches 127.0.0.1:9185 can post halts"
	if !strings.Contains(strings.Join(c.Warnings(), "\n"), want) || !strings.Contains(c.Summary(), "Warning: "+want) {
		t.Errorf("warnings %q, summary:\n%s\nwant the open hook warned about", c.Warnings(), c.Summary())
	}
}

func TestAlertmanagerCredentials(t *testing.T) {
	env := func(name string) (string, bool) {
		if name == "AM_PASSWORD" {
			return "am-password-from-env-8e1a", true
		}
		return "", false
	}
	c, err := config.Parse([]byte(haltsBase+"  alertmanager: {enabled: true, basic_auth: {username: alertmanager, password_env: AM_PASSWORD}}\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	ref, ok := c.SecretRef(config.AlertmanagerPasswordKey)
	if !ok || ref.Env != "AM_PASSWORD" || c.Halts.Alertmanager.BasicAuth.Username != "alertmanager" {
		t.Errorf("basic auth %+v, ref %+v", c.Halts.Alertmanager.BasicAuth, ref)
	}
	if len(c.Warnings()) != 0 {
		t.Errorf("warnings %q, want none with credentials", c.Warnings())
	}
	if strings.Contains(c.Summary(), "am-password-from-env-8e1a") {
		t.Error("the summary shows the password")
	}
}

func TestHaltsBudgetDefaults(t *testing.T) {
	c, err := config.Parse([]byte(haltsBase+"  pipeline: {enabled: true, secret: s3cret-pipeline}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Halts
	if h.CoalesceWindow != 10*time.Minute || h.MaxPostsPerHour != 30 || h.StoreRetention != 90*24*time.Hour {
		t.Errorf("defaults: coalesce_window %s, max_posts_per_hour %d, store_retention %s", h.CoalesceWindow, h.MaxPostsPerHour, h.StoreRetention)
	}
	c, err = config.Parse([]byte(haltsBase+"  pipeline: {enabled: true, secret: s3cret-pipeline}\n  coalesce_window: 0s\n  max_posts_per_hour: 5\n  store_retention: 720h\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if h := c.Halts; h.CoalesceWindow != 0 || h.MaxPostsPerHour != 5 || h.StoreRetention != 720*time.Hour {
		t.Errorf("set: coalesce_window %s, max_posts_per_hour %d, store_retention %s", h.CoalesceWindow, h.MaxPostsPerHour, h.StoreRetention)
	}
}
