package fraud

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// GeoIPDB answers IP countries from a MaxMind-format database
// (GeoLite2-Country.mmdb, GeoIP2-City.mmdb …: any with country.iso_code,
// or registered_country.iso_code for addresses without a country).
type GeoIPDB struct {
	r *maxminddb.Reader
}

// OpenGeoIP opens the database at path (--geoip-db).
func OpenGeoIP(path string) (*GeoIPDB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fraud: open GeoIP database %s: %w", path, err)
	}
	return &GeoIPDB{r: r}, nil
}

type geoRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
}

// Country returns ip's country (ISO 3166-1 alpha-2), "" when the database
// does not know it; an error for an address that does not parse.
func (g *GeoIPDB) Country(ip string) (string, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "", fmt.Errorf("fraud: GeoIP: %w", err)
	}
	var rec geoRecord
	res := g.r.Lookup(a.Unmap())
	if !res.Found() {
		return "", res.Err()
	}
	if err := res.Decode(&rec); err != nil {
		return "", fmt.Errorf("fraud: GeoIP %s: %w", ip, err)
	}
	if rec.Country.ISOCode != "" {
		return rec.Country.ISOCode, nil
	}
	return rec.RegisteredCountry.ISOCode, nil
}

// Start does nothing: the database is open once New returns.
func (g *GeoIPDB) Start(context.Context) error { return nil }

// Stop closes the database (safe twice).
func (g *GeoIPDB) Stop(context.Context) error {
	if g.r == nil {
		return nil
	}
	err := g.r.Close()
	g.r = nil
	return err
}
