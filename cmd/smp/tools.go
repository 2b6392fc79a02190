package main

import (
	"flag"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The runbook's tools for wallets and fraud (INC-010, INC-011), run as
// /app/bin/recon-report, /app/bin/replay-webhooks and /app/bin/admin:
// links to smp (see argv). Their flags are the runbook's; what they do
// arrives with the wallet and fraud subsystems. Until then each answers
// errNotAvailable (exit 1) once its flags are valid.

// errNotAvailable is a runbook tool whose subsystem has not arrived yet.
type errNotAvailable struct{ tool, subsystem string }

func (e errNotAvailable) Error() string {
	return fmt.Sprintf("%s is not available yet: it arrives with the %s subsystem", e.tool, e.subsystem)
}

func (c *cli) toolCmds() []*cobra.Command {
	// recon-report --date=yesterday --format=csv (INC-010 triage)
	var date, output string
	fs := flag.NewFlagSet("recon-report", flag.ContinueOnError)
	fs.StringVar(&date, "date", "yesterday", "the day to reconcile: yesterday, today or YYYY-MM-DD")
	fs.StringVar(&output, "output", "table", "table, json or csv (--format is the runbook's spelling)")
	recon := c.leaf(&cobra.Command{Use: "recon-report", Short: "wallet reconciliation report per partner (INC-010; not available yet)"}, fs, func([]string) error {
		if err := checkOutput(output); err != nil {
			return err
		}
		return errNotAvailable{"recon-report", "wallet"}
	})
	recon.Flags().SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "format" {
			name = "output"
		}
		return pflag.NormalizedName(name)
	})

	// replay-webhooks --gateway=vnpay --from=... --to=... (INC-010 mitigation)
	var gateway, from, to string
	fs = flag.NewFlagSet("replay-webhooks", flag.ContinueOnError)
	fs.StringVar(&gateway, "gateway", "", "the payment gateway, e.g. vnpay")
	fs.StringVar(&from, "from", "", "replay the gateway's webhooks from this time")
	fs.StringVar(&to, "to", "", "up to this time")
	replay := c.leaf(&cobra.Command{Use: "replay-webhooks", Short: "replay a payment gateway's webhooks over a time range (INC-010; not available yet)"}, fs, func([]string) error {
		if gateway == "" || from == "" || to == "" {
			return usageError{"--gateway, --from and --to are required"}
		}
		return errNotAvailable{"replay-webhooks", "wallet"}
	})

	// admin freeze|unfreeze --partner=P00X --reason=... (INC-011 mitigation)
	partnerCmd := func(verb, short string) *cobra.Command {
		var partner, reason string
		fs := flag.NewFlagSet("admin "+verb, flag.ContinueOnError)
		fs.StringVar(&partner, "partner", "", "partner id, e.g. P001")
		fs.StringVar(&reason, "reason", "", "why (audited)")
		return c.leaf(&cobra.Command{Use: verb, Short: short}, fs, func([]string) error {
			if partner == "" || len(reason) < 3 {
				return usageError{"--partner and --reason are required"}
			}
			return errNotAvailable{"admin " + verb, "fraud"}
		})
	}
	admin := group(&cobra.Command{Use: "admin", Short: "partner administration: freeze, unfreeze a wallet (INC-011; not available yet)"},
		partnerCmd("freeze", "freeze a partner's wallet: block further transactions"),
		partnerCmd("unfreeze", "unfreeze a partner's wallet"))
	return []*cobra.Command{recon, replay, admin}
}
