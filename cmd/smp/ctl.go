package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"smp/ops"
	"smp/redisstore"
)

const ctlUsage = `smp ctl: operate a running SMP

` + ctlAPIUsage + ctlCatalogUsage + `
Against the backends directly:

  smp ctl redis flush-cache --redis-addr ADDR --pattern 'cache:wms:stock:*' [--dry-run]
      delete cache keys with SCAN + UNLINK (never KEYS); refuses patterns that could
      touch sessions, locks or dispatch keys (runbook INC-004 option A)

  smp ctl bus lag | dlq list | dlq replay | reset-offsets ...
      consumer-group lag, dead letters and offsets (runbook INC-006, INC-007);
      smp ctl bus --help for details

  smp ctl sessions list [--owner T0001 --kind technician]
  smp ctl sessions revoke --id SESSION --reason "..." | --owner T0001 --kind technician --reason "..."
      customers' and technicians' login sessions; revoke logs them out (audited, runbook INC-004)
  smp ctl connect status|restart|pause|resume|stop|offsets [--connector smp-mysql-connector] [--connect-server URL]
      the Kafka Connect worker (change data capture, runbook INC-008): restart [--include-tasks] [--only-failed] [--task N],
      offsets [--reset] (only while stopped: the next start snapshots)

  smp ctl events list --status dlq --type inside.payment.succeeded
      provider events in event_log (runbook INC-002)
`

// ctlFlags are the flags of every smp ctl command, given before or after
// the subcommand (smp ctl --server URL stats).
type ctlFlags struct{ server, output string }

// apiServer is --server for the admin-API commands: the local platform
// when not given.
func (g *ctlFlags) apiServer() string {
	if g.server == "" {
		return "http://127.0.0.1:8080"
	}
	return g.server
}

func (c *cli) ctlCmd() *cobra.Command {
	g := &ctlFlags{}
	ctl := group(&cobra.Command{Use: "ctl", Short: "operate a running platform (smp ctl stats, smp ctl bus lag, ...)", Long: ctlUsage},
		c.ctlAPICmds(g)...)
	ctl.AddCommand(c.ctlEventsCmd(g), c.ctlBusCmd(g), c.ctlRedisCmd(g), c.ctlWalletsCmd(g), c.ctlSessionsCmd(g), c.ctlConnectCmd(g), c.ctlReadModelCmd(g), c.ctlFraudCmd(g), c.ctlRegionsCmd(g))
	ctl.AddCommand(c.ctlCatalogCmds(g)...)
	ctl.PersistentFlags().StringVar(&g.server, "server", "", "a running platform's URL (SMP_SERVER): the admin-API commands' target (default http://127.0.0.1:8080); "+
		"with it, events list, bus and redis flush-cache go through the admin API (audited) instead of the backends")
	ctl.PersistentFlags().StringVar(&g.output, "output", "table", "table, json or csv")
	return ctl
}

func (c *cli) ctlRedisCmd(g *ctlFlags) *cobra.Command {
	fs := flag.NewFlagSet("smp ctl redis flush-cache", flag.ContinueOnError)
	var addr, prefix, pattern, reason string
	var dry bool
	fs.StringVar(&reason, "reason", "", "why (audited; required unless --dry-run)")
	// Where a flush is audited without --server: the platform's database.
	var cfg Config
	fs.StringVar(&cfg.DataDir, "data-dir", "./smp-data", "data dir of the embedded database (the audit log, without --server)")
	cfg.registerMySQL(fs)
	fs.StringVar(&addr, "redis-addr", "", "Redis address")
	fs.StringVar(&prefix, "redis-prefix", "", "the platform's Redis key prefix, if any")
	fs.StringVar(&pattern, "pattern", "", "SCAN pattern of cache keys, e.g. 'cache:wms:stock:*'")
	fs.BoolVar(&dry, "dry-run", false, "count the keys, delete nothing")
	flush := c.leaf(&cobra.Command{Use: "flush-cache", Short: "delete cache keys with SCAN + UNLINK (runbook INC-004 option A)"}, fs, func([]string) error {
		return runFlushCache(c.ctx, cfg, g.server, reason, addr, prefix, pattern, dry, c.stdout)
	})
	return group(&cobra.Command{Use: "redis", Short: "Redis, directly or through the admin API"}, flush)
}

func runFlushCache(ctx context.Context, cfg Config, server, reason, addr, prefix, pattern string, dry bool, stdout io.Writer) error {
	if err := redisstore.CheckFlushPattern(pattern); err != nil {
		return usageError{err.Error()}
	}
	if !dry {
		if err := needReason(reason); err != nil {
			return err
		}
	}
	if server != "" {
		c, err := newAPIClient(server, time.Minute)
		if err != nil {
			return err
		}
		v, err := c.do(ctx, http.MethodPost, "/admin/redis/flush-cache", map[string]any{"pattern": pattern, "dry_run": dry, "reason": reason})
		if err != nil {
			return err
		}
		n, _ := v.(map[string]any)["keys"].(float64)
		verb := "deleted"
		if dry {
			verb = "would delete"
		}
		fmt.Fprintf(stdout, "%s %d keys matching %s\n", verb, int64(n), strings.TrimSpace(pattern))
		return nil
	}
	if addr == "" {
		return usageError{"--redis-addr is required (or SMP_REDIS_ADDR), or --server to go through the admin API"}
	}
	s, err := redisstore.Open(ctx, redisstore.Config{Addr: addr, Prefix: prefix})
	if err != nil {
		return err
	}
	defer s.Close()
	var n int64
	if dry {
		n, err = s.FlushCache(ctx, pattern, true)
	} else {
		// Audited in the platform's database, as through the admin API.
		act, closeDB, oerr := localActions(ctx, cfg, func(c *ops.Config) { c.FlushCache, c.CheckFlushPattern = s.FlushCache, redisstore.CheckFlushPattern })
		if oerr != nil {
			return oerr
		}
		defer closeDB()
		n, err = act.FlushCache(ctx, localPrincipal(), pattern, false, reason)
	}
	if err != nil {
		return err
	}
	verb := "deleted"
	if dry {
		verb = "would delete"
	}
	fmt.Fprintf(stdout, "%s %d keys matching %s\n", verb, n, strings.TrimSpace(pattern))
	return nil
}
