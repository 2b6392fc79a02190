package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"smp/app"
	"smp/auth"
	"smp/internal/wait"
	"smp/sim"
)

// TestSlowClientsCannotExhaustTheProcess: smp serve runs with 256 file
// descriptors (RLIMIT_NOFILE, hard and soft) while one client address
// holds 200 connections trickling a request body and 200 idle keep-alive
// connections. /health still answers (to another address), and every one
// of those connections is closed by the server: beyond
// --http-max-conns-per-ip at once, and after the read or idle timeout.
// The settings are given as SMP_* variables, which a binary without them
// ignores (and then runs out of descriptors: the test fails).
func TestSlowClientsCannotExhaustTheProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	t.Parallel()
	ctx := context.Background()
	dataDir := t.TempDir()
	db, err := app.OpenStore(ctx, app.Config{DataDir: dataDir}, nil, nil)
	must(t, err)
	_, err = sim.Seed(ctx, db, sim.SeedConfig{Partners: 1, Technicians: 5, Customers: 1, Seed: 9}, auth.HashToken)
	must(t, err)
	must(t, db.Close())
	addr := freeAddr(t)

	cmd := exec.Command("/bin/sh", "-c", `ulimit -n 256 && exec "$0" "$@"`, smpBin, "serve", "--addr", addr, "--data-dir", dataDir, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "SMP_HTTP_READ_TIMEOUT=2s", "SMP_HTTP_IDLE_TIMEOUT=2s", "SMP_HTTP_MAX_CONNS_PER_IP=64")
	logf, err := os.Create(filepath.Join(dataDir, "server.log"))
	must(t, err)
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("server log:\n%s", out)
		}
	}()
	// The attackers come from 127.0.0.1, the health checker from 127.0.0.2.
	checker := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	healthy := func() bool {
		resp, err := checker.Get("http://" + addr + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	wait.Until(t, 20*time.Second, "smp serving", healthy)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 400 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if i%2 == 0 { // a body that never finishes
			fmt.Fprintf(c, "POST /v1/orders HTTP/1.1\r\nHost: smp\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"city\":")
			continue
		}
		// One request, then idle on a keep-alive connection (the request
		// may be refused: the address is over its cap).
		fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: smp\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			resp.Body.Close()
		}
		c.SetReadDeadline(time.Time{})
	}
	start := time.Now()
	if !healthy() {
		t.Fatal("/health does not answer while one address holds 400 slow or idle connections")
	}
	t.Logf("/health answered in %v with 400 slow or idle connections held", time.Since(start).Round(time.Millisecond))

	// Every connection is closed by the server.
	var wg sync.WaitGroup
	open := make(chan int, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			// EOF or a reset (a refused connection's unread request):
			// closed by the server; a timeout: still open.
			var ne net.Error
			if _, err := io.Copy(io.Discard, c); errors.As(err, &ne) && ne.Timeout() {
				open <- i
			}
		}()
	}
	wg.Wait()
	close(open)
	var still []int
	for i := range open {
		still = append(still, i)
	}
	if len(still) > 0 {
		t.Fatalf("%d of 400 connections still open after 20 s (read and idle timeouts 2 s): %v", len(still), still)
	}
	select {
	case err := <-exited:
		t.Fatalf("smp exited: %v", err)
	default:
	}
	if !healthy() {
		t.Fatal("/health does not answer after the connections were closed")
	}
}
