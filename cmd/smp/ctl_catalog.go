package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"smp/catalog"
)

const ctlCatalogUsage = `
Onboarding over the admin API (ops or admin role; every change audited):

  smp ctl cities|services|partners|technicians|customers list [--status S] [--city C] [--partner P]
      [--skill S] [--country VN] [--name N] [--after KEY] [--limit N]
  smp ctl KIND get KEY
  smp ctl KIND create field=value ... [--reason "..."]
      e.g. smp ctl technicians create partner_id=P001 name="Lan" phone=0901234567 city=HCMC skills=aircon_repair,plumbing
  smp ctl KIND update KEY field=value ... --reason "..."
  smp ctl KIND deactivate KEY --reason "..."            (technicians: suspended)
`

// listColumns are the table columns of each kind's listing.
var listColumns = map[string][]string{
	"cities":      {"code", "name", "lat", "lng", "status"},
	"services":    {"code", "name", "skill", "price_vnd", "commission_pct", "status"},
	"partners":    {"id", "name", "country", "contact", "status"},
	"technicians": {"id", "name", "phone", "partner_id", "city", "skills", "status"},
	"customers":   {"id", "name", "phone", "status"},
}

// ctlCatalogCmds are smp ctl cities, services, partners, technicians and
// customers.
func (c *cli) ctlCatalogCmds(g *ctlFlags) []*cobra.Command {
	var cmds []*cobra.Command
	for _, kind := range catalog.Kinds {
		cmds = append(cmds, group(&cobra.Command{Use: kind, Short: kind + " (list, get, create, update, deactivate)", Long: ctlCatalogUsage},
			c.catalogList(g, kind), c.catalogGet(g, kind), c.catalogWrite(g, kind, "create"), c.catalogWrite(g, kind, "update"),
			c.catalogWrite(g, kind, "deactivate")))
	}
	return cmds
}

func (c *cli) catalogList(g *ctlFlags, kind string) *cobra.Command {
	fs := flag.NewFlagSet("smp ctl "+kind+" list", flag.ContinueOnError)
	q := map[string]*string{}
	for _, f := range []struct{ name, param, help string }{
		{"status", "status", "active, inactive or suspended"}, {"city", "city", "technicians of a city"},
		{"partner", "partner_id", "technicians of a partner"}, {"skill", "skill", "technicians (or services) with a skill"},
		{"country", "country", "partners registered in a country"}, {"name", "name", "exact name"},
		{"after", "after", "the last key of the previous page"}, {"limit", "limit", "rows per page (default 100, at most 1000)"},
	} {
		q[f.param] = fs.String(f.name, "", f.help)
	}
	return c.leaf(&cobra.Command{Use: "list", Short: "list " + kind}, fs, func([]string) error {
		v := url.Values{}
		for k, p := range q {
			if *p != "" {
				v.Set(k, *p)
			}
		}
		path := "/admin/" + kind
		if len(v) > 0 {
			path += "?" + v.Encode()
		}
		return ctlCall(c.ctx, g, http.MethodGet, path, nil, kind, listColumns[kind], c.stdout)
	})
}

func (c *cli) catalogGet(g *ctlFlags, kind string) *cobra.Command {
	cmd := &cobra.Command{Use: "get KEY", Short: "one of the " + kind, Args: cobra.ExactArgs(1)}
	return c.leaf(cmd, nil, func(args []string) error {
		return ctlCall(c.ctx, g, http.MethodGet, "/admin/"+kind+"/"+url.PathEscape(args[0]), nil, "", nil, c.stdout)
	})
}

func (c *cli) catalogWrite(g *ctlFlags, kind, verb string) *cobra.Command {
	fs := flag.NewFlagSet("smp ctl "+kind+" "+verb, flag.ContinueOnError)
	reason := fs.String("reason", "", "why (audited; required to update or deactivate)")
	cmd := &cobra.Command{Use: verb, Short: verb + " one of the " + kind}
	switch verb {
	case "create":
		cmd.Use, cmd.Args = "create field=value ...", cobra.MinimumNArgs(1)
	case "update":
		cmd.Use, cmd.Args = "update KEY field=value ...", cobra.MinimumNArgs(2)
	case "deactivate":
		cmd.Use, cmd.Args = "deactivate KEY", cobra.ExactArgs(1)
	}
	return c.leaf(cmd, fs, func(args []string) error {
		if verb != "create" {
			if err := needReason(*reason); err != nil {
				return err
			}
		}
		method, path, pairs := http.MethodPost, "/admin/"+kind, args
		switch verb {
		case "update":
			method, path, pairs = http.MethodPatch, "/admin/"+kind+"/"+url.PathEscape(args[0]), args[1:]
		case "deactivate":
			path, pairs = "/admin/"+kind+"/"+url.PathEscape(args[0])+"/deactivate", nil
		}
		kv := map[string]string{}
		for _, p := range pairs {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" {
				return usageError{"arguments are field=value (e.g. phone=0901234567), not " + strconv.Quote(p)}
			}
			kv[k] = v
		}
		raw, err := catalog.Fields(kv)
		if err != nil {
			return usageError{err.Error()}
		}
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		if *reason != "" {
			body["reason"] = *reason
		}
		return ctlCall(c.ctx, g, method, path, body, "", nil, c.stdout)
	})
}

// ctlCall calls the admin API and renders the answer (--output).
func ctlCall(ctx context.Context, g *ctlFlags, method, path string, body any, list string, cols []string, stdout io.Writer) error {
	if err := checkOutput(g.output); err != nil {
		return err
	}
	cl, err := newAPIClient(g.apiServer(), time.Minute)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := cl.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	return render(stdout, g.output, v, list, cols)
}
