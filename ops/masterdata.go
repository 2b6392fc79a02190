package ops

import (
	"context"

	"smp"
	"smp/auth"
)

// MasterData edits master data with its audit entry and outbox event
// (masterdata.Service).
type MasterData interface {
	Put(ctx context.Context, p smp.Principal, table string, fields map[string]string, reason string) (smp.MasterRecord, error)
}

// PutMasterData writes a master-data row (countries, currencies,
// currency_rates, tax_configs, i18n_translations) in the owner region,
// raising its version, audited with its event on masterdata.<table> in one
// transaction. EFORBIDDEN without the permission or outside the owner
// region; EINVALID without a reason, for an unknown table or a wrong
// field; ECONFLICT for a concurrent change; EUNAVAILABLE where master data
// is not served.
func (s *Service) PutMasterData(ctx context.Context, p smp.Principal, table string, fields map[string]string, reason string) (smp.MasterRecord, error) {
	if err := auth.Check(p, "masterdata.write"); err != nil {
		return smp.MasterRecord{}, err
	}
	if err := needReason(reason, "a reason is required to change master data"); err != nil {
		return smp.MasterRecord{}, err
	}
	if s.cfg.MasterData == nil {
		return smp.MasterRecord{}, smp.Errorf(smp.EUNAVAILABLE, "master data is not served in this process")
	}
	return s.cfg.MasterData.Put(ctx, p, table, fields, reason)
}
