package smp

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Master data (issue 21, runbook INC-012): the reference tables every
// region reads (countries, currencies, currency rates, tax configurations,
// translations). Each table is owned by one region (the global master by
// default), the only one where it is edited; every row carries a version,
// raised by one at each change, so that a copy applies a change once, by
// (table, key, version), and never goes back to an older one. Every change
// commits with its audit entry and its event on masterdata.<table>.

// Master-data table names, as the runbook spells them.
const (
	MasterCountries     = "countries"
	MasterCurrencies    = "currencies"
	MasterCurrencyRates = "currency_rates"
	MasterTaxConfigs    = "tax_configs"
	MasterTranslations  = "i18n_translations"
)

// DefaultRegion is the region of a deployment that names none, and the
// owner of master data unless configured otherwise: the global master.
const DefaultRegion = "global"

var regionRe = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// ValidRegion returns EINVALID unless name is a region name: lowercase
// letters and digits, starting with a letter, at most 16 (asia, china, us,
// global).
func ValidRegion(name string) error {
	if !regionRe.MatchString(name) {
		return Errorf(EINVALID, "region %q: lowercase letters and digits, starting with a letter, at most 16", name)
	}
	return nil
}

// MasterKind is the kind of a master-data field: what its values look like.
type MasterKind string

const (
	KindCountry  MasterKind = "country"  // ISO 3166-1 alpha-2: VN
	KindCurrency MasterKind = "currency" // ISO 4217: VND
	KindLocale   MasterKind = "locale"   // vi, en, zh-CN
	KindCode     MasterKind = "code"     // letters, digits, _ . - (1..50)
	KindText     MasterKind = "text"     // UTF-8, 1..Max characters
	KindInt      MasterKind = "int"      // 0..1,000,000,000, no leading zeros
	// KindDecimal is an exact decimal in a string, never a float: up to 20
	// digits, then up to 12 after a point ("24350.5", "0.0000412"), no
	// leading or trailing zeros but "0.x".
	KindDecimal MasterKind = "decimal"
	KindDate    MasterKind = "date" // YYYY-MM-DD
)

// MasterField is one column of a master-data table.
type MasterField struct {
	Name string
	Kind MasterKind
	// Max characters of a text field.
	Max int
}

// MasterTable is a master-data table: its fields, the first len(Key) of
// which make its key.
type MasterTable struct {
	Name   string
	Key    []string
	Fields []MasterField
}

// MasterTables are the master-data tables. currency_rates.rate is the
// price of one from_currency in to_currency on rate_date, a decimal
// string; tax_configs.rate_bp is in basis points (1,000 = 10%).
var MasterTables = []MasterTable{
	{Name: MasterCountries, Key: []string{"code"}, Fields: []MasterField{
		{Name: "code", Kind: KindCountry}, {Name: "name", Kind: KindText, Max: 200}}},
	{Name: MasterCurrencies, Key: []string{"code"}, Fields: []MasterField{
		{Name: "code", Kind: KindCurrency}, {Name: "name", Kind: KindText, Max: 200}, {Name: "minor_units", Kind: KindInt}}},
	{Name: MasterCurrencyRates, Key: []string{"from_currency", "to_currency", "rate_date"}, Fields: []MasterField{
		{Name: "from_currency", Kind: KindCurrency}, {Name: "to_currency", Kind: KindCurrency}, {Name: "rate_date", Kind: KindDate},
		{Name: "rate", Kind: KindDecimal}}},
	{Name: MasterTaxConfigs, Key: []string{"country", "tax_code"}, Fields: []MasterField{
		{Name: "country", Kind: KindCountry}, {Name: "tax_code", Kind: KindCode}, {Name: "rate_bp", Kind: KindInt},
		{Name: "name", Kind: KindText, Max: 200}}},
	{Name: MasterTranslations, Key: []string{"locale", "msg_key"}, Fields: []MasterField{
		{Name: "locale", Kind: KindLocale}, {Name: "msg_key", Kind: KindCode}, {Name: "text", Kind: KindText, Max: 2000}}},
}

// FindMasterTable returns the table named name; EINVALID for another name.
func FindMasterTable(name string) (MasterTable, error) {
	var names []string
	for _, t := range MasterTables {
		if t.Name == name {
			return t, nil
		}
		names = append(names, t.Name)
	}
	return MasterTable{}, Errorf(EINVALID, "unknown master-data table %q: use one of %s", name, strings.Join(names, ", "))
}

// Topic is the table's topic, masterdata.<table>.
func (t MasterTable) Topic() string { return "masterdata." + t.Name }

// EventType is the type of the table's change events (on its Topic).
func (t MasterTable) EventType() string { return "masterdata." + t.Name + ".changed" }

// KeySeparator joins a row's key fields into its key: USD/VND/2026-12-01.
const KeySeparator = "/"

var (
	countryRe  = regexp.MustCompile(`^[A-Z]{2}$`)
	currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)
	localeRe   = regexp.MustCompile(`^[a-z]{2}(-[A-Z]{2})?$`)
	codeRe     = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,50}$`)
	decimalRe  = regexp.MustCompile(`^(0|[1-9][0-9]{0,19})(\.[0-9]{0,11}[1-9])?$`)
)

func (f MasterField) check(v string) error {
	bad := func(what string) error { return Errorf(EINVALID, "%s: %q is not %s", f.Name, v, what) }
	switch f.Kind {
	case KindCountry:
		if !countryRe.MatchString(v) {
			return bad("an ISO 3166 country code (VN)")
		}
	case KindCurrency:
		if !currencyRe.MatchString(v) {
			return bad("an ISO 4217 currency code (VND)")
		}
	case KindLocale:
		if !localeRe.MatchString(v) {
			return bad("a locale (vi, zh-CN)")
		}
	case KindCode:
		if !codeRe.MatchString(v) {
			return bad("a code (letters, digits, _ . -, at most 50)")
		}
	case KindText:
		if strings.TrimSpace(v) == "" || !utf8.ValidString(v) || utf8.RuneCountInString(v) > f.Max {
			return bad(fmt.Sprintf("a text of 1 to %d characters", f.Max))
		}
	case KindInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1_000_000_000 || strconv.FormatInt(n, 10) != v {
			return bad("a whole number from 0 to 1,000,000,000")
		}
	case KindDecimal:
		if !decimalRe.MatchString(v) || v == "0" {
			return bad("a positive decimal (24350.5), without leading or trailing zeros")
		}
	case KindDate:
		if d, err := time.Parse(time.DateOnly, v); err != nil || d.Format(time.DateOnly) != v {
			return bad("a date (YYYY-MM-DD)")
		}
	default:
		return Errorf(EINTERNAL, "%s: unknown kind %q", f.Name, f.Kind)
	}
	return nil
}

// Check validates a row's fields (every field of the table, no other) and
// returns its key. EINVALID names the first wrong field.
func (t MasterTable) Check(fields map[string]string) (key string, err error) {
	for name := range fields {
		if !t.hasField(name) {
			return "", Errorf(EINVALID, "%s has no field %q", t.Name, name)
		}
	}
	for _, f := range t.Fields {
		v, ok := fields[f.Name]
		if !ok {
			return "", Errorf(EINVALID, "%s: %s is required", t.Name, f.Name)
		}
		if err := f.check(v); err != nil {
			return "", err
		}
	}
	parts := make([]string, len(t.Key))
	for i, k := range t.Key {
		parts[i] = fields[k]
	}
	return strings.Join(parts, KeySeparator), nil
}

// SplitKey returns the key fields of key; EINVALID when it has the wrong
// number of parts or a part is not of its field's kind.
func (t MasterTable) SplitKey(key string) (map[string]string, error) {
	parts := strings.Split(key, KeySeparator)
	if len(parts) != len(t.Key) {
		return nil, Errorf(EINVALID, "%s: a key is %s", t.Name, strings.Join(t.Key, KeySeparator))
	}
	out := make(map[string]string, len(parts))
	for i, name := range t.Key {
		for _, f := range t.Fields {
			if f.Name == name {
				if err := f.check(parts[i]); err != nil {
					return nil, err
				}
			}
		}
		out[name] = parts[i]
	}
	return out, nil
}

func (t MasterTable) hasField(name string) bool {
	for _, f := range t.Fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// MasterRecord is one row of a master-data table at one version.
type MasterRecord struct {
	Table string `json:"table"`
	Key   string `json:"key"`
	// Fields are every field of the table, as strings of their kind.
	Fields  map[string]string `json:"fields"`
	Version int64             `json:"version"`
	// Region is where the change was made: the table's owner.
	Region    string    `json:"region"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MasterDataEvent is the data of a masterdata.<table>.changed event: the
// row as it is after the change, with SchemaVersion so that a region whose
// schema is older can refuse it.
type MasterDataEvent struct {
	MasterRecord
	SchemaVersion int `json:"schema_version"`
}

// MasterDataSchemaVersion is the version of the master-data tables'
// schema: raised by a migration that changes them.
const MasterDataSchemaVersion = 1

// NewMasterDataEvent is the event of a change to r.
func NewMasterDataEvent(id string, r MasterRecord) (Event, error) {
	t, err := FindMasterTable(r.Table)
	if err != nil {
		return Event{}, err
	}
	data, err := json.Marshal(MasterDataEvent{MasterRecord: r, SchemaVersion: MasterDataSchemaVersion})
	if err != nil {
		return Event{}, err
	}
	return Event{ID: id, Type: t.EventType(), SchemaVersion: EventSchemaVersion, AggregateID: r.Key, OccurredAt: r.UpdatedAt, Data: data}, nil
}

// MasterDataFilter narrows FindMasterRecords: rows of Table whose key
// sorts after After, at most Limit (1..1000; 100 when 0).
type MasterDataFilter struct {
	Table string
	After string
	Limit int
}

// MasterDataStore reads master data.
type MasterDataStore interface {
	// FindMasterRecord returns a row. EINVALID for an unknown table;
	// ENOTFOUND for a key with no row.
	FindMasterRecord(ctx context.Context, table, key string) (MasterRecord, error)
	// FindMasterRecords lists rows by key. EINVALID for an unknown table
	// or a limit out of range.
	FindMasterRecords(ctx context.Context, f MasterDataFilter) ([]MasterRecord, error)
}

// MasterDataTx writes master data with the rest of a transaction.
type MasterDataTx interface {
	// PutMasterRecord writes r when its table has no row of r.Key or an
	// older version of it, and returns the row it replaced (Version 0 when
	// there was none) and whether it wrote; a version already stored, or
	// older, is not written (applied false, no error): a change applies
	// once. EINVALID for an unknown table, wrong fields, a key that is not
	// the fields' or a version below 1.
	PutMasterRecord(ctx context.Context, r MasterRecord) (before MasterRecord, applied bool, err error)
}
