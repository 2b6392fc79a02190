package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	var role, name, tech, cust, partner string
	fs := flag.NewFlagSet("smp token", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", "./smp-data", "directory of the embedded database")
	cfg.registerMySQL(fs)
	fs.StringVar(&role, "role", "", "ops, admin, finance or security")
	fs.StringVar(&name, "name", "", "who the token is for (recorded in audit entries)")
	fs.StringVar(&tech, "technician", "", "instead: a bearer token for this technician's app (T0001; until phone logins)")
	fs.StringVar(&cust, "customer", "", "instead: a bearer token for this customer's app (C0001; until phone logins)")
	fs.StringVar(&partner, "partner", "", "instead: a partner's own token, for its wallet's top-ups (P001)")
	cmd := &cobra.Command{Use: "token", Short: "create an admin API token with a role (ops, admin, finance, security), or a technician's, customer's or partner's token"}
	return c.leaf(cmd, fs, func([]string) error {
		if tech != "" || cust != "" || partner != "" {
			return runOwnerToken(c.ctx, cfg, tech, cust, partner, role, c.stdout, c.stderr)
		}
		return runToken(c.ctx, cfg, role, name, c.stdout, c.stderr)
	})
}

// runOwnerToken issues a technician's, customer's or partner's bearer
// token, for an active one that exists: technicians' and customers' apps
// may log in by SMS code instead; a partner's token is how it asks for
// its wallet's top-ups (POST /v1/partners/{id}/topups).
func runOwnerToken(ctx context.Context, cfg Config, tech, cust, partner, role string, stdout, stderr io.Writer) error {
	given := 0
	for _, v := range []string{tech, cust, partner} {
		if v != "" {
			given++
		}
	}
	if given != 1 || role != "" {
		return usageError{"give one of --technician ID, --customer ID or --partner ID (without --role)"}
	}
	db, err := openStore(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	kind, id, active := auth.KindTechnician, tech, false
	if tech != "" {
		t, err := db.FindTechnicianByID(ctx, tech)
		if err != nil {
			return usageError{fmt.Sprintf("--technician %s: %s", tech, smp.ErrorMessage(err))}
		}
		active = t.Status.Active()
	} else if cust != "" {
		kind, id = auth.KindCustomer, cust
		c, err := db.FindCustomerByID(ctx, cust)
		if err != nil {
			return usageError{fmt.Sprintf("--customer %s: %s", cust, smp.ErrorMessage(err))}
		}
		active = c.Status.Active()
	} else {
		kind, id = auth.KindPartner, partner
		p, err := db.FindPartnerByID(ctx, partner)
		if err != nil {
			return usageError{fmt.Sprintf("--partner %s: %s", partner, smp.ErrorMessage(err))}
		}
		active = p.Status.Active()
	}
	if !active {
		return usageError{fmt.Sprintf("%s %s is not active", kind, id)}
	}
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	tok := kind[:4] + "_" + hex.EncodeToString(b)
	if err := db.PutToken(ctx, auth.HashToken(tok), kind, id, ""); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", tok)
	fmt.Fprintf(stderr, "token for %s %s created; it is shown only once\n", kind, id)
	return nil
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
