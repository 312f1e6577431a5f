package config

import "testing"

func TestSlackMentionAuthors(t *testing.T) {
	slack := "slack: {app_token: xapp-1, bot_token: xoxb-1"
	tests := []struct {
		name, yaml, want, err string
	}{
		{"default", minimal + slack + "}\n", "top", ""},
		{"all", minimal + slack + ", mention_authors: all}\n", "all", ""},
		{"none", minimal + slack + ", mention_authors: none}\n", "none", ""},
		{"unknown", minimal + slack + ", mention_authors: everyone}\n", "", `config: slack.mention_authors: "everyone" is not a policy (use top, all or none)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseAll([]byte(tc.yaml), nil)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error = %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Slack.MentionAuthors != tc.want {
				t.Errorf("mention_authors = %q, want %q", c.Slack.MentionAuthors, tc.want)
			}
		})
	}
}
