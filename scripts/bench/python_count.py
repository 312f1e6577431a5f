#!/usr/bin/env python3
"""The straightforward way to answer "what broke?" from saved blame output:
json.load the whole document, count minions by status and failing minions by
commit. Kept to compare with `sift triage --input` (wall time, peak RSS)."""
import collections
import json
import sys


def main(path):
    with open(path) as f:
        doc = json.load(f)
    if isinstance(doc, dict) and isinstance(doc.get("return"), list):
        doc = {k: v for part in doc["return"] for k, v in part.items()}
    status = collections.Counter()
    commits = collections.Counter()
    for answer in doc.values():
        if not isinstance(answer, dict):
            status["unreachable" if answer is False else "other"] += 1
            continue
        failure = answer.get("blame.last_highstate_failure")
        if not isinstance(failure, dict):
            status["module_missing"] += 1
            continue
        status[failure.get("status", "unknown")] += 1
        for c in {c["commit_id"] for c in failure.get("commits", [])}:
            commits[c] += 1
    print(dict(status))
    print(commits.most_common(3))


if __name__ == "__main__":
    main(sys.argv[1])
