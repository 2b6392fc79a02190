package readmodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"smp"
)

// ReindexResult says what a reindex did.
type ReindexResult struct {
	Table     string `json:"table"`
	From      string `json:"from"`
	To        string `json:"to"`
	Documents int    `json:"documents"`
}

// Reindex is INC-009's scenario 3 (a schema mismatch): the table's new
// index version is created from the corrected mapping (file named
// <table>-v<N>.json), filled from the index the alias points at (each
// document at its version), the alias swapped to it in one step and the
// old index dropped. The sink is paused meanwhile (its changes wait on the
// topic, then land in the new index); searches through the alias answer
// throughout. EINVALID for a bad mapping, a version not above the
// current one, or documents the new mapping refuses (nothing is changed
// then: the new index is dropped and the sink resumed).
func (s *Service) Reindex(ctx context.Context, file string, mapping []byte) (res ReindexResult, err error) {
	table, version, err := ParseMappingName(file)
	if err != nil {
		return ReindexResult{}, err
	}
	if _, err := smp.ParseSearchMapping(mapping); err != nil {
		return ReindexResult{}, err
	}
	m := Mapping{Table: table, Version: version, Body: mapping}
	res = ReindexResult{Table: table, To: m.Index()}
	if res.From, err = s.cfg.Index.Alias(ctx, table); err != nil {
		return res, err
	}
	if _, cur, err := ParseMappingName(res.From + ".json"); err == nil && cur >= version {
		return res, smp.Errorf(smp.EINVALID, "mapping %s: version %d is not above the current index %s", file, version, res.From)
	}
	if s.cfg.Connect == nil {
		return res, smp.Errorf(smp.EUNAVAILABLE, "reindex: the Connect worker does not run in this process")
	}
	if err := s.cfg.Connect.Pause(ConnectorName); err != nil {
		return res, fmt.Errorf("reindex: pause %s: %w", ConnectorName, err)
	}
	defer func() {
		if rerr := s.cfg.Connect.Resume(ConnectorName); rerr != nil {
			err = errors.Join(err, fmt.Errorf("reindex: resume %s: %w", ConnectorName, rerr))
		}
	}()
	if err := s.cfg.Index.CreateIndex(ctx, res.To, mapping); err != nil {
		return res, err
	}
	drop := func() { s.cfg.Index.DeleteIndex(context.WithoutCancel(ctx), res.To) }
	var batch []smp.IndexOp
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		out, err := s.cfg.Index.Bulk(ctx, batch)
		if err != nil {
			return err
		}
		for i, r := range out {
			if r.Status == smp.IndexRejected {
				return smp.Errorf(smp.EINVALID, "reindex: the new mapping refuses %s: %s", batch[i].ID, r.Reason)
			}
		}
		res.Documents += len(batch)
		batch = batch[:0]
		return nil
	}
	err = s.cfg.Index.Scan(ctx, res.From, func(d smp.Document) error {
		batch = append(batch, smp.IndexOp{Index: res.To, ID: d.ID, Version: d.Version, Source: d.Source})
		if len(batch) >= 500 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		drop()
		return res, err
	}
	if err := s.cfg.Index.SetAlias(ctx, table, res.To); err != nil {
		drop()
		return res, err
	}
	if err := s.cfg.Index.DeleteIndex(ctx, res.From); err != nil {
		return res, fmt.Errorf("reindex: the alias is on %s but dropping %s failed: %w", res.To, res.From, err)
	}
	s.cfg.Logger.Info("reindexed", "table", table, "from", res.From, "to", res.To, "documents", res.Documents)
	return res, nil
}

// ResyncResult says what a re-sync did.
type ResyncResult struct {
	Dropped []string `json:"dropped"`
	Created []string `json:"created"`
}

// Resync is INC-009's scenario 4 (catastrophic divergence): the sink is
// paused, the read model's indices dropped and created again from the
// newest mappings (the binary's, or the one a table was reindexed into
// when that is newer), the source connector's offsets deleted so that it takes
// a fresh snapshot (stopped, offsets reset, resumed), and the sink resumed:
// it indexes the changes it had not read, then the snapshot, whose rows
// an older change never overwrites. The rebuild goes on after Resync
// returns; es_sink_lag_seconds and the drift check say when it is done.
func (s *Service) Resync(ctx context.Context) (res ResyncResult, err error) {
	if s.cfg.Connect == nil {
		return res, smp.Errorf(smp.EUNAVAILABLE, "resync: the Connect worker does not run in this process")
	}
	if err := s.cfg.Connect.Pause(ConnectorName); err != nil {
		return res, fmt.Errorf("resync: pause %s: %w", ConnectorName, err)
	}
	defer func() {
		if rerr := s.cfg.Connect.Resume(ConnectorName); rerr != nil {
			err = errors.Join(err, fmt.Errorf("resync: resume %s: %w", ConnectorName, rerr))
		}
	}()
	// A table reindexed into a mapping newer than the binary's (reindex
	// --mapping FILE) is rebuilt with the mapping it has now, not sent
	// back to the built-in one.
	keep, err := s.mappingsInUse(ctx)
	if err != nil {
		return res, err
	}
	infos, err := s.cfg.Index.Indices(ctx)
	if err != nil {
		return res, err
	}
	for _, info := range infos {
		if table, _, err := ParseMappingName(info.Name + ".json"); err != nil || !slices.Contains(Tables, table) {
			continue // not one of the read model's (a shared Elasticsearch holds others' indices)
		}
		if err := s.cfg.Index.DeleteIndex(ctx, info.Name); err != nil && smp.ErrorCode(err) != smp.ENOTFOUND {
			return res, err
		}
		res.Dropped = append(res.Dropped, info.Name)
	}
	for _, m := range keep {
		if err := s.cfg.Index.CreateIndex(ctx, m.Index(), m.Body); err != nil {
			return res, fmt.Errorf("resync: create %s: %w", m.Index(), err)
		}
		if err := s.cfg.Index.SetAlias(ctx, m.Table, m.Index()); err != nil {
			return res, fmt.Errorf("resync: alias %s: %w", m.Table, err)
		}
	}
	if err := EnsureIndices(ctx, s.cfg.Index); err != nil {
		return res, err
	}
	ms, _ := LatestMappings()
	for _, m := range ms {
		if k, ok := keep[m.Table]; ok {
			m = k
		}
		res.Created = append(res.Created, m.Index())
	}
	src := s.cfg.SourceConnector
	if err := s.cfg.Connect.StopConnector(src); err != nil {
		return res, fmt.Errorf("resync: stop %s: %w", src, err)
	}
	if err := s.cfg.Connect.ResetOffsets(ctx, src); err != nil {
		s.cfg.Connect.Resume(src)
		return res, fmt.Errorf("resync: reset %s's offsets: %w", src, err)
	}
	if err := s.cfg.Connect.Resume(src); err != nil {
		return res, fmt.Errorf("resync: resume %s: %w", src, err)
	}
	s.cfg.Logger.Warn("read model re-sync: indices dropped, the source re-snapshots", "dropped", res.Dropped)
	return res, nil
}

// mappingsInUse returns, per table whose alias points at an index newer
// than the binary's newest mapping, that index's mapping under its name.
func (s *Service) mappingsInUse(ctx context.Context) (map[string]Mapping, error) {
	latest, err := LatestMappings()
	if err != nil {
		return nil, err
	}
	keep := map[string]Mapping{}
	for _, m := range latest {
		cur, err := s.cfg.Index.Alias(ctx, m.Table)
		if smp.ErrorCode(err) == smp.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, err
		}
		table, v, err := ParseMappingName(cur + ".json")
		if err != nil || table != m.Table || v <= m.Version {
			continue
		}
		sm, err := s.cfg.Index.Mapping(ctx, cur)
		if err != nil {
			return nil, fmt.Errorf("resync: the mapping of %s: %w", cur, err)
		}
		body, err := json.Marshal(map[string]smp.SearchMapping{"mappings": sm})
		if err != nil {
			return nil, err
		}
		keep[m.Table] = Mapping{Table: m.Table, Version: v, Body: body}
	}
	return keep, nil
}
