package replication

import (
	"context"

	"smp"
)

// Apply writes a record the Guard passed on the target region's store,
// once by (table, key, version): smp.MasterDataTx.PutMasterRecord writes
// only over an older version, so a record delivered again, or overtaken
// by a newer one, changes nothing (applied false). The target keeps the
// source's version and region: the row is the owner's, as the owner wrote
// it. EINVALID for a record the store refuses.
func Apply(ctx context.Context, store smp.Transactor, ev smp.MasterDataEvent) (applied bool, err error) {
	err = store.InTx(ctx, func(tx smp.Tx) error {
		_, applied, err = tx.PutMasterRecord(ctx, ev.MasterRecord)
		return err
	})
	return applied, err
}
