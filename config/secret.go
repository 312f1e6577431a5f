package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// redacted is what every printing path shows instead of a secret.
const redacted = "<secret>"

// MaxSecretFileSize bounds a secret file: a token or a password is a few
// hundred bytes, and a bound keeps a wrong path (a log, /dev/zero) from
// filling memory.
const MaxSecretFileSize = 64 << 10

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

// VaultRef names one field of a Vault KV version 2 secret.
type VaultRef struct {
	// Mount is the KV v2 engine's mount path; "secret" by default.
	Mount string
	// Path is the secret's path under the mount, without "data/".
	Path string
	// Field is the key inside the secret's data.
	Field string
}

// String names the reference the way `vault kv get -mount=M -field=F P` does.
func (v VaultRef) String() string { return v.Mount + "/" + v.Path + "#" + v.Field }

// SecretRef says where one secret comes from. The file sets at most one of
// Inline, File, Env and Vault; Override, when set, names the SIFT_*
// variable that is set and wins over all of them.
type SecretRef struct {
	// Key is the secret's key path, e.g. masters[0].password.
	Key      string
	Inline   Secret
	File     string
	Env      string
	Vault    *VaultRef
	Override string
}

// Set reports whether the reference names any source.
func (r SecretRef) Set() bool {
	return r.Override != "" || r.Inline != "" || r.File != "" || r.Env != "" || r.Vault != nil
}

// Source describes where the secret will be read from, without reading it.
func (r SecretRef) Source() string {
	switch {
	case r.Override != "":
		return "env " + r.Override + " (override)"
	case r.Inline != "":
		return "inline"
	case r.File != "":
		return "file " + r.File
	case r.Env != "":
		return "env " + r.Env
	case r.Vault != nil:
		return "vault " + r.Vault.String()
	}
	return "not set"
}

// IsVault reports whether the secret is read from Vault (and not overridden).
func (r SecretRef) IsVault() bool { return r.Override == "" && r.Vault != nil }

// KV is one version of a Vault KV v2 secret.
type KV struct {
	Data    map[string]any
	Version int
}

// VaultReader reads KV v2 secrets; the vault package implements it. Errors
// name the path and Vault's answer, never a value.
type VaultReader interface {
	ReadKV(ctx context.Context, mount, path string) (KV, error)
}

// Resolved is one secret's value and where it was read from.
type Resolved struct {
	Value Secret
	// From describes the source for check-config: "file /etc/sift/pw",
	// "env X", "vault secret/sift/eu#password version 3", ...
	From string
	// Version is the Vault KV version, 0 for other sources.
	Version int
	// Warnings are problems that do not stop Sift, e.g. a secret file
	// that others can read.
	Warnings []string
}

// fileRef is how the file names one secret: inline, by file, by
// environment variable or in Vault; at most one may be set.
type fileRef struct {
	inline, file, env string
	vault             *fileVaultRef
}

// ref checks that at most one source is set and returns the reference.
// key is the key path of the inline form (e.g. "masters[0].password").
func (r fileRef) ref(key, dir string) (SecretRef, error) {
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
	if r.vault != nil {
		set = append(set, base+"_vault")
	}
	if len(set) > 1 {
		return SecretRef{}, fmt.Errorf("config: %s: set by %s (keep exactly one of %s, %s_file, %s_env, %s_vault)",
			key, strings.Join(set, " and "), base, base, base, base)
	}
	out := SecretRef{Key: key, Inline: Secret(r.inline), Env: r.env}
	if r.file != "" {
		out.File = r.file
		if dir != "" && !filepath.IsAbs(out.File) {
			out.File = filepath.Join(dir, out.File)
		}
	}
	if v := r.vault; v != nil {
		vr := VaultRef{Mount: v.Mount, Path: strings.Trim(v.Path, "/"), Field: v.Field}
		if vr.Mount == "" {
			vr.Mount = "secret"
		}
		vr.Mount = strings.Trim(vr.Mount, "/")
		var missing []string
		if vr.Path == "" {
			missing = append(missing, "path")
		}
		if vr.Field == "" {
			missing = append(missing, "field")
		}
		if len(missing) > 0 {
			return SecretRef{}, fmt.Errorf("config: %s_vault: %s not set (write e.g. %s_vault: {path: sift/salt-eu, field: %s})",
				key, strings.Join(missing, " and "), base, base)
		}
		if strings.HasPrefix(vr.Path, "data/") {
			return SecretRef{}, fmt.Errorf("config: %s_vault.path: %q starts with data/ (write the path as `vault kv get` takes it, without data/)",
				key, vr.Path)
		}
		out.Vault = &vr
	}
	return out, nil
}

// Resolve reads the secret r names. env looks up environment variables;
// vault may be nil when no secret is in Vault. Errors name the key and the
// source, never the content.
func (r SecretRef) Resolve(ctx context.Context, env func(string) (string, bool), vault VaultReader) (Resolved, error) {
	key := r.Key
	base := key[strings.LastIndex(key, ".")+1:]
	switch {
	case r.Override != "":
		// The override wins over every file source, even one that is
		// missing: that is what lets a laptop run without the server's files.
		v, ok := lookup(env, r.Override)
		if !ok {
			return Resolved{}, fmt.Errorf("config: %s: environment variable %s is no longer set", key, r.Override)
		}
		return Resolved{Value: Secret(v), From: "env " + r.Override + " (override)"}, nil
	case r.Inline != "":
		return Resolved{Value: r.Inline, From: "inline"}, nil
	case r.File != "":
		v, info, err := ReadSecretFile(r.File)
		if err != nil {
			return Resolved{}, fmt.Errorf("config: %s_file: %w", key, err)
		}
		res := Resolved{Value: Secret(v), From: "file " + r.File}
		if info.Target != "" {
			res.From += " (symlink to " + info.Target + ")"
		}
		if info.Mode&0o077 != 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s_file: %s is readable by its group or others (mode %04o; chmod 600 it)",
				key, r.File, info.Mode.Perm()))
		}
		return res, nil
	case r.Env != "":
		v, ok := lookup(env, r.Env)
		if !ok {
			return Resolved{}, fmt.Errorf("config: %s_env: environment variable %s is not set or empty (export it, or use %s_file)",
				key, r.Env, base)
		}
		return Resolved{Value: Secret(v), From: "env " + r.Env}, nil
	case r.Vault != nil:
		if vault == nil {
			return Resolved{}, fmt.Errorf("config: %s_vault: no vault section (add vault: with address and auth)", key)
		}
		kv, err := vault.ReadKV(ctx, r.Vault.Mount, r.Vault.Path)
		if err != nil {
			return Resolved{}, fmt.Errorf("config: %s_vault: %w", key, err)
		}
		raw, ok := kv.Data[r.Vault.Field]
		if !ok {
			return Resolved{}, fmt.Errorf("config: %s_vault: %w: %s version %d has no field %q (add it, or fix field)",
				key, ErrVaultFieldMissing, r.Vault.Mount+"/"+r.Vault.Path, kv.Version, r.Vault.Field)
		}
		v, ok := raw.(string)
		if !ok || v == "" {
			return Resolved{}, fmt.Errorf("config: %s_vault: field %q of %s is not a non-empty string (store the %s as a string)",
				key, r.Vault.Field, r.Vault.Mount+"/"+r.Vault.Path, base)
		}
		return Resolved{Value: Secret(v), From: fmt.Sprintf("vault %s version %d", r.Vault, kv.Version), Version: kv.Version}, nil
	default:
		return Resolved{}, fmt.Errorf("config: %s: not set (set one of %s, %s_file, %s_env or %s_vault)", key, base, base, base, base)
	}
}

// Errors a VaultReader wraps, so check-config can say what Vault answered
// without parsing messages.
var (
	// ErrVaultNotFound: the secret does not exist (or was deleted).
	ErrVaultNotFound = errors.New("not found")
	// ErrVaultForbidden: Sift's token may not read the secret.
	ErrVaultForbidden = errors.New("permission denied")
	// ErrVaultFieldMissing: the secret exists but lacks the field.
	ErrVaultFieldMissing = errors.New("field missing")
)

// FileInfo is what ReadSecretFile saw of a secret file.
type FileInfo struct {
	// Target is the file a symlink resolved to; empty for a plain file.
	Target string
	// Mode is the file's mode.
	Mode fs.FileMode
}

// ReadSecretFile reads a secret file: a regular file of at most
// MaxSecretFileSize bytes, symlinks followed; a trailing newline is
// trimmed. It never blocks on a FIFO or a device: the file is opened
// non-blocking and checked to be regular before the first read, so a wrong
// path cannot hang startup past SIGTERM.
func ReadSecretFile(path string) (string, FileInfo, error) {
	b, info, err := readRegularFile(path, MaxSecretFileSize, "a secret file")
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "", info, fmt.Errorf("%w (point it at a readable file)", err)
	}
	if err != nil {
		return "", info, err
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", info, fmt.Errorf("%q is empty (write the secret into it)", path)
	}
	return v, info, nil
}

// maxCAFileSize bounds a CA bundle; the system bundles are a few hundred KB.
const maxCAFileSize = 4 << 20

// readRegularFile reads a regular file of at most limit bytes without ever
// blocking on a FIFO or a device; what names the file's role in errors.
// Errors of the file system are returned as they are (*fs.PathError).
func readRegularFile(path string, limit int64, what string) ([]byte, FileInfo, error) {
	var info FileInfo
	// O_NONBLOCK: opening a FIFO with no writer returns at once instead of
	// waiting for one.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, info, err
	}
	defer f.Close()
	if real, err := filepath.EvalSymlinks(path); err == nil && real != filepath.Clean(path) {
		info.Target = real
	}
	st, err := f.Stat()
	if err != nil {
		return nil, info, err
	}
	info.Mode = st.Mode()
	if !st.Mode().IsRegular() {
		return nil, info, fmt.Errorf("%q is %s, not a regular file (point it at a plain file)", path, fileKind(st.Mode()))
	}
	if st.Size() > limit {
		return nil, info, fmt.Errorf("%q is %d bytes, more than the %d %s may hold (point it at the right file)",
			path, st.Size(), limit, what)
	}
	// The limit holds even when the file grows between Stat and the read.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, info, err
	}
	if int64(len(b)) > limit {
		return nil, info, fmt.Errorf("%q is more than the %d bytes %s may hold (point it at the right file)", path, limit, what)
	}
	return b, info, nil
}

// fileKind names a non-regular file type for an error.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "not a regular file"
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
