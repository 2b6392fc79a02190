package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"smp"
)

// Tx implements smp.Tx.
type Tx struct {
	tx     *sql.Tx
	db     *DB
	events int
}

var _ smp.Tx = (*Tx)(nil)

const orderCols = `id, customer_id, city, service, lat, lng, address, price_vnd, stage, payment_status,
	COALESCE(technician_id, ''), created_at, stage_changed_at, dispatch_not_before`

type scanner interface{ Scan(...any) error }

func scanOrder(row scanner) (*smp.Order, error) {
	var o smp.Order
	var created, changed, notBefore int64
	if err := row.Scan(&o.ID, &o.CustomerID, &o.City, &o.Service, &o.Lat, &o.Lng, &o.Address, &o.PriceVND,
		&o.Stage, &o.PaymentStatus, &o.TechnicianID, &created, &changed, &notBefore); err != nil {
		return nil, err
	}
	o.CreatedAt, o.StageChangedAt, o.DispatchNotBefore = fromMicros(created), fromMicros(changed), fromMicros(notBefore)
	return &o, nil
}

// OrderForUpdate reads and locks an order.
func (tx *Tx) OrderForUpdate(ctx context.Context, id string) (*smp.Order, error) {
	o, err := scanOrder(tx.tx.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE id = ?`+tx.db.dialect.ForUpdate, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "order %s not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: read order: %w", err)
	}
	return o, nil
}

// InsertOrder inserts a new order.
func (tx *Tx) InsertOrder(ctx context.Context, o *smp.Order) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO orders (id, customer_id, city, service, lat, lng, address, price_vnd,
		stage, payment_status, technician_id, created_at, stage_changed_at, dispatch_not_before)
		VALUES (?,?,?,?,?,?,?,?,?,?,NULLIF(?, ''),?,?,?)`,
		o.ID, o.CustomerID, o.City, o.Service, o.Lat, o.Lng, o.Address, o.PriceVND, o.Stage, o.PaymentStatus,
		o.TechnicianID, micros(o.CreatedAt), micros(o.StageChangedAt), micros(o.DispatchNotBefore))
	if isUniqueViolation(err) {
		return smp.Errorf(smp.ECONFLICT, "order %s already exists", o.ID)
	} else if err != nil {
		return fmt.Errorf("sqlstore: insert order: %w", err)
	}
	return nil
}

// UpdateOrder writes an order's mutable fields.
func (tx *Tx) UpdateOrder(ctx context.Context, o *smp.Order) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE orders SET stage = ?, payment_status = ?, technician_id = NULLIF(?, ''),
		stage_changed_at = ?, dispatch_not_before = ? WHERE id = ?`,
		o.Stage, o.PaymentStatus, o.TechnicianID, micros(o.StageChangedAt), micros(o.DispatchNotBefore), o.ID)
	if err != nil {
		return fmt.Errorf("sqlstore: update order: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return smp.Errorf(smp.ENOTFOUND, "order %s not found", o.ID)
	}
	return nil
}

// AddTransition records a stage change.
func (tx *Tx) AddTransition(ctx context.Context, t smp.Transition) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO order_transitions (order_id, from_stage, to_stage, at, actor, reason) VALUES (?,?,?,?,?,?)`,
		t.OrderID, t.From, t.To, micros(t.At), t.Actor, t.Reason)
	if err != nil {
		return fmt.Errorf("sqlstore: add transition: %w", err)
	}
	return nil
}

// AddEvent appends an event to the outbox.
func (tx *Tx) AddEvent(ctx context.Context, e smp.Event) error {
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("sqlstore: encode event: %w", err)
	}
	_, err = tx.tx.ExecContext(ctx, `INSERT INTO outbox (event_id, event_type, aggregate_id, payload, created_at) VALUES (?,?,?,?,?)`,
		e.ID, e.Type, e.AggregateID, string(payload), micros(e.OccurredAt))
	if err != nil {
		return fmt.Errorf("sqlstore: add outbox event: %w", err)
	}
	tx.events++
	return nil
}

// AddAudit records a manual action.
func (tx *Tx) AddAudit(ctx context.Context, a smp.AuditEntry) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO audit_log (at, actor, role, action, target, before_state, after_state, reason) VALUES (?,?,?,?,?,?,?,?)`,
		micros(a.At), a.Actor, a.Role, a.Action, a.Target, a.Before, a.After, a.Reason)
	if err != nil {
		return fmt.Errorf("sqlstore: add audit: %w", err)
	}
	return nil
}

// ClaimTechnician sets the technician's active order if they hold none.
func (tx *Tx) ClaimTechnician(ctx context.Context, technicianID, orderID string) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE technicians SET active_order_id = ? WHERE id = ? AND active_order_id IS NULL`, orderID, technicianID)
	if err != nil {
		return fmt.Errorf("sqlstore: claim technician: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var active sql.NullString
	err = tx.tx.QueryRowContext(ctx, `SELECT active_order_id FROM technicians WHERE id = ?`, technicianID).Scan(&active)
	if errors.Is(err, sql.ErrNoRows) {
		return smp.Errorf(smp.ENOTFOUND, "technician %s not found", technicianID)
	} else if err != nil {
		return fmt.Errorf("sqlstore: claim technician: %w", err)
	}
	return smp.Errorf(smp.ECONFLICT, "technician %s already holds order %s", technicianID, active.String)
}

// ReleaseTechnician clears the technician's active order if it is orderID.
func (tx *Tx) ReleaseTechnician(ctx context.Context, technicianID, orderID string) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE technicians SET active_order_id = NULL WHERE id = ? AND active_order_id = ?`, technicianID, orderID)
	if err != nil {
		return fmt.Errorf("sqlstore: release technician: %w", err)
	}
	return nil
}

// SetFlag sets a feature flag, returning its previous value.
func (tx *Tx) SetFlag(ctx context.Context, name string, value bool, actor string, at time.Time) (bool, error) {
	var before bool
	err := tx.tx.QueryRowContext(ctx, `SELECT value FROM feature_flags WHERE name = ?`+tx.db.dialect.ForUpdate, name).Scan(&before)
	if errors.Is(err, sql.ErrNoRows) {
		def, known := smp.DefaultFlags[name]
		if !known {
			return false, smp.Errorf(smp.ENOTFOUND, "unknown feature flag %q", name)
		}
		before = def
	} else if err != nil {
		return false, fmt.Errorf("sqlstore: read flag: %w", err)
	}
	_, err = tx.tx.ExecContext(ctx, tx.db.dialect.Upsert("feature_flags", []string{"name"}, []string{"name", "value", "updated_at", "updated_by"}),
		name, value, micros(at), actor)
	if err != nil {
		return false, fmt.Errorf("sqlstore: set flag: %w", err)
	}
	return before, nil
}

// MarkProcessed records a consumer's handling of an event.
func (tx *Tx) MarkProcessed(ctx context.Context, consumer, eventID string, at time.Time) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, tx.db.dialect.InsertIgnore+` INTO processed_events (consumer, event_id, at) VALUES (?,?,?)`, consumer, eventID, micros(at))
	if err != nil {
		return false, fmt.Errorf("sqlstore: mark processed: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
