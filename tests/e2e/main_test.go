// Package e2e holds SMP's process-level tests: each runs the whole
// platform (app.App in this process, or the smp binary as processes) and
// drives it as its users and operators do. TestMain builds the smp binary
// once; run executes it. The minute-long real-time outages are behind the
// build tag slow (.ci/run passes -tags slow).
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/app"
	"smp/internal/envtest"
	"smp/sqlstore"
)

// smpBin is the smp binary TestMain built.
var smpBin string

// version is the version TestMain built smp with.
const version = "e2e"

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "smp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	smpBin = filepath.Join(dir, "smp")
	args := []string{"build", "-ldflags", "-X main.version=" + version, "-o", smpBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "smp/cmd/smp")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build smp: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	envtest.Report()
	return code
}

// Config is the platform's configuration and its log, as smp serve
// takes them from flags.
type Config struct {
	app.Config
	LogLevel, LogFormat string
}

// logger is the log smp serve would write with c's --log-level and
// --log-format.
func (c *Config) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// App is the whole platform in one process.
type App = app.App

// openStore opens the system of record of cfg.
func openStore(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*sqlstore.DB, error) {
	return app.OpenStore(ctx, cfg.Config, log, reg)
}

// errIncident: smp runbook check found an incident condition (exit 1).
var errIncident = errors.New("an incident condition holds")

// exitError is smp exiting non-zero; its message is what smp wrote on
// stderr.
type exitError struct {
	code   int
	stderr string
}

func (e *exitError) Error() string { return strings.TrimSpace(e.stderr) }

func (e *exitError) Is(target error) bool {
	return target == errIncident && e.code == 1 && strings.Contains(e.stderr, "an incident condition holds")
}

var smpErrorLine = regexp.MustCompile(`smp error: code=(\S+) message=(.*)`)

// As finds the *smp.Error smp reported ("smp: smp error: code=… message=…"),
// so that smp.ErrorCode reads it as it would in process.
func (e *exitError) As(target any) bool {
	t, ok := target.(**smp.Error)
	if !ok {
		return false
	}
	m := smpErrorLine.FindStringSubmatch(e.stderr)
	if m == nil {
		return false
	}
	*t = &smp.Error{Code: m[1], Message: strings.TrimSpace(m[2])}
	return true
}

// run runs the smp binary with args, as a user would from a shell.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var errb bytes.Buffer
	cmd := exec.CommandContext(ctx, smpBin, args...)
	cmd.Stdout, cmd.Stderr = stdout, io.MultiWriter(stderr, &errb)
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.ExitCode(), stderr: errb.String()}
	}
	return err
}

// exitCode is smp's exit status for run's error.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	return -1
}
