package esindex_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"smp"
	"smp/readmodel/esindex"
	"smp/readmodel/readmodeltest"
)

// TestConformance runs the read model's conformance suite against a real
// Elasticsearch 8: SMP_TEST_ES_URL (http(s)://host:9200), with
// SMP_TEST_ES_USERNAME/SMP_TEST_ES_PASSWORD or SMP_TEST_ES_API_KEY and
// SMP_TEST_ES_CA_CERT (a PEM file). Its indices are named
// smptest-<random>-… and dropped at the end of each case.
func TestConformance(t *testing.T) {
	url := os.Getenv("SMP_TEST_ES_URL")
	if url == "" {
		t.Skip("SMP_TEST_ES_URL is not set: the Elasticsearch backend's conformance suite did not run (docs/readmodel.md says how to point it at an Elasticsearch 8)")
	}
	cfg := esindex.Config{URL: url, Username: os.Getenv("SMP_TEST_ES_USERNAME"), Password: os.Getenv("SMP_TEST_ES_PASSWORD"),
		APIKey: os.Getenv("SMP_TEST_ES_API_KEY")}
	if f := os.Getenv("SMP_TEST_ES_CA_CERT"); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg.CACert = pem
	}
	probe, err := esindex.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := probe.Health(context.Background())
	probe.Close()
	if err != nil {
		t.Fatalf("Elasticsearch at SMP_TEST_ES_URL does not answer: %v", err)
	}
	t.Logf("Elasticsearch cluster %s, status %s, %d nodes", h.Cluster, h.Status, h.Nodes)
	b := make([]byte, 4)
	rand.Read(b)
	readmodeltest.Run(t, "smptest-"+hex.EncodeToString(b)+"-", func(t *testing.T) smp.SearchIndex {
		x, err := esindex.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return x
	})
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  esindex.Config
		want string // "" valid, else a piece of the error
	}{
		{esindex.Config{URL: "http://127.0.0.1:9200"}, ""},
		{esindex.Config{URL: "https://a:9200, https://b:9200", APIKey: "k", CACert: []byte("pem")}, ""},
		{esindex.Config{URL: "https://es:9200", Username: "smp", Password: "pw", Refresh: esindex.RefreshFalse}, ""},
		{esindex.Config{}, "URL is required"},
		{esindex.Config{URL: "es:9200"}, "http(s)://"},
		{esindex.Config{URL: "https://smp:s3cret@es:9200"}, "not in the URL"},
		{esindex.Config{URL: "https://es:9200", APIKey: "k", Username: "u", Password: "p"}, "not both"},
		{esindex.Config{URL: "https://es:9200", Username: "u"}, "needs its password"},
		{esindex.Config{URL: "https://es:9200", Password: "p"}, "needs its password"},
		{esindex.Config{URL: "http://es:9200", CACert: []byte("pem")}, "https"},
		{esindex.Config{URL: "http://es:9200", Refresh: "true"}, "refresh"},
	} {
		err := c.cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", c.cfg.URL, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want an error with %q", c.cfg.URL, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	if _, err := esindex.Open(esindex.Config{URL: "http://u:s3cret@es:9200"}); smp.ErrorCode(err) != smp.EINVALID || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open with credentials in the URL: %v, want EINVALID without the password", err)
	}
}
