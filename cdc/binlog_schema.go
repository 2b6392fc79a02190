package cdc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"
)

// The values of a row, normalised so that a snapshot row (read as text)
// and a binlog row (decoded from the row image) of the same data are the
// same JSON, and the same JSON the embedded source writes for it: integer
// types as numbers, FLOAT and DOUBLE as numbers, DECIMAL as a string with
// the column's scale ("150000.00"), ENUM and SET as their text, text and
// temporal types as strings (TIMESTAMP in UTC), binary types as base64;
// the columns in the table's order; the key the primary key's columns.

type kind int

const (
	kText kind = iota
	kInt
	kFloat
	kDecimal
	kBinary
	kEnum
	kSet
	kBit
)

type column struct {
	name     string
	kind     kind
	unsigned bool
	scale    int
	values   []string // ENUM and SET members
	bits     int      // integer width, for unsigned values the binlog gave as signed
}

type tableSchema struct {
	db, table string
	cols      []column
	byName    map[string]int
	pk        []int // primary key columns, in key order
}

func (s *tableSchema) names() []string {
	out := make([]string, len(s.cols))
	for i, c := range s.cols {
		out[i] = c.name
	}
	return out
}

// object writes the row as a JSON object in column order.
func (s *tableSchema) object(names []string, row []any) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, v := range row {
		if i >= len(names) {
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(names[i])
		b.Write(k)
		b.WriteByte(':')
		j, err := json.Marshal(v)
		if err != nil {
			j = []byte("null")
		}
		b.Write(j)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// key is the primary key's columns of a row in table order as a JSON
// object ({"id":…}); "" for a table without one.
func (s *tableSchema) key(row []any) string {
	return s.keyByName(s.names(), row)
}

func (s *tableSchema) keyByName(names []string, row []any) string {
	if len(s.pk) == 0 {
		return ""
	}
	var kn []string
	var kv []any
	for _, i := range s.pk {
		name := s.cols[i].name
		for j, n := range names {
			if n == name && j < len(row) {
				kn, kv = append(kn, name), append(kv, row[j])
			}
		}
	}
	return string(s.object(kn, kv))
}

// fromBinlog normalises a binlog row image (named by names).
func (s *tableSchema) fromBinlog(names []string, row []any) []any {
	out := make([]any, len(row))
	for i, v := range row {
		c := column{kind: -1}
		if i < len(names) {
			if j, ok := s.byName[names[i]]; ok {
				c = s.cols[j]
			}
		}
		out[i] = c.fromBinlog(v)
	}
	return out
}

func (c column) fromBinlog(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case int8:
		return c.integer(int64(x), 8)
	case int16:
		return c.integer(int64(x), 16)
	case int32:
		return c.integer(int64(x), 32)
	case int64:
		return c.integer(x, 64)
	case int:
		return c.integer(int64(x), 64)
	case uint8, uint16, uint32, uint64:
		return x
	case float32:
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return f
	case float64:
		if c.kind == kDecimal {
			return fixScale(strconv.FormatFloat(x, 'f', -1, 64), c.scale)
		}
		return x
	case string:
		if c.kind == kDecimal {
			return fixScale(x, c.scale)
		}
		return x
	case []byte:
		if c.kind == kBinary {
			return append([]byte(nil), x...)
		}
		return string(x)
	case fmt.Stringer: // a decimal
		if c.kind == kDecimal {
			return fixScale(x.String(), c.scale)
		}
		return x.String()
	}
	return v
}

// integer is a binlog integer: ENUM and SET members by index and bits, an
// unsigned column's value the binlog gave as signed made unsigned.
func (c column) integer(v int64, width int) any {
	switch c.kind {
	case kEnum:
		if v >= 1 && int(v) <= len(c.values) {
			return c.values[v-1]
		}
		return ""
	case kSet:
		var in []string
		for i, m := range c.values {
			if v&(1<<i) != 0 {
				in = append(in, m)
			}
		}
		return strings.Join(in, ",")
	}
	if c.unsigned && v < 0 {
		w := c.bits
		if w == 0 {
			w = width
		}
		if w >= 64 {
			return uint64(v)
		}
		return uint64(v) & (1<<w - 1)
	}
	return v
}

// fromText normalises a value the snapshot read as text (nil: NULL).
func (c column) fromText(b []byte) any {
	if b == nil {
		return nil
	}
	s := string(b)
	switch c.kind {
	case kInt:
		if c.unsigned {
			if n, err := strconv.ParseUint(s, 10, 64); err == nil {
				return n
			}
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case kFloat:
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) {
			return f
		}
	case kDecimal:
		return fixScale(s, c.scale)
	case kBinary:
		return append([]byte(nil), b...)
	case kBit:
		var n uint64
		for _, x := range b {
			n = n<<8 | uint64(x)
		}
		return int64(n)
	}
	return s
}

// fixScale writes a decimal with exactly scale digits after the point.
func fixScale(s string, scale int) string {
	if strings.ContainsAny(s, "eE") {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			s = strconv.FormatFloat(f, 'f', -1, 64)
		}
	}
	whole, frac, _ := strings.Cut(s, ".")
	if scale <= 0 {
		return whole
	}
	if len(frac) > scale {
		frac = frac[:scale]
	}
	return whole + "." + frac + strings.Repeat("0", scale-len(frac))
}

func kindOf(dataType string) kind {
	switch strings.ToLower(dataType) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year":
		return kInt
	case "float", "double", "real":
		return kFloat
	case "decimal", "numeric":
		return kDecimal
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return kBinary
	case "enum":
		return kEnum
	case "set":
		return kSet
	case "bit":
		return kBit
	}
	return kText
}

var intBits = map[string]int{"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}

// members parses enum('a','b') or set('a','b').
func members(columnType string) []string {
	open, end := strings.IndexByte(columnType, '('), strings.LastIndexByte(columnType, ')')
	if open < 0 || end < open {
		return nil
	}
	var out []string
	in := columnType[open+1 : end]
	for len(in) > 0 {
		if in[0] != '\'' {
			in = in[1:]
			continue
		}
		var b strings.Builder
		i := 1
		for ; i < len(in); i++ {
			if in[i] == '\'' {
				if i+1 < len(in) && in[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				break
			}
			b.WriteByte(in[i])
		}
		out = append(out, b.String())
		in = in[min(i+1, len(in)):]
	}
	return out
}

// loadSchema reads a table's columns and primary key from
// information_schema (its schema now).
func (t *binlogTask) loadSchema(ctx context.Context, db, table string) (*tableSchema, error) {
	rows, err := t.conn.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, COALESCE(NUMERIC_SCALE, 0) FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, table)
	if err != nil {
		return nil, fmt.Errorf("cdc: the columns of %s.%s: %w", db, table, err)
	}
	s := &tableSchema{db: db, table: table, byName: map[string]int{}}
	for rows.Next() {
		var name, dt, ct string
		var scale int
		if err := rows.Scan(&name, &dt, &ct, &scale); err != nil {
			rows.Close()
			return nil, err
		}
		c := column{name: name, kind: kindOf(dt), unsigned: strings.Contains(strings.ToLower(ct), "unsigned"), scale: scale, bits: intBits[strings.ToLower(dt)]}
		if c.kind == kEnum || c.kind == kSet {
			c.values = members(ct)
		}
		s.byName[name] = len(s.cols)
		s.cols = append(s.cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(s.cols) == 0 {
		return nil, fmt.Errorf("cdc: table %s.%s not found", db, table)
	}
	krows, err := t.conn.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`, db, table)
	if err != nil {
		return nil, fmt.Errorf("cdc: the key of %s.%s: %w", db, table, err)
	}
	defer krows.Close()
	for krows.Next() {
		var name string
		if err := krows.Scan(&name); err != nil {
			return nil, err
		}
		if i, ok := s.byName[name]; ok {
			s.pk = append(s.pk, i)
		}
	}
	return s, krows.Err()
}

// schemaFor is the schema a binlog row of the table is read with: the
// cached one, read again when a DDL on the table made it stale or the row
// has more columns than it knows. A row with fewer columns (the connector
// is behind an ADD COLUMN at the end) takes the first ones; with
// binlog_row_metadata=FULL the table map names the columns anyway.
func (t *binlogTask) schemaFor(ctx context.Context, db, table string, tm *replication.TableMapEvent) (*tableSchema, error) {
	k := db + "." + table
	s := t.schemas[k]
	if s == nil || int(tm.ColumnCount) > len(s.cols) {
		var err error
		if s, err = t.loadSchema(ctx, db, table); err != nil {
			return nil, err
		}
		t.schemas[k] = s
	}
	if int(tm.ColumnCount) > len(s.cols) && len(tm.ColumnNameString()) == 0 {
		return nil, fmt.Errorf("cdc: a row of %s has %d columns, its table %d (a column dropped since? set binlog_row_metadata=FULL)", k, tm.ColumnCount, len(s.cols))
	}
	return s, nil
}
