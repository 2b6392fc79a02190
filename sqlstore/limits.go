package sqlstore

import (
	"unicode/utf8"

	"smp"
)

// The schema's sizes, checked before every write so that SQLite (which
// ignores VARCHAR sizes) and MySQL (which fails with error 1406 in strict
// mode, truncates otherwise, and truncates even in strict mode under
// INSERT IGNORE) agree: a value longer than its column is EINVALID on both
// and nothing is written. VARCHAR sizes count characters (utf8mb4); TEXT
// sizes count bytes.
const (
	maxText       = 65535    // TEXT, in bytes
	maxMediumText = 16777215 // MEDIUMTEXT, in bytes
)

// field is a value and the size of its column; bytes marks a TEXT column.
type field struct {
	name  string
	value string
	max   int
	bytes bool
}

func chars(name, value string, max int) field { return field{name: name, value: value, max: max} }
func text(name, value string, max int) field {
	return field{name: name, value: value, max: max, bytes: true}
}

// checkSizes returns EINVALID for the first value longer than its column.
func checkSizes(what string, fs ...field) error {
	for _, f := range fs {
		n, unit := utf8.RuneCountInString(f.value), "characters"
		if f.bytes {
			n, unit = len(f.value), "bytes"
		}
		if n > f.max {
			return smp.Errorf(smp.EINVALID, "%s: %s is %d %s long, at most %d", what, f.name, n, unit, f.max)
		}
	}
	return nil
}

// masterKindSize is the column size of each master-data field kind in
// migration 0014_masterdata (text fields are VARCHAR(Max) of their
// smp.MasterField); int fields are BIGINT.
var masterKindSize = map[smp.MasterKind]int{
	smp.KindCountry: 2, smp.KindCurrency: 3, smp.KindLocale: 5, smp.KindCode: 50,
	smp.KindDecimal: 33, smp.KindDate: 10, smp.KindInt: 10,
}

// maxRegion is the size of the region columns (smp.ValidRegion's 16).
const maxRegion = 16

func checkMasterSizes(r smp.MasterRecord) error {
	t, err := smp.FindMasterTable(r.Table)
	if err != nil {
		return err
	}
	fs := []field{chars("region", r.Region, maxRegion)}
	for _, f := range t.Fields {
		max := masterKindSize[f.Kind]
		if f.Kind == smp.KindText {
			max = f.Max
		}
		fs = append(fs, chars(f.Name, r.Fields[f.Name], max))
	}
	return checkSizes("put "+t.Name, fs...)
}
