package formatters

import (
	"strings"
	"testing"
)

func TestTextShowsDatacenterNotes(t *testing.T) {
	r := commitReport()
	r.Datacenters[1].Notes = []string{"salt-eu refused manage.present (HTTP 401): waited out Salt's timeout for silent minions"}
	got := Text(r)
	want := "note: fra02 (salt-eu): salt-eu refused manage.present (HTTP 401): waited out Salt's timeout for silent minions\n"
	if !strings.Contains(got, want) {
		t.Errorf("text report lacks %q:\n%s", want, got)
	}
	if n := strings.Count(got, "note: "); n != 1 {
		t.Errorf("%d notes, want 1:\n%s", n, got)
	}
}
