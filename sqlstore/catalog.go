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
// (smp.CatalogStore, smp.CatalogWriter), their onboarding writes and the
// technician claim (smp.CatalogTx).

var (
	_ smp.CatalogStore  = (*DB)(nil)
	_ smp.CatalogWriter = (*DB)(nil)
	_ smp.CatalogTx     = (*Tx)(nil)
)

func status(s smp.CatalogStatus) string {
	if s == "" {
		return string(smp.StatusActive)
	}
	return string(s)
}

// nullPhone stores an empty phone as NULL: the unique index then allows
// any number of records without one (those created before onboarding).
func nullPhone(p string) any {
	if p == "" {
		return nil
	}
	return p
}

// notFound turns sql.ErrNoRows into ENOTFOUND.
func notFound(err error, what, key string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return smp.Errorf(smp.ENOTFOUND, "%s %s not found", what, key)
	} else if err != nil {
		return fmt.Errorf("sqlstore: find %s: %w", what, err)
	}
	return nil
}

// ---- cities

const cityCols = `code, name, min_lat, max_lat, min_lng, max_lng, dispatch_config, lat, lng, status`

type dispatchConfig struct {
	RadiusStepsKm []float64 `json:"radius_steps_km"`
	WaveSize      int       `json:"wave_size"`
	MaxWaves      int       `json:"max_waves"`
}

func scanCity(row scanner) (*smp.City, error) {
	var c smp.City
	var cfg, st string
	if err := row.Scan(&c.Code, &c.Name, &c.MinLat, &c.MaxLat, &c.MinLng, &c.MaxLng, &cfg, &c.Lat, &c.Lng, &st); err != nil {
		return nil, err
	}
	var dc dispatchConfig
	if err := json.Unmarshal([]byte(cfg), &dc); err != nil {
		return nil, fmt.Errorf("sqlstore: city %s dispatch config: %w", c.Code, err)
	}
	c.RadiusStepsKm, c.WaveSize, c.MaxWaves, c.Status = dc.RadiusStepsKm, dc.WaveSize, dc.MaxWaves, smp.CatalogStatus(st)
	return &c, nil
}

func cityArgs(c *smp.City) ([]any, error) {
	if err := checkSizes("write city",
		chars("code", c.Code, 16),
		chars("name", c.Name, 100),
		chars("status", string(c.Status), 16)); err != nil {
		return nil, err
	}
	cfg, _ := json.Marshal(dispatchConfig{RadiusStepsKm: c.RadiusStepsKm, WaveSize: c.WaveSize, MaxWaves: c.MaxWaves})
	if err := checkSizes("write city", text("dispatch_config", string(cfg), maxText)); err != nil {
		return nil, err
	}
	return []any{c.Code, c.Name, c.MinLat, c.MaxLat, c.MinLng, c.MaxLng, string(cfg), c.Lat, c.Lng, status(c.Status)}, nil
}

// FindCities returns every city.
func (db *DB) FindCities(ctx context.Context) ([]*smp.City, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT `+cityCols+` FROM cities ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find cities: %w", err)
	}
	return collect(rows, scanCity)
}

// FindCityByCode returns a city (ENOTFOUND), fresh.
func (db *DB) FindCityByCode(ctx context.Context, code string) (*smp.City, error) {
	c, err := scanCity(db.fresh().QueryRowContext(ctx, `SELECT `+cityCols+` FROM cities WHERE code = ?`, code))
	return c, notFound(err, "city", code)
}

// UpsertCity creates or updates a city.
func (db *DB) UpsertCity(ctx context.Context, c *smp.City) error {
	args, err := cityArgs(c)
	if err != nil {
		return err
	}
	return db.exec(ctx, "upsert city", db.dialect.Upsert("cities", []string{"code"}, strings.Split(cityCols, ", ")), args...)
}

// CityForUpdate reads and locks a city.
func (tx *Tx) CityForUpdate(ctx context.Context, code string) (*smp.City, error) {
	c, err := scanCity(tx.tx.QueryRowContext(ctx, `SELECT `+cityCols+` FROM cities WHERE code = ?`+tx.db.dialect.ForUpdate, code))
	return c, notFound(err, "city", code)
}

// InsertCity creates a city (ECONFLICT).
func (tx *Tx) InsertCity(ctx context.Context, c *smp.City) error {
	args, err := cityArgs(c)
	if err != nil {
		return err
	}
	return tx.insert(ctx, "city", c.Code, `INSERT INTO cities (`+cityCols+`) VALUES (`+placeholders(10)+`)`, args...)
}

// UpdateCity replaces a city's fields (ENOTFOUND).
func (tx *Tx) UpdateCity(ctx context.Context, c *smp.City) error {
	args, err := cityArgs(c)
	if err != nil {
		return err
	}
	return tx.update(ctx, "city", c.Code, `UPDATE cities SET name = ?, min_lat = ?, max_lat = ?, min_lng = ?, max_lng = ?, dispatch_config = ?, lat = ?, lng = ?, status = ? WHERE code = ?`,
		append(args[1:], c.Code)...)
}

// ---- services

const serviceCols = `code, name, skill, price_vnd, commission_bp, status`

func scanService(row scanner) (*smp.Service, error) {
	var s smp.Service
	var st string
	if err := row.Scan(&s.Code, &s.Name, &s.Skill, &s.PriceVND, &s.Commission, &st); err != nil {
		return nil, err
	}
	s.Status = smp.CatalogStatus(st)
	return &s, nil
}

func serviceArgs(s *smp.Service) ([]any, error) {
	if err := checkSizes("write service",
		chars("code", s.Code, 64),
		chars("name", s.Name, 100),
		chars("skill", s.Skill, 64),
		chars("status", string(s.Status), 16)); err != nil {
		return nil, err
	}
	return []any{s.Code, s.Name, s.Skill, s.PriceVND, int64(s.Commission), status(s.Status)}, nil
}

// FindServices returns every service.
func (db *DB) FindServices(ctx context.Context) ([]*smp.Service, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT `+serviceCols+` FROM services ORDER BY code`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find services: %w", err)
	}
	return collect(rows, scanService)
}

// FindServiceByCode returns a service (ENOTFOUND), fresh.
func (db *DB) FindServiceByCode(ctx context.Context, code string) (*smp.Service, error) {
	s, err := scanService(db.fresh().QueryRowContext(ctx, `SELECT `+serviceCols+` FROM services WHERE code = ?`, code))
	return s, notFound(err, "service", code)
}

// UpsertService creates or updates a service.
func (db *DB) UpsertService(ctx context.Context, s *smp.Service) error {
	args, err := serviceArgs(s)
	if err != nil {
		return err
	}
	return db.exec(ctx, "upsert service", db.dialect.Upsert("services", []string{"code"}, strings.Split(serviceCols, ", ")), args...)
}

// ServiceForUpdate reads and locks a service.
func (tx *Tx) ServiceForUpdate(ctx context.Context, code string) (*smp.Service, error) {
	s, err := scanService(tx.tx.QueryRowContext(ctx, `SELECT `+serviceCols+` FROM services WHERE code = ?`+tx.db.dialect.ForUpdate, code))
	return s, notFound(err, "service", code)
}

// InsertService creates a service (ECONFLICT).
func (tx *Tx) InsertService(ctx context.Context, s *smp.Service) error {
	args, err := serviceArgs(s)
	if err != nil {
		return err
	}
	return tx.insert(ctx, "service", s.Code, `INSERT INTO services (`+serviceCols+`) VALUES (`+placeholders(6)+`)`, args...)
}

// UpdateService replaces a service's fields (ENOTFOUND).
func (tx *Tx) UpdateService(ctx context.Context, s *smp.Service) error {
	args, err := serviceArgs(s)
	if err != nil {
		return err
	}
	return tx.update(ctx, "service", s.Code, `UPDATE services SET name = ?, skill = ?, price_vnd = ?, commission_bp = ?, status = ? WHERE code = ?`,
		append(args[1:], s.Code)...)
}

// ---- partners

const partnerCols = `id, name, country, contact, status`

func scanPartner(row scanner) (*smp.Partner, error) {
	var p smp.Partner
	var st string
	if err := row.Scan(&p.ID, &p.Name, &p.Country, &p.Contact, &st); err != nil {
		return nil, err
	}
	p.Status = smp.CatalogStatus(st)
	return &p, nil
}

func partnerArgs(p *smp.Partner) ([]any, error) {
	country := p.Country
	if country == "" {
		country = "VN"
	}
	if err := checkSizes("write partner",
		chars("id", p.ID, 64),
		chars("name", p.Name, 200),
		chars("country", country, 2),
		chars("contact", p.Contact, 200),
		chars("status", string(p.Status), 16)); err != nil {
		return nil, err
	}
	return []any{p.ID, p.Name, country, p.Contact, status(p.Status)}, nil
}

// FindPartnerByID returns a partner (ENOTFOUND), fresh.
func (db *DB) FindPartnerByID(ctx context.Context, id string) (*smp.Partner, error) {
	p, err := scanPartner(db.fresh().QueryRowContext(ctx, `SELECT `+partnerCols+` FROM partners WHERE id = ?`, id))
	return p, notFound(err, "partner", id)
}

// FindPartners lists partners matching f.
func (db *DB) FindPartners(ctx context.Context, f smp.CatalogFilter) ([]*smp.Partner, error) {
	w := where{}
	w.add(f.Status != "", "status = ?", string(f.Status))
	w.add(f.Country != "", "country = ?", f.Country)
	w.add(f.Name != "", "name = ?", f.Name)
	w.add(f.After != "", "id > ?", f.After)
	rows, err := db.reader().QueryContext(ctx, `SELECT `+partnerCols+` FROM partners`+w.sql()+` ORDER BY id LIMIT ?`, append(w.args, f.PageLimit())...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find partners: %w", err)
	}
	return collect(rows, scanPartner)
}

// UpsertPartner creates or updates a partner.
func (db *DB) UpsertPartner(ctx context.Context, p *smp.Partner) error {
	args, err := partnerArgs(p)
	if err != nil {
		return err
	}
	return db.exec(ctx, "upsert partner", db.dialect.Upsert("partners", []string{"id"}, strings.Split(partnerCols, ", ")), args...)
}

// PartnerForUpdate reads and locks a partner.
func (tx *Tx) PartnerForUpdate(ctx context.Context, id string) (*smp.Partner, error) {
	p, err := scanPartner(tx.tx.QueryRowContext(ctx, `SELECT `+partnerCols+` FROM partners WHERE id = ?`+tx.db.dialect.ForUpdate, id))
	return p, notFound(err, "partner", id)
}

// InsertPartner creates a partner, allocating its id when empty.
func (tx *Tx) InsertPartner(ctx context.Context, p *smp.Partner) error {
	if _, err := partnerArgs(p); err != nil {
		return err
	}
	if p.ID == "" {
		id, err := tx.allocID(ctx, "partner", "partners", "P%03d")
		if err != nil {
			return err
		}
		p.ID = id
	}
	args, _ := partnerArgs(p)
	return tx.insert(ctx, "partner", p.ID, `INSERT INTO partners (`+partnerCols+`) VALUES (`+placeholders(5)+`)`, args...)
}

// UpdatePartner replaces a partner's fields (ENOTFOUND).
func (tx *Tx) UpdatePartner(ctx context.Context, p *smp.Partner) error {
	args, err := partnerArgs(p)
	if err != nil {
		return err
	}
	return tx.update(ctx, "partner", p.ID, `UPDATE partners SET name = ?, country = ?, contact = ?, status = ? WHERE id = ?`, append(args[1:], p.ID)...)
}

// ---- technicians

const techCols = `id, partner_id, name, city, skills, COALESCE(phone, ''), status, lat, lng, COALESCE(active_order_id, '')`

func scanTechnician(row scanner) (*smp.Technician, error) {
	var t smp.Technician
	var skills, st string
	if err := row.Scan(&t.ID, &t.PartnerID, &t.Name, &t.City, &skills, &t.Phone, &st, &t.Lat, &t.Lng, &t.ActiveOrderID); err != nil {
		return nil, err
	}
	if skills != "" {
		t.Skills = strings.Split(skills, ",")
	}
	t.Status = smp.CatalogStatus(st)
	return &t, nil
}

// techArgs returns id, partner_id, name, city, skills, phone, status, lat, lng.
func techArgs(t *smp.Technician) ([]any, error) {
	skills := strings.Join(t.Skills, ",")
	if err := checkSizes("write technician",
		chars("id", t.ID, 64),
		chars("partner_id", t.PartnerID, 64),
		chars("name", t.Name, 200),
		chars("city", t.City, 16),
		chars("skills", skills, 500),
		chars("phone", t.Phone, 16),
		chars("status", string(t.Status), 16)); err != nil {
		return nil, err
	}
	return []any{t.ID, t.PartnerID, t.Name, t.City, skills, nullPhone(t.Phone), status(t.Status), t.Lat, t.Lng}, nil
}

const techWriteCols = "id, partner_id, name, city, skills, phone, status, lat, lng"

// FindTechnicianByID returns a technician (ENOTFOUND), fresh: callers use
// it to decide whether a technician is busy.
func (db *DB) FindTechnicianByID(ctx context.Context, id string) (*smp.Technician, error) {
	t, err := scanTechnician(db.fresh().QueryRowContext(ctx, `SELECT `+techCols+` FROM technicians WHERE id = ?`, id))
	return t, notFound(err, "technician", id)
}

// FindTechniciansByID returns the technicians with ids, fresh, by id.
func (db *DB) FindTechniciansByID(ctx context.Context, ids ...string) (map[string]*smp.Technician, error) {
	out := map[string]*smp.Technician{}
	for len(ids) > 0 {
		batch := ids[:min(len(ids), 500)]
		ids = ids[len(batch):]
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		rows, err := db.fresh().QueryContext(ctx, `SELECT `+techCols+` FROM technicians WHERE id IN (`+placeholders(len(batch))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find technicians by id: %w", err)
		}
		ts, err := collect(rows, scanTechnician)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find technicians by id: %w", err)
		}
		for _, t := range ts {
			out[t.ID] = t
		}
	}
	return out, nil
}

// FindTechnicianByPhone returns a technician by phone (ENOTFOUND), fresh.
func (db *DB) FindTechnicianByPhone(ctx context.Context, phone string) (*smp.Technician, error) {
	if phone == "" {
		return nil, smp.Errorf(smp.ENOTFOUND, "no technician without a phone")
	}
	t, err := scanTechnician(db.fresh().QueryRowContext(ctx, `SELECT `+techCols+` FROM technicians WHERE phone = ?`, phone))
	return t, notFound(err, "technician with phone", phone)
}

// FindTechnicians lists technicians matching f.
func (db *DB) FindTechnicians(ctx context.Context, f smp.CatalogFilter) ([]*smp.Technician, error) {
	w := where{}
	w.add(f.Status != "", "status = ?", string(f.Status))
	w.add(f.City != "", "city = ?", f.City)
	w.add(f.PartnerID != "", "partner_id = ?", f.PartnerID)
	w.add(f.Skill != "", "INSTR(CONCAT(',', skills, ','), ?) > 0", ","+f.Skill+",")
	w.add(f.After != "", "id > ?", f.After)
	rows, err := db.reader().QueryContext(ctx, `SELECT `+techCols+` FROM technicians`+w.sql()+` ORDER BY id LIMIT ?`, append(w.args, f.PageLimit())...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find technicians: %w", err)
	}
	return collect(rows, scanTechnician)
}

// UpsertTechnician creates or updates a technician (not their active order).
func (db *DB) UpsertTechnician(ctx context.Context, t *smp.Technician) error {
	args, err := techArgs(t)
	if err != nil {
		return err
	}
	_, err = db.execWrite(ctx, db.dialect.Upsert("technicians", []string{"id"}, strings.Split(techWriteCols, ", ")), args...)
	if isUniqueViolation(err) {
		return smp.Errorf(smp.ECONFLICT, "phone %s belongs to another technician", t.Phone)
	} else if err != nil {
		return fmt.Errorf("sqlstore: upsert technician: %w", err)
	}
	return nil
}

// TechnicianForUpdate reads and locks a technician.
func (tx *Tx) TechnicianForUpdate(ctx context.Context, id string) (*smp.Technician, error) {
	t, err := scanTechnician(tx.tx.QueryRowContext(ctx, `SELECT `+techCols+` FROM technicians WHERE id = ?`+tx.db.dialect.ForUpdate, id))
	return t, notFound(err, "technician", id)
}

// InsertTechnician creates a technician, allocating its id when empty.
func (tx *Tx) InsertTechnician(ctx context.Context, t *smp.Technician) error {
	if _, err := techArgs(t); err != nil {
		return err
	}
	if t.ID == "" {
		id, err := tx.allocID(ctx, "technician", "technicians", "T%04d")
		if err != nil {
			return err
		}
		t.ID = id
	}
	args, _ := techArgs(t)
	return tx.insert(ctx, "technician", t.ID+" or phone "+t.Phone, `INSERT INTO technicians (`+techWriteCols+`) VALUES (`+placeholders(9)+`)`, args...)
}

// UpdateTechnician replaces a technician's fields (not their active order).
func (tx *Tx) UpdateTechnician(ctx context.Context, t *smp.Technician) error {
	args, err := techArgs(t)
	if err != nil {
		return err
	}
	err = tx.update(ctx, "technician", t.ID, `UPDATE technicians SET partner_id = ?, name = ?, city = ?, skills = ?, phone = ?, status = ?, lat = ?, lng = ? WHERE id = ?`,
		append(args[1:], t.ID)...)
	if smp.ErrorCode(err) == smp.ECONFLICT {
		return smp.Errorf(smp.ECONFLICT, "phone %s belongs to another technician", t.Phone)
	}
	return err
}

// ---- customers

const customerCols = `id, name, COALESCE(phone, ''), status`

func scanCustomer(row scanner) (*smp.Customer, error) {
	var c smp.Customer
	var st string
	if err := row.Scan(&c.ID, &c.Name, &c.Phone, &st); err != nil {
		return nil, err
	}
	c.Status = smp.CatalogStatus(st)
	return &c, nil
}

func customerArgs(c *smp.Customer) ([]any, error) {
	if err := checkSizes("write customer",
		chars("id", c.ID, 64),
		chars("name", c.Name, 200),
		chars("phone", c.Phone, 16),
		chars("status", string(c.Status), 16)); err != nil {
		return nil, err
	}
	return []any{c.ID, c.Name, nullPhone(c.Phone), status(c.Status)}, nil
}

const customerWriteCols = "id, name, phone, status"

// FindCustomerByID returns a customer (ENOTFOUND), fresh.
func (db *DB) FindCustomerByID(ctx context.Context, id string) (*smp.Customer, error) {
	c, err := scanCustomer(db.fresh().QueryRowContext(ctx, `SELECT `+customerCols+` FROM customers WHERE id = ?`, id))
	return c, notFound(err, "customer", id)
}

// FindCustomerByPhone returns a customer by phone (ENOTFOUND), fresh.
func (db *DB) FindCustomerByPhone(ctx context.Context, phone string) (*smp.Customer, error) {
	if phone == "" {
		return nil, smp.Errorf(smp.ENOTFOUND, "no customer without a phone")
	}
	c, err := scanCustomer(db.fresh().QueryRowContext(ctx, `SELECT `+customerCols+` FROM customers WHERE phone = ?`, phone))
	return c, notFound(err, "customer with phone", phone)
}

// FindCustomers lists customers matching f.
func (db *DB) FindCustomers(ctx context.Context, f smp.CatalogFilter) ([]*smp.Customer, error) {
	w := where{}
	w.add(f.Status != "", "status = ?", string(f.Status))
	w.add(f.Name != "", "name = ?", f.Name)
	w.add(f.After != "", "id > ?", f.After)
	rows, err := db.reader().QueryContext(ctx, `SELECT `+customerCols+` FROM customers`+w.sql()+` ORDER BY id LIMIT ?`, append(w.args, f.PageLimit())...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find customers: %w", err)
	}
	return collect(rows, scanCustomer)
}

// UpsertCustomer creates or updates a customer.
func (db *DB) UpsertCustomer(ctx context.Context, c *smp.Customer) error {
	args, err := customerArgs(c)
	if err != nil {
		return err
	}
	_, err = db.execWrite(ctx, db.dialect.Upsert("customers", []string{"id"}, strings.Split(customerWriteCols, ", ")), args...)
	if isUniqueViolation(err) {
		return smp.Errorf(smp.ECONFLICT, "phone %s belongs to another customer", c.Phone)
	} else if err != nil {
		return fmt.Errorf("sqlstore: upsert customer: %w", err)
	}
	return nil
}

// CustomerForUpdate reads and locks a customer.
func (tx *Tx) CustomerForUpdate(ctx context.Context, id string) (*smp.Customer, error) {
	c, err := scanCustomer(tx.tx.QueryRowContext(ctx, `SELECT `+customerCols+` FROM customers WHERE id = ?`+tx.db.dialect.ForUpdate, id))
	return c, notFound(err, "customer", id)
}

// InsertCustomer creates a customer, allocating its id when empty.
func (tx *Tx) InsertCustomer(ctx context.Context, c *smp.Customer) error {
	if _, err := customerArgs(c); err != nil {
		return err
	}
	if c.ID == "" {
		id, err := tx.allocID(ctx, "customer", "customers", "C%04d")
		if err != nil {
			return err
		}
		c.ID = id
	}
	args, _ := customerArgs(c)
	return tx.insert(ctx, "customer", c.ID+" or phone "+c.Phone, `INSERT INTO customers (`+customerWriteCols+`) VALUES (`+placeholders(4)+`)`, args...)
}

// UpdateCustomer replaces a customer's fields (ENOTFOUND, ECONFLICT).
func (tx *Tx) UpdateCustomer(ctx context.Context, c *smp.Customer) error {
	args, err := customerArgs(c)
	if err != nil {
		return err
	}
	err = tx.update(ctx, "customer", c.ID, `UPDATE customers SET name = ?, phone = ?, status = ? WHERE id = ?`, append(args[1:], c.ID)...)
	if smp.ErrorCode(err) == smp.ECONFLICT {
		return smp.Errorf(smp.ECONFLICT, "phone %s belongs to another customer", c.Phone)
	}
	return err
}

// ---- helpers

// allocID returns the next free id of a kind ("P%03d" → P001, P002, …).
// The counter row's lock (UPDATE first) serializes allocations across
// processes until the tx ends; ids taken by explicit inserts (an import
// naming P001) are skipped.
func (tx *Tx) allocID(ctx context.Context, counter, table, format string) (string, error) {
	for range 100000 {
		if _, err := tx.tx.ExecContext(ctx, `UPDATE id_counters SET value = value + 1 WHERE name = ?`, counter); err != nil {
			return "", fmt.Errorf("sqlstore: allocate %s id: %w", counter, err)
		}
		var n int64
		if err := tx.tx.QueryRowContext(ctx, `SELECT value FROM id_counters WHERE name = ?`, counter).Scan(&n); err != nil {
			return "", fmt.Errorf("sqlstore: allocate %s id: %w", counter, err)
		}
		id := fmt.Sprintf(format, n)
		var one int
		err := tx.tx.QueryRowContext(ctx, `SELECT 1 FROM `+table+` WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return id, nil
		} else if err != nil {
			return "", fmt.Errorf("sqlstore: allocate %s id: %w", counter, err)
		}
	}
	return "", fmt.Errorf("sqlstore: allocate %s id: no free id", counter)
}

// insert runs an INSERT: ECONFLICT on a unique key.
func (tx *Tx) insert(ctx context.Context, what, key, q string, args ...any) error {
	_, err := tx.tx.ExecContext(ctx, q, args...)
	if isUniqueViolation(err) {
		return smp.Errorf(smp.ECONFLICT, "%s %s exists", what, key)
	} else if err != nil {
		return fmt.Errorf("sqlstore: insert %s: %w", what, err)
	}
	return nil
}

// update runs an UPDATE of one row by key: ENOTFOUND when no row has the
// key, ECONFLICT on a unique key. MySQL counts changed rows, not matched
// ones, so a row written unchanged is told from a missing one by a read.
func (tx *Tx) update(ctx context.Context, what, key, q string, args ...any) error {
	res, err := tx.tx.ExecContext(ctx, q, args...)
	if isUniqueViolation(err) {
		return smp.Errorf(smp.ECONFLICT, "%s %s: a unique value is taken", what, key)
	} else if err != nil {
		return fmt.Errorf("sqlstore: update %s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	var one int
	err = tx.tx.QueryRowContext(ctx, keyQuery[what], key).Scan(&one)
	return notFound(err, what, key)
}

var keyQuery = map[string]string{
	"city":       `SELECT 1 FROM cities WHERE code = ?`,
	"service":    `SELECT 1 FROM services WHERE code = ?`,
	"partner":    `SELECT 1 FROM partners WHERE id = ?`,
	"technician": `SELECT 1 FROM technicians WHERE id = ?`,
	"customer":   `SELECT 1 FROM customers WHERE id = ?`,
}

// where builds a WHERE clause of ANDed conditions.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(ok bool, cond string, arg any) {
	if ok {
		w.conds, w.args = append(w.conds, cond), append(w.args, arg)
	}
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func collect[T any](rows *sql.Rows, scan func(scanner) (*T, error)) ([]*T, error) {
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
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
