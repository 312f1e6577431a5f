#!/usr/bin/env python3
"""Rewrite saved blame output the way `salt --out json --static` prints a
real fleet, to measure on a second shape of the same evidence:

- indented by four spaces at every level;
- each minion's functions in an order of their own, and each failed
  state's keys sorted, as Salt's state results come;
- every last success job id different, as on a fleet whose minions ran
  their highstates at different times (no two healthy answers alike).

    scripts/bench/restyle.py fleet.json > fleet-static.json

Seeded: the same input gives the same output.
"""
import json
import random
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: restyle.py fleet.json > fleet-static.json")
    rng = random.Random(10)
    with open(sys.argv[1]) as f:
        fleet = json.load(f)
    out = {}
    for minion, answer in fleet.items():
        if isinstance(answer, dict):
            failure = answer.get("blame.last_highstate_failure")
            if isinstance(failure, dict) and isinstance(failure.get("last_success_job"), dict):
                failure["last_success_job"]["jid"] = "2025102209%010d" % rng.randrange(10**10)
            states = answer.get("blame.last_failed_states")
            if isinstance(states, list):
                answer["blame.last_failed_states"] = [
                    dict(sorted(s.items())) if isinstance(s, dict) else s for s in states
                ]
            keys = list(answer)
            rng.shuffle(keys)
            answer = {k: answer[k] for k in keys}
        out[minion] = answer
    json.dump(out, sys.stdout, indent=4)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
