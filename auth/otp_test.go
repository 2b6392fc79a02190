package auth_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smp"
	"smp/auth"
	"smp/inmem"
	"smp/sim"
	"smp/sqlstore"
)

type directory map[string][]auth.Account

func (d directory) FindAccountsByPhone(_ context.Context, phone string) ([]auth.Account, error) {
	return d[phone], nil
}

func (d directory) AccountActive(context.Context, auth.Account) (bool, error) { return true, nil }

// openSessions is a real session store: SQLite in a temporary directory.
func openSessions(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestCodesNeverLoggedAndUsedOnce: neither the code nor the token appears
// in the logs; of 20 concurrent verifications with the right code exactly
// one gets a session.
func TestCodesNeverLoggedAndUsedOnce(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sms := &sim.SMS{}
	codes := inmem.NewOTP(nil)
	sessions := openSessions(t)
	l, err := auth.NewLogins(auth.LoginConfig{Sender: sms, Codes: codes, Limits: codes, Sessions: sessions, Logger: logger,
		Directory: directory{"+84901234567": {{Kind: smp.OwnerTechnician, ID: "T1"}}}, VerifiesPerPhone: 100, VerifiesPerIP: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.SendCode(ctx, "+84901234567", "", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	msg, ok := sms.Last("+84901234567")
	if !ok || msg.Code() == "" {
		t.Fatalf("no code sent: %+v", msg)
	}
	var wins atomic.Int32
	var tok atomic.Value
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token, _, err := l.Verify(ctx, "+84901234567", msg.Code(), "", "10.0.0.1")
			if err == nil {
				wins.Add(1)
				tok.Store(token)
			} else if smp.ErrorCode(err) != smp.EUNAUTHORIZED {
				t.Errorf("verify: %v", err)
			}
		}()
	}
	wg.Wait()
	all, err := sessions.FindSessions(ctx, smp.SessionFilter{})
	if err != nil || wins.Load() != 1 || len(all) != 1 {
		t.Fatalf("%d verifications won, %d sessions (%v); want exactly one", wins.Load(), len(all), err)
	}
	token := tok.Load().(string)
	if _, err := l.Resolve(ctx, token); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{token[:len(token)-1] + "x", "ses_zz", token + "0", strings.Replace(token, token[4:8], "0000", 1)} {
		if _, err := l.Resolve(ctx, bad); smp.ErrorCode(err) != smp.EUNAUTHORIZED {
			t.Fatalf("Resolve(%q) = %v, want EUNAUTHORIZED", bad, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	secret := token[strings.LastIndex(token, "_")+1:]
	if strings.Contains(logs.String(), msg.Code()) || strings.Contains(logs.String(), secret) {
		t.Fatalf("the code or the token was logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "logged in") {
		t.Fatalf("the login was not logged at all:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestAmbiguousPhoneNeedsAs: a number with a customer and a technician
// account must say which it logs in as.
func TestAmbiguousPhoneNeedsAs(t *testing.T) {
	t.Parallel()
	sms := &sim.SMS{}
	codes := inmem.NewOTP(nil)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l, _ := auth.NewLogins(auth.LoginConfig{Sender: sms, Codes: codes, Limits: codes, Sessions: openSessions(t), Now: func() time.Time { return now },
		Directory: directory{"+84901234567": {{Kind: smp.OwnerTechnician, ID: "T1"}, {Kind: smp.OwnerCustomer, ID: "C1"}}}})
	ctx := context.Background()
	if _, err := l.SendCode(ctx, "+84901234567", "", "ip"); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("no as: %v", err)
	}
	if _, err := l.SendCode(ctx, "+84901234567", smp.OwnerCustomer, "ip"); err != nil {
		t.Fatal(err)
	}
	msg, _ := sms.Last("+84901234567")
	if _, _, err := l.Verify(ctx, "+84901234567", msg.Code(), smp.OwnerTechnician, "ip"); smp.ErrorCode(err) != smp.EUNAUTHORIZED {
		t.Fatalf("a customer's code used as a technician: %v", err)
	}
	_, s, err := l.Verify(ctx, "+84901234567", msg.Code(), "", "ip")
	if err != nil || s.OwnerKind != smp.OwnerCustomer || s.OwnerID != "C1" {
		t.Fatalf("verify = %+v %v", s, err)
	}
}
