package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
	var o adjustOpts
	fs = flag.NewFlagSet("smp ctl wallets adjust", flag.ContinueOnError)
	fs.StringVar(&o.partner, "partner", "", "the partner, e.g. P001")
	fs.Int64Var(&o.amount, "amount", 0, "VND to credit (positive) or debit (negative)")
	fs.StringVar(&o.reason, "reason", "", "why (audited)")
	fs.StringVar(&o.expected, "expected-diff", "", "the difference with the gateway this adjustment is expected to leave (VND)")
	fs.StringVar(&o.id, "id", "", "idempotency key (retrying with the same id posts once)")
	adjust := c.leaf(&cobra.Command{Use: "adjust", Short: "post a manual adjustment to a wallet (finance role; audited)"}, fs, func([]string) error {
		return runCtlAdjust(c.ctx, g.apiServer(), g.output, o, c.stdout)
	})
	var fo adjustOpts
	fs = flag.NewFlagSet("smp ctl wallets floor", flag.ContinueOnError)
	fs.StringVar(&fo.partner, "partner", "", "the partner, e.g. P001")
	fs.Int64Var(&fo.amount, "floor-vnd", -1, "the floor in VND: below it the partner's technicians get no new offers")
	fs.StringVar(&fo.reason, "reason", "", "why (audited)")
	floor := c.leaf(&cobra.Command{Use: "floor", Short: "set a wallet's floor (finance role; audited)"}, fs, func([]string) error {
		return runCtlFloor(c.ctx, g.apiServer(), g.output, fo, c.stdout)
	})
	return group(&cobra.Command{Use: "wallets", Short: "partner wallets (show, verify, adjust, floor)"}, show, verify, adjust, floor)
}

type adjustOpts struct {
	partner, reason, expected, id string
	amount                        int64
}

func runCtlAdjust(ctx context.Context, server, output string, o adjustOpts, stdout io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	switch {
	case o.partner == "":
		return usageError{"--partner is required"}
	case o.amount == 0:
		return usageError{"--amount is required (positive credits, negative debits)"}
	case len(strings.TrimSpace(o.reason)) < 3:
		return usageError{"--reason is required"}
	}
	body := map[string]any{"amount_vnd": o.amount, "reason": o.reason}
	if o.id != "" {
		body["id"] = o.id
	}
	if o.expected != "" {
		v, err := strconv.ParseInt(o.expected, 10, 64)
		if err != nil {
			return usageError{"--expected-diff must be a whole number of VND"}
		}
		body["expected_diff_vnd"] = v
	}
	c, err := newAPIClient(server, 30*time.Second)
	if err != nil {
		return err
	}
	v, err := c.do(ctx, http.MethodPost, "/admin/partners/"+url.PathEscape(o.partner)+"/wallet/adjustments", body)
	if err != nil {
		return err
	}
	return render(stdout, output, v, "", nil)
}

func runCtlFloor(ctx context.Context, server, output string, o adjustOpts, stdout io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	switch {
	case o.partner == "":
		return usageError{"--partner is required"}
	case o.amount < 0:
		return usageError{"--floor-vnd is required (0 or more)"}
	case len(strings.TrimSpace(o.reason)) < 3:
		return usageError{"--reason is required"}
	}
	c, err := newAPIClient(server, 30*time.Second)
	if err != nil {
		return err
	}
	v, err := c.do(ctx, http.MethodPut, "/admin/partners/"+url.PathEscape(o.partner)+"/wallet/floor", map[string]any{"floor_vnd": o.amount, "reason": o.reason})
	if err != nil {
		return err
	}
	return render(stdout, output, v, "", nil)
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
