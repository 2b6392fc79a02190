package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// smp ctl sessions list|revoke: customers' and technicians' login
// sessions through the admin API. INC-004's "users are logged out" is what
// Redis losing session:* keys does by accident; revoke does it on purpose
// (a lost phone, a technician leaving), audited.
func (c *cli) ctlSessionsCmd(g *ctlFlags) *cobra.Command {
	var o sessionOpts
	lfs := flag.NewFlagSet("smp ctl sessions list", flag.ContinueOnError)
	lfs.StringVar(&o.owner, "owner", "", "one technician or customer id, e.g. T0001 (default: everyone's)")
	lfs.StringVar(&o.kind, "kind", "", "technician or customer")
	lfs.IntVar(&o.limit, "limit", 100, "at most this many, newest first (up to 1000)")
	list := c.leaf(&cobra.Command{Use: "list", Short: "live login sessions, newest first"}, lfs, func([]string) error {
		return runCtlSessions(c.ctx, "list", g.apiServer(), g.output, o, c.stdout)
	})
	var r sessionOpts
	rfs := flag.NewFlagSet("smp ctl sessions revoke", flag.ContinueOnError)
	rfs.StringVar(&r.id, "id", "", "one session id (from sessions list)")
	rfs.StringVar(&r.owner, "owner", "", "every session of this technician or customer id (with --kind)")
	rfs.StringVar(&r.kind, "kind", "", "technician or customer (with --owner)")
	rfs.StringVar(&r.reason, "reason", "", "why (audited)")
	revoke := c.leaf(&cobra.Command{Use: "revoke", Short: "log a session, or every session of one owner, out (audited)"}, rfs, func([]string) error {
		return runCtlSessions(c.ctx, "revoke", g.apiServer(), g.output, r, c.stdout)
	})
	return group(&cobra.Command{Use: "sessions", Short: "customers' and technicians' login sessions (list, revoke)"}, list, revoke)
}

type sessionOpts struct {
	id, owner, kind, reason string
	limit                   int
}

func runCtlSessions(ctx context.Context, cmd, server, output string, o sessionOpts, stdout io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	if o.kind != "" && o.kind != "technician" && o.kind != "customer" {
		return usageError{"--kind must be technician or customer"}
	}
	var method, path, list string
	var body any
	var cols []string
	switch cmd {
	case "list":
		if o.limit < 1 || o.limit > 1000 {
			return usageError{"--limit must be between 1 and 1000"}
		}
		q := url.Values{"limit": {fmt.Sprint(o.limit)}}
		if o.owner != "" {
			q.Set("owner", o.owner)
		}
		if o.kind != "" {
			q.Set("kind", o.kind)
		}
		method, path, list = http.MethodGet, "/admin/sessions?"+q.Encode(), "sessions"
		cols = []string{"id", "owner_kind", "owner_id", "created_at", "expires_at", "ip"}
	case "revoke":
		if strings.TrimSpace(o.reason) == "" {
			return usageError{"--reason is required (it is audited)"}
		}
		switch {
		case o.id != "" && o.owner == "":
			method, path, body = http.MethodDelete, "/admin/sessions/"+url.PathEscape(o.id), map[string]string{"reason": o.reason}
		case o.id == "" && o.owner != "" && o.kind != "":
			method, path, body = http.MethodPost, "/admin/sessions/revoke", map[string]string{"owner_kind": o.kind, "owner_id": o.owner, "reason": o.reason}
		default:
			return usageError{"give --id SESSION, or --owner ID with --kind technician|customer"}
		}
	}
	c, err := newAPIClient(server, 30*time.Second)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	return render(stdout, output, v, list, cols)
}
