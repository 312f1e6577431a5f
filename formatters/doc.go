// Package formatters turns a triage.Report into what people read: a plain
// text report for the terminal, a stable JSON document for other tools, and
// Slack Block Kit messages (a summary and its thread) that stay inside
// Slack's size limits however large the report is.
//
// Every function here is pure: a report in, bytes or blocks out. Nothing is
// sent anywhere; the bot and the command line do that.
package formatters
