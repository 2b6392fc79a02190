package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"smp"
)

// The catalogue: cities, services, partners, technicians, customers
// (smp.CatalogStore, smp.CatalogWriter) and the technician claim (smp.CatalogTx).

var (
	_ smp.CatalogStore  = (*DB)(nil)
	_ smp.CatalogWriter = (*DB)(nil)
	_ smp.CatalogTx     = (*Tx)(nil)
)

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

// UpsertCity creates or updates a city.
func (db *DB) UpsertCity(ctx context.Context, c *smp.City) error {
	if err := checkSizes("upsert city",
		chars("code", c.Code, 16),
		chars("name", c.Name, 100)); err != nil {
		return err
	}
	cfg, _ := json.Marshal(dispatchConfig{RadiusStepsKm: c.RadiusStepsKm, WaveSize: c.WaveSize, MaxWaves: c.MaxWaves})
	return db.exec(ctx, "upsert city", db.dialect.Upsert("cities", []string{"code"}, []string{"code", "name", "min_lat", "max_lat", "min_lng", "max_lng", "dispatch_config"}),
		c.Code, c.Name, c.MinLat, c.MaxLat, c.MinLng, c.MaxLng, string(cfg))
}

// UpsertService creates or updates a service.
func (db *DB) UpsertService(ctx context.Context, s *smp.Service) error {
	if err := checkSizes("upsert service",
		chars("code", s.Code, 64),
		chars("name", s.Name, 100)); err != nil {
		return err
	}
	return db.exec(ctx, "upsert service", db.dialect.Upsert("services", []string{"code"}, []string{"code", "name"}), s.Code, s.Name)
}

// UpsertPartner creates or updates a partner.
func (db *DB) UpsertPartner(ctx context.Context, p *smp.Partner) error {
	if err := checkSizes("upsert partner",
		chars("id", p.ID, 64),
		chars("name", p.Name, 200)); err != nil {
		return err
	}
	return db.exec(ctx, "upsert partner", db.dialect.Upsert("partners", []string{"id"}, []string{"id", "name"}), p.ID, p.Name)
}

// UpsertTechnician creates or updates a technician (not their active order).
func (db *DB) UpsertTechnician(ctx context.Context, t *smp.Technician) error {
	skills := strings.Join(t.Skills, ",")
	if err := checkSizes("upsert technician",
		chars("id", t.ID, 64),
		chars("partner_id", t.PartnerID, 64),
		chars("name", t.Name, 200),
		chars("city", t.City, 16),
		chars("skills", skills, 500)); err != nil {
		return err
	}
	return db.exec(ctx, "upsert technician", db.dialect.Upsert("technicians", []string{"id"}, []string{"id", "partner_id", "name", "city", "skills"}),
		t.ID, t.PartnerID, t.Name, t.City, skills)
}

// UpsertCustomer creates or updates a customer.
func (db *DB) UpsertCustomer(ctx context.Context, c *smp.Customer) error {
	if err := checkSizes("upsert customer",
		chars("id", c.ID, 64),
		chars("name", c.Name, 200)); err != nil {
		return err
	}
	return db.exec(ctx, "upsert customer", db.dialect.Upsert("customers", []string{"id"}, []string{"id", "name"}), c.ID, c.Name)
}

// ClaimTechnician sets the technician's active order if they hold none.
func (tx *Tx) ClaimTechnician(ctx context.Context, technicianID, orderID string) error {
	if err := checkSizes("claim technician",
		chars("order_id", orderID, 64)); err != nil {
		return err
	}
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
