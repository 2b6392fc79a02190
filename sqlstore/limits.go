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
