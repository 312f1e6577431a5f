package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/sift-chatops/sift/config"
)

// Auth is the credentials a hook requires, as Alertmanager's http_config
// sends them: a bearer token, basic auth, or either when both are set.
type Auth struct {
	BearerToken config.Secret
	Username    string
	Password    config.Secret
}

// Configured reports whether a holds any credential.
func (a *Auth) Configured() bool {
	return a != nil && (a.BearerToken != "" || a.Username != "" || a.Password != "")
}

// check says why r is refused ("" when it is let in): the reason label
// and the message for the sender, which names no credential.
func (a *Auth) check(r *http.Request) (reason, msg string) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return reasonMissingAuth, "missing credentials: configure http_config.authorization or http_config.basic_auth in the Alertmanager receiver (docs/halts.md)"
	}
	if a.BearerToken != "" {
		if scheme, token, ok := strings.Cut(header, " "); ok && strings.EqualFold(scheme, "Bearer") && equal(token, a.BearerToken.Reveal()) {
			return "", ""
		}
	}
	if a.Username != "" || a.Password != "" {
		// Both compared whatever the first gives, so that timing tells
		// nothing of which was wrong.
		if user, pass, ok := r.BasicAuth(); ok {
			userOK, passOK := equal(user, a.Username), equal(pass, a.Password.Reveal())
			if userOK && passOK {
				return "", ""
			}
		}
	}
	return reasonBadAuth, "bad credentials"
}

// challenge is the WWW-Authenticate header of a refusal.
func (a *Auth) challenge() string {
	if a.BearerToken != "" {
		return `Bearer realm="sift"`
	}
	return `Basic realm="sift"`
}

// equal compares in constant time, lengths included: both sides are
// hashed first.
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
