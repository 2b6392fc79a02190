package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"smp/sqlbus"
)

// smpRun runs the command line in process.
func smpRun(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

// smpExec runs the command line as a process (this test binary as smp,
// named arg0), for what only a process shows: its exit status.
func smpExec(t *testing.T, arg0 string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	exe, err := os.Executable()
	must(t, err)
	if arg0 != "" {
		link := filepath.Join(t.TempDir(), arg0)
		must(t, os.Symlink(exe, link))
		exe = link
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "SMP_TEST_EXEC=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	}
	must(t, err)
	return out.String(), errb.String(), 0
}

// fakeAdminAPI answers GET /admin/flags and /admin/stats as smp serve
// would, and counts the requests that carried the token.
func fakeAdminAPI(t *testing.T, token string) (*httptest.Server, *atomic.Int64) {
	var authed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(401)
			w.Write([]byte(`{"error":{"code":"unauthorized","message":"no"}}`))
			return
		}
		authed.Add(1)
		switch r.URL.Path {
		case "/admin/flags":
			w.Write([]byte(`{"flags":[{"name":"ENABLE_AUTO_DISPATCH","value":true,"updated_at":"2026-01-01T00:00:00Z","updated_by":"ops, \"night\""}]}`))
		case "/admin/stats":
			w.Write([]byte(`{"websocket_connections":3,"queue_length":{"HCMC":2}}`))
		default:
			w.WriteHeader(404)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no route"}}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &authed
}

// TestHelp: -h, --help and help print to stdout and succeed, for every
// level of the tree (smp bench --help used to exit 2; smp-bench's own test
// checks it there).
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"help", "ctl"}, {"ctl", "events", "list", "--help"}, {"serve", "-h"},
		{"ctl", "--help"}, {"ctl", "bus", "lag", "-h"}, {"ctl", "--server", "http://x", "stats", "--help"}, {"runbook", "check", "-help"},
		{"recon-report", "--help"}, {"admin", "freeze", "-h"}} {
		out, errOut, err := smpRun(args...)
		if err != nil || !strings.Contains(out, "Usage:") || errOut != "" {
			t.Errorf("smp %v: err %v, stdout %.80q, stderr %q", args, err, out, errOut)
		}
	}
	out, errOut, code := smpExec(t, "", "demo", "--help")
	if code != 0 || !strings.Contains(out, "--order-rate") || errOut != "" {
		t.Errorf("smp demo --help as a process: exit %d, stdout %.80q, stderr %q", code, out, errOut)
	}
}

// TestUsageErrors: a command line smp cannot run exits 2 with the error
// and a one-line hint on stderr, nothing on stdout.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		hint string
	}{
		{nil, "smp"},
		{[]string{"bogus"}, "smp"},
		{[]string{"serve", "--no-such-flag"}, "smp serve"},
		{[]string{"serve", "--partitions", "many"}, "smp serve"},
		{[]string{"serve", "stray"}, "smp serve"},
		{[]string{"ctl"}, "smp ctl"},
		{[]string{"ctl", "bogus"}, "smp ctl"},
		{[]string{"ctl", "flags", "bogus"}, "smp ctl flags"},
		{[]string{"ctl", "bus", "dlq"}, "smp ctl bus dlq"},
		{[]string{"ctl", "stats", "--output", "xml"}, "smp ctl stats"},
		{[]string{"runbook", "check"}, "smp runbook check"},
		{[]string{"bench", "all", "--quick"}, "smp bench"}, // now smp-bench
		{[]string{"completion", "tcsh"}, "smp completion"},
		{[]string{"admin", "freeze", "--partner", "P001"}, "smp admin freeze"},
	} {
		out, errOut, err := smpRun(tc.args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if exitCode(err) != 2 || out != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], "smp: ") ||
			lines[1] != "Run '"+tc.hint+" --help' for usage." {
			t.Errorf("smp %v: err %v (exit %d), stdout %q, stderr %q", tc.args, err, exitCode(err), out, errOut)
		}
	}
	_, errOut, code := smpExec(t, "", "ctl", "bogus")
	if code != 2 || !strings.Contains(errOut, "Run 'smp ctl --help' for usage.") {
		t.Errorf("smp ctl bogus as a process: exit %d, stderr %q", code, errOut)
	}
}

// TestFlagsBeforeOrAfterSubcommand: smp ctl --server URL stats works as
// kubectl does (it used to answer "unknown ctl command"); so do one-dash
// long flags, as Go's flag package took them.
func TestFlagsBeforeOrAfterSubcommand(t *testing.T) {
	srv, authed := fakeAdminAPI(t, "tok")
	t.Setenv("SMP_ADMIN_TOKEN", "tok")
	t.Setenv("SMP_SERVER", "")
	os.Unsetenv("SMP_SERVER")
	for _, args := range [][]string{
		{"ctl", "--server", srv.URL, "stats"},
		{"ctl", "stats", "--server", srv.URL},
		{"ctl", "--server=" + srv.URL, "--output", "json", "stats"},
		{"ctl", "-server", srv.URL, "stats", "-output=json"},
		{"ctl", "--output", "csv", "flags", "--server", srv.URL, "get"},
	} {
		before := authed.Load()
		out, errOut, err := smpRun(args...)
		if err != nil || authed.Load() != before+1 || out == "" {
			t.Errorf("smp %v: %v %s", args, err, errOut)
		}
	}
}

// TestFlagsFromEnvironment: every flag, at any level, is read from
// SMP_<FLAG> when not given; a flag on the command line wins.
func TestFlagsFromEnvironment(t *testing.T) {
	srv, authed := fakeAdminAPI(t, "tok")
	t.Setenv("SMP_ADMIN_TOKEN", "tok")
	t.Setenv("SMP_SERVER", srv.URL)
	t.Setenv("SMP_OUTPUT", "json")
	out, errOut, err := smpRun("ctl", "stats")
	if err != nil || authed.Load() != 1 || !json.Valid([]byte(out)) {
		t.Fatalf("server and output from the environment: %v %s\n%s", err, errOut, out)
	}
	out, _, err = smpRun("ctl", "stats", "--output", "csv")
	if err != nil || json.Valid([]byte(out)) || !strings.HasPrefix(out, "key,value\n") {
		t.Fatalf("the flag must win over SMP_OUTPUT: %v\n%s", err, out)
	}
	t.Setenv("SMP_PARTITIONS", "many")
	if _, errOut, err := smpRun("ctl", "bus", "lag", "--group", "g"); exitCode(err) != 2 || !strings.Contains(errOut, "SMP_PARTITIONS") {
		t.Fatalf("a bad value in the environment: %v %s", err, errOut)
	}
}

// TestCompletion: smp completion bash|zsh|fish prints a script.
func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out, errOut, err := smpRun("completion", sh)
		if err != nil || !strings.Contains(out, "smp") || len(out) < 1000 || errOut != "" {
			t.Errorf("completion %s: %v, %d bytes, stderr %q", sh, err, len(out), errOut)
		}
	}
	// The scripts ask the binary itself: subcommands complete.
	out, _, err := smpRun("__complete", "ctl", "bu")
	if err != nil || !strings.Contains(out, "bus") {
		t.Errorf("__complete ctl bu: %v %q", err, out)
	}
}

// TestListingOutputFormats: --output table|json|csv on the admin API and
// on the backends directly.
func TestListingOutputFormats(t *testing.T) {
	srv, _ := fakeAdminAPI(t, "tok")
	t.Setenv("SMP_ADMIN_TOKEN", "tok")
	out, _, err := smpRun("ctl", "flags", "--server", srv.URL, "--output", "csv")
	must(t, err)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 2 || !slices.Equal(recs[0], []string{"name", "value", "updated_at", "updated_by"}) || recs[1][3] != `ops, "night"` {
		t.Fatalf("csv: %v %q", err, out)
	}
	out, _, err = smpRun("ctl", "flags", "get", "--server", srv.URL, "--output", "json")
	if err != nil || !json.Valid([]byte(out)) {
		t.Fatalf("json: %v %q", err, out)
	}
	out, _, err = smpRun("ctl", "flags", "get", "--server", srv.URL)
	if err != nil || !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "ENABLE_AUTO_DISPATCH") {
		t.Fatalf("table: %v %q", err, out)
	}

	// Without --server: the database and the embedded event log of a
	// platform in dir.
	dir := t.TempDir()
	if _, errOut, err := smpRun("migrate", "--data-dir", dir); err != nil {
		t.Fatalf("smp migrate: %v %s", err, errOut)
	}
	l, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "smp.db"), Partitions: 2}) // the embedded log's tables are in smp.db
	must(t, err)
	must(t, l.Close())
	for _, args := range [][]string{{"ctl", "events", "list", "--data-dir", dir}, {"ctl", "bus", "lag", "--group", "g", "--data-dir", dir, "--partitions", "2"},
		{"ctl", "bus", "dlq", "list", "--data-dir", dir, "--partitions", "2"}, {"ctl", "--data-dir", dir, "bus", "--partitions", "2", "lag", "--group", "g"}} {
		for _, format := range []string{"table", "json", "csv"} {
			out, errOut, err := smpRun(append(args, "--output", format)...)
			if err != nil {
				t.Fatalf("smp %v --output %s: %v %s", args, format, err, errOut)
			}
			switch format {
			case "json":
				if !json.Valid([]byte(out)) {
					t.Errorf("smp %v: not JSON: %q", args, out)
				}
			case "csv":
				recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
				if err != nil || len(recs) == 0 || recs[0][0] != strings.ToLower(recs[0][0]) {
					t.Errorf("smp %v: not CSV with a header: %v %q", args, err, out)
				}
			case "table":
				if first, _, _ := strings.Cut(out, "\n"); first != strings.ToUpper(first) {
					t.Errorf("smp %v: table header %q", args, first)
				}
			}
		}
	}
}

// TestArgv0: invoked as recon-report, replay-webhooks or admin (the
// runbook's /app/bin links), the binary runs that command; recon-report
// asks the platform's API (exit 2 without SMP_ADMIN_TOKEN); admin, whose
// subsystem has not arrived, says so and exits 1 (2 for bad flags).
func TestArgv0(t *testing.T) {
	t.Parallel()
	if got := argv("/app/bin/recon-report", []string{"--date=yesterday"}); !slices.Equal(got, []string{"recon-report", "--date=yesterday"}) {
		t.Fatalf("argv: %v", got)
	}
	if got := argv("/usr/local/bin/smp", []string{"serve"}); !slices.Equal(got, []string{"serve"}) {
		t.Fatalf("argv: %v", got)
	}
	for _, tc := range []struct {
		arg0 string
		args []string
		code int
		want string
	}{
		{"recon-report", []string{"--date=yesterday", "--format=csv", "--server=http://127.0.0.1:1"}, 2, "SMP_ADMIN_TOKEN is not set"},
		{"recon-report", []string{"--format=xml"}, 2, "--output must be"},
		{"replay-webhooks", []string{"--gateway=vnpay", "--from=yesterday-ish", "--to=2026-05-28"}, 2, "--from"},
		{"replay-webhooks", []string{"--gateway=vnpay"}, 2, "are required"},
		{"admin", []string{"freeze", "--partner=P001"}, 2, "--partner and --reason are required"},
		{"admin", []string{"unfreeze", "--partner=P001", "--reason=x"}, 2, "--partner and --note are required"},
		{"admin", []string{"soft-block", "--reason=inconclusive"}, 2, "--partner and --reason are required"},
		{"admin", []string{"release-held", "--partner=P001", "--reason=verified by phone"}, 2, "--partner, --txn and --reason are required"},
		{"admin", []string{"reverse-held", "--partner=P001", "--txn=W1"}, 2, "--partner, --txn and --reason are required"},
		{"admin", nil, 2, "needs a command"},
	} {
		_, errOut, code := smpExec(t, tc.arg0, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s %v: exit %d, stderr %q; want exit %d and %q", tc.arg0, tc.args, code, errOut, tc.code, tc.want)
		}
	}
	if out, _, code := smpExec(t, "admin", "--help"); code != 0 || !strings.Contains(out, "freeze") {
		t.Errorf("admin --help: exit %d %q", code, out)
	}
}

// TestParseWhen: replay-webhooks takes what date -d prints.
func TestParseWhen(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"Mon Nov 30 00:00:00 UTC 2026", "Mon Nov 30 07:00:00 +07 2026", "2026-11-30", "2026-11-30T07:00:00+07:00",
		"Mon 30 Nov 2026 12:00:00 AM UTC", "2026-11-30 00:00:00"} {
		if got, err := parseWhen(s); err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if _, err := parseWhen("yesterday"); err == nil {
		t.Error("parseWhen(yesterday): no error")
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	t.Setenv("SMP_DATA_DIR", "/from/env")
	t.Setenv("SMP_ADDR", "127.0.0.1:1")
	var cfg Config
	fs := newFlagSet("x", &cfg)
	must(t, parseFlags(fs, []string{"--addr", "127.0.0.1:2"}))
	if cfg.DataDir != "/from/env" || cfg.Addr != "127.0.0.1:2" {
		t.Fatalf("cfg = %+v: env must fill flags not given, flags win", cfg)
	}
	t.Setenv("SMP_INVITATION_TTL", "soon")
	fs = newFlagSet("y", &cfg)
	if err := parseFlags(fs, nil); err == nil || !strings.Contains(err.Error(), "SMP_INVITATION_TTL") {
		t.Fatalf("bad env value: %v", err)
	}
}

func TestRunRejectsBadUsage(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	for _, args := range [][]string{{}, {"bogus"}, {"serve", "--addr", ""}, {"serve", "stray"}, {"token", "--role", "king", "--name", "x1"},
		{"serve", "--log-level", "loud", "--data-dir", filepath.Join(t.TempDir(), "d")},
		{"serve", "--kafka-brokers", "kafka-0", "--data-dir", filepath.Join(t.TempDir(), "d")},
		{"serve", "--kafka-replication-factor", "-3", "--data-dir", filepath.Join(t.TempDir(), "d")},
		{"ctl", "bus"}, {"ctl", "bus", "dlq"}, {"ctl", "bus", "purge"}, {"ctl", "bus", "lag", "--group", "g", "--output", "xml"}} {
		err := run(context.Background(), args, &out, &errb)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("smp %v: err %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
}

// TestCtlRefusesWithoutPlatform (15.6): the commands that read a
// platform's data, run where there is none (no smp.db or events.db in
// --data-dir, no --server, no --mysql-dsn), say so and exit 2 instead of
// creating an empty ./smp-data and reporting "0 events" or "total lag 0".
func TestCtlRefusesWithoutPlatform(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, args := range [][]string{
		{"ctl", "events", "list"},
		{"ctl", "bus", "lag", "--group", "dispatch-engine"},
		{"ctl", "bus", "dlq", "list", "--topic", "orders.events.dlq"},
		{"ctl", "bus", "lag", "--group", "dispatch-engine", "--data-dir", "elsewhere"},
	} {
		out, errOut, err := smpRun(args...)
		if exitCode(err) != 2 || !strings.Contains(errOut+err.Error(), "no platform database in --data-dir") || strings.Contains(out, "total lag") {
			t.Errorf("smp %v: exit %d, stdout %q, stderr %q (%v)", args, exitCode(err), out, errOut, err)
		}
	}
	for _, d := range []string{"smp-data", "elsewhere"} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was created (%v)", d, err)
		}
	}
}
