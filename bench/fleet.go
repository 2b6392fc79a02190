package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"smp/sim"
)

// A fleet is many simulated technicians' phones. With a few hundred they
// run in the bench's process; with thousands they run in a child process
// (smp bench-technicians), as phones would be elsewhere, so that neither
// process needs a descriptor for both ends of every socket.
type fleetSpec struct {
	URL         string                 `json:"url"`
	Behavior    sim.Behavior           `json:"behavior"`
	Technicians []sim.SeededTechnician `json:"technicians"`
}

// startFleet connects the technicians; observe hears each one's offers,
// wins and completions with the time they happened. stop disconnects them.
//
// A separate fleet is this executable's bench-technicians command, with
// env added to the environment.
func startFleet(ctx context.Context, spec fleetSpec, separate bool, env []string, observe func(event, orderID string, at time.Time)) (stop func(), err error) {
	if !separate {
		fctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var connects atomic.Int64
		runFleet(fctx, &wg, spec, observe, &connects)
		return func() { cancel(); wg.Wait() }, nil
	}
	f, err := os.CreateTemp("", "smp-fleet-*.json")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if err := json.NewEncoder(f).Encode(spec); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "bench-technicians", f.Name())
	cmd.Env = append(cmd.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			ev, rest, _ := strings.Cut(sc.Text(), " ")
			if ev == "ready" {
				ready <- nil
				continue
			}
			id, ns, _ := strings.Cut(rest, " ")
			n, _ := strconv.ParseInt(ns, 10, 64)
			observe(ev, id, time.Unix(0, n))
		}
		ready <- fmt.Errorf("the technicians' process ended before all connected")
	}()
	stop = func() { stdin.Close(); cmd.Wait() }
	select {
	case err := <-ready:
		if err != nil {
			stop()
			return nil, err
		}
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	}
	return stop, nil
}

// runFleet starts every technician, dialling in batches of 500 (a listen
// backlog is finite), and returns once all have connected once.
func runFleet(ctx context.Context, wg *sync.WaitGroup, spec fleetSpec, observe func(string, string, time.Time), connects *atomic.Int64) {
	techs := make([]*sim.Technician, len(spec.Technicians))
	connected := func() int64 {
		var n int64
		for _, t := range techs {
			if t != nil && t.Stats.Connects.Load() > 0 {
				n++
			}
		}
		return n
	}
	for i, t := range spec.Technicians {
		if i > 0 && i%500 == 0 {
			for deadline := time.Now().Add(time.Minute); connected() < int64(i-250) && time.Now().Before(deadline) && ctx.Err() == nil; {
				time.Sleep(20 * time.Millisecond)
			}
		}
		st := sim.NewTechnician(spec.URL, t, spec.Behavior, uint64(i+1), nil)
		st.Observe = func(ev, id string) { observe(ev, id, time.Now()) }
		techs[i] = st
		wg.Add(1)
		go func() { defer wg.Done(); st.Run(ctx) }()
	}
	for deadline := time.Now().Add(5 * time.Minute); connected() < int64(len(techs)) && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(20 * time.Millisecond)
	}
	connects.Store(connected())
}

// RunTechnicians is a separate fleet (the command "bench-technicians
// SPEC.json" of the executable that runs the bench): it connects the
// technicians of the spec file, prints "ready", then one line per event
// ("offer ORDER UNIXNANO"), until its stdin closes.
func RunTechnicians(ctx context.Context, specPath string, stdout io.Writer) error {
	raw, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	var spec fleetSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return err
	}
	if err := raiseFileLimit(uint64(len(spec.Technicians) + 1024)); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	var mu sync.Mutex
	w := bufio.NewWriter(stdout)
	flush := time.NewTicker(5 * time.Millisecond)
	defer flush.Stop()
	go func() {
		for range flush.C {
			mu.Lock()
			w.Flush()
			mu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	var connects atomic.Int64
	runFleet(ctx, &wg, spec, func(ev, id string, at time.Time) {
		mu.Lock()
		fmt.Fprintf(w, "%s %s %d\n", ev, id, at.UnixNano())
		mu.Unlock()
	}, &connects)
	mu.Lock()
	fmt.Fprintln(w, "ready")
	w.Flush()
	mu.Unlock()
	<-ctx.Done()
	wg.Wait()
	return nil
}
