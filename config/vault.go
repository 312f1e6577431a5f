package config

import (
	"crypto/x509"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Vault is the Vault server secrets given by *_vault references are read
// from, and how Sift logs in to it.
type Vault struct {
	// Address is Vault's URL, e.g. https://vault.example.com:8200.
	Address string
	// Namespace is the Vault Enterprise namespace; empty for none.
	Namespace string
	// CAFile is a PEM bundle to verify Vault's certificate; empty means
	// the system roots. ServerName overrides the name checked.
	CAFile     string
	ServerName string
	// RefreshInterval is how often secrets are read again, to pick up
	// rotated values; SIGHUP reads them at once.
	RefreshInterval time.Duration
	// MaxStaleness is how long the last good value of a secret is used
	// while Vault cannot be read; past it the secret has expired and Sift
	// reports not ready.
	MaxStaleness time.Duration
	Auth         VaultAuth
}

// VaultAuth is how Sift gets a Vault token.
type VaultAuth struct {
	// Method is token, approle, kubernetes or jwt.
	Method string
	// Mount is the auth method's mount path; defaults to the method's name.
	Mount string
	// TokenFile (e.g. a Vault Agent sink) or TokenEnv hold the token of
	// the token method; the file is read again at every login.
	TokenFile, TokenEnv string
	// RoleID or RoleIDFile, and SecretIDFile, are AppRole's credentials;
	// SecretIDWrapped means the file holds a response-wrapping token
	// that unwraps to the secret_id.
	RoleID, RoleIDFile string
	SecretIDFile       string
	SecretIDWrapped    bool
	// Role and JWTFile are the kubernetes and jwt methods' role and token;
	// for kubernetes JWTFile defaults to the service account token.
	Role    string
	JWTFile string
}

// Probes configures the live checks of external services named by a
// triage's causes. Minion output is attacker-controlled, so only the origins
// in Allow are ever contacted; with Allow empty probes are off.
type Probes struct {
	// Allow lists origins (https://vault.example.com:8200) and host
	// suffixes (.example.com) that may be probed.
	Allow []string
	// Timeout bounds one probe.
	Timeout time.Duration
	// MaxParallel bounds the probes in flight.
	MaxParallel int
	// CacheFor is how long one origin's result is reused.
	CacheFor time.Duration
}

// Enabled reports whether any origin may be probed.
func (p Probes) Enabled() bool { return len(p.Allow) > 0 }

// KubernetesTokenFile is where Kubernetes mounts a pod's service-account token.
const KubernetesTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

var vaultMethods = []string{"token", "approle", "kubernetes", "jwt"}

func defaultProbes() Probes {
	return Probes{Timeout: 3 * time.Second, MaxParallel: 4, CacheFor: time.Minute}
}

type fileVault struct {
	Address         string        `yaml:"address"`
	Namespace       string        `yaml:"namespace"`
	CAFile          string        `yaml:"ca_file"`
	ServerName      string        `yaml:"server_name"`
	RefreshInterval string        `yaml:"refresh_interval"`
	MaxStaleness    string        `yaml:"max_staleness"`
	Auth            fileVaultAuth `yaml:"auth"`
}

type fileVaultAuth struct {
	Method          string `yaml:"method"`
	Mount           string `yaml:"mount"`
	TokenFile       string `yaml:"token_file"`
	TokenEnv        string `yaml:"token_env"`
	RoleID          string `yaml:"role_id"`
	RoleIDFile      string `yaml:"role_id_file"`
	SecretIDFile    string `yaml:"secret_id_file"`
	SecretIDWrapped bool   `yaml:"secret_id_wrapped"`
	Role            string `yaml:"role"`
	JWTFile         string `yaml:"jwt_file"`
}

type fileProbes struct {
	Allow       []string `yaml:"allow"`
	Timeout     string   `yaml:"timeout"`
	MaxParallel *int     `yaml:"max_parallel"`
	CacheFor    string   `yaml:"cache_for"`
}

// applyVault copies the vault and probes sections into c.
func (f *fileConfig) applyVault(c *Config, path func(string) string, dur func(key, s string, dst *time.Duration)) []error {
	if v := f.Vault; v != nil {
		cv := &Vault{
			Address: v.Address, Namespace: v.Namespace, CAFile: path(v.CAFile), ServerName: v.ServerName,
			RefreshInterval: 5 * time.Minute, MaxStaleness: 24 * time.Hour,
			Auth: VaultAuth{
				Method: v.Auth.Method, Mount: strings.Trim(v.Auth.Mount, "/"),
				TokenFile: path(v.Auth.TokenFile), TokenEnv: v.Auth.TokenEnv,
				RoleID: v.Auth.RoleID, RoleIDFile: path(v.Auth.RoleIDFile),
				SecretIDFile: path(v.Auth.SecretIDFile), SecretIDWrapped: v.Auth.SecretIDWrapped,
				Role: v.Auth.Role, JWTFile: path(v.Auth.JWTFile),
			},
		}
		dur("vault.refresh_interval", v.RefreshInterval, &cv.RefreshInterval)
		dur("vault.max_staleness", v.MaxStaleness, &cv.MaxStaleness)
		if cv.Auth.Mount == "" {
			cv.Auth.Mount = cv.Auth.Method
		}
		if cv.Auth.Method == "kubernetes" && cv.Auth.JWTFile == "" {
			cv.Auth.JWTFile = KubernetesTokenFile
		}
		c.Vault = cv
	}
	p := f.Probes
	c.Probes.Allow = p.Allow
	dur("probes.timeout", p.Timeout, &c.Probes.Timeout)
	if p.MaxParallel != nil {
		c.Probes.MaxParallel = *p.MaxParallel
	}
	dur("probes.cache_for", p.CacheFor, &c.Probes.CacheFor)
	return nil
}

func (c *Config) validateVault(p *problems) {
	v := c.Vault
	if v == nil {
		for _, s := range c.slots() {
			if s.ref.Vault != nil && s.ref.Override == "" {
				p.add(s.ref.Key+"_vault", "set but there is no vault section (add vault: with address and auth, see docs/secrets.md)")
			}
		}
		return
	}
	u, err := url.Parse(v.Address)
	switch {
	case v.Address == "":
		p.add("vault.address", "not set (set Vault's URL, e.g. https://vault.example.com:8200)")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		p.add("vault.address", "is not an http or https URL with a host (write e.g. https://vault.example.com:8200)")
	case u.User != nil:
		p.add("vault.address", "holds credentials (remove them: Sift logs in with vault.auth)")
	}
	if v.CAFile != "" {
		if pem, _, err := readRegularFile(v.CAFile, maxCAFileSize, "a CA bundle"); err != nil {
			p.add("vault.ca_file", "%v (point it at a readable PEM bundle, or remove it to use the system roots)", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			p.add("vault.ca_file", "%q holds no PEM certificate (point it at the CA bundle that signed Vault's certificate)", v.CAFile)
		}
	}
	positive(p, "vault.refresh_interval", v.RefreshInterval, "5m")
	positive(p, "vault.max_staleness", v.MaxStaleness, "24h")

	a := v.Auth
	if !slices.Contains(vaultMethods, a.Method) {
		p.add("vault.auth.method", "%q is not an auth method Sift supports (use token, approle, kubernetes or jwt)", a.Method)
		return
	}
	// Keys of another method are refused: they would be ignored silently.
	used := map[string]bool{
		"token_file": a.TokenFile != "", "token_env": a.TokenEnv != "",
		"role_id": a.RoleID != "", "role_id_file": a.RoleIDFile != "", "secret_id_file": a.SecretIDFile != "",
		"secret_id_wrapped": a.SecretIDWrapped, "role": a.Role != "", "jwt_file": a.JWTFile != "",
	}
	allowed := map[string][]string{
		"token":      {"token_file", "token_env"},
		"approle":    {"role_id", "role_id_file", "secret_id_file", "secret_id_wrapped"},
		"kubernetes": {"role", "jwt_file"},
		"jwt":        {"role", "jwt_file"},
	}[a.Method]
	for _, k := range slices.Sorted(maps.Keys(used)) {
		if used[k] && !slices.Contains(allowed, k) {
			p.add("vault.auth."+k, "is not used by method %s (remove it; %s takes %s)", a.Method, a.Method, strings.Join(allowed, ", "))
		}
	}
	switch a.Method {
	case "token":
		if (a.TokenFile == "") == (a.TokenEnv == "") {
			p.add("vault.auth", "method token needs exactly one of token_file (e.g. a Vault Agent sink) and token_env")
		}
	case "approle":
		if (a.RoleID == "") == (a.RoleIDFile == "") {
			p.add("vault.auth", "method approle needs exactly one of role_id and role_id_file")
		}
		if a.SecretIDWrapped && a.SecretIDFile == "" {
			p.add("vault.auth.secret_id_wrapped", "set but secret_id_file is not (point secret_id_file at the wrapping token)")
		}
	case "kubernetes", "jwt":
		if a.Role == "" {
			p.add("vault.auth.role", "not set (name the Vault role of method %s that Sift logs in as)", a.Method)
		}
		if a.JWTFile == "" {
			p.add("vault.auth.jwt_file", "not set (point it at the file holding the JWT Sift logs in with)")
		}
	}
}

func (c *Config) validateProbes(p *problems) {
	pr := c.Probes
	for i, a := range pr.Allow {
		if msg := allowProblem(a); msg != "" {
			p.add(fmt.Sprintf("probes.allow[%d]", i), "%q %s", truncate(a, 80), msg)
		}
	}
	positive(p, "probes.timeout", pr.Timeout, "3s")
	positive(p, "probes.cache_for", pr.CacheFor, "1m")
	if pr.MaxParallel < 1 || pr.MaxParallel > 64 {
		p.add("probes.max_parallel", "%d is out of range (use 1 to 64)", pr.MaxParallel)
	}
}

// allowProblem checks one probes.allow entry: an origin or a host suffix.
func allowProblem(a string) string {
	if strings.HasPrefix(a, ".") {
		host := a[1:]
		if host == "" || strings.ContainsAny(host, "/:@*? ") || !strings.Contains(host, ".") {
			return "is not a host suffix (write e.g. .example.com: a dot and at least two labels)"
		}
		return ""
	}
	u, err := url.Parse(a)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "is neither an origin nor a host suffix (write e.g. https://vault.example.com:8200 or .example.com)"
	}
	return ""
}
