package main

import (
	"fmt"
	"io"
)

func runCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check-config", "sift check-config --config FILE", stderr)
	cfgPath := fs.String("config", "", "configuration file (default $SIFT_CONFIG)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("check-config takes no arguments, got %q", rest)
	}
	c, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, c.Summary())
	fmt.Fprintln(stdout, "configuration OK")
	return nil
}
