package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// smp ctl wallets show|verify: the partners' wallets through the admin
// API (docs/wallets.md, runbook INC-010).
func (c *cli) ctlWalletsCmd(g *ctlFlags) *cobra.Command {
	var partner string
	fs := flag.NewFlagSet("smp ctl wallets show", flag.ContinueOnError)
	fs.StringVar(&partner, "partner", "", "one partner, e.g. P001 (default: every wallet)")
	show := c.leaf(&cobra.Command{Use: "show", Short: "wallet balances, floors and states"}, fs, func([]string) error {
		return runCtlWallets(c.ctx, "show", g.apiServer(), g.output, partner, c.stdout)
	})
	verify := c.leaf(&cobra.Command{Use: "verify", Short: "check the ledger: the hash chain and every balance against its entries (exit 1 if it fails)"},
		flag.NewFlagSet("smp ctl wallets verify", flag.ContinueOnError), func([]string) error {
			return runCtlWallets(c.ctx, "verify", g.apiServer(), g.output, "", c.stdout)
		})
	return group(&cobra.Command{Use: "wallets", Short: "partner wallets (show, verify)"}, show, verify)
}

func runCtlWallets(ctx context.Context, cmd, server, output, partner string, stdout io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	c, err := newAPIClient(server, 5*time.Minute)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var path, list string
	var cols []string
	switch cmd {
	case "show":
		path, list, cols = "/admin/wallets", "wallets", []string{"partner_id", "balance_vnd", "floor_vnd", "state", "last_seq", "updated_at"}
		if partner != "" {
			path, list = "/admin/partners/"+url.PathEscape(partner)+"/wallet", ""
		}
	case "verify":
		path = "/admin/wallets/verify"
	}
	v, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := render(stdout, output, v, list, cols); err != nil {
		return err
	}
	if m, ok := v.(map[string]any); ok && cmd == "verify" && m["ok"] != true {
		return fmt.Errorf("the wallet ledger does not verify: %v problem(s)", cell(m["problem_count"]))
	}
	return nil
}
