package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

const healthcheckSynopsis = `sift healthcheck [--url URL] [--timeout D]

Asks a running sift serve whether it is healthy: a GET of --url that answers
2xx within --timeout exits 0, anything else exits 1 with the reason on
stderr. For the container's HEALTHCHECK and Kubernetes exec probes, since
the image has no shell and no curl. The URL is served when metrics.listen
is set; ask /readyz instead of /healthz to require the Slack connection.`

// defaultHealthURL is /healthz on the metrics port the examples, the image
// and the chart use.
const defaultHealthURL = "http://127.0.0.1:9184/healthz"

// healthcheckFlags are sift healthcheck's flags.
func healthcheckFlags(stderr io.Writer) (fs *flag.FlagSet, rawURL *string, timeout *time.Duration) {
	fs = newFlags("healthcheck", healthcheckSynopsis, stderr)
	rawURL = fs.String("url", defaultHealthURL, "health endpoint to ask (http or https)")
	timeout = fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	return fs, rawURL, timeout
}

func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, rawURL, timeout := healthcheckFlags(stderr)
	rest, err := parseFlags(fs, args)
	// Docker reserves exit 2 in a HEALTHCHECK: every failure here is 1.
	unhealthy := func(err error) error { return &exitError{code: exitFailure, err: err} }
	if err != nil {
		var ex *exitError
		if errors.As(err, &ex) && ex.code == 0 {
			return err
		}
		return unhealthy(fmt.Errorf("healthcheck: %w", errors.Unwrap(err)))
	}
	if len(rest) > 0 {
		return unhealthy(fmt.Errorf("healthcheck: unexpected arguments %q (pass the URL with --url)", rest))
	}
	u, err := url.Parse(*rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return unhealthy(fmt.Errorf("healthcheck: --url %q is not an http or https URL (e.g. %s)", *rawURL, defaultHealthURL))
	}
	if *timeout <= 0 {
		return unhealthy(fmt.Errorf("healthcheck: --timeout %s: use a positive duration, e.g. 3s", *timeout))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return unhealthy(fmt.Errorf("healthcheck: %w", err))
	}
	// No proxy: the endpoint is the container's own; a proxy set for
	// Slack or salt-api must not answer for it.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return unhealthy(fmt.Errorf("healthcheck: %s: no answer within %s", u.Redacted(), *timeout))
		}
		return unhealthy(fmt.Errorf("healthcheck: %s: %w", u.Redacted(), errors.Unwrap(err)))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return unhealthy(fmt.Errorf("healthcheck: %s answered %s", u.Redacted(), resp.Status))
	}
	fmt.Fprintln(stdout, "healthy:", u.Redacted(), resp.Status)
	return nil
}
