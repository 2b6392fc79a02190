package main

import (
	"github.com/spf13/cobra"
)

// connectCmd is smp connect: the Kafka Connect worker alone (service
// kafka-connect), serving Connect's REST API on --connect-addr (:8083 in
// the runbook). smp serve runs the same worker when given --connect-addr.
func (c *cli) connectCmd() *cobra.Command {
	var cfg Config
	fs := newFlagSet("smp connect", &cfg)
	fs.Lookup("connect-addr").DefValue = "127.0.0.1:8083"
	cfg.ConnectAddr = "127.0.0.1:8083"
	cmd := &cobra.Command{Use: "connect", Short: "run the Kafka Connect worker (change data capture, runbook INC-008) and its REST API on --connect-addr"}
	return c.leaf(cmd, fs, func([]string) error {
		cfg.ConnectOnly = true
		return runServe(c.ctx, cfg, c.stdout, c.stderr)
	})
}
