package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// admin (the runbook's /app/bin/admin, also smp admin): enforcement on
// partners' wallets through a running platform's admin API (INC-011):
//
//	admin freeze --partner=P00X --reason="fraud_alert_INC-011-2026-05-28"
//	admin unfreeze --partner=P00X --note="verified by phone"
//	admin soft-block --partner=P00X --reason="..."
//	admin lift-soft-block --partner=P00X --reason="..."
//	admin held [--partner=P00X]
//	admin release-held --partner=P00X --txn=REF --reason="..."
//	admin reverse-held --partner=P00X --txn=REF --reason="..."
//	admin show [--partner=P00X]
//	admin allowlist --partner=P00X [--set=203.0.113.0/24,198.51.100.7 | --clear] --reason="..."
//	admin reports [--partner=P00X]
//	admin guard-rails
//
// --server or SMP_SERVER (default http://127.0.0.1:8080), a security
// token in SMP_ADMIN_TOKEN; --output table|json|csv.
func (c *cli) adminCmd() *cobra.Command {
	type common struct{ server, output, partner string }
	flags := func(name string, o *common) *flag.FlagSet {
		fs := flag.NewFlagSet("admin "+name, flag.ContinueOnError)
		fs.StringVar(&o.server, "server", "", "a running platform's URL (SMP_SERVER; default http://127.0.0.1:8080)")
		fs.StringVar(&o.output, "output", "table", "table, json or csv")
		fs.StringVar(&o.partner, "partner", "", "partner id, e.g. P001")
		return fs
	}
	call := func(o *common, method, path string, body any, list string, cols []string) error {
		if err := checkOutput(o.output); err != nil {
			return err
		}
		if o.server == "" {
			o.server = "http://127.0.0.1:8080"
		}
		cl, err := newAPIClient(o.server, 30*time.Second)
		if err != nil {
			return err
		}
		v, err := cl.do(c.ctx, method, path, body)
		if err != nil {
			return err
		}
		return render(c.stdout, o.output, v, list, cols)
	}
	action := func(verb, short, path, textFlag, textHelp string) *cobra.Command {
		var o common
		var text, reason string
		fs := flags(verb, &o)
		fs.StringVar(&text, textFlag, "", textHelp)
		if textFlag == "note" {
			fs.StringVar(&reason, "reason", "", "the same as --note")
		}
		return c.leaf(&cobra.Command{Use: verb, Short: short}, fs, func([]string) error {
			if text == "" {
				text = reason
			}
			if o.partner == "" || len(strings.TrimSpace(text)) < 3 {
				return usageError{fmt.Sprintf("--partner and --%s are required", textFlag)}
			}
			return call(&o, http.MethodPost, "/admin/partners/"+url.PathEscape(o.partner)+"/wallet/"+path, map[string]string{textFlag: text}, "", nil)
		})
	}
	freeze := action("freeze", "freeze a partner's wallet: top-ups held, debits refused but SMP's commissions (security; audited)", "freeze",
		"reason", "why (audited), e.g. fraud_alert_INC-011-2026-05-28")
	unfreeze := action("unfreeze", "unfreeze a partner's wallet; the note is kept in partner_admin_users.notes and held top-ups are credited", "unfreeze",
		"note", "the note kept in partner_admin_users.notes (audited as the reason)")
	soft := action("soft-block", "cap a partner's wallet operations at 1,000,000 VND per rolling 24 h for 48 h (security; audited)", "soft-block",
		"reason", "why (audited)")
	lift := action("lift-soft-block", "end a soft block before it lapses (security; audited)", "lift-soft-block", "reason", "why (audited)")

	heldAction := func(verb, short, path string) *cobra.Command {
		var o common
		var txn, reason string
		fs := flags(verb, &o)
		fs.StringVar(&txn, "txn", "", "the held top-up's txn ref (vnp_TxnRef), as admin held lists it")
		fs.StringVar(&reason, "reason", "", "why (audited)")
		return c.leaf(&cobra.Command{Use: verb, Short: short}, fs, func([]string) error {
			if o.partner == "" || txn == "" || len(strings.TrimSpace(reason)) < 3 {
				return usageError{"--partner, --txn and --reason are required"}
			}
			return call(&o, http.MethodPost, "/admin/partners/"+url.PathEscape(o.partner)+"/wallet/held/"+url.PathEscape(txn)+"/"+path,
				map[string]string{"reason": reason}, "", nil)
		})
	}
	release := heldAction("release-held", "credit a held top-up (refused while frozen or over the soft block's cap or a guard rail; security; audited)", "release")
	reverse := heldAction("reverse-held", "refund a held top-up to its payer through VNPay (retry-safe; security; audited)", "reverse")
	var ho common
	held := c.leaf(&cobra.Command{Use: "held", Short: "top-ups held or being reversed (every partner's, or one's)"}, flags("held", &ho), func([]string) error {
		path := "/admin/wallets/held"
		if ho.partner != "" {
			path += "?partner=" + url.QueryEscape(ho.partner)
		}
		return call(&ho, http.MethodGet, path, nil, "held", []string{"partner_id", "txn_ref", "amount_vnd", "status", "hold_reason", "refund_attempts", "refund_error", "created_at"})
	})

	var so common
	show := c.leaf(&cobra.Command{Use: "show", Short: "wallet controls (every one, or one partner's with its held top-ups and notes)"}, flags("show", &so), func([]string) error {
		if so.partner != "" {
			return call(&so, http.MethodGet, "/admin/partners/"+url.PathEscape(so.partner)+"/wallet/control", nil, "", nil)
		}
		return call(&so, http.MethodGet, "/admin/wallets/controls", nil, "controls", []string{"partner_id", "state", "control"})
	})
	var ao common
	var set, areason string
	var clear bool
	fs := flags("allowlist", &ao)
	fs.StringVar(&set, "set", "", "comma-separated addresses and CIDR networks the partner's own admin actions may come from")
	fs.BoolVar(&clear, "clear", false, "remove the allowlist (any address)")
	fs.StringVar(&areason, "reason", "", "why (audited; required with --set or --clear)")
	allow := c.leaf(&cobra.Command{Use: "allowlist", Short: "show or set a partner's IP allowlist for partner admin actions (security; audited)"}, fs, func([]string) error {
		if ao.partner == "" {
			return usageError{"--partner is required"}
		}
		path := "/admin/partners/" + url.PathEscape(ao.partner) + "/ip-allowlist"
		if set == "" && !clear {
			return call(&ao, http.MethodGet, path, nil, "", nil)
		}
		if set != "" && clear {
			return usageError{"--set and --clear exclude each other"}
		}
		list := []string{}
		for _, e := range strings.Split(set, ",") {
			if e = strings.TrimSpace(e); e != "" {
				list = append(list, e)
			}
		}
		return call(&ao, http.MethodPut, path, map[string]any{"allowlist": list, "reason": areason}, "", nil)
	})
	var ro common
	reports := c.leaf(&cobra.Command{Use: "reports", Short: "large-value (compliance) reports of top-ups"}, flags("reports", &ro), func([]string) error {
		path := "/admin/compliance/reports"
		if ro.partner != "" {
			path += "?partner=" + url.QueryEscape(ro.partner)
		}
		return call(&ro, http.MethodGet, path, nil, "reports", []string{"id", "partner_id", "posting_id", "amount_vnd", "threshold_vnd", "status", "created_at"})
	})
	var go_ common
	rails := c.leaf(&cobra.Command{Use: "guard-rails", Short: "the velocity guard rails (compiled in: nobody can change them)"}, flags("guard-rails", &go_), func([]string) error {
		return call(&go_, http.MethodGet, "/admin/wallets/guard-rails", nil, "", nil)
	})
	return group(&cobra.Command{Use: "admin", Short: "partner wallet enforcement: freeze, unfreeze, soft-block, held top-ups, allowlists, reports (INC-011)"},
		freeze, unfreeze, soft, lift, held, release, reverse, show, allow, reports, rails)
}
