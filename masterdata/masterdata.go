// Package masterdata edits the master-data tables (smp.MasterTables:
// countries, currencies, currency_rates, tax_configs, i18n_translations)
// in the region that owns them: each change raises the row's version by
// one and commits with its audit entry and its event on
// masterdata.<table>, which the replication agent carries to the other
// regions (issue 21, runbook INC-012).
package masterdata

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"

	"smp"
)

// Store is what the service needs of the system of record.
type Store interface {
	smp.Transactor
	smp.MasterDataStore
}

// Config of the service.
type Config struct {
	// Region is this deployment's region (smp.DefaultRegion by default).
	Region string
	// Owner is the region where master data is edited (the global master,
	// smp.DefaultRegion, by default); elsewhere it is only read, and
	// arrives by replication.
	Owner string
	Now   func() time.Time
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Region == "" {
		c.Region = smp.DefaultRegion
	}
	if c.Owner == "" {
		c.Owner = smp.DefaultRegion
	}
	if err := smp.ValidRegion(c.Region); err != nil {
		return err
	}
	if err := smp.ValidRegion(c.Owner); err != nil {
		return err
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Service reads and edits master data.
type Service struct {
	cfg   Config
	store Store
}

// New returns the service; EINVALID for a bad configuration.
func New(cfg Config, store Store) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, store: store}, nil
}

// Region is this deployment's region; Owner the region that edits master
// data.
func (s *Service) Region() string { return s.cfg.Region }
func (s *Service) Owner() string  { return s.cfg.Owner }

// Find returns a row (smp.MasterDataStore's codes).
func (s *Service) Find(ctx context.Context, table, key string) (smp.MasterRecord, error) {
	return s.store.FindMasterRecord(ctx, table, key)
}

// List lists a table's rows by key (smp.MasterDataStore's codes).
func (s *Service) List(ctx context.Context, f smp.MasterDataFilter) ([]smp.MasterRecord, error) {
	return s.store.FindMasterRecords(ctx, f)
}

// Put writes a row of table with every field, as p, for reason: its
// version is the stored one plus one (1 for a new row), and the row, its
// audit entry (masterdata.put, target <table>:<key>, before and after)
// and its event (masterdata.<table>.changed on masterdata.<table>) commit
// together. Permissions and the reason are ops' to check (ops.PutMasterData).
// EINVALID for an unknown table or a wrong field; EFORBIDDEN outside the
// owner region; ECONFLICT when another change of the row committed
// meanwhile (nothing written: read it and try again); a row equal to the
// stored one is returned as it is, unchanged and unaudited.
func (s *Service) Put(ctx context.Context, p smp.Principal, table string, fields map[string]string, reason string) (smp.MasterRecord, error) {
	t, err := smp.FindMasterTable(table)
	if err != nil {
		return smp.MasterRecord{}, err
	}
	key, err := t.Check(fields)
	if err != nil {
		return smp.MasterRecord{}, err
	}
	if s.cfg.Region != s.cfg.Owner {
		return smp.MasterRecord{}, smp.Errorf(smp.EFORBIDDEN,
			"master data is edited in region %s, the owner; this is region %s, where it arrives by replication", s.cfg.Owner, s.cfg.Region)
	}
	cur, err := s.store.FindMasterRecord(ctx, table, key)
	switch {
	case smp.ErrorCode(err) == smp.ENOTFOUND:
	case err != nil:
		return smp.MasterRecord{}, err
	case sameFields(cur.Fields, fields):
		return cur, nil
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	r := smp.MasterRecord{Table: table, Key: key, Fields: fields, Version: cur.Version + 1, Region: s.cfg.Region, UpdatedAt: now}
	ev, err := smp.NewMasterDataEvent(uuid.Must(uuid.NewV7()).String(), r)
	if err != nil {
		return smp.MasterRecord{}, err
	}
	err = s.store.InTx(ctx, func(tx smp.Tx) error {
		before, applied, err := tx.PutMasterRecord(ctx, r)
		if err != nil {
			return err
		}
		if !applied {
			return smp.Errorf(smp.ECONFLICT, "%s %s changed meanwhile (version %d): read it and try again", table, key, before.Version)
		}
		if err := tx.AddEvent(ctx, ev); err != nil {
			return err
		}
		a := smp.AuditEntry{At: now, Actor: p.Name, Role: p.Role, Action: "masterdata.put", Target: table + ":" + key,
			After: state(r), Reason: strings.TrimSpace(reason)}
		if before.Version > 0 {
			a.Before = state(before)
		}
		return tx.AddAudit(ctx, a)
	})
	if err != nil {
		return smp.MasterRecord{}, err
	}
	return r, nil
}

func sameFields(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// state is a row's fields and version as an audit entry shows them.
func state(r smp.MasterRecord) string {
	b, _ := json.Marshal(struct {
		Fields  map[string]string `json:"fields"`
		Version int64             `json:"version"`
	}{r.Fields, r.Version})
	return string(b)
}
