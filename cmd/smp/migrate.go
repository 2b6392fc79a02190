package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"smp"
	"smp/auth"
)

func (c *cli) migrateCmd() *cobra.Command {
	var cfg Config
	fs := flag.NewFlagSet("smp migrate", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", "./smp-data", "directory of the embedded database")
	cfg.registerMySQL(fs)
	cmd := &cobra.Command{Use: "migrate", Short: "apply database migrations and exit"}
	return c.leaf(cmd, fs, func([]string) error { return runMigrate(c.ctx, cfg, c.stdout) })
}

func runMigrate(ctx context.Context, cfg Config, stdout io.Writer) error {
	db, err := openStore(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	where := cfg.DataDir + "/smp.db"
	if cfg.MySQLDSN != "" {
		where = "MySQL primary"
	}
	fmt.Fprintf(stdout, "%s is at schema version %s\n", where, v)
	return nil
}

func (c *cli) tokenCmd() *cobra.Command {
	var cfg Config
	var role, name string
	fs := flag.NewFlagSet("smp token", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", "./smp-data", "directory of the embedded database")
	cfg.registerMySQL(fs)
	fs.StringVar(&role, "role", "", "ops, admin, finance or security")
	fs.StringVar(&name, "name", "", "who the token is for (recorded in audit entries)")
	cmd := &cobra.Command{Use: "token", Short: "create an admin API token with a role (ops, admin, finance, security)"}
	return c.leaf(cmd, fs, func([]string) error { return runToken(c.ctx, cfg, role, name, c.stdout, c.stderr) })
}

func runToken(ctx context.Context, cfg Config, role, name string, stdout, stderr io.Writer) error {
	if !smp.ValidRole(smp.Role(role)) {
		return usageError{fmt.Sprintf("--role %q: use ops, admin, finance or security", role)}
	}
	if !auth.ValidName(name) {
		return usageError{"--name is required: 2-64 letters, digits, . _ @ -"}
	}
	db, err := openStore(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	tok, err := auth.NewAdminToken()
	if err != nil {
		return err
	}
	if err := db.PutToken(ctx, auth.HashToken(tok), auth.KindAdmin, name, smp.Role(role)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", tok)
	fmt.Fprintf(stderr, "token for %s with role %s created; it is shown only once\n", name, role)
	return nil
}
