package app

import (
	"os"

	"smp/readmodel/esindex"
)

// The read model's backends (--readmodel-backend).
const (
	ReadModelBleve         = "bleve"
	ReadModelElasticsearch = "elasticsearch"
)

// ESConfig is how the read model reaches Elasticsearch 8 (--es-*).
type ESConfig struct {
	URL      string
	Username string
	Password string // SMP_ES_PASSWORD; never logged
	APIKey   string // SMP_ES_API_KEY; never logged
	// CACertFile is the PEM file of the CA that signed the cluster's
	// certificate.
	CACertFile string
	// Refresh is esindex.RefreshWaitFor (default) or esindex.RefreshFalse.
	Refresh string
}

func (e ESConfig) set() bool {
	return e.URL != "" || e.Username != "" || e.Password != "" || e.APIKey != "" || e.CACertFile != "" || e.Refresh != ""
}

// esIndexConfig is the client's configuration (the CA file read).
func (e ESConfig) esIndexConfig() (esindex.Config, error) {
	cfg := esindex.Config{URL: e.URL, Username: e.Username, Password: e.Password, APIKey: e.APIKey, Refresh: e.Refresh}
	if e.CACertFile != "" {
		pem, err := os.ReadFile(e.CACertFile)
		if err != nil {
			return cfg, invalid("--es-ca-cert: %v", err)
		}
		cfg.CACert = pem
	}
	return cfg, nil
}

// validateReadModel refuses a backend it does not know and settings that
// do not go with the chosen one.
func (c *Config) validateReadModel() error {
	switch c.ReadModelBackend {
	case "", ReadModelBleve:
		if c.ES.set() {
			return invalid("--es-url, --es-username, --es-password, --es-api-key, --es-ca-cert and --es-refresh need --readmodel-backend elasticsearch (the read model is on the embedded bleve index)")
		}
	case ReadModelElasticsearch:
		if c.ES.URL == "" {
			return invalid("--readmodel-backend elasticsearch needs --es-url (SMP_ES_URL)")
		}
		cfg := esindex.Config{URL: c.ES.URL, Username: c.ES.Username, Password: c.ES.Password, APIKey: c.ES.APIKey, Refresh: c.ES.Refresh}
		if c.ES.CACertFile != "" {
			cfg.CACert = []byte("set")
		}
		if err := cfg.Validate(); err != nil {
			return invalid("--es-url, --es-username/--es-password, --es-api-key, --es-ca-cert, --es-refresh: %v", err)
		}
	default:
		return invalid("--readmodel-backend %q: bleve (embedded, the default) or elasticsearch", c.ReadModelBackend)
	}
	return nil
}
