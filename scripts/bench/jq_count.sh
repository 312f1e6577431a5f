#!/bin/sh
# The jq one-liner for "what broke?" over saved blame output: minions by
# status, and failing minions by commit. Kept to compare with
# `sift triage --input` (wall time, peak RSS).
exec jq -c '[.[] | objects | .["blame.last_highstate_failure"] | objects | {s: (.status // "unknown" | tostring), c: ([.commits | arrays | .[] | objects | .commit_id | strings] | unique)}]
  | {status: (group_by(.s) | map({key: .[0].s, value: length}) | from_entries),
     commits: ([.[].c[]] | group_by(.) | map({key: .[0], value: length}) | from_entries)}' "$1"
