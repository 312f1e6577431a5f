package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sift-chatops/sift/config"
)

// checkSecretsTimeout bounds reading every secret, Vault's included.
const checkSecretsTimeout = time.Minute

func runCheckConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
	// Every secret is read, each one's status shown: check-config is where
	// a missing file or a Vault policy without read is found before serve.
	_, vc, err := secretsOf(c, newLogger("warning", "text", stderr))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, checkSecretsTimeout)
	defer cancel()
	var vault config.VaultReader // a nil *vault.Client must stay a nil interface
	if vc != nil {
		vault = vc
	}
	secrets, serr := c.CheckSecrets(ctx, vault)
	fmt.Fprint(stdout, c.Summary())
	fmt.Fprint(stdout, secrets)
	if serr != nil {
		return &exitError{code: exitUsage, err: serr}
	}
	fmt.Fprintln(stdout, "configuration OK")
	return nil
}
