package vault

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sift-chatops/sift/config"
)

// The client's own variables must not change where Sift connects or with
// what: the configuration is the only source.
func TestNewIgnoresVaultVariables(t *testing.T) {
	t.Setenv("VAULT_ADDR", "https://elsewhere.example.com:8200")
	t.Setenv("VAULT_TOKEN", "s.from-the-environment")
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	t.Setenv("VAULT_NAMESPACE", "other")
	c, err := New(config.Vault{Address: "https://vault.example.com:8200", Auth: config.VaultAuth{Method: "token", TokenEnv: "X", Mount: "token"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.api.Address(); got != "https://vault.example.com:8200" {
		t.Errorf("address = %q", got)
	}
	if c.api.Token() != "" {
		t.Error("the client took VAULT_TOKEN")
	}
	if ns := c.api.Headers().Get("X-Vault-Namespace"); ns != "" {
		t.Errorf("namespace = %q", ns)
	}
	tr := c.api.CloneConfig().HttpClient.Transport.(*http.Transport)
	if tr.TLSClientConfig != nil && tr.TLSClientConfig.InsecureSkipVerify {
		t.Error("VAULT_SKIP_VERIFY turned certificate checks off")
	}
}

func TestNewMethods(t *testing.T) {
	for _, m := range []string{"token", "approle", "kubernetes", "jwt"} {
		if _, err := New(config.Vault{Address: "http://127.0.0.1:8200", Auth: config.VaultAuth{Method: m, Mount: m}}, Options{}); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
	_, err := New(config.Vault{Address: "http://127.0.0.1:8200", Auth: config.VaultAuth{Method: "userpass"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), `auth method "userpass" is not supported`) {
		t.Errorf("unknown method: %v", err)
	}
}
