// Command slackshots runs Sift's Slack bot against the fake Slack and
// writes what a workspace would show, in the shape Block Kit viewers read:
// a one-datacenter and a group triage of the demo fleet (the group one
// asked with the message shortcut from an incident thread), and a report
// of a 5 000-minion datacenter from saved evidence with its buttons
// pressed. Look at them before changing how reports read.
//
//	go run ./fakeslack/cmd/slackshots -o DIR
//
// writes DIR/one-dc.json, DIR/big-dc.json, DIR/group.json and
// DIR/stopped.json (a group triage Sift was stopped in the middle of).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sift-chatops/sift/bot"
	"github.com/sift-chatops/sift/commands"
	"github.com/sift-chatops/sift/config"
	"github.com/sift-chatops/sift/fakesalt"
	"github.com/sift-chatops/sift/fakeslack"
	"github.com/sift-chatops/sift/formatters"
	"github.com/sift-chatops/sift/internal/fleetgen"
	"github.com/sift-chatops/sift/saltapi"
	"github.com/sift-chatops/sift/triage"
)

// The people and the channel of the pictures.
const (
	channel = "C0INCIDENT"
	alice   = "U0ALICE"
	bob     = "U0BOB"
	jdoe    = "U0JDOE"
)

var names = map[string]string{channel: "incident-4711", alice: "alice", bob: "bob", jdoe: "John Doe"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "slackshots:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("slackshots", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("o", ".", "directory to write the states to")
	minions := fs.Int("minions", 5000, "minions of the big datacenter")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, shot := range []struct {
		name string
		take func(context.Context, *scene) error
	}{
		{"one-dc", oneDC},
		{"big-dc", func(ctx context.Context, s *scene) error { return bigDC(ctx, s, *minions) }},
		{"group", group},
		{"stopped", stopped},
	} {
		if err := take(ctx, filepath.Join(*dir, shot.name+".json"), shot.take); err != nil {
			return fmt.Errorf("%s: %w", shot.name, err)
		}
		fmt.Fprintln(stderr, "wrote", filepath.Join(*dir, shot.name+".json"))
	}
	return nil
}

// scene is a bot connected to a fake Slack, over the demo fleet.
type scene struct {
	slack *fakeslack.Server
	bot   *bot.Bot
	inv   triage.Inventory
	audit *lines
	// stop stops the bot, as a SIGTERM would, and waits for it.
	stop func()
}

// lines counts the lines written to it, for waiting on the audit log.
type lines struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n += bytes.Count(p, []byte("\n"))
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// wait waits for n lines.
func (l *lines) wait(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		got, ch := l.n, l.changed
		l.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d audit lines: %w", n, ctx.Err())
		}
	}
}

// take sets a scene up, plays it, and writes the fake's final state.
func take(ctx context.Context, path string, play func(context.Context, *scene) error) error {
	fake := fakeslack.New(fakeslack.Options{Users: map[string]string{"jdoe@example.com": jdoe}, PingInterval: time.Second})
	defer fake.Close()
	fleet := fakesalt.DemoFleet()
	s := &scene{slack: fake, audit: &lines{changed: make(chan struct{})}, inv: triage.Inventory{Groups: fleet.Inventory.Groups}}
	for _, dc := range fleet.Inventory.Datacenters {
		s.inv.Datacenters = append(s.inv.Datacenters, triage.Datacenter{Name: dc.Name, Master: dc.Master, Target: dc.Target})
	}
	blamers := map[string]triage.Blamer{}
	for _, m := range fleet.Masters {
		srv := fakesalt.NewServer(m)
		defer srv.Close()
		c, err := saltapi.New(saltapi.Config{
			Name: m.Name, URL: srv.URL(), Eauth: m.Eauth, Username: m.Username, Password: m.Password,
			Timeout: 2 * time.Second, GatherJobTimeout: time.Second, PollInterval: 100 * time.Millisecond,
		})
		if err != nil {
			return err
		}
		blamers[m.Name] = c
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	b, err := bot.New(bot.Config{
		AppToken: config.Secret("xapp-1-slackshots"), BotToken: config.Secret("xoxb-slackshots"), APIURL: fake.APIURL(),
		ProgressInterval: 200 * time.Millisecond, ShutdownGrace: 1200 * time.Millisecond,
	}, bot.Deps{
		Triagers: func(progress func(triage.Progress)) bot.Triager {
			return triage.New(s.inv, blamers, triage.Options{
				CommitURL: "https://git.example.com/salt/-/commit/{commit}", Progress: progress,
			})
		},
		Parser: commands.Parser{Inventory: s.inv, Names: commands.DefaultSlashNames},
		Log:    log, Audit: s.audit,
	})
	if err != nil {
		return err
	}
	s.bot = b
	runCtx, stopBot := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	var once sync.Once
	s.stop = func() { once.Do(func() { stopBot(); <-done }) }
	defer s.stop()
	if err := fake.Wait(ctx, func() bool { return fake.Connected() == 1 }); err != nil {
		return err
	}
	if err := play(ctx, s); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fake.WriteState(f, names); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// slash runs a slash command and waits for its audit line, the n-th.
func (s *scene) slash(ctx context.Context, user, cmd, text string, n int) error {
	if _, err := s.slack.SendSlashCommand(ctx, fakeslack.SlashCommand{Command: cmd, Text: text, UserID: user, ChannelID: channel}); err != nil {
		return err
	}
	return s.audit.wait(ctx, n)
}

// press clicks the first button actionID of message ts and waits for the
// n-th audit line.
func (s *scene) press(ctx context.Context, user, ts, actionID string, n int) error {
	m, ok := s.slack.Message(channel, ts)
	if !ok {
		return fmt.Errorf("no message %s", ts)
	}
	value, err := buttonValue(m.Blocks, actionID)
	if err != nil {
		return err
	}
	if _, err := s.slack.SendBlockAction(ctx, fakeslack.BlockAction{UserID: user, ChannelID: channel, MessageTS: ts, ActionID: actionID, Value: value}); err != nil {
		return err
	}
	return s.audit.wait(ctx, n)
}

func buttonValue(blocks json.RawMessage, actionID string) (string, error) {
	var bs []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(blocks, &bs); err != nil {
		return "", err
	}
	for _, b := range bs {
		for _, e := range b.Elements {
			if e.ActionID == actionID {
				return e.Value, nil
			}
		}
	}
	return "", fmt.Errorf("no %s button", actionID)
}

// summaries are the bot's top-level messages.
func (s *scene) summaries() []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range s.slack.Messages(channel) {
		if m.User == fakeslack.DefaultBotUserID && (m.ThreadTS == "" || m.ThreadTS == m.TS) {
			out = append(out, m)
		}
	}
	return out
}

func oneDC(ctx context.Context, s *scene) error {
	return s.slash(ctx, alice, "/blame-dc", "ams01", 1)
}

// bigDC posts the report of a 5 000-minion datacenter read from saved
// evidence, then presses the buttons of its summary and first cause.
func bigDC(ctx context.Context, s *scene, n int) error {
	var buf bytes.Buffer
	if err := fleetgen.Write(&buf, n, 1); err != nil {
		return err
	}
	inv := triage.Inventory{Datacenters: []triage.Datacenter{{Name: "ams01", Master: "salt-eu"}}}
	t := triage.New(inv, nil, triage.Options{CommitURL: "https://git.example.com/salt/-/commit/{commit}"})
	r, err := t.TriageInput(ctx, triage.Scope{Kind: triage.ScopeDatacenter, Name: "ams01"}, &buf)
	if err != nil {
		return err
	}
	ts, err := s.bot.PostReport(ctx, channel, "", r, formatters.SlackOptions{RequestedBy: alice})
	if err != nil {
		return err
	}
	if err := s.press(ctx, bob, ts, formatters.ActionAllMinions, 1); err != nil {
		return err
	}
	thread := s.slack.Thread(channel, ts)
	if len(thread) == 0 {
		return errors.New("no thread")
	}
	return s.press(ctx, bob, thread[0].TS, formatters.ActionCauseMinions, 2)
}

// group triages the group europe from an incident thread, through the
// message shortcut and its modal.
func group(ctx context.Context, s *scene) error {
	root := s.slack.Post(channel, bob, "Highstates are failing all over europe, release pipeline halted. Looking.")
	reply, err := s.slack.PostInThread(channel, root, alice, "same in lon03, something with vault? triaging the group")
	if err != nil {
		return err
	}
	sent, err := s.slack.SendMessageShortcut(ctx, fakeslack.MessageShortcut{UserID: alice, ChannelID: channel, MessageTS: reply, CallbackID: bot.ShortcutCallbackID})
	if err != nil {
		return err
	}
	if err := s.slack.Wait(ctx, func() bool { return len(s.slack.Views()) == 1 }); err != nil {
		return fmt.Errorf("no modal (envelope %s): %w", sent.EnvelopeID, err)
	}
	view := s.slack.Views()[0]
	if _, err := s.slack.SubmitView(ctx, fakeslack.ViewSubmission{UserID: alice, ViewID: view.ID, Values: map[string]map[string]fakeslack.ViewValue{
		"sift_group": {"group": {Type: "static_select", Selected: "europe", Text: "europe"}},
	}}); err != nil {
		return err
	}
	if err := s.audit.wait(ctx, 1); err != nil {
		return err
	}
	return nil
}

// stopped starts a group triage and stops Sift before it ends: its
// unreachable minions keep it
// going for Salt's 2 s timeout, the shutdown grace is 1.2 s.
func stopped(ctx context.Context, s *scene) error {
	if _, err := s.slack.SendSlashCommand(ctx, fakeslack.SlashCommand{Command: "/blame-group", Text: "europe", UserID: alice, ChannelID: channel}); err != nil {
		return err
	}
	if err := s.slack.Wait(ctx, func() bool { return len(s.slack.CallsTo("chat.update")) > 0 }); err != nil {
		return err
	}
	s.stop()
	return s.audit.wait(ctx, 1)
}
