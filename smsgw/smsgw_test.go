package smsgw_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"smp"
	"smp/smsgw"
)

func TestSendSMS(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []map[string]string
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var m map[string]string
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		got = append(got, m)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	ctx := context.Background()
	c, err := smsgw.New(smsgw.Config{URL: srv.URL + "/send", Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendSMS(ctx, "+84901234567", "SMP: 123456"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 1 || got[0]["to"] != "+84901234567" || got[0]["text"] != "SMP: 123456" {
		t.Fatalf("gateway received %v", got)
	}
	fail = true
	mu.Unlock()
	if err := c.SendSMS(ctx, "+84901234567", "x"); err == nil {
		t.Fatal("a 502 from the gateway was taken for a send")
	}
	bad, _ := smsgw.New(smsgw.Config{URL: srv.URL})
	if err := bad.SendSMS(ctx, "+84901234567", "x"); err == nil {
		t.Fatal("a refused token was taken for a send")
	}
	if _, err := smsgw.New(smsgw.Config{URL: "ftp://x"}); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("ftp URL: %v", err)
	}
}
