package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"smp/catalog"
)

const importLong = `smp import --file FILE: onboard cities, services, partners, technicians and customers in bulk

FILE is YAML (or JSON) with a list per kind (cities:, services:, partners:, technicians:,
customers:; one kind or several), or CSV of one kind named after it (technicians.csv) or
given with --kind, its header the field names (skills separated by | or ,). The fields are
those of the admin API's POST /admin/<kind>. Rows are matched by natural key (city and
service code, partner id or else name, technician and customer phone): created when new,
updated when a field differs, unchanged otherwise, refused with the reason when invalid;
every change is audited with --reason. --dry-run reports and changes nothing.

With --server (SMP_SERVER) the file goes through the running platform's admin API
(POST /admin/import, token in SMP_ADMIN_TOKEN, ops or admin role); without, straight into
the platform's database (--data-dir or --mysql-dsn, as smp serve), audited as cli:<user>.
Exit status 1 when a row was refused (the others are applied).`

func (c *cli) importCmd() *cobra.Command {
	var cfg Config
	var file, kind, reason, server, output string
	var dry bool
	fs := flag.NewFlagSet("smp import", flag.ContinueOnError)
	fs.StringVar(&file, "file", "", "the CSV or YAML file")
	fs.StringVar(&kind, "kind", "", "the kind of a CSV file (cities, services, partners, technicians, customers) when its name does not say")
	fs.BoolVar(&dry, "dry-run", false, "report what the import would do, change nothing")
	fs.StringVar(&reason, "reason", "", "why (audited; default \"import FILE\")")
	fs.StringVar(&server, "server", "", "a running platform's URL: import through its admin API (SMP_ADMIN_TOKEN)")
	fs.StringVar(&output, "output", "table", "table, json or csv")
	fs.StringVar(&cfg.DataDir, "data-dir", "./smp-data", "data dir of the embedded database (without --server)")
	cfg.registerMySQL(fs)
	cmd := &cobra.Command{Use: "import", Short: "onboard cities, services, partners, technicians and customers from a CSV or YAML file", Long: importLong}
	return c.leaf(cmd, fs, func([]string) error {
		return runImport(c.ctx, cfg, server, file, kind, reason, output, dry, c.stdout)
	})
}

func runImport(ctx context.Context, cfg Config, server, file, kind, reason, output string, dry bool, stdout io.Writer) error {
	if file == "" {
		return usageError{"--file is required"}
	}
	if err := checkOutput(output); err != nil {
		return err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return usageError{fmt.Sprintf("--file: %v", err)}
	}
	b, err := catalog.ParseFile(file, data, kind)
	if err != nil {
		return usageError{err.Error()}
	}
	if reason == "" {
		reason = "import " + filepath.Base(file)
	}
	var rep catalog.Report
	if server != "" {
		cl, err := newAPIClient(server, 10*time.Minute)
		if err != nil {
			return err
		}
		v, err := cl.do(ctx, http.MethodPost, "/admin/import", map[string]any{"data": b, "dry_run": dry, "reason": reason})
		if err != nil {
			return err
		}
		raw, _ := json.Marshal(v)
		if err := json.Unmarshal(raw, &rep); err != nil {
			return fmt.Errorf("%s answered an import report smp cannot read: %w", server, err)
		}
	} else {
		if cfg.MySQLDSN == "" {
			if _, err := os.Stat(filepath.Join(cfg.DataDir, "smp.db")); err != nil {
				return usageError{fmt.Sprintf("no platform database in --data-dir %s: give the platform's --data-dir or --mysql-dsn "+
					"(smp migrate creates one), or --server to go through the admin API", cfg.DataDir)}
			}
		}
		db, err := openStore(ctx, cfg, nil, nil)
		if err != nil {
			return err
		}
		defer db.Close()
		svc, err := catalog.New(catalog.Config{Store: db})
		if err != nil {
			return err
		}
		r, err := svc.Import(ctx, localPrincipal(), b, dry, reason)
		if err != nil {
			return err
		}
		rep = *r
	}
	if err := printReport(stdout, output, &rep); err != nil {
		return err
	}
	if rep.Refused > 0 {
		return fmt.Errorf("%d of %d rows refused", rep.Refused, len(rep.Rows))
	}
	return nil
}

// printReport shows every row's result and a summary line.
func printReport(w io.Writer, output string, rep *catalog.Report) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rows := make([][]string, 0, len(rep.Rows))
	for _, r := range rep.Rows {
		rows = append(rows, []string{r.Kind, strconv.Itoa(r.Row), r.Key, r.Result, r.Reason})
	}
	if err := writeRows(w, output, []string{"kind", "row", "key", "result", "reason"}, rows); err != nil {
		return err
	}
	if output == "table" {
		what := ""
		if rep.DryRun {
			what = " (dry run: nothing changed)"
		}
		fmt.Fprintf(w, "created %d, updated %d, unchanged %d, refused %d%s\n", rep.Created, rep.Updated, rep.Unchanged, rep.Refused, what)
	}
	return nil
}
