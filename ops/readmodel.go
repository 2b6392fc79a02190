package ops

import (
	"context"

	"smp"
	"smp/auth"
	"smp/readmodel"
)

// ReadModel is the read model's operations (readmodel.Service): their
// effects are in the search index and the Connect worker, outside the
// database, so each is audited as an intent before and its outcome after.
type ReadModel interface {
	Reindex(ctx context.Context, file string, mapping []byte) (readmodel.ReindexResult, error)
	Resync(ctx context.Context) (readmodel.ResyncResult, error)
	Check(ctx context.Context, repair bool) (*readmodel.DriftReport, error)
}

func (s *Service) readModel(p smp.Principal, reason string) error {
	if err := auth.Check(p, "readmodel.manage"); err != nil {
		return err
	}
	if s.cfg.ReadModel == nil {
		return smp.Errorf(smp.EUNAVAILABLE, "the read model is not served in this process (it runs with the Connect worker: smp connect, or serve --connect-addr)")
	}
	return needReason(reason, "reason is required")
}

// ReindexReadModel is INC-009's scenario 3: a new index version with the
// corrected mapping (file <table>-v<N>.json), filled, the alias swapped,
// the old index dropped. EFORBIDDEN; EINVALID without a reason or for a
// bad mapping; EUNAVAILABLE where the read model is not served.
func (s *Service) ReindexReadModel(ctx context.Context, p smp.Principal, file string, mapping []byte, reason string) (readmodel.ReindexResult, error) {
	if err := s.readModel(p, reason); err != nil {
		return readmodel.ReindexResult{}, err
	}
	if err := smp.CheckLen("mapping file", file, 200); err != nil {
		return readmodel.ReindexResult{}, err
	}
	var res readmodel.ReindexResult
	err := s.external(ctx, p, "readmodel.reindex", "readmodel:"+file, "", reason, map[string]any{"mapping": file},
		func(ctx context.Context) (map[string]any, error) {
			var err error
			res, err = s.cfg.ReadModel.Reindex(ctx, file, mapping)
			return map[string]any{"from": res.From, "to": res.To, "documents": res.Documents}, err
		})
	return res, err
}

// ResyncReadModel is INC-009's scenario 4: the full re-sync.
func (s *Service) ResyncReadModel(ctx context.Context, p smp.Principal, reason string) (readmodel.ResyncResult, error) {
	if err := s.readModel(p, reason); err != nil {
		return readmodel.ResyncResult{}, err
	}
	var res readmodel.ResyncResult
	err := s.external(ctx, p, "readmodel.resync", "readmodel", "", reason, map[string]any{"resync": true},
		func(ctx context.Context) (map[string]any, error) {
			var err error
			res, err = s.cfg.ReadModel.Resync(ctx)
			return map[string]any{"dropped": res.Dropped, "created": res.Created}, err
		})
	return res, err
}

// CheckReadModel runs the drift check (readmodel-reconciliation) on
// demand; with repair, what it finds is written again from the database
// and checked after (audited; a check alone is a read and is not).
func (s *Service) CheckReadModel(ctx context.Context, p smp.Principal, repair bool, reason string) (*readmodel.DriftReport, error) {
	if !repair {
		if err := auth.Check(p, "view"); err != nil {
			return nil, err
		}
		if s.cfg.ReadModel == nil {
			return nil, smp.Errorf(smp.EUNAVAILABLE, "the read model is not served in this process")
		}
		return s.cfg.ReadModel.Check(ctx, false)
	}
	if err := s.readModel(p, reason); err != nil {
		return nil, err
	}
	var res *readmodel.DriftReport
	err := s.external(ctx, p, "readmodel.repair", "readmodel", "", reason, map[string]any{"repair": true},
		func(ctx context.Context) (map[string]any, error) {
			var err error
			res, err = s.cfg.ReadModel.Check(ctx, true)
			if err != nil {
				return nil, err
			}
			left := 0
			if res.After != nil {
				left = res.After.Total()
			}
			return map[string]any{"drifted": res.Total(), "repaired": res.Repaired, "left": left}, nil
		})
	return res, err
}
