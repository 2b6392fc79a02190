package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"smp/internal/wait"
)

// codeIn finds the login code in the SMS text.
var codeIn = regexp.MustCompile(`[0-9]{6}`)

// repoFile reads a file of the repository.
func repoFile(t *testing.T, rel string) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", rel))
	must(t, err)
	return string(b)
}

// TestFirstOrderFromEmptyPlatform runs the README's "From an empty
// platform to a first completed order" with the built binary: smp serve on
// an empty data dir, smp token, smp import of docs/first-order.yaml (dry
// run, for real, again), the technician's and customer's tokens, then the
// API only, to 05_completed.
func TestFirstOrderFromEmptyPlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	t.Parallel()
	readme := repoFile(t, "README.md")
	i := strings.Index(readme, "## From an empty platform to a first completed order")
	if i < 0 {
		t.Fatal("README has no section \"From an empty platform to a first completed order\"")
	}
	section := readme[i:]
	section = section[:strings.Index(section, "\n## ")]
	for _, step := range []string{
		"./smp serve --addr 127.0.0.1:8080 --data-dir ./smp-data &",
		"export SMP_ADMIN_TOKEN=$(./smp token --role admin --name alice --data-dir ./smp-data)",
		"./smp import --file docs/first-order.yaml --dry-run",
		"./smp import --file docs/first-order.yaml ",
		`-d '{"phone":"0901234567"}' $SMP_SERVER/v1/auth/otp`,
		`$SMP_SERVER/admin/sms/outbox`,
		`-d '{"phone":"0901234567","code":"123456"}' $SMP_SERVER/v1/auth/verify`,
		"the customer the same way with 0912345678",
		`{"type":"location","lat":10.78,"lng":106.70}`,
		`{"type":"availability","available":true}`,
		`'{"city":"HCMC","service":"aircon_repair","lat":10.781,"lng":106.701,"address":"12 Lê Lợi","price_vnd":350000}'`,
		`{"type":"accept","order_id":"ord_…"}`,
		"$SMP_SERVER/v1/jobs/$ID/start", "$SMP_SERVER/v1/jobs/$ID/complete",
	} {
		if !strings.Contains(section, step) {
			t.Fatalf("the README's section no longer has the step this test runs: %s", step)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	data, addr := filepath.Join(dir, "smp-data"), freeAddr(t)
	must(t, os.MkdirAll(data, 0o755))
	srv := startServer(t, data, addr)
	t.Cleanup(func() { srv.cmd.Process.Kill(); <-srv.done })
	base := "http://" + addr
	smpRun := func(env []string, args ...string) (string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, smpBin, args...)
		cmd.Env = append(os.Environ(), "SMP_SERVER="+base)
		for i := 0; i+1 < len(env); i += 2 {
			cmd.Env = append(cmd.Env, env[i]+"="+env[i+1])
		}
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("smp %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		return strings.TrimSpace(out.String()), errb.String()
	}

	admin, _ := smpRun(nil, "token", "--role", "admin", "--name", "alice", "--data-dir", data)
	file := filepath.Join(dir, "first-order.yaml")
	must(t, os.WriteFile(file, []byte(repoFile(t, "docs/first-order.yaml")), 0o644))
	env := []string{"SMP_ADMIN_TOKEN", admin}
	out, _ := smpRun(env, "import", "--file", file, "--dry-run")
	if !strings.Contains(out, "created 5, updated 0, unchanged 0, refused 0 (dry run: nothing changed)") {
		t.Fatalf("dry run:\n%s", out)
	}
	out, _ = smpRun(env, "import", "--file", file)
	if !strings.Contains(out, "created 5, updated 0, unchanged 0, refused 0") || !strings.Contains(out, "P001") || !strings.Contains(out, "T0001") {
		t.Fatalf("import:\n%s", out)
	}
	out, _ = smpRun(env, "import", "--file", file)
	if !strings.Contains(out, "created 0, updated 0, unchanged 5, refused 0") {
		t.Fatalf("import again:\n%s", out)
	}
	a := &testApp{t: t, url: base}
	login := func(phone, e164 string) string {
		t.Helper()
		if r := a.do("POST", "/v1/auth/otp", "", `{"phone":"`+phone+`"}`); r.Status != 202 {
			t.Fatalf("otp %s: %d %s", phone, r.Status, r.Raw)
		}
		code := ""
		wait.Until(t, 10*time.Second, "the code for "+phone, func() bool {
			r := a.do("GET", "/admin/sms/outbox", admin, nil)
			msgs, _ := r.Body["messages"].([]any)
			for _, m := range msgs {
				if mm, _ := m.(map[string]any); mm["to"] == e164 {
					code = codeIn.FindString(mm["text"].(string))
				}
			}
			return code != ""
		})
		r := a.do("POST", "/v1/auth/verify", "", `{"phone":"`+phone+`","code":"`+code+`"}`)
		tok, _ := r.Body["token"].(string)
		if r.Status != 200 || tok == "" {
			t.Fatalf("verify %s: %d %s", phone, r.Status, r.Raw)
		}
		return tok
	}
	techToken := login("0901234567", "+84901234567")
	custToken := login("0912345678", "+84912345678")

	ws, _, err := a.dialTech(techToken)
	must(t, err)
	ws.next("welcome")
	ws.send(map[string]any{"type": "location", "lat": 10.78, "lng": 106.70, "ref": "loc"})
	ws.send(map[string]any{"type": "availability", "available": true, "ref": "av"})

	r := a.do("POST", "/v1/orders", custToken, `{"city":"HCMC","service":"aircon_repair","lat":10.781,"lng":106.701,"address":"12 Lê Lợi","price_vnd":350000}`)
	if r.Status != 201 && r.Status != 200 {
		t.Fatalf("order: %d %s", r.Status, r.Raw)
	}
	id, _ := r.Body["id"].(string)
	offer := ws.next("offer")
	if offer["order_id"] != id {
		t.Fatalf("offer %v, want order %s", offer, id)
	}
	ws.send(map[string]any{"type": "accept", "order_id": id})
	if res := ws.next("accept_result"); res["accepted"] != true {
		t.Fatalf("accept: %v", res)
	}
	for _, step := range []string{"start", "complete"} {
		if r := a.do("POST", "/v1/jobs/"+id+"/"+step, techToken, nil); r.Status != 200 {
			t.Fatalf("%s: %d %s", step, r.Status, r.Raw)
		}
	}
	r = a.do("GET", "/v1/orders/"+id, custToken, nil)
	if r.Body["stage"] != "05_completed" {
		t.Fatalf("the order: %s", r.Raw)
	}
}
