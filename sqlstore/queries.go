package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"smp"
)

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
	q := `SELECT ` + orderCols + ` FROM orders`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q += fmt.Sprintf(" ORDER BY created_at DESC LIMIT %d", limit)
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

// FindCities returns every city.
func (db *DB) FindCities(ctx context.Context) ([]*smp.City, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT code, name, min_lat, max_lat, min_lng, max_lng, dispatch_config FROM cities ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find cities: %w", err)
	}
	defer rows.Close()
	var out []*smp.City
	for rows.Next() {
		var c smp.City
		var cfg string
		if err := rows.Scan(&c.Code, &c.Name, &c.MinLat, &c.MaxLat, &c.MinLng, &c.MaxLng, &cfg); err != nil {
			return nil, err
		}
		var dc dispatchConfig
		if err := json.Unmarshal([]byte(cfg), &dc); err != nil {
			return nil, fmt.Errorf("sqlstore: city %s dispatch config: %w", c.Code, err)
		}
		c.RadiusStepsKm, c.WaveSize, c.MaxWaves = dc.RadiusStepsKm, dc.WaveSize, dc.MaxWaves
		out = append(out, &c)
	}
	return out, rows.Err()
}

type dispatchConfig struct {
	RadiusStepsKm []float64 `json:"radius_steps_km"`
	WaveSize      int       `json:"wave_size"`
	MaxWaves      int       `json:"max_waves"`
}

// FindServices returns every service.
func (db *DB) FindServices(ctx context.Context) ([]*smp.Service, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT code, name FROM services ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find services: %w", err)
	}
	defer rows.Close()
	var out []*smp.Service
	for rows.Next() {
		var s smp.Service
		if err := rows.Scan(&s.Code, &s.Name); err != nil {
			return nil, err
		}
		out = append(out, &s)
	}
	return out, rows.Err()
}

const techCols = `id, partner_id, name, city, skills, COALESCE(active_order_id, '')`

func scanTechnician(row scanner) (*smp.Technician, error) {
	var t smp.Technician
	var skills string
	if err := row.Scan(&t.ID, &t.PartnerID, &t.Name, &t.City, &skills, &t.ActiveOrderID); err != nil {
		return nil, err
	}
	if skills != "" {
		t.Skills = strings.Split(skills, ",")
	}
	return &t, nil
}

// FindTechnicianByID returns a technician (ENOTFOUND), fresh: callers use
// it to decide whether a technician is busy.
func (db *DB) FindTechnicianByID(ctx context.Context, id string) (*smp.Technician, error) {
	t, err := scanTechnician(db.fresh().QueryRowContext(ctx, `SELECT `+techCols+` FROM technicians WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "technician %s not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: find technician: %w", err)
	}
	return t, nil
}

// FindTechnicians lists a city's technicians ("" for all).
func (db *DB) FindTechnicians(ctx context.Context, city string) ([]*smp.Technician, error) {
	q, args := `SELECT `+techCols+` FROM technicians`, []any{}
	if city != "" {
		q, args = q+` WHERE city = ?`, append(args, city)
	}
	rows, err := db.reader().QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find technicians: %w", err)
	}
	defer rows.Close()
	var out []*smp.Technician
	for rows.Next() {
		t, err := scanTechnician(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// FindTokenOwner resolves a token hash.
func (db *DB) FindTokenOwner(ctx context.Context, tokenHash string) (string, string, smp.Role, error) {
	var kind, owner, role string
	err := db.fresh().QueryRowContext(ctx, `SELECT kind, owner_id, role FROM tokens WHERE token_hash = ?`, tokenHash).Scan(&kind, &owner, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", "", smp.Errorf(smp.EUNAUTHORIZED, "invalid token")
	} else if err != nil {
		return "", "", "", fmt.Errorf("sqlstore: find token: %w", err)
	}
	return kind, owner, smp.Role(role), nil
}

// FindFlags returns every flag's value, defaults included.
func (db *DB) FindFlags(ctx context.Context) (map[string]bool, error) {
	out := make(map[string]bool, len(smp.DefaultFlags))
	for k, v := range smp.DefaultFlags {
		out[k] = v
	}
	rows, err := db.fresh().QueryContext(ctx, `SELECT name, value FROM feature_flags`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find flags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var v bool
		if err := rows.Scan(&name, &v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, rows.Err()
}

// FindAudit lists audit entries, newest first.
func (db *DB) FindAudit(ctx context.Context, f smp.AuditFilter) ([]smp.AuditEntry, error) {
	var where []string
	var args []any
	if f.Target != "" {
		where, args = append(where, "target = ?"), append(args, f.Target)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	q := `SELECT id, at, actor, role, action, target, before_state, after_state, reason FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := db.reader().QueryContext(ctx, q+fmt.Sprintf(" ORDER BY id DESC LIMIT %d", limit), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find audit: %w", err)
	}
	defer rows.Close()
	var out []smp.AuditEntry
	for rows.Next() {
		var a smp.AuditEntry
		var at int64
		if err := rows.Scan(&a.ID, &at, &a.Actor, &a.Role, &a.Action, &a.Target, &a.Before, &a.After, &a.Reason); err != nil {
			return nil, err
		}
		a.At = fromMicros(at)
		out = append(out, a)
	}
	return out, rows.Err()
}
