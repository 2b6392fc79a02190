package replication

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"

	"smp"
)

// RowHash is a master-data row's hash across regions: its table, key,
// version, owner region and every field, so two regions holding the same
// version of a row give the same hash (runbook INC-012's "all regions
// verified consistent").
func RowHash(r smp.MasterRecord) string {
	h := sha256.New()
	put := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	put(r.Table)
	put(r.Key)
	put(strconv.FormatInt(r.Version, 10))
	put(r.Region)
	names := make([]string, 0, len(r.Fields))
	for n := range r.Fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		put(n)
		put(r.Fields[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Sample picks n of recs spread evenly over them (all when fewer): the
// spot check's records.
func Sample(recs []smp.MasterRecord, n int) []smp.MasterRecord {
	if n <= 0 || len(recs) <= n {
		return recs
	}
	out := make([]smp.MasterRecord, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, recs[i*len(recs)/n])
	}
	return out
}

// Check is one sampled row compared in one region.
type Check struct {
	Table   string `json:"table"`
	Key     string `json:"key"`
	Version int64  `json:"version"`
	Region  string `json:"region"`
	// Result is "match", "differs" (another version or other fields) or
	// "missing".
	Result string `json:"result"`
}

// MasterReader reads one region's master data.
type MasterReader interface {
	FindMasterRecord(ctx context.Context, table, key string) (smp.MasterRecord, error)
	FindMasterRecords(ctx context.Context, f smp.MasterDataFilter) ([]smp.MasterRecord, error)
}

// Verify samples n rows of source (every table's first 1,000 rows, spread
// evenly) and compares each by RowHash in every other region; ok is false
// when one differs or is missing.
func Verify(ctx context.Context, n int, source MasterReader, others map[string]MasterReader) (checks []Check, ok bool, err error) {
	var all []smp.MasterRecord
	for _, t := range smp.MasterTables {
		recs, err := source.FindMasterRecords(ctx, smp.MasterDataFilter{Table: t.Name, Limit: 1000})
		if err != nil {
			return nil, false, err
		}
		all = append(all, recs...)
	}
	regions := make([]string, 0, len(others))
	for r := range others {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	ok = true
	for _, rec := range Sample(all, n) {
		for _, region := range regions {
			c := Check{Table: rec.Table, Key: rec.Key, Version: rec.Version, Region: region, Result: "match"}
			got, err := others[region].FindMasterRecord(ctx, rec.Table, rec.Key)
			switch {
			case smp.ErrorCode(err) == smp.ENOTFOUND:
				c.Result = "missing"
			case err != nil:
				return nil, false, err
			case RowHash(got) != RowHash(rec):
				c.Result = "differs"
			}
			ok = ok && c.Result == "match"
			checks = append(checks, c)
		}
	}
	return checks, ok, nil
}
