package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"smp/redisstore"
)

const ctlUsage = `smp ctl: operate a running SMP

` + ctlAPIUsage + `
Against the backends directly:

  smp ctl redis flush-cache --redis-addr ADDR --pattern 'cache:wms:stock:*' [--dry-run]
      delete cache keys with SCAN + UNLINK (never KEYS); refuses patterns that could
      touch sessions, locks or dispatch keys (runbook INC-004 option A)

  smp ctl bus lag | dlq list | dlq replay | reset-offsets ...
      consumer-group lag, dead letters and offsets (runbook INC-006, INC-007);
      smp ctl bus for details

  smp ctl events list --status dlq --type inside.payment.succeeded
      provider events in event_log (runbook INC-002)
`

func runCtl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if cmd, rest, ok := apiCommand(args); ok {
		return runCtlAPI(ctx, cmd, rest, stdout, stderr)
	}
	if len(args) >= 1 && args[0] == "events" {
		return runCtlEvents(ctx, args[1:], stdout, stderr)
	}
	if len(args) >= 1 && args[0] == "bus" {
		return runCtlBus(ctx, args[1:], stdout, stderr)
	}
	if len(args) >= 2 && args[0] == "redis" && args[1] == "flush-cache" {
		return runFlushCache(ctx, args[2:], stdout, stderr)
	}
	fmt.Fprint(stderr, ctlUsage)
	return usageError{"unknown ctl command"}
}

func runFlushCache(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("smp ctl redis flush-cache", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var addr, prefix, pattern, server, reason string
	var dry bool
	fs.StringVar(&server, "server", "", "a running platform's URL: flush through its admin API, audited (SMP_SERVER)")
	fs.StringVar(&reason, "reason", "", "why (audited; required with --server unless --dry-run)")
	fs.StringVar(&addr, "redis-addr", "", "Redis address")
	fs.StringVar(&prefix, "redis-prefix", "", "the platform's Redis key prefix, if any")
	fs.StringVar(&pattern, "pattern", "", "SCAN pattern of cache keys, e.g. 'cache:wms:stock:*'")
	fs.BoolVar(&dry, "dry-run", false, "count the keys, delete nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := redisstore.CheckFlushPattern(pattern); err != nil {
		return usageError{err.Error()}
	}
	if server != "" {
		if !dry && len(strings.TrimSpace(reason)) < 3 {
			return usageError{"--reason is required: a flush is audited"}
		}
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
	n, err := s.FlushCache(ctx, pattern, dry)
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
