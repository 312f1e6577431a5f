// Package demo runs the built-in simulated incident: fake salt-api masters
// on 127.0.0.1 serving the demo fleet, and a configuration that points at
// them, so that `sift demo` (and the end-to-end tests) go through the same
// code as a real triage.
package demo

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/fakesalt"
)

// Timeouts of the demo's blame calls: long enough for every simulated
// minion to answer, short enough that the silent ones don't keep a
// newcomer waiting.
const (
	Timeout          = 2 * time.Second
	GatherJobTimeout = time.Second
	PollInterval     = 200 * time.Millisecond
)

// Lab is a running simulated fleet.
type Lab struct {
	// Config is a valid configuration whose masters are the fake salt-apis.
	Config  *config.Config
	Fleet   *fakesalt.Fleet
	Servers map[string]*fakesalt.Server
}

// Start starts one fake salt-api per master of the demo fleet. Close it.
func Start() (*Lab, error) {
	fleet := fakesalt.DemoFleet()
	lab := &Lab{Fleet: fleet, Servers: map[string]*fakesalt.Server{}}
	c := config.Default()
	c.Triage.Timeout = Timeout
	c.Triage.GatherJobTimeout = GatherJobTimeout
	c.Triage.PollInterval = PollInterval
	c.Triage.Deadline = Timeout + GatherJobTimeout + 5*time.Second
	c.Links.CommitURL = "https://git.example.com/salt/-/commit/{commit}"
	for _, m := range fleet.Masters {
		srv := fakesalt.NewServer(m)
		lab.Servers[m.Name] = srv
		c.Masters = append(c.Masters, config.Master{
			Name: m.Name, URL: srv.URL(), Eauth: fakesalt.DemoEauth,
			Username: fakesalt.DemoUsername, Password: config.Secret(fakesalt.DemoPassword),
		})
	}
	for _, dc := range fleet.Inventory.Datacenters {
		c.Datacenters = append(c.Datacenters, config.Datacenter{Name: dc.Name, Master: dc.Master, Target: dc.Target})
	}
	for _, name := range sortedKeys(fleet.Inventory.Groups) {
		c.Groups = append(c.Groups, config.Group{Name: name, Datacenters: fleet.Inventory.Groups[name]})
	}
	if err := c.Validate(); err != nil {
		lab.Close()
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	lab.Config = c
	return lab, nil
}

// Minions counts the simulated minions.
func (l *Lab) Minions() int {
	n := 0
	for _, m := range l.Fleet.Masters {
		n += len(m.Minions)
	}
	return n
}

// Close stops the fake masters.
func (l *Lab) Close() {
	for _, s := range l.Servers {
		s.Close()
	}
}

func sortedKeys(m map[string][]string) []string {
	return slices.Sorted(maps.Keys(m))
}
