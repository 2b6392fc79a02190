package readmodel

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"smp"
)

// watermarks are each table's updated_at: the column a row's last change
// sets.
var watermarks = map[string]string{"orders": "stage_changed_at", "order_transitions": "at"}

// TableDrift is one table in a drift report.
type TableDrift struct {
	Table     string `json:"table"`
	Rows      int64  `json:"rows"`
	Documents int64  `json:"documents"`
	// WatermarkDB and WatermarkIndex are max(updated_at) of the rows and of
	// the documents (Unix microseconds).
	WatermarkDB    int64    `json:"watermark_db"`
	WatermarkIndex int64    `json:"watermark_index"`
	Missing        []string `json:"missing"`    // rows without a document
	Extra          []string `json:"extra"`      // documents without a row
	Sampled        int      `json:"sampled"`    // ids compared field by field
	Mismatched     []string `json:"mismatched"` // of the sample, documents that differ
	// DriftRatio is (missing + extra + mismatched) / rows.
	DriftRatio float64 `json:"drift_ratio"`
}

// DriftReport is what the drift check found (and, with a repair, what it
// found again after).
type DriftReport struct {
	CheckedAt time.Time    `json:"checked_at"`
	Position  int64        `json:"position"` // the database snapshot's source position
	Tables    []TableDrift `json:"tables"`
	// Drifted: some table above 0.1 % (the alert's threshold).
	Drifted bool `json:"drifted"`
	// Connectors are the source's and the sink's states; DeadLetters the
	// sink's dead-letter topic's depth.
	Connectors  map[string]string `json:"connectors"`
	DeadLetters int               `json:"dead_letters"`
	LagSeconds  float64           `json:"lag_seconds"`
	Repaired    int               `json:"repaired"`
	After       *DriftReport      `json:"after,omitempty"`
}

// DriftThreshold is the runbook's: drift above 0.1 % alerts.
const DriftThreshold = 0.001

// Total is how many ids drifted in all.
func (r *DriftReport) Total() int {
	n := 0
	for _, t := range r.Tables {
		n += len(t.Missing) + len(t.Extra) + len(t.Mismatched)
	}
	return n
}

type tableScan struct {
	rows map[string][]byte
}

// Check compares every captured table with its documents: counts, ids
// (missing, extra), max(updated_at) watermarks, and a sample of Sample
// random ids field by field. With repair, each drifted id is written again
// from the database (a re-upsert at the snapshot's position, or a delete
// for an extra document: a newer change still wins) and the check runs
// again (After). smp_readmodel_drift_ratio{table} is set from what it
// found first. EUNAVAILABLE without a database snapshot.
func (s *Service) Check(ctx context.Context, repair bool) (*DriftReport, error) {
	r, err := s.check(ctx, repair)
	switch {
	case err != nil:
		s.checks.WithLabelValues("failed").Inc()
	case r.Total() == 0:
		s.checks.WithLabelValues("clean").Inc()
	case r.After != nil && r.After.Total() == 0:
		s.checks.WithLabelValues("repaired").Inc()
	default:
		s.checks.WithLabelValues("drift_left").Inc()
	}
	return r, err
}

func (s *Service) check(ctx context.Context, repair bool) (*DriftReport, error) {
	r, scans, err := s.confirmedScan(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range r.Tables {
		s.drift.WithLabelValues(t.Table).Set(t.DriftRatio)
	}
	if !repair || r.Total() == 0 {
		return r, nil
	}
	var ops []smp.IndexOp
	for _, t := range r.Tables {
		rows := scans[t.Table].rows
		for _, id := range append(slices.Clone(t.Missing), t.Mismatched...) {
			ops = append(ops, smp.IndexOp{Index: t.Table, ID: id, Version: r.Position, Source: rows[id]})
		}
		for _, id := range t.Extra {
			ops = append(ops, smp.IndexOp{Index: t.Table, ID: id, Version: r.Position, Delete: true})
		}
	}
	for len(ops) > 0 {
		n := min(len(ops), 500)
		res, err := s.cfg.Index.Bulk(ctx, ops[:n])
		if err != nil {
			return r, err
		}
		for _, x := range res {
			if x.Status == smp.IndexApplied {
				r.Repaired++
			}
		}
		ops = ops[n:]
	}
	s.cfg.Logger.Warn("read model drift repaired", "job", JobName, "drifted", r.Total(), "repaired", r.Repaired)
	after, _, err := s.confirmedScan(ctx)
	if err != nil {
		return r, err
	}
	r.After = after
	return r, nil
}

// confirmedScan scans; when something drifted, it waits for the sink to
// catch up (changes in flight are not drift) and scans again, keeping
// only what drifted both times.
func (s *Service) confirmedScan(ctx context.Context) (*DriftReport, map[string]*tableScan, error) {
	first, _, err := s.scan(ctx)
	if err != nil || first.Total() == 0 {
		return first, nil, err
	}
	s.settle(ctx)
	r, scans, err := s.scan(ctx)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, t := range first.Tables {
		for _, ids := range [][]string{t.Missing, t.Extra, t.Mismatched} {
			for _, id := range ids {
				seen[t.Table+"/"+id] = true
			}
		}
	}
	r.Drifted = false
	for i := range r.Tables {
		t := &r.Tables[i]
		keep := func(ids []string) []string {
			return slices.DeleteFunc(ids, func(id string) bool { return !seen[t.Table+"/"+id] })
		}
		t.Missing, t.Extra, t.Mismatched = keep(t.Missing), keep(t.Extra), keep(t.Mismatched)
		t.DriftRatio = float64(len(t.Missing)+len(t.Extra)+len(t.Mismatched)) / float64(max(t.Rows, 1))
		if t.DriftRatio > DriftThreshold {
			r.Drifted = true
		}
	}
	return r, scans, nil
}

// settle waits (at most SettleTimeout) until the sink has nothing left to
// read, twice in a row.
func (s *Service) settle(ctx context.Context) {
	if s.cfg.Sink == nil {
		return
	}
	deadline := time.Now().Add(s.cfg.SettleTimeout)
	zeros := 0
	for zeros < 2 && time.Now().Before(deadline) {
		if lag, err := s.cfg.Sink.Lag(ctx); err == nil && lag == 0 {
			zeros++
		} else {
			zeros = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scan makes one report, without repairing.
func (s *Service) scan(ctx context.Context) (*DriftReport, map[string]*tableScan, error) {
	if s.cfg.Rows == nil {
		return nil, nil, smp.Errorf(smp.EUNAVAILABLE, "%s: the database snapshot is not available on this backend", JobName)
	}
	r := &DriftReport{CheckedAt: s.cfg.Now().UTC(), Connectors: map[string]string{}, LagSeconds: s.lag(ctx)}
	scans := map[string]*tableScan{}
	for _, t := range Tables {
		scans[t] = &tableScan{rows: map[string][]byte{}}
	}
	var err error
	r.Position, err = s.cfg.Rows.SnapshotTables(ctx, func(table string, key, row []byte) error {
		ts := scans[table]
		if ts == nil {
			return nil
		}
		id, err := DocID(key)
		if err != nil {
			return err
		}
		ts.rows[id] = slices.Clone(row)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, table := range Tables {
		ts := scans[table]
		d := TableDrift{Table: table, Rows: int64(len(ts.rows)), Missing: []string{}, Extra: []string{}, Mismatched: []string{}}
		ids := make([]string, 0, len(ts.rows))
		for id, row := range ts.rows {
			ids = append(ids, id)
			d.WatermarkDB = max(d.WatermarkDB, watermark(table, row))
		}
		slices.Sort(ids)
		// A sample of random ids, compared field by field below.
		sample := map[string]bool{}
		for _, i := range s.cfg.Rand.Perm(len(ids))[:min(len(ids), s.cfg.Sample)] {
			sample[ids[i]] = true
		}
		d.Sampled = len(sample)
		seen := map[string]bool{}
		err := s.cfg.Index.Scan(ctx, table, func(doc smp.Document) error {
			d.Documents++
			seen[doc.ID] = true
			d.WatermarkIndex = max(d.WatermarkIndex, watermark(table, doc.Source))
			row, ok := ts.rows[doc.ID]
			if doc.Version > r.Position {
				return nil // changed after the snapshot: the database read is older
			}
			if !ok {
				d.Extra = append(d.Extra, doc.ID)
			} else if sample[doc.ID] && len(diff(row, doc.Source)) > 0 {
				d.Mismatched = append(d.Mismatched, doc.ID)
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		for _, id := range ids {
			if !seen[id] {
				d.Missing = append(d.Missing, id)
			}
		}
		d.DriftRatio = float64(len(d.Missing)+len(d.Extra)+len(d.Mismatched)) / float64(max(d.Rows, 1))
		if d.DriftRatio > DriftThreshold {
			r.Drifted = true
		}
		r.Tables = append(r.Tables, d)
	}
	if s.cfg.Connect != nil {
		for _, name := range []string{s.cfg.SourceConnector, ConnectorName} {
			if st, err := s.cfg.Connect.Status(name); err == nil {
				state := string(st.Connector.State)
				for _, t := range st.Tasks {
					if t.State != st.Connector.State {
						state += ", task " + string(rune('0'+t.ID)) + " " + string(t.State)
					}
				}
				r.Connectors[name] = state
			}
		}
	}
	if s.cfg.DeadLetters != nil {
		dl, err := s.cfg.DeadLetters.Read(ctx, DefaultDLQ, 10_000)
		if err == nil {
			r.DeadLetters = len(dl)
		}
	}
	return r, scans, nil
}

func watermark(table string, source []byte) int64 {
	var m map[string]json.RawMessage
	if json.Unmarshal(source, &m) != nil {
		return 0
	}
	var n json.Number
	if json.Unmarshal(m[watermarks[table]], &n) != nil {
		return 0
	}
	v, _ := n.Int64()
	return v
}

// Run is the daily drift check: every process runs the loop, one at a
// time checks (the lease lock:readmodel-reconciliation, held for Every),
// repairing what it finds.
func (s *Service) Run(ctx context.Context) {
	if s.cfg.Locker == nil || s.cfg.Rows == nil {
		return
	}
	t := time.NewTimer(time.Minute) // after start, then every period
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.RunOnce(ctx)
		t.Reset(s.cfg.Every)
	}
}

// RunOnce checks and repairs if this process takes the lease; false when
// another holds it.
func (s *Service) RunOnce(ctx context.Context) (*DriftReport, bool) {
	ok, err := s.cfg.Locker.TryLock(ctx, LeaseKey, s.cfg.Owner, s.cfg.Every)
	if err != nil || !ok {
		return nil, false
	}
	r, err := s.Check(ctx, true)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Error("drift check failed", "job", JobName, "err", err)
		}
		return nil, true
	}
	s.cfg.Logger.Info("drift check", "job", JobName, "drifted", r.Total(), "repaired", r.Repaired, "dead_letters", r.DeadLetters)
	return r, true
}
