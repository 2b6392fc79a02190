package catalog

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"smp"
	"smp/auth"
)

// Batch is what an import brings: records of each kind as JSON objects,
// the fields of the admin API's create (and update) bodies.
type Batch struct {
	Cities      []json.RawMessage `json:"cities,omitempty"`
	Services    []json.RawMessage `json:"services,omitempty"`
	Partners    []json.RawMessage `json:"partners,omitempty"`
	Technicians []json.RawMessage `json:"technicians,omitempty"`
	Customers   []json.RawMessage `json:"customers,omitempty"`
}

func (b *Batch) rows(kind string) *[]json.RawMessage {
	switch kind {
	case "cities":
		return &b.Cities
	case "services":
		return &b.Services
	case "partners":
		return &b.Partners
	case "technicians":
		return &b.Technicians
	case "customers":
		return &b.Customers
	}
	return nil
}

// Len is the number of rows.
func (b *Batch) Len() int {
	return len(b.Cities) + len(b.Services) + len(b.Partners) + len(b.Technicians) + len(b.Customers)
}

// Add appends a record of kind; EINVALID for an unknown kind.
func (b *Batch) Add(kind string, v any) error {
	rows := b.rows(kind)
	if rows == nil {
		_, err := kindOps(kind)
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	*rows = append(*rows, raw)
	return nil
}

// Results of an import row.
const (
	Created   = "created"
	Updated   = "updated"
	Unchanged = "unchanged"
	Refused   = "refused"
)

// RowResult is what became of one row.
type RowResult struct {
	Kind   string `json:"kind"`
	Row    int    `json:"row"` // 1-based, within its kind
	Key    string `json:"key"` // the record's code or id ("" when refused before one was known)
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
}

// Report is an import's outcome.
type Report struct {
	DryRun    bool        `json:"dry_run"`
	Created   int         `json:"created"`
	Updated   int         `json:"updated"`
	Unchanged int         `json:"unchanged"`
	Refused   int         `json:"refused"`
	Rows      []RowResult `json:"rows"`
}

func (r *Report) add(rr RowResult) {
	switch rr.Result {
	case Created:
		r.Created++
	case Updated:
		r.Updated++
	case Unchanged:
		r.Unchanged++
	case Refused:
		r.Refused++
	}
	r.Rows = append(r.Rows, rr)
}

var errDryRun = errors.New("dry run")

// Import applies a batch, kind by kind (cities, services, partners,
// technicians, customers), each row matched by its natural key (city and
// service code, partner id or else name, technician and customer phone):
// created when new, updated with its fields when they differ (audited as
// any update, with reason), unchanged otherwise. A row that cannot be
// applied is refused with the reason and the others go on; each applied
// row commits in its own transaction with its audit entry. With dryRun
// every row is applied in one transaction that is rolled back: the report
// says what an import would do and nothing is kept. EFORBIDDEN; other
// errors (the database) end the import, rows committed before it stay.
func (s *Service) Import(ctx context.Context, p smp.Principal, b Batch, dryRun bool, reason string) (*Report, error) {
	if err := auth.Check(p, "catalog.write"); err != nil {
		return nil, err
	}
	if strings.TrimSpace(reason) == "" {
		reason = "import"
	}
	rep := &Report{DryRun: dryRun, Rows: []RowResult{}}
	each := func(fn func(kind string, i int, row json.RawMessage) error) error {
		for _, kind := range Kinds {
			for i, row := range *b.rows(kind) {
				if err := fn(kind, i+1, row); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if dryRun {
		err := s.store.InTx(ctx, func(tx smp.Tx) error {
			rep.Rows, rep.Created, rep.Updated, rep.Unchanged, rep.Refused = rep.Rows[:0], 0, 0, 0, 0
			if err := each(func(kind string, i int, row json.RawMessage) error {
				rr, _, err := s.importRow(ctx, tx, p, kind, i, row, reason)
				rep.add(rr)
				return err
			}); err != nil {
				return err
			}
			return errDryRun
		})
		if !errors.Is(err, errDryRun) {
			return nil, err
		}
		return rep, nil
	}
	err := each(func(kind string, i int, row json.RawMessage) error {
		var rr RowResult
		var v any
		err := s.store.InTx(ctx, func(tx smp.Tx) error {
			var err error
			rr, v, err = s.importRow(ctx, tx, p, kind, i, row, reason)
			if err == nil && rr.Result == Refused {
				return errRefused // roll back whatever the row wrote
			}
			return err
		})
		if err != nil && !errors.Is(err, errRefused) {
			return err
		}
		if rr.Result == Updated {
			s.committed(ctx, v)
		}
		rep.add(rr)
		return nil
	})
	if err != nil {
		s.log.Error("import stopped", "err", err, "rows_done", len(rep.Rows))
		return rep, err
	}
	s.log.Info("import", "actor", p.Name, "created", rep.Created, "updated", rep.Updated, "unchanged", rep.Unchanged, "refused", rep.Refused)
	return rep, nil
}

var errRefused = errors.New("row refused")

// importRow applies one row and returns the record it wrote (an update's
// new value); a refusal is a result, not an error (the error is for the
// database failing).
func (s *Service) importRow(ctx context.Context, tx smp.Tx, p smp.Principal, kind string, i int, row json.RawMessage, reason string) (RowResult, any, error) {
	rr := RowResult{Kind: kind, Row: i}
	refuse := func(err error) (RowResult, any, error) {
		if smp.ErrorCode(err) == smp.EINTERNAL {
			return rr, nil, err
		}
		rr.Result, rr.Reason = Refused, smp.ErrorMessage(err)
		return rr, nil, nil
	}
	k, err := kindOps(kind)
	if err != nil {
		return refuse(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(row, &fields); err != nil || fields == nil {
		return refuse(smp.Errorf(smp.EINVALID, "not an object of fields"))
	}
	key, err := k.natural(ctx, s, fields)
	if err != nil {
		return refuse(err)
	}
	if key == "" {
		_, rr.Key, err = k.create(ctx, s, tx, p, fields, reason)
		if err != nil {
			return refuse(err)
		}
		rr.Result = Created
		return rr, nil, nil
	}
	rr.Key = key
	v, changed, err := k.update(ctx, s, tx, p, key, fields, reason)
	if err != nil {
		return refuse(err)
	}
	rr.Result = Unchanged
	if changed {
		rr.Result = Updated
	}
	return rr, v, nil
}

// ParseFile reads an import file: YAML (or JSON) with a list per kind
// (cities:, services:, partners:, technicians:, customers:; one kind or
// several), or CSV of one kind with a header of field names. kind names
// the kind of a CSV file or of a YAML file that is a bare list; when
// empty it is taken from the file name (technicians.csv,
// technicians-hcmc.csv). EINVALID for a file it cannot read.
func ParseFile(name string, data []byte, kind string) (Batch, error) {
	var b Batch
	if kind == "" {
		kind = kindFromName(name)
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		if kind == "" {
			return b, smp.Errorf(smp.EINVALID, "%s: a CSV file holds one kind: name it after the kind (technicians.csv) or give --kind", name)
		}
		if _, err := kindOps(kind); err != nil {
			return b, err
		}
		rows, err := parseCSV(kind, data)
		if err != nil {
			return b, smp.Errorf(smp.EINVALID, "%s: %v", name, err)
		}
		*b.rows(kind) = rows
		return b, nil
	case ".yaml", ".yml", ".json":
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			return b, smp.Errorf(smp.EINVALID, "%s: %v", name, err)
		}
		if t := bytes.TrimSpace(js); len(t) > 0 && t[0] == '[' {
			if kind == "" {
				return b, smp.Errorf(smp.EINVALID, "%s: a bare list needs its kind: name the file after it or give --kind", name)
			}
			if _, err := kindOps(kind); err != nil {
				return b, err
			}
			if err := json.Unmarshal(js, b.rows(kind)); err != nil {
				return b, smp.Errorf(smp.EINVALID, "%s: %v", name, err)
			}
			return b, nil
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			return b, smp.Errorf(smp.EINVALID, "%s: %s (the top level has lists named %s)", name, strings.TrimPrefix(err.Error(), "json: "), strings.Join(Kinds, ", "))
		}
		return b, nil
	}
	return b, smp.Errorf(smp.EINVALID, "%s: import reads .csv, .yaml, .yml or .json files", name)
}

func kindFromName(name string) string {
	base := strings.ToLower(strings.TrimSuffix(filepath.Base(name), filepath.Ext(name)))
	for _, k := range Kinds {
		if base == k || strings.HasPrefix(base, k+"-") || strings.HasPrefix(base, k+"_") || strings.HasPrefix(base, k+".") {
			return k
		}
	}
	return ""
}

func parseCSV(kind string, data []byte) ([]json.RawMessage, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("no header row: %w", err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff"))
	}
	var rows []json.RawMessage
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		} else if err != nil {
			return nil, err
		}
		kv := map[string]string{}
		for i, v := range rec {
			if i < len(header) {
				kv[header[i]] = v
			}
		}
		raw, err := Fields(kv)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		rows = append(rows, raw)
	}
}

// Number and list fields, for text sources (CSV cells, smp ctl's
// field=value arguments).
var (
	numberFields = map[string]bool{"lat": true, "lng": true, "min_lat": true, "max_lat": true, "min_lng": true, "max_lng": true,
		"radius_km": true, "price_vnd": true, "wave_size": true, "max_waves": true}
	listFields = map[string]bool{"skills": true, "radius_steps_km": true}
)

// Fields turns text values (CSV cells, field=value arguments) into a JSON
// object: numbers where the field is a number, lists split on | or , for
// skills and radius_steps_km; empty values are left out (an update keeps
// the record's).
func Fields(kv map[string]string) (json.RawMessage, error) {
	out := map[string]any{}
	for k, v := range kv {
		v = strings.TrimSpace(v)
		if k == "" || v == "" {
			continue
		}
		switch {
		case numberFields[k]:
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", k, v)
			}
			out[k] = json.Number(v)
		case listFields[k]:
			parts := strings.FieldsFunc(v, func(r rune) bool { return r == '|' || r == ',' || r == ';' })
			list := make([]any, 0, len(parts))
			for _, p := range parts {
				p = strings.TrimSpace(p)
				if k == "radius_steps_km" {
					if _, err := strconv.ParseFloat(p, 64); err != nil {
						return nil, fmt.Errorf("%s: %q is not a number", k, p)
					}
					list = append(list, json.Number(p))
				} else {
					list = append(list, p)
				}
			}
			out[k] = list
		default:
			out[k] = v
		}
	}
	return json.Marshal(out)
}
