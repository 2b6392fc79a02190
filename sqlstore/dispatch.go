package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"smp"
)

// AddDispatchWave records a wave of a dispatch round.
func (db *DB) AddDispatchWave(ctx context.Context, w smp.DispatchWave) error {
	_, err := db.write.ExecContext(ctx, db.dialect.Upsert("dispatch_waves", []string{"order_id", "round", "wave"},
		[]string{"order_id", "round", "wave", "radius_m", "started_at", "candidates", "note"}),
		w.OrderID, w.Round, w.Wave, w.RadiusM, micros(w.StartedAt), w.Candidates, w.Note)
	if err != nil {
		return fmt.Errorf("sqlstore: add dispatch wave: %w", err)
	}
	return nil
}

// AddOffers records sent invitations.
func (db *DB) AddOffers(ctx context.Context, offers []smp.OfferRecord) error {
	if len(offers) == 0 {
		return nil
	}
	var sb strings.Builder
	sb.WriteString(`INSERT INTO dispatch_offers (invitation_id, order_id, technician_id, round, wave, offer_rank, distance_m, rank_reason, state, sent_at, expires_at) VALUES `)
	args := make([]any, 0, len(offers)*11)
	for i, o := range offers {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString("(?,?,?,?,?,?,?,?,?,?,?)")
		args = append(args, o.InvitationID, o.OrderID, o.TechnicianID, o.Round, o.Wave, o.Rank, o.DistanceM, o.RankReason, o.State, micros(o.SentAt), micros(o.ExpiresAt))
	}
	if _, err := db.write.ExecContext(ctx, sb.String(), args...); err != nil {
		return fmt.Errorf("sqlstore: add offers: %w", err)
	}
	return nil
}

func (db *DB) FindDispatchTrace(ctx context.Context, orderID string) (*smp.DispatchTrace, error) {
	if err := db.flushOffers(ctx); err != nil { // read what was recorded
		return nil, err
	}
	tr := &smp.DispatchTrace{OrderID: orderID, Waves: []smp.DispatchWave{}, Offers: []smp.OfferRecord{}}
	rows, err := db.fresh().QueryContext(ctx, `SELECT round, wave, radius_m, started_at, candidates, note FROM dispatch_waves WHERE order_id = ? ORDER BY round, wave`, orderID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find waves: %w", err)
	}
	for rows.Next() {
		w := smp.DispatchWave{OrderID: orderID}
		var at int64
		if err := rows.Scan(&w.Round, &w.Wave, &w.RadiusM, &at, &w.Candidates, &w.Note); err != nil {
			rows.Close()
			return nil, err
		}
		w.StartedAt = fromMicros(at)
		tr.Waves = append(tr.Waves, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = db.fresh().QueryContext(ctx, `SELECT invitation_id, technician_id, round, wave, offer_rank, distance_m, rank_reason, state, sent_at, expires_at, delivered_at, responded_at
		FROM dispatch_offers WHERE order_id = ? ORDER BY round, wave, offer_rank`, orderID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find offers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		o := smp.OfferRecord{OrderID: orderID}
		var sent, exp int64
		var delivered, responded sql.NullInt64
		if err := rows.Scan(&o.InvitationID, &o.TechnicianID, &o.Round, &o.Wave, &o.Rank, &o.DistanceM, &o.RankReason, &o.State, &sent, &exp, &delivered, &responded); err != nil {
			return nil, err
		}
		o.SentAt, o.ExpiresAt = fromMicros(sent), fromMicros(exp)
		o.DeliveredAt, o.RespondedAt = nullMicros(delivered), nullMicros(responded)
		tr.Offers = append(tr.Offers, o)
	}
	return tr, rows.Err()
}

// DeclinedBy lists the technicians who declined an order.
func (db *DB) DeclinedBy(ctx context.Context, orderID string) ([]string, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT DISTINCT technician_id FROM dispatch_offers WHERE order_id = ? AND state = ?`, orderID, smp.InvitationDeclined)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: declined by: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// FetchOutbox returns unpublished events in commit order.
func (db *DB) FetchOutbox(ctx context.Context, limit int) ([]smp.OutboxRecord, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT id, payload, created_at FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: fetch outbox: %w", err)
	}
	defer rows.Close()
	var out []smp.OutboxRecord
	for rows.Next() {
		var r smp.OutboxRecord
		var payload string
		var at int64
		if err := rows.Scan(&r.ID, &payload, &at); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(payload), &r.Event); err != nil {
			return nil, fmt.Errorf("sqlstore: outbox %d: %w", r.ID, err)
		}
		r.CreatedAt = fromMicros(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// MarkOutboxPublished marks events as handed to the bus.
func (db *DB) MarkOutboxPublished(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{micros(at)}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := db.write.ExecContext(ctx, `UPDATE outbox SET published_at = ? WHERE id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return fmt.Errorf("sqlstore: mark published: %w", err)
	}
	return nil
}

// OutboxBacklog returns the number of unpublished events and the oldest one's time.
func (db *DB) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	var n int64
	var oldest sql.NullInt64
	err := db.reader().QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM outbox WHERE published_at IS NULL`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("sqlstore: outbox backlog: %w", err)
	}
	return n, fromMicros(oldest.Int64), nil
}

// UpsertCity creates or updates a city.
func (db *DB) UpsertCity(ctx context.Context, c *smp.City) error {
	cfg, _ := json.Marshal(dispatchConfig{RadiusStepsKm: c.RadiusStepsKm, WaveSize: c.WaveSize, MaxWaves: c.MaxWaves})
	return db.exec(ctx, "upsert city", db.dialect.Upsert("cities", []string{"code"}, []string{"code", "name", "min_lat", "max_lat", "min_lng", "max_lng", "dispatch_config"}),
		c.Code, c.Name, c.MinLat, c.MaxLat, c.MinLng, c.MaxLng, string(cfg))
}

// UpsertService creates or updates a service.
func (db *DB) UpsertService(ctx context.Context, s *smp.Service) error {
	return db.exec(ctx, "upsert service", db.dialect.Upsert("services", []string{"code"}, []string{"code", "name"}), s.Code, s.Name)
}

// UpsertPartner creates or updates a partner.
func (db *DB) UpsertPartner(ctx context.Context, p *smp.Partner) error {
	return db.exec(ctx, "upsert partner", db.dialect.Upsert("partners", []string{"id"}, []string{"id", "name"}), p.ID, p.Name)
}

// UpsertTechnician creates or updates a technician (not their active order).
func (db *DB) UpsertTechnician(ctx context.Context, t *smp.Technician) error {
	return db.exec(ctx, "upsert technician", db.dialect.Upsert("technicians", []string{"id"}, []string{"id", "partner_id", "name", "city", "skills"}),
		t.ID, t.PartnerID, t.Name, t.City, strings.Join(t.Skills, ","))
}

// UpsertCustomer creates or updates a customer.
func (db *DB) UpsertCustomer(ctx context.Context, c *smp.Customer) error {
	return db.exec(ctx, "upsert customer", db.dialect.Upsert("customers", []string{"id"}, []string{"id", "name"}), c.ID, c.Name)
}

// PutToken stores a token hash.
func (db *DB) PutToken(ctx context.Context, tokenHash, kind, ownerID string, role smp.Role) error {
	return db.exec(ctx, "put token", db.dialect.Upsert("tokens", []string{"token_hash"}, []string{"token_hash", "kind", "owner_id", "role"}),
		tokenHash, kind, ownerID, string(role))
}

func (db *DB) exec(ctx context.Context, what, q string, args ...any) error {
	if _, err := db.write.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	return nil
}

// IsProcessed reports whether consumer already handled eventID (read on
// the primary: a replica could answer no for an event just handled).
func (db *DB) IsProcessed(ctx context.Context, consumer, eventID string) (bool, error) {
	var n int
	err := db.fresh().QueryRowContext(ctx, `SELECT COUNT(*) FROM processed_events WHERE consumer = ? AND event_id = ?`, consumer, eventID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlstore: is processed: %w", err)
	}
	return n > 0, nil
}
