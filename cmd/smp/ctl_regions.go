package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"smp"
	"smp/replication"
)

// smp ctl regions status|pause|resume|verify: replication between regions
// (runbook INC-012) through the admin API of --server (this region's,
// where the paths into it are kept), token in SMP_ADMIN_TOKEN.
func (c *cli) ctlRegionsCmd(g *ctlFlags) *cobra.Command {
	status := c.leaf(&cobra.Command{Use: "status", Short: "the replication paths into this region: state, lag (from heartbeats), why paused"},
		flag.NewFlagSet("smp ctl regions status", flag.ContinueOnError), func([]string) error {
			return runCtlRegionsStatus(c.ctx, g.apiServer(), g.output, c.stdout)
		})
	mk := func(use string, paused bool) *cobra.Command {
		var path, reason string
		fs := flag.NewFlagSet("smp ctl regions "+use, flag.ContinueOnError)
		fs.StringVar(&path, "path", "", "the path, <source>-to-<target>: asia-to-china")
		fs.StringVar(&reason, "reason", "", "why (audited)")
		return c.leaf(&cobra.Command{Use: use, Short: use + " a replication path (ops; audited)"}, fs, func([]string) error {
			return runCtlRegionsPause(c.ctx, g.apiServer(), g.output, path, reason, paused, c.stdout)
		})
	}
	var sample int
	var peers string
	fs := flag.NewFlagSet("smp ctl regions verify", flag.ContinueOnError)
	fs.IntVar(&sample, "sample", 10, "how many master-data records to compare (spread over every table of --server)")
	fs.StringVar(&peers, "peers", os.Getenv("SMP_REGION_PEERS"), "the other regions' admin APIs: china=http://china:8080,us=http://us:8080 (SMP_REGION_PEERS); same SMP_ADMIN_TOKEN")
	verify := c.leaf(&cobra.Command{Use: "verify", Short: "spot-check records of --server (the master region) in the other regions by hash (exit 1 when one differs or is missing)"}, fs,
		func([]string) error {
			return runCtlRegionsVerify(c.ctx, g.apiServer(), g.output, sample, peers, c.stdout)
		})
	return group(&cobra.Command{Use: "regions", Short: "replication between regions: status, pause, resume, verify (INC-012)"},
		status, mk("pause", true), mk("resume", false), verify)
}

func runCtlRegionsStatus(ctx context.Context, server, output string, stdout io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	c, err := newAPIClient(server, 30*time.Second)
	if err != nil {
		return err
	}
	v, err := c.do(ctx, http.MethodGet, "/admin/regions", nil)
	if err != nil {
		return err
	}
	if output == "json" {
		return render(stdout, output, v, "", nil)
	}
	var out struct {
		Paths []struct {
			Path       string  `json:"path"`
			State      string  `json:"state"`
			LagSeconds float64 `json:"lag_seconds"`
			Reason     string  `json:"reason"`
		} `json:"paths"`
		Hops []struct {
			Path       string  `json:"path"`
			Via        string  `json:"via"`
			LagSeconds float64 `json:"lag_seconds"`
		} `json:"hops"`
		Checkpoints []smp.ReplicationGroupCheckpoint `json:"checkpoints"`
	}
	if err := remarshal(v, &out); err != nil {
		return err
	}
	rows := [][]string{}
	for _, p := range out.Paths {
		rows = append(rows, []string{p.Path, p.State, strconv.FormatFloat(p.LagSeconds, 'f', 1, 64), p.Reason})
	}
	// Pairs reached through other regions: their lag from the heartbeats
	// mirrored onward (no state of their own: pause their paths).
	for _, h := range out.Hops {
		rows = append(rows, []string{h.Path, "via " + h.Via, strconv.FormatFloat(h.LagSeconds, 'f', 1, 64), ""})
	}
	if err := writeRows(stdout, output, []string{"PATH", "STATE", "LAG_SECONDS", "REASON"}, rows); err != nil {
		return err
	}
	if len(out.Checkpoints) == 0 {
		return nil
	}
	// MirrorMaker 2's checkpoints: where each source consumer group goes
	// on here (a consumer failing over starts at TARGET_OFFSET).
	rows = [][]string{}
	for _, c := range out.Checkpoints {
		rows = append(rows, []string{c.Path, c.Group, c.Topic, strconv.Itoa(int(c.Partition)), strconv.FormatInt(c.Upstream, 10),
			c.DownTopic, strconv.Itoa(int(c.DownPartition)), strconv.FormatInt(c.Downstream, 10)})
	}
	fmt.Fprintln(stdout)
	return writeRows(stdout, output, []string{"PATH", "GROUP", "TOPIC", "PARTITION", "SOURCE_OFFSET", "TARGET_TOPIC", "TARGET_PARTITION", "TARGET_OFFSET"}, rows)
}

func runCtlRegionsPause(ctx context.Context, server, output, path, reason string, paused bool, stdout io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	switch {
	case path == "":
		return usageError{"--path is required (asia-to-china)"}
	case len(strings.TrimSpace(reason)) < 3:
		return usageError{"--reason is required"}
	}
	c, err := newAPIClient(server, 30*time.Second)
	if err != nil {
		return err
	}
	verb := "resume"
	if paused {
		verb = "pause"
	}
	v, err := c.do(ctx, http.MethodPost, "/admin/regions/paths/"+url.PathEscape(path)+"/"+verb, map[string]any{"reason": reason})
	if err != nil {
		return err
	}
	return render(stdout, output, v, "", nil)
}

func runCtlRegionsVerify(ctx context.Context, server, output string, sample int, peers string, stdout io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	if sample < 1 || sample > 1000 {
		return usageError{"--sample must be from 1 to 1000"}
	}
	src, err := newAPIClient(server, 30*time.Second)
	if err != nil {
		return err
	}
	others := map[string]replication.MasterReader{}
	for _, p := range strings.Split(peers, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		region, u, ok := strings.Cut(p, "=")
		if !ok || smp.ValidRegion(region) != nil || u == "" {
			return usageError{fmt.Sprintf("--peers %q: <region>=<admin API URL>, several joined by commas", p)}
		}
		pc, err := newAPIClient(u, 30*time.Second)
		if err != nil {
			return err
		}
		others[region] = apiMaster{pc}
	}
	if len(others) == 0 {
		return usageError{"--peers is required (china=http://china:8080,...; or SMP_REGION_PEERS)"}
	}
	checks, ok, err := replication.Verify(ctx, sample, apiMaster{src}, others)
	if err != nil {
		return err
	}
	rows := [][]string{}
	for _, c := range checks {
		rows = append(rows, []string{c.Table, c.Key, strconv.FormatInt(c.Version, 10), c.Region, c.Result})
	}
	if err := writeRows(stdout, output, []string{"TABLE", "KEY", "VERSION", "REGION", "RESULT"}, rows); err != nil {
		return err
	}
	if !ok {
		return errors.New("regions are not consistent: a sampled record differs or is missing")
	}
	return nil
}

// apiMaster reads a region's master data through its admin API.
type apiMaster struct{ c *apiClient }

func (m apiMaster) FindMasterRecord(ctx context.Context, table, key string) (smp.MasterRecord, error) {
	var r smp.MasterRecord
	v, err := m.c.do(ctx, http.MethodGet, "/admin/masterdata/"+url.PathEscape(table)+"/"+key, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return r, smp.Errorf(smp.ENOTFOUND, "%s", ae.Message)
	}
	if err != nil {
		return r, err
	}
	return r, remarshal(v, &r)
}

func (m apiMaster) FindMasterRecords(ctx context.Context, f smp.MasterDataFilter) ([]smp.MasterRecord, error) {
	v, err := m.c.do(ctx, http.MethodGet, "/admin/masterdata/"+url.PathEscape(f.Table)+"?limit="+strconv.Itoa(f.Limit), nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Records []smp.MasterRecord `json:"records"`
	}
	return out.Records, remarshal(v, &out)
}

func remarshal(v, into any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}
