package main

import (
	"github.com/spf13/cobra"
)

// replicateCmd is smp replicate: the replication agent alone (service
// replication-agent, runbook INC-012), carrying master data from each
// --replicate-from region to --region, with /health and /metrics
// (region_replication_lag_seconds) on --addr. smp serve runs the same
// agent when given --replicate-from.
func (c *cli) replicateCmd() *cobra.Command {
	var cfg Config
	fs := newFlagSet("smp replicate", &cfg)
	cmd := &cobra.Command{Use: "replicate", Short: "run the replication agent (master data between regions, runbook INC-012) from --replicate-from to --region"}
	return c.leaf(cmd, fs, func([]string) error {
		cfg.ReplicateOnly = true
		return runServe(c.ctx, cfg, c.stdout, c.stderr)
	})
}
