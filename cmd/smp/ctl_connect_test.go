package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"smp/app"
	"smp/internal/wait"
)

// TestCtlConnect drives the Connect worker of a running platform (smp
// connect) with smp ctl connect: status, a stop, offsets refused to be
// reset before it and reset after, resume, restarts; errors exit non-zero
// with Connect's message.
func TestCtlConnect(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Addr, cfg.ConnectAddr, cfg.ConnectOnly, cfg.AdminToken = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", true, "adm"
	a := &app.App{Cfg: cfg}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	t.Setenv("SMP_ADMIN_TOKEN", "adm")
	ctl := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append(append([]string{"ctl"}, args...), "--connect-server", a.ConnectAPI.URL()), &out, &errb)
		return out.String(), err
	}
	wait.Until(t, 10*time.Second, "the task running", func() bool {
		out, err := ctl("connect", "status")
		return err == nil && strings.Contains(out, "task 0") && strings.Contains(out, "RUNNING")
	})
	wait.Until(t, 10*time.Second, "the snapshot's offset", func() bool {
		out, err := ctl("connect", "offsets")
		return err == nil && strings.Contains(out, `{"server":"smp.cdc"}`) && strings.Contains(out, `{"seq":0}`)
	})
	if _, err := ctl("connect", "offsets", "--reset"); err == nil || !strings.Contains(err.Error(), "STOPPED state") || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("reset while running: %v", err)
	}
	if out, err := ctl("connect", "stop"); err != nil || !strings.Contains(out, "HTTP 204") {
		t.Fatalf("stop: %q %v", out, err)
	}
	if out, err := ctl("connect", "status"); err != nil || !strings.Contains(out, "STOPPED") {
		t.Fatalf("status after stop: %q %v", out, err)
	}
	if out, err := ctl("connect", "offsets", "--reset"); err != nil || !strings.Contains(out, "reset successfully") {
		t.Fatalf("reset: %q %v", out, err)
	}
	if out, err := ctl("connect", "resume"); err != nil || !strings.Contains(out, "HTTP 202") {
		t.Fatalf("resume: %q %v", out, err)
	}
	wait.Until(t, 10*time.Second, "running again", func() bool {
		out, err := ctl("connect", "status")
		return err == nil && strings.Count(out, "RUNNING") == 2
	})
	if out, err := ctl("connect", "restart", "--include-tasks", "--only-failed", "--output", "json"); err != nil || !strings.Contains(out, `"state": "RUNNING"`) {
		t.Fatalf("restart onlyFailed: %q %v", out, err)
	}
	if out, err := ctl("connect", "restart", "--task", "0"); err != nil || !strings.Contains(out, "HTTP 204") {
		t.Fatalf("task restart: %q %v", out, err)
	}
	if _, err := ctl("connect", "status", "--connector", "nope"); err == nil || !strings.Contains(err.Error(), "Connector nope not found (HTTP 404)") {
		t.Fatalf("unknown connector: %v", err)
	}
}
