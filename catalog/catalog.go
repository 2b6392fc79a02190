// Package catalog onboards what a platform runs on: cities, services,
// partners, technicians and customers. Every change is checked (clear
// EINVALID messages: Vietnamese phone numbers in E.164, coordinates inside
// the city, known skills, cities and partners), checked against
// auth.Permissions (ops and admin change; finance reads partners) and
// committed in its own transaction with its audit entry (who, role, why,
// before and after) and, for partners, its event on partners.events.
//
// Records travel as JSON objects: the admin API, smp ctl and smp import
// (Import, the same code for a file read locally or posted to the API)
// all go through this package. Updates are patches: the fields given
// replace the record's, the others stay.
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"smp"
	"smp/auth"
)

// Store is what onboarding reads and writes.
type Store interface {
	smp.Transactor
	smp.CatalogStore
}

// Config of the service. Store is required.
type Config struct {
	Store  Store
	Now    func() time.Time
	Logger *slog.Logger
	// Suspended, when set, is told of a technician a committed change
	// (deactivate, an update, an import row) left suspended, after the
	// commit: the platform takes them out of dispatch and closes their
	// WebSocket at once.
	Suspended func(ctx context.Context, technicianID string)
}

// Service creates, reads, updates and deactivates catalogue records.
type Service struct {
	store     Store
	now       func() time.Time
	log       *slog.Logger
	suspended func(ctx context.Context, technicianID string)
}

// New returns the service; EINVALID without a store.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, smp.Errorf(smp.EINVALID, "catalog: a store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: cfg.Store, now: cfg.Now, log: cfg.Logger.With("service", "catalog"), suspended: cfg.Suspended}, nil
}

// committed tells Config.Suspended of a technician that the committed
// change v left suspended.
func (s *Service) committed(ctx context.Context, v any) {
	if t, ok := v.(*smp.Technician); ok && s.suspended != nil && t.Status == smp.StatusSuspended {
		s.suspended(context.WithoutCancel(ctx), t.ID)
	}
}

// Kinds are the record kinds, in the order an import applies them (a
// technician needs their partner and city first).
var Kinds = []string{"cities", "services", "partners", "technicians", "customers"}

// ops is one kind's operations, implemented by kind[T].
type ops interface {
	create(ctx context.Context, s *Service, tx smp.Tx, p smp.Principal, fields map[string]json.RawMessage, reason string) (any, string, error)
	update(ctx context.Context, s *Service, tx smp.Tx, p smp.Principal, key string, patch map[string]json.RawMessage, reason string) (any, bool, error)
	deactivate(ctx context.Context, s *Service, tx smp.Tx, p smp.Principal, key, reason string) (any, bool, error)
	get(ctx context.Context, s *Service, key string) (any, error)
	list(ctx context.Context, s *Service, f smp.CatalogFilter) ([]any, string, error)
	natural(ctx context.Context, s *Service, fields map[string]json.RawMessage) (string, error)
	viewPermission() string
}

func kindOps(name string) (ops, error) {
	switch name {
	case "cities":
		return cities, nil
	case "services":
		return services, nil
	case "partners":
		return partners, nil
	case "technicians":
		return technicians, nil
	case "customers":
		return customers, nil
	}
	return nil, smp.Errorf(smp.EINVALID, "unknown kind %q (one of %s)", name, strings.Join(Kinds, ", "))
}

// Create validates and creates a record of kind from its JSON fields and
// returns it (ids allocated). EFORBIDDEN; EINVALID naming the first bad
// field; ECONFLICT when its key or phone is taken. The reason may be
// empty ("onboarding").
func (s *Service) Create(ctx context.Context, p smp.Principal, kind string, body json.RawMessage, reason string) (any, error) {
	k, fields, err := s.prepare(p, "catalog.write", kind, body)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(reason) == "" {
		reason = "onboarding"
	}
	var out any
	err = s.store.InTx(ctx, func(tx smp.Tx) error {
		out, _, err = k.create(ctx, s, tx, p, fields, reason)
		return err
	})
	return out, err
}

// Update applies a patch (the fields to change) to the record of kind
// with key and returns it; changed is false when the patch changed
// nothing (then nothing is written or audited). EFORBIDDEN; EINVALID for
// a bad field, a key change or a missing reason; ENOTFOUND; ECONFLICT
// for a phone taken.
func (s *Service) Update(ctx context.Context, p smp.Principal, kind, key string, patch json.RawMessage, reason string) (v any, changed bool, err error) {
	k, fields, err := s.prepare(p, "catalog.write", kind, patch)
	if err != nil {
		return nil, false, err
	}
	if err := needReason(reason); err != nil {
		return nil, false, err
	}
	err = s.store.InTx(ctx, func(tx smp.Tx) error {
		v, changed, err = k.update(ctx, s, tx, p, key, fields, reason)
		return err
	})
	if err == nil && changed {
		s.committed(ctx, v)
	}
	return v, changed, err
}

// Deactivate makes a record inactive (technicians: suspended); changed is
// false for one already so. EFORBIDDEN, EINVALID without a reason,
// ENOTFOUND.
func (s *Service) Deactivate(ctx context.Context, p smp.Principal, kind, key, reason string) (v any, changed bool, err error) {
	k, _, err := s.prepare(p, "catalog.write", kind, nil)
	if err != nil {
		return nil, false, err
	}
	if err := needReason(reason); err != nil {
		return nil, false, err
	}
	err = s.store.InTx(ctx, func(tx smp.Tx) error {
		v, changed, err = k.deactivate(ctx, s, tx, p, key, reason)
		return err
	})
	if err == nil && changed {
		s.committed(ctx, v)
	}
	return v, changed, err
}

// Get returns one record. EFORBIDDEN, ENOTFOUND.
func (s *Service) Get(ctx context.Context, p smp.Principal, kind, key string) (any, error) {
	k, err := kindOps(kind)
	if err != nil {
		return nil, err
	}
	if err := auth.Check(p, k.viewPermission()); err != nil {
		return nil, err
	}
	return k.get(ctx, s, key)
}

// List returns a page of records matching f, in key order, and the key to
// pass as f.After for the next page ("" on the last). EFORBIDDEN,
// EINVALID for an unknown status.
func (s *Service) List(ctx context.Context, p smp.Principal, kind string, f smp.CatalogFilter) (items []any, next string, err error) {
	k, err := kindOps(kind)
	if err != nil {
		return nil, "", err
	}
	if err := auth.Check(p, k.viewPermission()); err != nil {
		return nil, "", err
	}
	switch f.Status {
	case "", smp.StatusActive, smp.StatusInactive, smp.StatusSuspended:
	default:
		return nil, "", smp.Errorf(smp.EINVALID, "unknown status %q (active, inactive or suspended)", f.Status)
	}
	items, next, err = k.list(ctx, s, f)
	if items == nil {
		items = []any{}
	}
	return items, next, err
}

func (s *Service) prepare(p smp.Principal, perm, kind string, body json.RawMessage) (ops, map[string]json.RawMessage, error) {
	k, err := kindOps(kind)
	if err != nil {
		return nil, nil, err
	}
	if err := auth.Check(p, perm); err != nil {
		return nil, nil, err
	}
	if body == nil {
		return k, nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, nil, smp.Errorf(smp.EINVALID, "the body must be a JSON object of the record's fields")
	}
	return k, fields, nil
}

func needReason(reason string) error {
	if len(strings.TrimSpace(reason)) < 3 {
		return smp.Errorf(smp.EINVALID, "reason is required: the change is audited")
	}
	return nil
}

// kind is one record kind's storage and rules.
type kind[T any] struct {
	one, many string // "city", "cities"
	keyField  string // "code" or "id"
	perm      string // the permission to read it
	key       func(*T) string
	get1      func(ctx context.Context, st Store, key string) (*T, error)
	lock      func(ctx context.Context, tx smp.Tx, key string) (*T, error)
	insert    func(ctx context.Context, tx smp.Tx, v *T) error
	write     func(ctx context.Context, tx smp.Tx, v *T) error
	find      func(ctx context.Context, st Store, f smp.CatalogFilter) ([]*T, error)
	// check normalizes and validates v before it is written (old is nil on
	// create); extra holds the accepted fields that are not T's.
	check    func(ctx context.Context, s *Service, tx smp.Tx, v, old *T, extra map[string]json.RawMessage) error
	status   func(*T) *smp.CatalogStatus
	off      smp.CatalogStatus
	readOnly []string // fields no caller sets
	extras   []string // accepted fields that are not T's
	// natural finds the key of the record an import row stands for ("" if none).
	natural1 func(ctx context.Context, s *Service, fields map[string]json.RawMessage) (string, error)
	events   bool // partner.* events on partners.events
}

func (k *kind[T]) viewPermission() string { return k.perm }

// decode turns fields into a T (unknown fields refused) and the extras.
func (k *kind[T]) decode(fields map[string]json.RawMessage) (*T, map[string]json.RawMessage, error) {
	rest, extra := map[string]json.RawMessage{}, map[string]json.RawMessage{}
	for f, v := range fields {
		switch {
		case slices.Contains(k.readOnly, f):
			return nil, nil, smp.Errorf(smp.EINVALID, "%s: %s cannot be set", k.one, f)
		case slices.Contains(k.extras, f):
			extra[f] = v
		default:
			rest[f] = v
		}
	}
	b, _ := json.Marshal(rest)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var v T
	if err := dec.Decode(&v); err != nil {
		var se *smp.Error
		if errors.As(err, &se) {
			return nil, nil, smp.Errorf(smp.EINVALID, "%s: %s", k.one, se.Message)
		}
		return nil, nil, smp.Errorf(smp.EINVALID, "%s: %s", k.one, strings.TrimPrefix(err.Error(), "json: "))
	}
	return &v, extra, nil
}

func (k *kind[T]) create(ctx context.Context, s *Service, tx smp.Tx, p smp.Principal, fields map[string]json.RawMessage, reason string) (any, string, error) {
	v, extra, err := k.decode(fields)
	if err != nil {
		return nil, "", err
	}
	if err := k.check(ctx, s, tx, v, nil, extra); err != nil {
		return nil, "", err
	}
	if err := k.insert(ctx, tx, v); err != nil {
		return nil, "", err
	}
	return v, k.key(v), s.record(ctx, tx, p, k, "create", k.key(v), nil, v, reason)
}

func (k *kind[T]) update(ctx context.Context, s *Service, tx smp.Tx, p smp.Principal, key string, patch map[string]json.RawMessage, reason string) (any, bool, error) {
	old, err := k.lock(ctx, tx, key)
	if err != nil {
		return nil, false, err
	}
	cur := map[string]json.RawMessage{}
	b, _ := json.Marshal(old)
	if err := json.Unmarshal(b, &cur); err != nil {
		return nil, false, err
	}
	for _, f := range k.readOnly {
		delete(cur, f)
	}
	for f, v := range patch {
		if f == k.keyField {
			var given string
			if json.Unmarshal(v, &given) != nil || given != key {
				return nil, false, smp.Errorf(smp.EINVALID, "%s %s: %s cannot change", k.one, key, k.keyField)
			}
		}
		cur[f] = v
	}
	v, extra, err := k.decode(cur)
	if err != nil {
		return nil, false, err
	}
	if err := k.check(ctx, s, tx, v, old, extra); err != nil {
		return nil, false, err
	}
	if same(old, v) {
		return old, false, nil
	}
	if err := k.write(ctx, tx, v); err != nil {
		return nil, false, err
	}
	return v, true, s.record(ctx, tx, p, k, "update", key, old, v, reason)
}

func (k *kind[T]) deactivate(ctx context.Context, s *Service, tx smp.Tx, p smp.Principal, key, reason string) (any, bool, error) {
	old, err := k.lock(ctx, tx, key)
	if err != nil {
		return nil, false, err
	}
	if *k.status(old) == k.off {
		return old, false, nil
	}
	v := new(T)
	*v = *old
	*k.status(v) = k.off
	if err := k.write(ctx, tx, v); err != nil {
		return nil, false, err
	}
	return v, true, s.record(ctx, tx, p, k, "deactivate", key, old, v, reason)
}

func (k *kind[T]) get(ctx context.Context, s *Service, key string) (any, error) {
	return k.get1(ctx, s.store, key)
}

func (k *kind[T]) list(ctx context.Context, s *Service, f smp.CatalogFilter) ([]any, string, error) {
	vs, err := k.find(ctx, s.store, f)
	if err != nil {
		return nil, "", err
	}
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	next := ""
	if len(vs) == f.PageLimit() {
		next = k.key(vs[len(vs)-1])
	}
	return out, next, nil
}

func (k *kind[T]) natural(ctx context.Context, s *Service, fields map[string]json.RawMessage) (string, error) {
	return k.natural1(ctx, s, fields)
}

// record writes the audit entry of a change and, for partners, its event.
func (s *Service) record(ctx context.Context, tx smp.Tx, p smp.Principal, k interface{ names() (string, bool) }, verb, key string, before, after any, reason string) error {
	one, events := k.names()
	e := smp.AuditEntry{At: s.now(), Actor: p.Name, Role: p.Role, Action: one + "." + verb, Target: one + ":" + key, Reason: reason}
	if before != nil {
		b, _ := json.Marshal(before)
		e.Before = string(b)
	}
	a, _ := json.Marshal(after)
	e.After = string(a)
	if err := tx.AddAudit(ctx, e); err != nil {
		return err
	}
	if !events {
		return nil
	}
	typ := map[string]string{"create": smp.EventPartnerCreated, "update": smp.EventPartnerUpdated, "deactivate": smp.EventPartnerDeactivated}[verb]
	return tx.AddEvent(ctx, smp.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, SchemaVersion: smp.EventSchemaVersion,
		AggregateID: key, OccurredAt: s.now(), Data: a})
}

func (k *kind[T]) names() (string, bool) { return k.one, k.events }

// same reports whether two records have the same JSON.
func same(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// page applies f's status, after and limit to a full list in key order.
func page[T any](all []*T, f smp.CatalogFilter, key func(*T) string, status func(*T) *smp.CatalogStatus) []*T {
	sort.Slice(all, func(i, j int) bool { return key(all[i]) < key(all[j]) })
	var out []*T
	for _, v := range all {
		st := *status(v)
		if (f.Status != "" && st != f.Status && !(f.Status == smp.StatusActive && st == "")) || (f.After != "" && key(v) <= f.After) {
			continue
		}
		if f.Name != "" && !strings.EqualFold(nameOf(v), f.Name) {
			continue
		}
		out = append(out, v)
		if len(out) == f.PageLimit() {
			break
		}
	}
	return out
}

func nameOf(v any) string {
	switch t := v.(type) {
	case *smp.City:
		return t.Name
	case *smp.Service:
		return t.Name
	}
	return ""
}

// stringField reads a string field of a row ("" when absent or not a string).
func stringField(fields map[string]json.RawMessage, name string) string {
	var s string
	if raw, ok := fields[name]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return strings.TrimSpace(s)
}

// notFoundIs returns "" and nil for ENOTFOUND, the key otherwise.
func notFoundIs(key string, err error) (string, error) {
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		return "", nil
	} else if err != nil {
		return "", err
	}
	return key, nil
}

func invalid(format string, args ...any) error { return smp.Errorf(smp.EINVALID, format, args...) }

// ViewPermission is the permission (auth.Permissions) to read kind;
// "catalog.view" for an unknown kind.
func ViewPermission(kind string) string {
	if k, err := kindOps(kind); err == nil {
		return k.viewPermission()
	}
	return "catalog.view"
}
