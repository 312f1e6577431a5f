package config

import (
	"net/url"
	"strings"
)

// StorePasswordKey is the key of the PostgreSQL store's password.
const StorePasswordKey = "halts.store_password"

// IsPostgresStore reports whether a halts.store setting is the URL of a
// PostgreSQL database rather than a SQLite path.
func IsPostgresStore(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// validateStore checks halts.store when it is a PostgreSQL URL, and that
// its password comes by reference. The URL is printed (check-config, logs,
// errors); the password never is, so the URL may not hold it, and no
// message here quotes the URL.
func (c *Config) validateStore(p *problems) {
	h := c.Halts
	pg := IsPostgresStore(h.Store)
	if !pg {
		if c.secretSet(StorePasswordKey, h.StorePassword) {
			p.add(StorePasswordKey, "set, but halts.store is a SQLite path (the password is for a postgres:// store; remove it)")
		}
		return
	}
	u, err := url.Parse(h.Store)
	if err != nil {
		// url's error quotes the URL, which may hold a password: say what, not where.
		p.add("halts.store", "not a valid URL (write postgres://USER@HOST:5432/DATABASE?sslmode=verify-full)")
		return
	}
	if _, has := u.User.Password(); has {
		p.add("halts.store", "the URL holds a password (remove it and set halts.store_password_file or halts.store_password_env)")
	}
	if u.Query().Has("password") {
		p.add("halts.store", "the URL's query sets password (remove it and set halts.store_password_file or halts.store_password_env)")
	}
	if u.Host == "" {
		p.add("halts.store", "the URL names no host (write postgres://USER@HOST:5432/DATABASE)")
	}
	if strings.Trim(u.Path, "/") == "" {
		p.add("halts.store", "the URL names no database (write postgres://USER@HOST:5432/DATABASE)")
	}
	if u.User.Username() == "" && !u.Query().Has("user") {
		p.add("halts.store", "the URL names no user (write postgres://USER@HOST:5432/DATABASE)")
	}
}
