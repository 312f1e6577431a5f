#!/bin/sh
# Side by side: `sift triage --input`, the Python json.load script and the
# jq one-liner on one saved blame output, alternating, ROUNDS rounds (5 by
# default); prints each run and the medians of wall time and peak RSS
# (GNU time -v), and the load average before and after.
#
#   scripts/bench/compare.sh [fleet.json]
#
# Without a file it writes a realistic 100 000-minion fleet with fleetgen.
set -eu
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Built as the image builds it (Dockerfile).
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/sift" ./cmd/sift
fleet=${1:-}
if [ -z "$fleet" ]; then
	fleet=$work/fleet.json
	go run ./internal/fleetgen/cmd/fleetgen -realistic -n 100000 >"$fleet"
fi
echo "input: $(du -h "$fleet" | cut -f1), $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"

measure() { # name command...
	name=$1
	shift
	/usr/bin/time -v -o "$work/time" "$@" >/dev/null 2>"$work/err" || {
		echo "$name failed:" >&2
		cat "$work/err" >&2
		exit 1
	}
	wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time" | awk -F: '{ print $(NF-1)*60 + $NF }')
	rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time")
	cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$work/time")
	echo "$name $wall $rss $cpu" >>"$work/runs"
	printf '%-7s wall %6.2f s  cpu %6.2f s  peak RSS %7.1f MiB\n' "$name" "$wall" "$cpu" "$(echo "$rss" | awk '{ print $1/1024 }')"
}

for i in $(seq "$rounds"); do
	measure sift "$work/sift" triage dc ams01 --input "$fleet" --quiet
	measure python python3 scripts/bench/python_count.py "$fleet"
	measure jq scripts/bench/jq_count.sh "$fleet"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { # name column
	awk -v n="$1" -v c="$2" '$1 == n { print $c }' "$work/runs" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
s=$(median sift 2)
p=$(median python 2)
j=$(median jq 2)
printf 'median of %d  sift %.2f s %.0f MiB | python %.2f s %.0f MiB | jq %.2f s %.0f MiB\n' "$rounds" \
	"$s" "$(median sift 3 | awk '{ print $1/1024 }')" "$p" "$(median python 3 | awk '{ print $1/1024 }')" \
	"$j" "$(median jq 3 | awk '{ print $1/1024 }')"
awk -v s="$s" -v p="$p" -v j="$j" 'BEGIN { printf "sift is %.1fx faster than python, %.1fx faster than jq\n", p / s, j / s }'
