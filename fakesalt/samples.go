package fakesalt

import (
	"embed"
	"fmt"
	"html"
	"strings"
)

// samples holds real salt-api answers (Salt 3006.16, CherryPy 18.8.0),
// byte-exact: the HTML error pages the fake sends, and JSON answers for
// tests of clients.
//
//go:embed samples
var samples embed.FS

// Sample returns the bytes of an embedded real answer, by file name
// (e.g. "50-jobs-jid-multi-fun-module-missing.json"); nil when there is none.
func Sample(name string) []byte {
	b, err := samples.ReadFile("samples/" + name)
	if err != nil {
		return nil
	}
	return b
}

// SampleNames lists the embedded real answers.
func SampleNames() []string {
	entries, _ := samples.ReadDir("samples")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func samplePage(name string) []byte {
	b := Sample(name)
	if b == nil {
		panic("fakesalt: missing embedded sample " + name)
	}
	return b
}

// page is CherryPy's error page with another status and message; every
// CherryPy error page has the layout of the captured ones.
func page(status int, reason, message string) []byte {
	s := string(samplePage("22-runner-sync-timeout.html"))
	s = strings.ReplaceAll(s, "504 Gateway Timeout", fmt.Sprintf("%d %s", status, reason))
	s = strings.Replace(s, "The gateway server did not receive a timely response", message, 1)
	return []byte(s)
}

// pageClientDisabled is the 400 page of a client missing from
// netapi_enable_clients (captured for wheel).
func pageClientDisabled(client string) []byte {
	return []byte(strings.Replace(string(samplePage("19-client-wheel-disabled.html")), "'wheel'", "'"+client+"'", 1))
}

// pageInternalError is CherryPy's 500 page.
func pageInternalError() []byte {
	return page(500, "Internal Server Error", "The server encountered an unexpected condition which prevented it from fulfilling the request.")
}

// PageBadCredentials is the 401 page of a login with wrong credentials.
func PageBadCredentials() string { return string(samplePage("03-login-bad-password.html")) }

// PageNoToken is the 401 page of a request without a valid token.
func PageNoToken() string { return string(samplePage("04-no-token.html")) }

// PageExpiredToken is the 401 page of a request with an expired token.
func PageExpiredToken() string { return string(samplePage("07-expired-token.html")) }

// PageClientDisabled is the 400 page that refuses a client missing from
// netapi_enable_clients.
func PageClientDisabled(client string) string { return string(pageClientDisabled(client)) }

// PageInternalError is CherryPy's 500 page.
func PageInternalError() string { return string(pageInternalError()) }

// PageGatewayTimeout is the 504 page of a runner call past its timeout.
func PageGatewayTimeout() string { return string(samplePage("22-runner-sync-timeout.html")) }

// pageRunnerRefused is the 401 page of a runner call by a user whose
// external_auth grants no runner (captured for user sift-norunner).
func pageRunnerRefused(user string) []byte {
	return []byte(strings.Replace(string(samplePage("56-runner-not-permitted.html")), "user sift-norunner.", "user "+html.EscapeString(user)+".", 1))
}

// PageRunnerRefused is the 401 page of a runner call the user may not make.
func PageRunnerRefused(user string) string { return string(pageRunnerRefused(user)) }
