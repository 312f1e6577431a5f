package config

import (
	"context"
	"strings"
	"testing"
)

func TestStoreSettings(t *testing.T) {
	const base = `masters: [{name: m, url: "http://127.0.0.1:8000", eauth: pam, username: u, password_env: PW}]
datacenters: [{name: dc1, master: m}]
halts:
`
	const pgPassword = "pg-secret-9f2e-never-print-me"
	env := envOf(map[string]string{"PW": "x", "PGPW": pgPassword})
	tests := []struct {
		name  string
		halts string
		want  string // "" for valid
	}{
		{"sqlite", `  store: /var/lib/sift/sift.db`, ""},
		{"postgres with the password by env", `  store: postgres://sift@db.example.com:5432/sift?sslmode=verify-full
  store_password_env: PGPW`, ""},
		{"postgresql scheme, no password (trust, or a client certificate)", `  store: postgresql://sift@db:5432/sift`, ""},
		{"password in the URL", `  store: postgres://sift:` + pgPassword + `@db:5432/sift`,
			"halts.store: the URL holds a password (remove it and set halts.store_password_file or halts.store_password_env)"},
		{"password in the query", `  store: postgres://sift@db:5432/sift?password=` + pgPassword,
			"halts.store: the URL's query sets password"},
		{"no host", `  store: postgres:///sift`, "halts.store: the URL names no host"},
		{"no database", `  store: postgres://sift@db:5432`, "halts.store: the URL names no database"},
		{"no user", `  store: postgres://db:5432/sift`, "halts.store: the URL names no user"},
		{"password for SQLite", `  store: /var/lib/sift/sift.db
  store_password_env: PGPW`, "halts.store_password: set, but halts.store is a SQLite path"},
		{"two password sources", `  store: postgres://sift@db/sift
  store_password_env: PGPW
  store_password_file: /run/secrets/pg`, "halts.store_password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(base+tc.halts+"\n"), env)
			if err == nil && tc.want == "" {
				if err := c.Resolve(context.Background(), nil); err != nil {
					t.Fatal(err)
				}
				if IsPostgresStore(c.Halts.Store) != strings.HasPrefix(c.Halts.Store, "postgres") {
					t.Errorf("IsPostgresStore(%q) is wrong", c.Halts.Store)
				}
				if strings.Contains(tc.halts, "PGPW") && c.Halts.StorePassword.Reveal() != pgPassword {
					t.Errorf("store password not resolved")
				}
				if strings.Contains(c.Summary(), pgPassword) {
					t.Errorf("the summary shows the password:\n%s", c.Summary())
				}
				return
			}
			if tc.want == "" {
				t.Fatalf("Parse: %v", err)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), pgPassword) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}
