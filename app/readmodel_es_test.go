package app

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"

	"smp/readmodel/esindex"
)

// TestReadModelOnElasticsearch: with --readmodel-backend elasticsearch the
// read model is the Elasticsearch backend, the platform opens while the
// cluster cannot be reached, and the admin API's
// /admin/readmodel/health answers 503 unavailable with the reason (no
// Elasticsearch server can run here: its real answers are the conformance
// suite's, gated on SMP_TEST_ES_URL).
func TestReadModelOnElasticsearch(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close() // nothing listens there now: connections are refused
	cfg := testConfig(t)
	cfg.AdminToken, cfg.ConnectAddr = "adm", "127.0.0.1:0"
	cfg.ReadModelBackend, cfg.ES = ReadModelElasticsearch, ESConfig{URL: "http://" + closed, Username: "smp", Password: "pw"}
	a := &App{Cfg: cfg}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, ok := a.ReadIndex.(*esindex.Index); !ok {
		t.Fatalf("ReadIndex is %T, want *esindex.Index", a.ReadIndex)
	}
	req, _ := http.NewRequest("GET", a.HTTP.URL()+"/admin/readmodel/health", nil)
	req.Header.Set("Authorization", "Bearer adm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusServiceUnavailable || body.Error.Code != "unavailable" || body.Error.Message == "" {
		t.Errorf("/admin/readmodel/health with Elasticsearch down: %d %+v, want 503 unavailable", resp.StatusCode, body)
	}
}
