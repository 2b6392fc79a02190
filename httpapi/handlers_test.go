package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"smp/httpapi"
	"smp/sqlstore"
)

// TestStuckOrdersAnswersDatabaseFailure: GET /admin/orders?stuck_after= (the
// runbook's INC-001 triage) answers a failing database with a 5xx error,
// logged once, never with 200 and an empty list (staticcheck SA4006).
func TestStuckOrdersAnswersDatabaseFailure(t *testing.T) {
	t.Parallel()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	db.Close() // every query fails from now on

	var logs bytes.Buffer
	srv, err := httpapi.New(httpapi.Config{AdminToken: "adm", Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, httpapi.Deps{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/admin/orders?stuck_after=60", "/admin/orders?stuck_after=60&city=HCMC", "/admin/orders"} {
		logs.Reset()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer adm")
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %d %s: %v", path, w.Code, w.Body.String(), err)
		}
		if w.Code < 500 || body.Error.Code == "" || body.Error.Message == "" {
			t.Fatalf("%s with the database down: %d %s", path, w.Code, w.Body.String())
		}
		if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 {
			t.Fatalf("%s: the failure was logged %d times: %s", path, n, logs.String())
		}
	}
}
