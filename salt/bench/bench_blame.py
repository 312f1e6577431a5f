#!/usr/bin/env python3
"""
Benchmark of the minion side: 200 cached highstates of 5 000 states each.

Runs every job through the blame_cache returner (default retention), then
times the bot's three-function blame call as a fresh minion job would run it
(new module load, empty __context__), and prints the cache size per job.

    python3 salt/bench/bench_blame.py [--jobs 200] [--states 5000] [--window 100] [--failing 3] [--runs 10] [--scan]

--scan also times the degraded path where index.json is lost and every job
file is read. Not run by the test suite.
"""

import argparse
import datetime
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness import JOHN, Codebase, Minion, load_module  # noqa: E402  pylint: disable=wrong-import-position

MODULES = ("nginx", "php", "postgres", "redis", "users", "ssh", "ntp", "monitoring", "logrotate", "firewall")


def state_return(n_states, rng, failing, start):
    """A highstate return shaped like Salt 3006's, with realistic names and comments."""
    ret = {}
    clock = start
    for i in range(n_states):
        sls = "{}.part{}".format(MODULES[i % len(MODULES)], (i // len(MODULES)) % 25)
        sid = "{}-item-{}".format(sls.replace(".", "-"), i)
        kind = i % 4
        if kind == 0:
            key, name, comment = "file_|-{}_|-/etc/{}/{}.conf_|-managed", "/etc/{}/{}.conf", "File {} is in the correct state"
        elif kind == 1:
            key, name, comment = "pkg_|-{}_|-pkg-{}-{}_|-installed", "pkg-{}-{}", "All specified packages are already installed"
        elif kind == 2:
            key, name, comment = "service_|-{}_|-svc-{}-{}_|-running", "svc-{}-{}", "The service {} is already running"
        else:
            key, name, comment = "cmd_|-{}_|-/usr/local/bin/{}-{} --check_|-run", "/usr/local/bin/{}-{} --check", "State was not run because none of the onchanges reqs changed"
        mod = MODULES[i % len(MODULES)]
        real_name = name.format(mod, i)
        duration = round(rng.uniform(0.005, 60.0), 3)
        state = {
            "name": real_name,
            "changes": {},
            "result": True,
            "comment": comment.format(real_name) if "{}" in comment else comment,
            "__sls__": sls,
            "__run_num__": i,
            "start_time": clock.strftime("%H:%M:%S.%f"),
            "duration": duration,
            "__id__": sid,
        }
        if i in failing:
            state["result"] = False
            state["comment"] = "Source file salt://{}/files/{}.conf.j2 not found in saltenv 'base'".format(mod, i)
        ret[key.format(sid, mod, i)] = state
        clock += datetime.timedelta(milliseconds=duration)
    return ret


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--states", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--failing", type=int, default=3, help="failed states in each failing highstate")
    parser.add_argument("--window", type=int, default=100, help="commits between last success and first failure")
    parser.add_argument("--scan", action="store_true")
    args = parser.parse_args()
    rng = random.Random(42)

    with tempfile.TemporaryDirectory(prefix="bench-blame-") as tmp:
        tmp = Path(tmp)
        repo = Codebase(tmp / "codebase")
        first_failure = args.jobs - 30  # the last 30 highstates fail
        culprit = first_failure + args.window  # touches monitoring.part1, an sls with failed states
        commits = []
        for c in range(args.jobs + args.window):
            mod = MODULES[c % len(MODULES)]
            path = "monitoring/part1.sls" if c == culprit else "{}/part{}.sls".format(mod, c % 25)
            commits.append(
                repo.commit(
                    "change {}".format(c),
                    {path: "# revision {}\n".format(c)},
                    author=JOHN if c == culprit else ("Alice Admin", "alice@example.com"),
                    when="2026-11-{:02d}T{:02d}:{:02d}:00+00:00".format(1 + c // 100, (c // 4) % 24, c % 60),
                )
            )
        minion = Minion(tmp, {"codebase_dir": str(repo.path), "commit_pillar": "codebase:commit"})
        start = datetime.datetime(2026, 11, 27, 0, 0, tzinfo=datetime.timezone.utc)
        write_times, raw_sizes = [], []
        for j in range(args.jobs):
            jid_time = start + datetime.timedelta(minutes=10 * j)
            jid = jid_time.strftime("%Y%m%d%H%M%S%f")
            failing = {i * args.states // args.failing for i in range(args.failing)} if j >= first_failure else set()
            ret = state_return(args.states, rng, failing, jid_time)
            raw_sizes.append(len(json.dumps(ret)))
            # The first failure is served `window` commits after the last success.
            minion.serve(commits[j if j < first_failure else j + args.window], "2026.11.{}".format(j))
            t0 = time.perf_counter()
            minion.run(jid, 2 if failing else 0, ret)
            write_times.append(time.perf_counter() - t0)

        index = json.loads((minion.cachedir / "index.json").read_text())["jobs"]
        sizes = [e["bytes"] for e in index]
        total = sum(p.stat().st_size for p in minion.cachedir.iterdir())

        def cold_call():
            mod = load_module("_modules", "blame", minion.opts, minion.grains, minion.pillar)
            t0 = time.perf_counter()
            answer = {
                "blame.last_failed_states": mod.last_failed_states(),
                "blame.last_highstate_failure": mod.last_highstate_failure(),
                "blame.last_compile_errors": mod.last_compile_errors(),
            }
            return time.perf_counter() - t0, answer

        timings = []
        for _ in range(args.runs):
            elapsed, answer = cold_call()
            timings.append(elapsed)
        blame = answer["blame.last_highstate_failure"]

        print("jobs cached: {} of {} ({} states each)".format(len(index), args.jobs, args.states))
        print("cache bytes per job (gzip JSON): median {:,} min {:,} max {:,}".format(
            int(statistics.median(sizes)), min(sizes), max(sizes)))
        print("return JSON bytes per job before compression: median {:,}".format(int(statistics.median(raw_sizes))))
        print("cache directory total: {:,} bytes".format(total))
        print("returner time per job: median {:.1f} ms, max {:.1f} ms".format(
            statistics.median(write_times) * 1000, max(write_times) * 1000))
        print("blame three-function call, cold ({} runs): median {:.1f} ms, max {:.1f} ms".format(
            args.runs, statistics.median(timings) * 1000, max(timings) * 1000))
        print("answer: status={} message={!r} commits={} failed_states={}".format(
            blame["status"], blame["message"], len(blame["commits"]), len(answer["blame.last_failed_states"])))

        if args.scan:
            os.unlink(minion.cachedir / "index.json")
            elapsed, answer = cold_call()
            print("blame call with index.json lost (reads every job file): {:.1f} ms".format(elapsed * 1000))


if __name__ == "__main__":
    main()
