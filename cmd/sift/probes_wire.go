package main

import (
	"context"
	"strings"

	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/probes"
	"github.com/sift-chatops/sift/triage"
)

// proberOf is the prober of the configuration, nil when probes are off.
func proberOf(c *config.Config) *probes.Prober {
	if c == nil || !c.Probes.Enabled() {
		return nil
	}
	return probes.New(c.Probes, probes.Options{})
}

// maxProbedCauses bounds the probes one report makes: the top causes are
// the ones read.
const maxProbedCauses = 5

// triageRunner is what the bot and the CLI ask for a report.
type triageRunner interface {
	Triage(ctx context.Context, s triage.Scope) (*triage.Report, error)
}

// probingTriager adds to each external-service cause of a report what a
// live probe of the service saw, when probes.allow allows its origin.
type probingTriager struct {
	next   triageRunner
	prober *probes.Prober
}

// Triage implements triageRunner.
func (p probingTriager) Triage(ctx context.Context, s triage.Scope) (*triage.Report, error) {
	r, err := p.next.Triage(ctx, s)
	if r != nil {
		probeCauses(ctx, p.prober, r)
	}
	return r, err
}

// probeCauses fills Evidence.Probe of the report's top external-service
// causes whose origin is allowed; the others are left alone, unprobed.
func probeCauses(ctx context.Context, p *probes.Prober, r *triage.Report) {
	if p == nil {
		return
	}
	n := 0
	for i := range r.Causes {
		c := &r.Causes[i]
		if c.Kind != triage.CauseExternalService || c.Evidence.ServiceURL == "" {
			continue
		}
		if n++; n > maxProbedCauses {
			return
		}
		target := c.Evidence.ServiceURL
		if vaultCause(c) {
			target += "/v1/"
		}
		if res, ok := p.Probe(ctx, target); ok {
			c.Evidence.Probe = res.Text + " (probed from Sift's host)"
		}
	}
}

// vaultCause reports whether the messages name a Vault API path under the
// cause's origin.
func vaultCause(c *triage.Cause) bool {
	prefix := c.Evidence.ServiceURL + "/v1/"
	for _, m := range c.Evidence.Messages {
		if strings.Contains(m, prefix) {
			return true
		}
	}
	for _, e := range c.Evidence.Examples {
		if strings.Contains(e.Text, prefix) {
			return true
		}
	}
	return false
}
