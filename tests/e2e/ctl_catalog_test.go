package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCtlCatalogAndImport: smp ctl's onboarding commands over the admin
// API and smp import straight into the database, with their errors and
// exit codes.
func TestCtlCatalogAndImport(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	smpRun := func(args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, smpBin, args...)
		cmd.Env = append(os.Environ(), "SMP_ADMIN_TOKEN="+a.admin)
		if args[0] == "ctl" { // smp import goes straight to the database here
			cmd.Env = append(cmd.Env, "SMP_SERVER="+a.url)
		}
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	}
	out, code := smpRun("ctl", "technicians", "create", "partner_id=P001", "name=Lan Anh", "phone=0909999999", "city=HCMC", "skills=aircon_repair", "--output", "json")
	if code != 0 || !strings.Contains(out, `"phone": "+84909999999"`) {
		t.Fatalf("create (exit %d):\n%s", code, out)
	}
	id := strings.Split(strings.Split(out, `"id": "`)[1], `"`)[0]
	if out, code = smpRun("ctl", "technicians", "create", "partner_id=P001", "name=Bad", "phone=123", "city=HCMC", "skills=aircon_repair"); code != 1 || !strings.Contains(out, "E.164") || !strings.Contains(out, "HTTP 400") {
		t.Fatalf("bad phone (exit %d):\n%s", code, out)
	}
	if out, code = smpRun("ctl", "technicians", "list", "--city", "HCMC", "--limit", "2", "--output", "csv"); code != 0 || !strings.HasPrefix(out, "id,name,phone,partner_id,city,skills,status\n") || strings.Count(out, "\n") != 3 {
		t.Fatalf("list (exit %d):\n%s", code, out)
	}
	if out, code = smpRun("ctl", "technicians", "update", id, "name=Lan"); code != 2 || !strings.Contains(out, "--reason") {
		t.Fatalf("update without a reason (exit %d):\n%s", code, out)
	}
	if out, code = smpRun("ctl", "technicians", "update", id, "name=Lan", "--reason", "typo"); code != 0 || !strings.Contains(out, "Lan") {
		t.Fatalf("update (exit %d):\n%s", code, out)
	}
	if out, code = smpRun("ctl", "technicians", "deactivate", id, "--reason", "left"); code != 0 || !strings.Contains(out, "suspended") {
		t.Fatalf("deactivate (exit %d):\n%s", code, out)
	}
	if out, code = smpRun("ctl", "partners", "get", "P001"); code != 0 || !strings.Contains(out, "country") {
		t.Fatalf("partners get (exit %d):\n%s", code, out)
	}

	dir := t.TempDir()
	csv := filepath.Join(dir, "customers.csv")
	must(t, os.WriteFile(csv, []byte("name,phone\nMai,0911000001\nSai,12\n"), 0o644))
	if out, code = smpRun("import", "--file", csv, "--data-dir", a.Cfg.DataDir, "--dry-run"); code != 1 || !strings.Contains(out, "created 1, updated 0, unchanged 0, refused 1 (dry run") {
		t.Fatalf("dry run (exit %d):\n%s", code, out)
	}
	if out, code = smpRun("import", "--file", csv, "--data-dir", a.Cfg.DataDir); code != 1 || !strings.Contains(out, "refused 1") || !strings.Contains(out, "1 of 2 rows refused") {
		t.Fatalf("import (exit %d):\n%s", code, out)
	}
	if out, code = smpRun("ctl", "customers", "list", "--name", "Mai"); code != 0 || !strings.Contains(out, "+84911000001") {
		t.Fatalf("the imported customer (exit %d):\n%s", code, out)
	}
	if out, code = smpRun("import", "--data-dir", a.Cfg.DataDir); code != 2 || !strings.Contains(out, "--file") {
		t.Fatalf("without --file (exit %d):\n%s", code, out)
	}
	if out, code = smpRun("import", "--file", csv, "--data-dir", filepath.Join(dir, "nowhere")); code != 2 || !strings.Contains(out, "no platform database") {
		t.Fatalf("no database (exit %d):\n%s", code, out)
	}
}
