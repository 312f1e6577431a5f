// Command fleetgen writes a large, realistic saved blame output for
// benchmarks of `sift triage --input`: fleetgen -n 100000 > fleet.json
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
	flag.Parse()
	if err := fleetgen.Write(os.Stdout, *n, *dcs); err != nil {
		fmt.Fprintln(os.Stderr, "fleetgen:", err)
		os.Exit(1)
	}
}
