package bot_test

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sift-chatops/sift/bot"
)

// The app manifest is what Slack knows of Sift: a shortcut it does not
// declare never reaches the bot.
func TestManifestDeclaresTheShortcutAndInteractivity(t *testing.T) {
	raw, err := os.ReadFile("../deploy/slack-app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Features struct {
			Shortcuts []struct {
				Name, Type, Description string
				CallbackID              string `yaml:"callback_id"`
			} `yaml:"shortcuts"`
		} `yaml:"features"`
		Settings struct {
			Interactivity struct {
				IsEnabled bool `yaml:"is_enabled"`
			} `yaml:"interactivity"`
			SocketMode bool `yaml:"socket_mode_enabled"`
		} `yaml:"settings"`
	}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if !m.Settings.Interactivity.IsEnabled || !m.Settings.SocketMode {
		t.Errorf("interactivity %v, socket mode %v: buttons and the shortcut need both", m.Settings.Interactivity.IsEnabled, m.Settings.SocketMode)
	}
	found := false
	for _, s := range m.Features.Shortcuts {
		if s.CallbackID == bot.ShortcutCallbackID {
			found = true
			// Slack's limits on a shortcut: name 1..24, description 1..80.
			if s.Type != "message" || s.Name == "" || len(s.Name) > 24 || s.Description == "" || len(s.Description) > 80 {
				t.Errorf("shortcut = %+v", s)
			}
		}
	}
	if !found {
		t.Errorf("no shortcut with callback_id %s in %+v", bot.ShortcutCallbackID, m.Features.Shortcuts)
	}
}
