package smp

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// CatalogStatus is whether a catalogue record is in use. Cities,
// services, partners and customers are active or inactive; technicians
// are active or suspended. The empty status reads as active (records
// written before onboarding, and CatalogWriter's callers); stores write
// and return StatusActive for it.
type CatalogStatus string

const (
	StatusActive    CatalogStatus = "active"
	StatusInactive  CatalogStatus = "inactive"
	StatusSuspended CatalogStatus = "suspended"
)

// Active reports whether the record is in use.
func (s CatalogStatus) Active() bool { return s == "" || s == StatusActive }

// BasisPoints is a share in hundredths of a percent (1 % = 100), so that
// commissions are whole numbers: the wallet debits price*bp/10000 in VND
// without floats. In JSON it is a percentage with at most two decimals
// ("commission_pct": 12.5 is 1250).
type BasisPoints int64

// MarshalJSON writes the percentage (1250 → 12.5).
func (b BasisPoints) MarshalJSON() ([]byte, error) {
	return []byte(b.String()), nil
}

// String is the percentage without trailing zeros (1250 → "12.5").
func (b BasisPoints) String() string {
	sign := ""
	v := int64(b)
	if v < 0 {
		sign, v = "-", -v
	}
	s := fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
	return strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s, "0"), "0"), ".")
}

// UnmarshalJSON reads a percentage given as a JSON number or string with
// at most two decimals, exactly (no float in between): EINVALID otherwise.
func (b *BasisPoints) UnmarshalJSON(data []byte) error {
	s := strings.TrimSpace(string(data))
	if s == "null" {
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	v, err := ParsePercent(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

var percentPattern = regexp.MustCompile(`^(-?)([0-9]{1,7})(?:\.([0-9]{1,2}))?$`)

// ParsePercent reads "12", "12.5" or "12.50" as basis points; EINVALID for
// anything else (more than two decimals included).
func ParsePercent(s string) (BasisPoints, error) {
	m := percentPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, Errorf(EINVALID, "%q is not a percentage with at most two decimals", s)
	}
	whole, _ := strconv.ParseInt(m[2], 10, 64)
	frac := int64(0)
	if m[3] != "" {
		frac, _ = strconv.ParseInt((m[3] + "0")[:2], 10, 64)
	}
	v := whole*100 + frac
	if m[1] == "-" {
		v = -v
	}
	return BasisPoints(v), nil
}

// Of returns the share of amount in whole VND, rounded down.
func (b BasisPoints) Of(amountVND int64) int64 { return amountVND * int64(b) / 10000 }

var vnPhone = regexp.MustCompile(`^\+84(?:[35789][0-9]{8}|2[0-9]{9})$`)

// ParsePhone returns a Vietnamese phone number in E.164 (+84 then 9 digits
// for a mobile number, 10 for a landline). It accepts the number with
// spaces, dots or dashes and the national forms 0901234567 and
// 84901234567; EINVALID for anything else. Technicians and customers are
// found by the number it returns, so every entry point (onboarding,
// import, logins) parses through it.
func ParsePhone(s string) (string, error) {
	n := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '.', '-', '(', ')':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	switch {
	case strings.HasPrefix(n, "0"):
		n = "+84" + n[1:]
	case strings.HasPrefix(n, "84"):
		n = "+" + n
	}
	if !vnPhone.MatchString(n) {
		return "", Errorf(EINVALID, "phone %q is not a Vietnamese number in E.164 (+84 and 9 digits, e.g. +84901234567)", s)
	}
	return n, nil
}

// CatalogFilter narrows and pages the catalogue's lists. Records come in
// key order (code or id); After is the last key of the previous page.
type CatalogFilter struct {
	Status    CatalogStatus // "" for any
	City      string        // technicians
	PartnerID string        // technicians
	Skill     string        // technicians
	Country   string        // partners
	Name      string        // exact name (partners: the import's natural key)
	After     string
	// Limit of 0, negative or above 1000 means 100.
	Limit int
}

// PageLimit is f's limit made valid (100 by default, at most 1000).
func (f CatalogFilter) PageLimit() int {
	if f.Limit <= 0 || f.Limit > 1000 {
		return 100
	}
	return f.Limit
}

// CatalogStore reads the catalogue: cities, services, partners,
// technicians and customers. Lookups by key see every committed write;
// lists may come from a replica that lags.
type CatalogStore interface {
	// FindCities returns every city, by code. No codes.
	FindCities(ctx context.Context) ([]*City, error)
	// FindCityByCode returns a city; ENOTFOUND if there is none.
	FindCityByCode(ctx context.Context, code string) (*City, error)
	// FindServices returns every service, by code. No codes.
	FindServices(ctx context.Context) ([]*Service, error)
	// FindServiceByCode returns a service; ENOTFOUND if there is none.
	FindServiceByCode(ctx context.Context, code string) (*Service, error)
	// FindPartnerByID returns a partner; ENOTFOUND if there is none.
	FindPartnerByID(ctx context.Context, id string) (*Partner, error)
	// FindPartners lists partners matching f (Status, Country, Name,
	// After, Limit) by id. No codes.
	FindPartners(ctx context.Context, f CatalogFilter) ([]*Partner, error)
	// FindTechnicianByID returns a technician, with the order they hold,
	// as last committed; ENOTFOUND if there is none with id.
	FindTechnicianByID(ctx context.Context, id string) (*Technician, error)
	// FindTechniciansByID returns the technicians with the given ids, as
	// last committed, by id; unknown ids are left out. No codes.
	FindTechniciansByID(ctx context.Context, ids ...string) (map[string]*Technician, error)
	// FindTechnicianByPhone returns the technician with an E.164 phone
	// (as ParsePhone returns it); ENOTFOUND if there is none.
	FindTechnicianByPhone(ctx context.Context, phone string) (*Technician, error)
	// FindTechnicians lists technicians matching f (Status, City,
	// PartnerID, Skill, After, Limit) by id; empty for an unknown city or
	// partner. No codes.
	FindTechnicians(ctx context.Context, f CatalogFilter) ([]*Technician, error)
	// FindCustomerByID returns a customer; ENOTFOUND if there is none.
	FindCustomerByID(ctx context.Context, id string) (*Customer, error)
	// FindCustomerByPhone returns the customer with an E.164 phone;
	// ENOTFOUND if there is none.
	FindCustomerByPhone(ctx context.Context, phone string) (*Customer, error)
	// FindCustomers lists customers matching f (Status, After, Limit) by
	// id. No codes.
	FindCustomers(ctx context.Context, f CatalogFilter) ([]*Customer, error)
}

// CatalogWriter creates and updates the catalogue outside any transaction
// and without audit (tests and fixtures; operators go through package
// catalog, which audits). Each call creates the record or replaces the one
// with the same key.
type CatalogWriter interface {
	// UpsertCity creates or updates a city by code. No codes.
	UpsertCity(ctx context.Context, c *City) error
	// UpsertService creates or updates a service by code. No codes.
	UpsertService(ctx context.Context, s *Service) error
	// UpsertPartner creates or updates a partner by id. No codes.
	UpsertPartner(ctx context.Context, p *Partner) error
	// UpsertTechnician creates or updates a technician by id, leaving the
	// order they hold unchanged. Their partner and city must exist;
	// ECONFLICT if another technician has the phone.
	UpsertTechnician(ctx context.Context, t *Technician) error
	// UpsertCustomer creates or updates a customer by id; ECONFLICT if
	// another customer has the phone.
	UpsertCustomer(ctx context.Context, c *Customer) error
}

// CatalogTx is the catalogue writes of a transaction: onboarding (each
// change commits with its audit entry) and the technician claim (a
// technician holds at most one order, decided here rather than by any
// in-process lock).
type CatalogTx interface {
	// ClaimTechnician marks the technician as holding orderID; ECONFLICT
	// if they already hold an order (orderID included), ENOTFOUND if
	// unknown.
	ClaimTechnician(ctx context.Context, technicianID, orderID string) error
	// ReleaseTechnician clears the technician's active order if it is
	// orderID, and does nothing otherwise (unknown technician included).
	// No codes.
	ReleaseTechnician(ctx context.Context, technicianID, orderID string) error

	// CityForUpdate reads a city and locks it for the rest of the tx;
	// ENOTFOUND if there is none.
	CityForUpdate(ctx context.Context, code string) (*City, error)
	// InsertCity creates a city; ECONFLICT if the code exists.
	InsertCity(ctx context.Context, c *City) error
	// UpdateCity replaces a city's fields; ENOTFOUND if there is none.
	UpdateCity(ctx context.Context, c *City) error

	// ServiceForUpdate, InsertService, UpdateService: as for cities.
	ServiceForUpdate(ctx context.Context, code string) (*Service, error)
	InsertService(ctx context.Context, s *Service) error
	UpdateService(ctx context.Context, s *Service) error

	// PartnerForUpdate reads and locks a partner; ENOTFOUND.
	PartnerForUpdate(ctx context.Context, id string) (*Partner, error)
	// InsertPartner creates a partner. With an empty ID it allocates the
	// next free P001-style id (one at a time across processes: a counter
	// row locked by the tx) and sets p.ID. ECONFLICT if the id exists.
	InsertPartner(ctx context.Context, p *Partner) error
	// UpdatePartner replaces a partner's fields; ENOTFOUND.
	UpdatePartner(ctx context.Context, p *Partner) error

	// TechnicianForUpdate reads and locks a technician; ENOTFOUND.
	TechnicianForUpdate(ctx context.Context, id string) (*Technician, error)
	// InsertTechnician creates a technician, allocating a T0001-style id
	// when ID is empty (sets t.ID). ECONFLICT if the id or the phone is
	// taken.
	InsertTechnician(ctx context.Context, t *Technician) error
	// UpdateTechnician replaces a technician's fields except the order
	// they hold; ENOTFOUND; ECONFLICT if another technician has the phone.
	UpdateTechnician(ctx context.Context, t *Technician) error

	// CustomerForUpdate reads and locks a customer; ENOTFOUND.
	CustomerForUpdate(ctx context.Context, id string) (*Customer, error)
	// InsertCustomer creates a customer, allocating a C0001-style id when
	// ID is empty (sets c.ID). ECONFLICT if the id or the phone is taken.
	InsertCustomer(ctx context.Context, c *Customer) error
	// UpdateCustomer replaces a customer's fields; ENOTFOUND; ECONFLICT if
	// another customer has the phone.
	UpdateCustomer(ctx context.Context, c *Customer) error
}

// ensure BasisPoints round-trips through encoding/json.
var _ json.Marshaler = BasisPoints(0)
