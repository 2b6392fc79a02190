package main

import (
	"context"
	"flag"
	"io"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg Config
	fs := newFlagSet("smp serve", &cfg)
	fs.SetOutput(stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	app := &App{Cfg: cfg, Log: cfg.logger(stderr)}
	if err := app.Open(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	app.Log.Info("shutting down")
	return app.Close()
}

func newFlagSet(name string, cfg *Config) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.register(fs)
	return fs
}
