package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func (c *cli) serveCmd() *cobra.Command {
	var cfg Config
	fs := newFlagSet("smp serve", &cfg)
	cmd := &cobra.Command{Use: "serve", Short: "run every service in one process (embedded SQLite, in-process queues, durable event log)"}
	return c.leaf(cmd, fs, func([]string) error { return runServe(c.ctx, cfg, c.stdout, c.stderr) })
}

func runServe(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.fromEnv()
	// SIGHUP reloads the fraud rules; taken from the start, so that one
	// sent while the modules start is not the default action (the end of
	// the process) but a reload once the fraud module runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg.Config.HUP = hup
	app := &App{Cfg: cfg.Config, Log: cfg.logger(stderr)}
	if err := app.Open(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-app.Failed(): // one failing module stops the process
	}
	app.Log.Info("shutting down")
	return errors.Join(app.Err(), app.Close())
}

func newFlagSet(name string, cfg *Config) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.register(fs)
	return fs
}
