package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// redacted is what every printing path shows instead of a secret.
const redacted = "<secret>"

// Secret is a credential read from the configuration. Every way of printing
// or encoding it shows "<secret>", so a Config can be logged, dumped or
// wrapped into an error without leaking; Reveal is the only way to the value.
type Secret string

// Reveal returns the secret's value, for the one call that sends it.
func (s Secret) Reveal() string { return string(s) }

// String returns "<secret>".
func (s Secret) String() string { return redacted }

// GoString returns "<secret>", so %#v of a struct holding a Secret is safe.
func (s Secret) GoString() string { return redacted }

// Format prints "<secret>" for every verb: without it %x or %q would print
// the underlying string.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalYAML encodes the secret as "<secret>".
func (s Secret) MarshalYAML() (any, error) { return redacted, nil }

// MarshalJSON encodes the secret as "<secret>"; logrus's JSON formatter
// goes through it.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText encodes the secret as "<secret>", for encoders (slog, TOML,
// map keys) that prefer encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// secretRef is how the file names one secret: inline, by file or by
// environment variable; exactly one may be set.
type secretRef struct {
	inline, file, env string
}

// resolve returns the secret and a description of where it came from. key is
// the key path of the inline form (e.g. "masters[0].password"); errors name
// key_file or key_env and never the content.
func (r secretRef) resolve(key, dir string, env func(string) (string, bool)) (Secret, string, error) {
	base := key[strings.LastIndex(key, ".")+1:]
	var set []string
	if r.inline != "" {
		set = append(set, base)
	}
	if r.file != "" {
		set = append(set, base+"_file")
	}
	if r.env != "" {
		set = append(set, base+"_env")
	}
	switch {
	case len(set) == 0:
		return "", "", nil
	case len(set) > 1:
		return "", "", fmt.Errorf("config: %s: set by %s (keep exactly one of %s, %s_file, %s_env)",
			key, strings.Join(set, " and "), base, base, base)
	case r.inline != "":
		return Secret(r.inline), "inline", nil
	case r.file != "":
		path := r.file
		if dir != "" && !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			// The *PathError names the path and the reason; it never holds content.
			return "", "", fmt.Errorf("config: %s_file: %w (point %s_file at a readable file)", key, err, base)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", "", fmt.Errorf("config: %s_file: %q is empty (write the %s into it)", key, path, base)
		}
		return Secret(v), "file " + path, nil
	default:
		v, ok := lookup(env, r.env)
		if !ok {
			return "", "", fmt.Errorf("config: %s_env: environment variable %s is not set or empty (export it, or use %s_file)",
				key, r.env, base)
		}
		return Secret(v), "env " + r.env, nil
	}
}

// lookup reads an environment variable; an empty value counts as unset, so
// an exported-but-blank variable never blanks a setting.
func lookup(env func(string) (string, bool), name string) (string, bool) {
	if env == nil {
		return "", false
	}
	v, ok := env(name)
	if !ok || v == "" {
		return "", false
	}
	return v, true
}
