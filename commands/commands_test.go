package commands

import (
	"strings"
	"testing"

	"github.com/sift-chatops/sift/triage"
)

func parser() Parser {
	return Parser{
		Inventory: triage.Inventory{
			Datacenters: []triage.Datacenter{{Name: "ams01", Master: "eu"}, {Name: "fra02", Master: "eu"}},
			Groups:      map[string][]string{"europe": {"ams01", "fra02"}},
		},
		Names: DefaultSlashNames,
	}
}

func TestParse(t *testing.T) {
	p := parser()
	tests := []struct {
		name    string
		parse   func() (Request, error)
		want    Request
		wantErr string
	}{
		{"slash dc", func() (Request, error) { return p.Slash("/blame-dc", " ams01 ") }, Request{Scope: triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}}, ""},
		{"slash group", func() (Request, error) { return p.Slash("/blame-group", "europe") }, Request{Scope: triage.Scope{Kind: triage.ScopeGroup, Name: "europe"}}, ""},
		{"slash minion linkified by Slack", func() (Request, error) {
			return p.Slash("/blame-minion", "<http://web-1.ams01.example.com|web-1.ams01.example.com>")
		}, Request{Scope: triage.Scope{Kind: triage.ScopeMinion, Name: "web-1.ams01.example.com"}}, ""},
		{"slash help", func() (Request, error) { return p.Slash("/blame-dc", "help") }, Request{Help: true}, ""},
		{"mention dc", func() (Request, error) { return p.Mention("<@U0SIFT> dc fra02") }, Request{Scope: triage.Scope{Kind: triage.ScopeDatacenter, Name: "fra02"}}, ""},
		{"mention datacenter word", func() (Request, error) { return p.Mention("<@U0SIFT|sift> Datacenter ams01") }, Request{Scope: triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}}, ""},
		{"mention minion", func() (Request, error) { return p.Mention("<@U0SIFT> minion web-1") }, Request{Scope: triage.Scope{Kind: triage.ScopeMinion, Name: "web-1"}}, ""},
		{"bare mention is help", func() (Request, error) { return p.Mention("<@U0SIFT>") }, Request{Help: true}, ""},
		{"cli args", func() (Request, error) { return p.Args([]string{"dc", "ams01"}) }, Request{Scope: triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}}, ""},
		{"unknown dc suggests", func() (Request, error) { return p.Slash("/blame-dc", "ams1") }, Request{}, `unknown datacenter "ams1" (did you mean ams01?)`},
		{"unknown group lists", func() (Request, error) { return p.Mention("<@U0SIFT> group asia") }, Request{}, `unknown group "asia" (known: europe)`},
		{"glob minion refused", func() (Request, error) { return p.Slash("/blame-minion", "web-*") }, Request{}, "letters, digits, '.', '_' and '-'"},
		{"list minion refused", func() (Request, error) { return p.Mention("<@U0SIFT> minion a,b") }, Request{}, `minion id "a,b": not a minion id`},
		{"two names", func() (Request, error) { return p.Slash("/blame-dc", "ams01 fra02") }, Request{}, "one datacenter at a time"},
		{"missing name", func() (Request, error) { return p.Slash("/blame-dc", "") }, Request{}, "missing datacenter: /blame-dc DATACENTER (known: ams01, fra02)"},
		{"unknown word", func() (Request, error) { return p.Mention("<@U0SIFT> deploy prod") }, Request{}, `I don't know "deploy"`},
		{"unknown slash", func() (Request, error) { return p.Slash("/blame-everything", "x") }, Request{}, "unknown command /blame-everything"},
		{"cli unknown kind", func() (Request, error) { return p.Args([]string{"region", "eu"}) }, Request{}, `unknown scope "region"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.parse()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if _, ok := err.(*UsageError); !ok {
					t.Errorf("err is %T, want *UsageError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHelpListsScopes(t *testing.T) {
	h := parser().Help()
	for _, want := range []string{"/blame-minion MINION-ID", "@sift dc DATACENTER", "/blame-group GROUP", "Datacenters: ams01, fra02", "Groups: europe"} {
		if !strings.Contains(h, want) {
			t.Errorf("help lacks %q:\n%s", want, h)
		}
	}
}
