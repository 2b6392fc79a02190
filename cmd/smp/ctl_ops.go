package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"smp"
	"smp/app"
	"smp/auth"
	"smp/ops"
	"smp/sqlstore"
)

// Operator actions of smp ctl without --server: the same use cases as the
// admin API (package ops), run on the backends directly, audited in the
// platform's database under a local principal.

// localPrincipal is who acts from this host: "cli:<os user>", admin role
// (whoever can open the database directly may do everything).
func localPrincipal() smp.Principal {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	return auth.Local(name)
}

// needReason is the usage error of an action without a --reason.
func needReason(reason string) error {
	if len(strings.TrimSpace(reason)) < 3 {
		return usageError{"--reason is required: the action is audited"}
	}
	return nil
}

// localActions opens the platform's database (--data-dir or --mysql-dsn,
// as for smp serve) and returns the operations over it and the given
// backends; close closes the database. It never creates an embedded
// database: an audit entry in a file nobody reads is no audit at all.
func localActions(ctx context.Context, cfg Config, with func(*ops.Config)) (*ops.Service, func(), error) {
	if err := needPlatform(cfg, "smp.db", "the action is audited there"); err != nil {
		return nil, nil, err
	}
	db, err := openStore(ctx, cfg, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	oc := ops.Config{Store: db, Groups: app.Subscriptions}
	with(&oc)
	svc, err := ops.New(oc)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return svc, func() { db.Close() }, nil
}

var _ ops.Store = (*sqlstore.DB)(nil)

// needPlatform refuses to go on without a platform to act on or read: on
// the embedded default, file (smp.db or events.db) must already exist in
// --data-dir. Opening it anyway would create an empty platform there and
// report "0 events" or "total lag 0": a false all-clear.
func needPlatform(cfg Config, file, why string) error {
	if cfg.MySQLDSN != "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, file)); err != nil {
		return usageError{fmt.Sprintf("no platform database in --data-dir %s (no %s there): give the platform's --data-dir or --mysql-dsn "+
			"(%s), or --server to go through the admin API", cfg.DataDir, file, why)}
	}
	return nil
}
