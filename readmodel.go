package smp

import (
	"bytes"
	"context"
	"encoding/json"
)

// The read model (issue 20, runbook INC-009): the orders' search documents
// that the sink connector elasticsearch-sink keeps in a search index from
// the change events of smp.cdc.smp_order.*. The database stays the system
// of record; the index is derived and may be dropped and rebuilt.

// Document is one indexed row: its id is the row's primary key, Source the
// row as the change event's "after" carries it (JSON), Version the external
// version the write carried (the change's source position).
type Document struct {
	ID      string          `json:"id"`
	Version int64           `json:"version"`
	Source  json.RawMessage `json:"source"`
}

// IndexOp is one write of a bulk request to the index (or alias) Index.
// With Version > 0 the write is externally versioned with Elasticsearch's
// external_gte semantics: it applies only when no stored version of the
// id (a document's or a delete's) is higher, so a replayed or
// out-of-order change never overwrites newer state; a write without a
// version (0) always applies (an operator's or a test's).
type IndexOp struct {
	Index   string          `json:"index"`
	ID      string          `json:"id"`
	Delete  bool            `json:"delete,omitempty"`
	Version int64           `json:"version,omitempty"`
	Source  json.RawMessage `json:"source,omitempty"`
}

// The outcome of one IndexOp.
const (
	IndexApplied  = "applied"  // written (or deleted; deleting a missing id is applied too)
	IndexConflict = "conflict" // refused: a newer version is stored (not an error: newer state wins)
	IndexRejected = "rejected" // the document cannot be written (mapping, parse): Reason says why
)

// IndexResult is the outcome of one IndexOp, in the request's order.
type IndexResult struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// SearchQuery is a search of the read model. Text matches any indexed text
// (an address, an id); Terms are exact matches on keyword fields (stage,
// technician_id, customer_id, city); Field between From and To (inclusive,
// 0 for unbounded) is a numeric range (created_at in Unix microseconds).
// Results are sorted by SortField, descending (created_at by default in
// the callers), at most Size (20) from From.
type SearchQuery struct {
	Text       string            `json:"text,omitempty"`
	Terms      map[string]string `json:"terms,omitempty"`
	RangeField string            `json:"range_field,omitempty"`
	RangeFrom  int64             `json:"range_from,omitempty"`
	RangeTo    int64             `json:"range_to,omitempty"`
	SortField  string            `json:"sort_field,omitempty"`
	Size       int               `json:"size,omitempty"`
	Offset     int               `json:"offset,omitempty"`
}

// SearchResult is a page of documents and how many matched in all.
type SearchResult struct {
	Total int64      `json:"total"`
	Docs  []Document `json:"docs"`
}

// IndexInfo is a line of _cat/indices.
type IndexInfo struct {
	Name    string   `json:"index"`
	Health  string   `json:"health"` // green, yellow, red
	Aliases []string `json:"aliases"`
	Docs    int64    `json:"docs_count"`
	Bytes   int64    `json:"store_size_bytes"`
}

// ClusterHealth is _cluster/health's summary.
type ClusterHealth struct {
	Cluster string `json:"cluster_name"`
	Status  string `json:"status"` // green, yellow, red
	Nodes   int    `json:"number_of_nodes"`
	Indices int    `json:"indices"`
	// Unassigned shards (0 on the embedded index).
	Unassigned int `json:"unassigned_shards"`
}

// Allocation is a line of _cat/allocation: a node's disk.
type Allocation struct {
	Node        string  `json:"node"`
	Shards      int     `json:"shards"`
	DiskIndices int64   `json:"disk_indices_bytes"`
	DiskUsed    int64   `json:"disk_used_bytes"`
	DiskAvail   int64   `json:"disk_avail_bytes"`
	DiskPercent float64 `json:"disk_percent"`
}

// SearchFeatures declares what a SearchIndex backend supports (the
// conformance suite skips the rest, saying so).
type SearchFeatures struct {
	// ExternalVersions: versioned writes and deletes refuse older versions,
	// also after the delete (a tombstone keeps the version).
	ExternalVersions bool
	// AtomicAliasSwap: SetAlias moves an alias in one step (searches
	// through the alias never fail during a swap).
	AtomicAliasSwap bool
	// RefreshOnWrite: a write is searchable as soon as Bulk returns.
	RefreshOnWrite bool
}

// SearchIndex is the read model's backend: Elasticsearch in production, an
// embedded index by default. Its methods return EUNAVAILABLE when the
// backend cannot be reached (the caller retries the whole call), ENOTFOUND
// for an unknown index or alias (Get: also an unknown id), ECONFLICT when
// creating an index that exists, EINVALID for a mapping it cannot take.
type SearchIndex interface {
	// CreateIndex creates an index from an Elasticsearch mapping document
	// ({"mappings": {"properties": …}}).
	CreateIndex(ctx context.Context, name string, mapping []byte) error
	// DeleteIndex drops an index, its documents and versions, and the
	// aliases pointing at it.
	DeleteIndex(ctx context.Context, name string) error
	// SetAlias points alias at index alone (creating the alias, or moving
	// it from the index it named).
	SetAlias(ctx context.Context, alias, index string) error
	// Alias returns the index an alias points at (ENOTFOUND: none).
	Alias(ctx context.Context, alias string) (string, error)
	// Bulk applies ops in order and returns one result per op. An error
	// means the request as a whole failed (nothing may be assumed
	// written); a document's own failure is its result.
	Bulk(ctx context.Context, ops []IndexOp) ([]IndexResult, error)
	// Get returns a document by id from an index or alias.
	Get(ctx context.Context, index, id string) (Document, error)
	// Search searches an index or alias.
	Search(ctx context.Context, index string, q SearchQuery) (SearchResult, error)
	// Count returns how many documents an index or alias holds.
	Count(ctx context.Context, index string) (int64, error)
	// Mapping returns the mapping of an index or alias (of the index it
	// names): what CreateIndex was given (ENOTFOUND: no such index).
	Mapping(ctx context.Context, index string) (SearchMapping, error)
	// Scan calls fn with every document of an index or alias, in id order.
	// An error from fn stops it and is returned.
	Scan(ctx context.Context, index string, fn func(Document) error) error
	// Indices, Health and Allocation are _cat/indices, _cluster/health and
	// _cat/allocation.
	Indices(ctx context.Context) ([]IndexInfo, error)
	Health(ctx context.Context) (ClusterHealth, error)
	Allocation(ctx context.Context) ([]Allocation, error)
	// Features declares what the backend supports.
	Features() SearchFeatures
	Close() error
}

// FieldMapping is one field of a SearchMapping: Elasticsearch's type
// (keyword, text, long, integer, double, float, boolean) and whether it is
// indexed (searchable).
type FieldMapping struct {
	Type  string `json:"type"`
	Index *bool  `json:"index,omitempty"`
}

// Indexed says whether the field is searchable.
func (f FieldMapping) Indexed() bool { return f.Index == nil || *f.Index }

// SearchMapping is an index's mapping, read from an Elasticsearch mapping
// document ({"mappings": {"dynamic": "strict", "properties": {…}}}), which
// every backend takes.
type SearchMapping struct {
	Dynamic    string                  `json:"dynamic,omitempty"`
	Properties map[string]FieldMapping `json:"properties"`
}

// ParseSearchMapping reads a mapping document; EINVALID when it is not one
// or names a type the read model does not use.
func ParseSearchMapping(doc []byte) (SearchMapping, error) {
	var d struct {
		Mappings SearchMapping `json:"mappings"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return SearchMapping{}, Errorf(EINVALID, "mapping: %v", err)
	}
	if len(d.Mappings.Properties) == 0 {
		return SearchMapping{}, Errorf(EINVALID, "mapping: no mappings.properties")
	}
	for name, f := range d.Mappings.Properties {
		switch f.Type {
		case "keyword", "text", "long", "integer", "double", "float", "boolean":
		default:
			return SearchMapping{}, Errorf(EINVALID, "mapping: field %s: type %q is not supported (keyword, text, long, integer, double, float, boolean)", name, f.Type)
		}
	}
	return d.Mappings, nil
}

// Coerce checks a document's source against the mapping as Elasticsearch
// would and returns its fields converted (keyword and text as strings,
// numbers as float64 or int64, booleans): EINVALID, with Elasticsearch's
// reason (mapper_parsing_exception, strict_dynamic_mapping_exception),
// when a field cannot be indexed. Null fields are left out.
func (m SearchMapping) Coerce(source []byte) (map[string]any, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(source, &raw); err != nil || raw == nil {
		return nil, Errorf(EINVALID, "mapper_parsing_exception: failed to parse: the document is not a JSON object")
	}
	out := make(map[string]any, len(raw))
	for name, v := range raw {
		f, ok := m.Properties[name]
		if !ok {
			if m.Dynamic == "strict" {
				return nil, Errorf(EINVALID, "strict_dynamic_mapping_exception: mapping set to strict, dynamic introduction of [%s] within [_doc] is not allowed", name)
			}
			continue
		}
		if string(v) == "null" {
			continue
		}
		var val any
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		if err := dec.Decode(&val); err != nil {
			return nil, Errorf(EINVALID, "mapper_parsing_exception: failed to parse field [%s]", name)
		}
		bad := Errorf(EINVALID, "mapper_parsing_exception: failed to parse field [%s] of type [%s] in document: %s", name, f.Type, truncate(string(v), 64))
		switch f.Type {
		case "keyword", "text":
			switch x := val.(type) {
			case string:
				out[name] = x
			case json.Number:
				out[name] = x.String()
			case bool:
				out[name] = fmtBool(x)
			default:
				return nil, bad
			}
		case "long", "integer":
			n, err := numberOf(val).Int64()
			if err != nil {
				return nil, bad
			}
			out[name] = n
		case "double", "float":
			n, err := numberOf(val).Float64()
			if err != nil {
				return nil, bad
			}
			out[name] = n
		case "boolean":
			b, ok := val.(bool)
			if !ok {
				return nil, bad
			}
			out[name] = b
		}
	}
	return out, nil
}

func fmtBool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// numberOf is a JSON number or a string holding one, as a json.Number; ""
// (which converts to nothing) for anything else.
func numberOf(v any) json.Number {
	switch x := v.(type) {
	case json.Number:
		return x
	case string:
		return json.Number(x)
	}
	return ""
}
