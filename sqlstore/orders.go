package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"smp"
)

// Orders: reads (smp.OrderStore) and the transactional writes (smp.OrderTx).

var _ smp.OrderStore = (*DB)(nil)
var _ smp.OrderTx = (*Tx)(nil)

const orderCols = `id, customer_id, city, service, lat, lng, address, price_vnd, stage, payment_status,
	COALESCE(technician_id, ''), created_at, stage_changed_at, dispatch_not_before`

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

// FindOrderByID returns an order (ENOTFOUND).
func (db *DB) FindOrderByID(ctx context.Context, id string) (*smp.Order, error) {
	o, err := scanOrder(db.fresh().QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "order %s not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: find order: %w", err)
	}
	return o, nil
}

// FindOrders lists orders, newest first.
func (db *DB) FindOrders(ctx context.Context, f smp.OrderFilter) ([]*smp.Order, error) {
	var where []string
	var args []any
	if f.Stage != "" {
		where, args = append(where, "stage = ?"), append(args, f.Stage)
	}
	if f.City != "" {
		where, args = append(where, "city = ?"), append(args, f.City)
	}
	if f.CustomerID != "" {
		where, args = append(where, "customer_id = ?"), append(args, f.CustomerID)
	}
	if f.TechnicianID != "" {
		where, args = append(where, "technician_id = ?"), append(args, f.TechnicianID)
	}
	if !f.ChangedBefore.IsZero() {
		where, args = append(where, "stage_changed_at < ?"), append(args, micros(f.ChangedBefore))
	}
	if f.PaymentStatus != "" {
		where, args = append(where, "payment_status = ?"), append(args, f.PaymentStatus)
	}
	if f.After != nil {
		at := micros(f.After.CreatedAt)
		where, args = append(where, "(created_at < ? OR (created_at = ? AND id < ?))"), append(args, at, at, f.After.ID)
	}
	q := `SELECT ` + orderCols + ` FROM orders`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q += fmt.Sprintf(" ORDER BY created_at DESC, id DESC LIMIT %d", limit)
	return db.queryOrders(ctx, db.reader(), q, args...)
}

func (db *DB) queryOrders(ctx context.Context, pool *sql.DB, q string, args ...any) ([]*smp.Order, error) {
	rows, err := pool.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find orders: %w", err)
	}
	defer rows.Close()
	var out []*smp.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: scan order: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// FindDispatchable returns 02 orders whose dispatch hold has passed, oldest first.
func (db *DB) FindDispatchable(ctx context.Context, now time.Time, limit int) ([]*smp.Order, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	return db.queryOrders(ctx, db.fresh(), `SELECT `+orderCols+` FROM orders WHERE stage = ? AND dispatch_not_before <= ? ORDER BY stage_changed_at LIMIT ?`,
		smp.StageDispatching, micros(now), limit)
}

// FindTransitions returns an order's stage history, oldest first.
func (db *DB) FindTransitions(ctx context.Context, orderID string) ([]smp.Transition, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT order_id, from_stage, to_stage, at, actor, reason FROM order_transitions WHERE order_id = ? ORDER BY id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find transitions: %w", err)
	}
	defer rows.Close()
	var out []smp.Transition
	for rows.Next() {
		var t smp.Transition
		var at int64
		if err := rows.Scan(&t.OrderID, &t.From, &t.To, &at, &t.Actor, &t.Reason); err != nil {
			return nil, err
		}
		t.At = fromMicros(at)
		out = append(out, t)
	}
	return out, rows.Err()
}

// CountOrdersByStage counts orders in every stage (zero for empty stages).
func (db *DB) CountOrdersByStage(ctx context.Context) (map[smp.Stage]int64, error) {
	out := make(map[smp.Stage]int64, len(smp.Stages))
	for _, s := range smp.Stages {
		out[s] = 0
	}
	rows, err := db.reader().QueryContext(ctx, `SELECT stage, COUNT(*) FROM orders GROUP BY stage`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: count orders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s smp.Stage
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// CountInStageSince counts orders that entered stage before t and are still there.
func (db *DB) CountInStageSince(ctx context.Context, stage smp.Stage, before time.Time) (int64, error) {
	var n int64
	err := db.reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM orders WHERE stage = ? AND stage_changed_at < ?`, stage, micros(before)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: count stuck orders: %w", err)
	}
	return n, nil
}

// CountPaymentOverdue counts completed orders still waiting for payment
// whose job finished before before.
func (db *DB) CountPaymentOverdue(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM orders WHERE payment_status IN (?, ?) AND stage = ? AND stage_changed_at < ?`,
		smp.PaymentPending, smp.PaymentFailed, smp.StageCompleted, micros(before)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: count overdue payments: %w", err)
	}
	return n, nil
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
	if err := checkSizes("insert order",
		chars("id", o.ID, 64),
		chars("customer_id", o.CustomerID, 64),
		chars("city", o.City, 16),
		chars("service", o.Service, 64),
		chars("address", o.Address, 500),
		chars("stage", string(o.Stage), 20),
		chars("payment_status", string(o.PaymentStatus), 16),
		chars("technician_id", o.TechnicianID, 64)); err != nil {
		return err
	}
	if o.PriceVND <= 0 {
		return smp.Errorf(smp.EINVALID, "insert order: price_vnd %d: must be positive", o.PriceVND)
	}
	// The customer's status is checked by the INSERT itself (no read of
	// the customer before it: one statement less per order).
	from := ""
	if tx.db.dialect.Name == MySQL.Name {
		from = " FROM DUAL"
	}
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO orders (id, customer_id, city, service, lat, lng, address, price_vnd,
		stage, payment_status, technician_id, created_at, stage_changed_at, dispatch_not_before)
		SELECT ?,?,?,?,?,?,?,?,?,?,NULLIF(?, ''),?,?,?`+from+`
		WHERE NOT EXISTS (SELECT 1 FROM customers WHERE id = ? AND status NOT IN ('', 'active'))`,
		o.ID, o.CustomerID, o.City, o.Service, o.Lat, o.Lng, o.Address, o.PriceVND, o.Stage, o.PaymentStatus,
		o.TechnicianID, micros(o.CreatedAt), micros(o.StageChangedAt), micros(o.DispatchNotBefore), o.CustomerID)
	if isUniqueViolation(err) {
		return smp.Errorf(smp.ECONFLICT, "order %s already exists", o.ID)
	} else if err != nil {
		return fmt.Errorf("sqlstore: insert order: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return smp.Errorf(smp.EFORBIDDEN, "customer %s is inactive", o.CustomerID)
	}
	return nil
}

// UpdateOrder writes an order's mutable fields.
func (tx *Tx) UpdateOrder(ctx context.Context, o *smp.Order) error {
	if err := checkSizes("update order",
		chars("stage", string(o.Stage), 20),
		chars("payment_status", string(o.PaymentStatus), 16),
		chars("technician_id", o.TechnicianID, 64)); err != nil {
		return err
	}
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

// AddTransition records stage changes, t and more, in one statement.
func (tx *Tx) AddTransition(ctx context.Context, t smp.Transition, more ...smp.Transition) error {
	all := append([]smp.Transition{t}, more...)
	args := make([]any, 0, 6*len(all))
	for _, t := range all {
		if err := checkSizes("add transition",
			chars("order_id", t.OrderID, 64),
			chars("from_stage", string(t.From), 20),
			chars("to_stage", string(t.To), 20),
			chars("actor", t.Actor, 200),
			chars("reason", t.Reason, 1000)); err != nil {
			return err
		}
		args = append(args, t.OrderID, t.From, t.To, micros(t.At), t.Actor, t.Reason)
	}
	q := `INSERT INTO order_transitions (order_id, from_stage, to_stage, at, actor, reason) VALUES (?,?,?,?,?,?)` + strings.Repeat(`, (?,?,?,?,?,?)`, len(more))
	if _, err := tx.tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("sqlstore: add transition: %w", err)
	}
	return nil
}
