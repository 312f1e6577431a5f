// Command fleetgen writes a large saved blame output for benchmarks of
// `sift triage --input`: fleetgen -n 100000 > fleet.json, or with
// -realistic, the corpus's failures with values that differ per minion,
// long tracebacks and garbage answers.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/sift-chatops/sift/internal/fleetgen"
)

func main() {
	n := flag.Int("n", 100000, "minions")
	dcs := flag.Int("dcs", 10, "datacenters the minion ids spread over")
	realistic := flag.Bool("realistic", false, "write realistic answers: corpus failures with per-minion values, long tracebacks, ~2 % garbage")
	seed := flag.Uint64("seed", 1, "random seed of -realistic")
	flag.Parse()
	var err error
	if *realistic {
		err = fleetgen.WriteRealistic(os.Stdout, fleetgen.RealisticOptions{Minions: *n, Datacenters: *dcs, Seed: *seed})
	} else {
		err = fleetgen.Write(os.Stdout, *n, *dcs)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetgen:", err)
		os.Exit(1)
	}
}
