package auth_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"smp"
	"smp/auth"
	"smp/sqlstore"
)

func TestHashTokenIsStable(t *testing.T) {
	t.Parallel()
	// Stored hashes must keep matching: the format is hex SHA-256.
	if got := auth.HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashToken(abc) = %s", got)
	}
	a, err1 := auth.NewAdminToken()
	b, err2 := auth.NewAdminToken()
	if err1 != nil || err2 != nil || a == b || !strings.HasPrefix(a, "adm_") || len(a) != 52 {
		t.Fatalf("NewAdminToken: %q %q %v %v", a, b, err1, err2)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role smp.Role
		perm string
		ok   bool
	}{
		{smp.RoleOps, "flags.set", true},
		{smp.RoleFinance, "flags.set", false},
		{smp.RoleFinance, "orders.mark_paid", true},
		{smp.RoleOps, "bus.dlq_replay", false},
		{smp.RoleAdmin, "bus.dlq_replay", true},
		{smp.RoleSecurity, "view", true},
	} {
		err := auth.Check(smp.Principal{Name: "x", Role: tc.role}, tc.perm)
		if (err == nil) != tc.ok || (err != nil && smp.ErrorCode(err) != smp.EFORBIDDEN) {
			t.Errorf("%s %s: %v", tc.role, tc.perm, err)
		}
		if auth.Can(smp.Principal{Role: tc.role})[tc.perm] != tc.ok {
			t.Errorf("Can(%s)[%s] != %v", tc.role, tc.perm, tc.ok)
		}
	}
	if p := auth.Local("lan"); p.Name != "cli:lan" || p.Role != smp.RoleAdmin {
		t.Fatalf("Local: %+v", p)
	}
}

func TestAuthenticator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.PutToken(ctx, auth.HashToken("fin"), auth.KindAdmin, "fiona", smp.RoleFinance); err != nil {
		t.Fatal(err)
	}
	if err := db.UpsertCustomer(ctx, &smp.Customer{ID: "C1", Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutToken(ctx, auth.HashToken("cust"), auth.KindCustomer, "C1", ""); err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(db, "static")

	if p, err := a.Admin(ctx, "static"); err != nil || p != (smp.Principal{Name: "admin", Role: smp.RoleAdmin}) {
		t.Fatalf("static admin token: %+v %v", p, err)
	}
	if p, err := a.Admin(ctx, "fin"); err != nil || p != (smp.Principal{Name: "fiona", Role: smp.RoleFinance}) {
		t.Fatalf("stored admin token: %+v %v", p, err)
	}
	for tok, code := range map[string]string{"": smp.EUNAUTHORIZED, "nope": smp.EUNAUTHORIZED, "cust": smp.EFORBIDDEN} {
		if _, err := a.Admin(ctx, tok); smp.ErrorCode(err) != code {
			t.Errorf("Admin(%q): %v, want %s", tok, err, code)
		}
	}
	if id, err := a.Owner(ctx, "cust", auth.KindCustomer); err != nil || id != "C1" {
		t.Fatalf("Owner: %q %v", id, err)
	}
	if _, err := a.Owner(ctx, "cust", auth.KindTechnician); smp.ErrorCode(err) != smp.EFORBIDDEN {
		t.Fatalf("customer token as technician: %v", err)
	}
	if err := a.Known(ctx, "cust"); err != nil {
		t.Fatal(err)
	}
	if err := a.Known(ctx, "static"); smp.ErrorCode(err) != smp.EUNAUTHORIZED {
		t.Fatalf("the static admin token is not a stored token: %v", err)
	}
}
