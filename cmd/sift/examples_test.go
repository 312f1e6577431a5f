package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/sift-chatops/sift/config"
)

// exampleSecretDir is where the examples expect their secret files, as the
// container image and the Helm chart mount them.
const exampleSecretDir = "/run/secrets/sift/"

// exampleSecrets are the secrets the examples reference, by file name or
// environment variable, with values of the shape Sift checks.
var exampleSecrets = map[string]string{
	"salt-eu-password":   "salt-eu-3f9a0c1d-example",
	"slack-app-token":    "xapp-1-A0EXAMPLE-1-0123456789abcdef",
	"slack-bot-token":    "xoxb-0000-0000-0123456789abcdef",
	"halt-secret":        "hmac-7d1e55a0-example",
	"alertmanager-token": "am-bearer-2f8c61d4-example",
	"postgres-password":  "pg-5b0e93c1-example",
	"SALT_US_PASSWORD":   "salt-us-88c1f2e0-example",
	"SALT_EU_PASSWORD":   "salt-eu-0b6e4a27-example",
}

// checkExample runs sift check-config on a configuration that references
// its secrets under /run/secrets/sift, with those files in a temporary
// directory and the variables in the environment.
func checkExample(t *testing.T, name string, data []byte) {
	t.Helper()
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets") + string(filepath.Separator)
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	for key, value := range exampleSecrets {
		if strings.ToUpper(key) == key {
			t.Setenv(key, value)
			continue
		}
		if err := os.WriteFile(secrets+key, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "sift.yml")
	text := strings.ReplaceAll(string(data), exampleSecretDir, secrets)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r := sift(t, "", "check-config", "--config", path)
	if r.code != 0 || !strings.Contains(r.stdout, "configuration OK") {
		t.Fatalf("check-config %s: exit %d\nstdout:\n%s\nstderr:\n%s", name, r.code, r.stdout, r.stderr)
	}
	for key, value := range exampleSecrets {
		if strings.Contains(r.stdout+r.stderr, value) {
			t.Errorf("check-config printed the secret %s", key)
		}
	}
}

// TestChartConfigsPassCheckConfig: the sift.yml the Helm chart's values
// put in the ConfigMap is a valid configuration, with one replica and with
// two on PostgreSQL.
func TestChartConfigsPassCheckConfig(t *testing.T) {
	for _, file := range []string{"sift/values.yaml", "ha-values.yaml"} {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "helm", file))
			if err != nil {
				t.Fatal(err)
			}
			var values struct {
				Config map[string]any `yaml:"config"`
			}
			if err := yaml.Unmarshal(data, &values); err != nil {
				t.Fatal(err)
			}
			cfg, err := yaml.Marshal(values.Config)
			if err != nil {
				t.Fatal(err)
			}
			checkExample(t, file, cfg)
		})
	}
}

// TestExamplesPassCheckConfig runs sift check-config on each example, with
// the secrets it references put where it looks for them: the files in a
// temporary directory (the example's /run/secrets/sift/ pointed there),
// the variables in the environment.
func TestExamplesPassCheckConfig(t *testing.T) {
	for _, name := range []string{"sift.yml", "minimal.yml"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
			if err != nil {
				t.Fatal(err)
			}
			checkExample(t, name, data)
		})
	}
}

// TestFullExampleHasEverySection keeps examples/sift.yml in step with the
// configuration: each section of config.Config appears in it, and every
// secret is a reference rather than an inline value.
func TestFullExampleHasEverySection(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "sift.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for f := range reflect.TypeFor[config.Config]().Fields() {
		if !f.IsExported() {
			continue
		}
		if _, ok := doc[snakeCase(f.Name)]; !ok {
			t.Errorf("examples/sift.yml has no %q section (config.Config.%s): add it, commented", snakeCase(f.Name), f.Name)
		}
	}
	for _, inline := range []string{"password:", "app_token:", "bot_token:", "secret:"} {
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), inline) {
				t.Errorf("examples/sift.yml:%d sets a secret inline (%s): use %s_file or %s_env",
					i+1, strings.TrimSpace(line), strings.TrimSuffix(inline, ":"), strings.TrimSuffix(inline, ":"))
			}
		}
	}
}

// snakeCase turns a Go field name (PrometheusURL) into its YAML key (prometheus_url).
func snakeCase(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
