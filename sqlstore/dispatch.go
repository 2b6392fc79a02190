package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"smp"
)

// The dispatch trace: waves and offers (smp.DispatchTraceStore; offer
// state updates are batched in offers.go).

var _ smp.DispatchTraceStore = (*DB)(nil)

// AddDispatchWave records a wave of a dispatch round. It is written
// behind (see offerBatch): sizes are checked now, the row shortly after.
func (db *DB) AddDispatchWave(ctx context.Context, w smp.DispatchWave) error {
	if err := checkSizes("add dispatch wave",
		chars("order_id", w.OrderID, 64),
		chars("note", w.Note, 500)); err != nil {
		return err
	}
	db.behind(traceWrite{wave: &w})
	return nil
}

func writeWave(ctx context.Context, tx *sql.Tx, d Dialect, w smp.DispatchWave) error {
	_, err := tx.ExecContext(ctx, d.Upsert("dispatch_waves", []string{"order_id", "round", "wave"},
		[]string{"order_id", "round", "wave", "radius_m", "started_at", "candidates", "note"}),
		w.OrderID, w.Round, w.Wave, w.RadiusM, micros(w.StartedAt), w.Candidates, w.Note)
	if err != nil {
		return fmt.Errorf("sqlstore: add dispatch wave: %w", err)
	}
	return nil
}

// AddOffers records sent invitations, written behind like the waves.
func (db *DB) AddOffers(ctx context.Context, offers []smp.OfferRecord) error {
	if len(offers) == 0 {
		return nil
	}
	for _, o := range offers {
		if err := checkSizes("add offers",
			chars("invitation_id", o.InvitationID, 64),
			chars("order_id", o.OrderID, 64),
			chars("technician_id", o.TechnicianID, 64),
			chars("rank_reason", o.RankReason, 500),
			chars("state", string(o.State), 16)); err != nil {
			return err
		}
	}
	db.behind(traceWrite{offers: slices.Clone(offers)})
	return nil
}

func writeOffers(ctx context.Context, tx *sql.Tx, offers []smp.OfferRecord) error {
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
	if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
		return fmt.Errorf("sqlstore: add offers: %w", err)
	}
	return nil
}

func (db *DB) FindDispatchTrace(ctx context.Context, orderID string) (*smp.DispatchTrace, error) {
	if err := db.flushOffers(ctx); err != nil { // read what was recorded
		return nil, err
	}
	tr := &smp.DispatchTrace{OrderID: orderID, Waves: []smp.DispatchWave{}, Offers: []smp.OfferRecord{}}
	// Waves and offers in one statement (the engine reads the trace at
	// every round): k 0 is a wave, 1 an offer.
	rows, err := db.fresh().QueryContext(ctx, `SELECT 0 AS k, round AS r, wave AS w, radius_m AS m, started_at AS a, candidates AS n, note AS txt,
		'' AS inv, '' AS tech, '' AS st, 0 AS exp, NULL AS dlv, NULL AS rsp FROM dispatch_waves WHERE order_id = ?
		UNION ALL SELECT 1, round, wave, distance_m, sent_at, offer_rank, rank_reason, invitation_id, technician_id, state, expires_at, delivered_at, responded_at
		FROM dispatch_offers WHERE order_id = ? ORDER BY k, r, w, n`, orderID, orderID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find trace: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, round, wave, n int
		var m float64
		var at, exp int64
		var txt, inv, tech, st string
		var delivered, responded sql.NullInt64
		if err := rows.Scan(&k, &round, &wave, &m, &at, &n, &txt, &inv, &tech, &st, &exp, &delivered, &responded); err != nil {
			return nil, err
		}
		if k == 0 {
			tr.Waves = append(tr.Waves, smp.DispatchWave{OrderID: orderID, Round: round, Wave: wave, RadiusM: m, StartedAt: fromMicros(at), Candidates: n, Note: txt})
			continue
		}
		tr.Offers = append(tr.Offers, smp.OfferRecord{OrderID: orderID, InvitationID: inv, TechnicianID: tech, Round: round, Wave: wave, Rank: n, DistanceM: m,
			RankReason: txt, State: smp.InvitationState(st), SentAt: fromMicros(at), ExpiresAt: fromMicros(exp), DeliveredAt: nullMicros(delivered), RespondedAt: nullMicros(responded)})
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
