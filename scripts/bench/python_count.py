#!/usr/bin/env python3
"""The straightforward way to answer "what broke?" from saved blame output:
json.load the whole document, count minions by status, failing minions by
commit, and the rest by failed state (fun and id) or compile error (sls).
Kept to compare with `sift triage --input` (wall time, peak RSS); it does
less than Sift (no masking of messages, no service origins, no datacenters)."""
import collections
import json
import sys


def main(path):
    with open(path) as f:
        doc = json.load(f)
    if isinstance(doc, dict) and isinstance(doc.get("return"), list):
        doc = {k: v for part in doc["return"] if isinstance(part, dict) for k, v in part.items()}
    status = collections.Counter()
    causes = collections.Counter()
    for answer in doc.values():
        if not isinstance(answer, dict):
            status["unreachable" if answer is False else "other"] += 1
            continue
        failure = answer.get("blame.last_highstate_failure")
        if not isinstance(failure, dict):
            status["module_missing"] += 1
            continue
        st = failure.get("status", "unknown")
        status[st] += 1
        if st != "failing":
            continue
        commits = failure.get("commits")
        found = {c.get("commit_id") for c in commits if isinstance(c, dict)} if isinstance(commits, list) else set()
        for c in found:
            causes["commit " + str(c)] += 1
        if found:
            continue
        states = answer.get("blame.last_failed_states")
        for s in states if isinstance(states, list) else []:
            if isinstance(s, dict):
                causes["state %s %s" % (s.get("fun"), s.get("__id__"))] += 1
        errors = answer.get("blame.last_compile_errors")
        for e in errors if isinstance(errors, list) else []:
            if isinstance(e, dict):
                causes["compile %s" % e.get("state")] += 1
    print(dict(status))
    for cause, n in causes.most_common(5):
        print(n, cause)


if __name__ == "__main__":
    main(sys.argv[1])
