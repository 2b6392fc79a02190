// Package bleveindex is the read model's embedded default: smp.SearchIndex
// on bleve (github.com/blevesearch/bleve/v2), one bleve index per
// Elasticsearch index under a directory (--data-dir/readmodel), aliases in
// aliases.json beside them. Elasticsearch's external versions are kept as
// bleve internal values per document id ("v:<id>"), also after a delete
// (the tombstone), and an older write is refused; the document's source is
// kept beside it ("s:<id>"), so Get and Scan return what was written.
// Bulk requests are serialized (the version check and the write are one
// step) and searchable when Bulk returns.
package bleveindex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"

	"smp"
)

// Index is the embedded smp.SearchIndex.
type Index struct {
	dir string

	write sync.Mutex   // serializes Bulk: version checks and writes
	meta  sync.RWMutex // indices and aliases; held shared while an index is used
	idx   map[string]*entry
	alias map[string]string
}

type entry struct {
	b       bleve.Index
	mapping smp.SearchMapping
}

var _ smp.SearchIndex = (*Index)(nil)

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

const (
	aliasFile   = "aliases.json"
	mappingFile = "smp_mapping.json" // the ES mapping, inside each index's directory
)

// Open opens (or creates) the indices under dir.
func Open(dir string) (*Index, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bleveindex: %w", err)
	}
	x := &Index{dir: dir, idx: map[string]*entry{}, alias: map[string]string{}}
	if b, err := os.ReadFile(filepath.Join(dir, aliasFile)); err == nil {
		if err := json.Unmarshal(b, &x.alias); err != nil {
			return nil, fmt.Errorf("bleveindex: %s: %w", aliasFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("bleveindex: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("bleveindex: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || !validName.MatchString(e.Name()) {
			continue
		}
		doc, err := os.ReadFile(filepath.Join(dir, e.Name(), mappingFile))
		if err != nil {
			continue // not one of ours (or a half-created index): ignored
		}
		m, err := smp.ParseSearchMapping(doc)
		if err != nil {
			x.Close()
			return nil, fmt.Errorf("bleveindex: %s: %w", e.Name(), err)
		}
		b, err := bleve.OpenUsing(filepath.Join(dir, e.Name()), map[string]any{"bolt_timeout": "2s"}) // another process holding it: fail, not hang
		if err != nil {
			x.Close()
			return nil, fmt.Errorf("bleveindex: open %s: %w", e.Name(), err)
		}
		x.idx[e.Name()] = &entry{b: b, mapping: m}
	}
	for a, i := range x.alias {
		if x.idx[i] == nil {
			delete(x.alias, a)
		}
	}
	return x, nil
}

// Close closes every index.
func (x *Index) Close() error {
	x.meta.Lock()
	defer x.meta.Unlock()
	var errs []error
	for name, e := range x.idx {
		errs = append(errs, e.b.Close())
		delete(x.idx, name)
	}
	return errors.Join(errs...)
}

// Features: versions, atomic alias swaps, searchable on return.
func (x *Index) Features() smp.SearchFeatures {
	return smp.SearchFeatures{ExternalVersions: true, AtomicAliasSwap: true, RefreshOnWrite: true}
}

func bleveMapping(m smp.SearchMapping) mapping.IndexMapping {
	doc := bleve.NewDocumentStaticMapping()
	for name, f := range m.Properties {
		var fm *mapping.FieldMapping
		switch f.Type {
		case "keyword":
			fm = bleve.NewKeywordFieldMapping()
		case "text":
			fm = bleve.NewTextFieldMapping()
			fm.Analyzer = "standard"
		case "boolean":
			fm = bleve.NewBooleanFieldMapping()
		default:
			fm = bleve.NewNumericFieldMapping()
		}
		fm.Index = f.Indexed()
		fm.Store = false
		fm.IncludeInAll = false
		doc.AddFieldMappingsAt(name, fm)
	}
	im := bleve.NewIndexMapping()
	im.DefaultMapping = doc
	im.StoreDynamic = false
	im.IndexDynamic = false
	im.DocValuesDynamic = false
	return im
}

// CreateIndex creates an index from an Elasticsearch mapping document.
func (x *Index) CreateIndex(ctx context.Context, name string, doc []byte) error {
	if !validName.MatchString(name) {
		return smp.Errorf(smp.EINVALID, "invalid_index_name_exception: %q", name)
	}
	m, err := smp.ParseSearchMapping(doc)
	if err != nil {
		return err
	}
	x.meta.Lock()
	defer x.meta.Unlock()
	if x.idx[name] != nil {
		return smp.Errorf(smp.ECONFLICT, "resource_already_exists_exception: index [%s] already exists", name)
	}
	if _, ok := x.alias[name]; ok {
		return smp.Errorf(smp.ECONFLICT, "invalid_index_name_exception: [%s] is an alias", name)
	}
	path := filepath.Join(x.dir, name)
	os.RemoveAll(path) // a half-created one
	b, err := bleve.New(path, bleveMapping(m))
	if err != nil {
		return fmt.Errorf("bleveindex: create %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(path, mappingFile), doc, 0o644); err != nil {
		b.Close()
		os.RemoveAll(path)
		return fmt.Errorf("bleveindex: %w", err)
	}
	x.idx[name] = &entry{b: b, mapping: m}
	return nil
}

// DeleteIndex drops an index and the aliases naming it.
func (x *Index) DeleteIndex(ctx context.Context, name string) error {
	x.meta.Lock()
	defer x.meta.Unlock()
	e := x.idx[name]
	if e == nil {
		return smp.Errorf(smp.ENOTFOUND, "index_not_found_exception: no such index [%s]", name)
	}
	delete(x.idx, name)
	changed := false
	for a, i := range x.alias {
		if i == name {
			delete(x.alias, a)
			changed = true
		}
	}
	err := e.b.Close()
	if rmErr := os.RemoveAll(filepath.Join(x.dir, name)); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	if changed {
		err = errors.Join(err, x.saveAliasesLocked())
	}
	return err
}

func (x *Index) saveAliasesLocked() error {
	b, err := json.Marshal(x.alias)
	if err != nil {
		return err
	}
	tmp := filepath.Join(x.dir, aliasFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("bleveindex: %w", err)
	}
	return os.Rename(tmp, filepath.Join(x.dir, aliasFile))
}

// SetAlias points alias at index, in one step.
func (x *Index) SetAlias(ctx context.Context, alias, index string) error {
	if !validName.MatchString(alias) {
		return smp.Errorf(smp.EINVALID, "invalid_alias_name_exception: %q", alias)
	}
	x.meta.Lock()
	defer x.meta.Unlock()
	if x.idx[index] == nil {
		return smp.Errorf(smp.ENOTFOUND, "index_not_found_exception: no such index [%s]", index)
	}
	if x.idx[alias] != nil {
		return smp.Errorf(smp.EINVALID, "invalid_alias_name_exception: an index exists with the same name as the alias [%s]", alias)
	}
	prev, had := x.alias[alias]
	x.alias[alias] = index
	if err := x.saveAliasesLocked(); err != nil {
		if had {
			x.alias[alias] = prev
		} else {
			delete(x.alias, alias)
		}
		return err
	}
	return nil
}

// Alias returns the index alias points at.
func (x *Index) Alias(ctx context.Context, alias string) (string, error) {
	x.meta.RLock()
	defer x.meta.RUnlock()
	i, ok := x.alias[alias]
	if !ok {
		return "", smp.Errorf(smp.ENOTFOUND, "alias [%s] missing", alias)
	}
	return i, nil
}

// resolveLocked finds an index by name or alias (meta held).
func (x *Index) resolveLocked(name string) (*entry, error) {
	if i, ok := x.alias[name]; ok {
		name = i
	}
	e := x.idx[name]
	if e == nil {
		return nil, smp.Errorf(smp.ENOTFOUND, "index_not_found_exception: no such index [%s]", name)
	}
	return e, nil
}

func versionKey(id string) []byte { return []byte("v:" + id) }
func sourceKey(id string) []byte  { return []byte("s:" + id) }

// storedVersion reads an id's version: ok false when none is kept.
func storedVersion(b bleve.Index, id string) (int64, bool, error) {
	v, err := b.GetInternal(versionKey(id))
	if err != nil || v == nil {
		return 0, false, err
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil, err
}

// Bulk applies ops in order; external versions with external_gte
// semantics (an equal version applies again).
func (x *Index) Bulk(ctx context.Context, ops []smp.IndexOp) ([]smp.IndexResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "bulk: %v", err)
	}
	x.write.Lock()
	defer x.write.Unlock()
	x.meta.RLock()
	defer x.meta.RUnlock()
	type pending struct {
		batch    *bleve.Batch
		versions map[string]int64 // in this request
	}
	batches := map[*entry]*pending{}
	res := make([]smp.IndexResult, len(ops))
	for i, op := range ops {
		e, err := x.resolveLocked(op.Index)
		if err != nil {
			res[i] = smp.IndexResult{Status: smp.IndexRejected, Reason: smp.ErrorMessage(err)}
			continue
		}
		if op.ID == "" || len(op.ID) > 512 {
			res[i] = smp.IndexResult{Status: smp.IndexRejected, Reason: "action_request_validation_exception: id is missing or longer than 512 bytes"}
			continue
		}
		p := batches[e]
		if p == nil {
			p = &pending{batch: e.b.NewBatch(), versions: map[string]int64{}}
			batches[e] = p
		}
		if op.Version > 0 {
			cur, ok := p.versions[op.ID]
			if !ok {
				if cur, ok, err = storedVersion(e.b, op.ID); err != nil {
					return nil, smp.Errorf(smp.EUNAVAILABLE, "bulk: read version: %v", err)
				}
			}
			if ok && cur > op.Version {
				res[i] = smp.IndexResult{Status: smp.IndexConflict,
					Reason: fmt.Sprintf("version_conflict_engine_exception: [%s]: version conflict, current version [%d] is higher than the one provided [%d]", op.ID, cur, op.Version)}
				continue
			}
		}
		if op.Delete {
			p.batch.Delete(op.ID)
			p.batch.DeleteInternal(sourceKey(op.ID))
		} else {
			fields, err := e.mapping.Coerce(op.Source)
			if err != nil {
				res[i] = smp.IndexResult{Status: smp.IndexRejected, Reason: smp.ErrorMessage(err)}
				continue
			}
			if err := p.batch.Index(op.ID, fields); err != nil {
				res[i] = smp.IndexResult{Status: smp.IndexRejected, Reason: "mapper_parsing_exception: " + err.Error()}
				continue
			}
			p.batch.SetInternal(sourceKey(op.ID), op.Source)
		}
		if op.Version > 0 || !op.Delete {
			p.batch.SetInternal(versionKey(op.ID), []byte(strconv.FormatInt(op.Version, 10)))
		} else {
			p.batch.DeleteInternal(versionKey(op.ID)) // an unversioned delete forgets the id
		}
		p.versions[op.ID] = op.Version
		res[i] = smp.IndexResult{Status: smp.IndexApplied}
	}
	for e, p := range batches {
		if p.batch.Size() == 0 {
			continue
		}
		if err := e.b.Batch(p.batch); err != nil {
			return nil, smp.Errorf(smp.EUNAVAILABLE, "bulk: %v", err)
		}
	}
	return res, nil
}

// Get returns a document by id.
func (x *Index) Get(ctx context.Context, index, id string) (smp.Document, error) {
	x.meta.RLock()
	defer x.meta.RUnlock()
	e, err := x.resolveLocked(index)
	if err != nil {
		return smp.Document{}, err
	}
	return get(e, id)
}

func get(e *entry, id string) (smp.Document, error) {
	src, err := e.b.GetInternal(sourceKey(id))
	if err != nil {
		return smp.Document{}, smp.Errorf(smp.EUNAVAILABLE, "get: %v", err)
	}
	if src == nil {
		return smp.Document{}, smp.Errorf(smp.ENOTFOUND, "document %s not found", id)
	}
	v, _, err := storedVersion(e.b, id)
	if err != nil {
		return smp.Document{}, smp.Errorf(smp.EUNAVAILABLE, "get: %v", err)
	}
	return smp.Document{ID: id, Version: v, Source: json.RawMessage(slices.Clone(src))}, nil
}

func buildQuery(m smp.SearchMapping, q smp.SearchQuery) (query.Query, error) {
	var must []query.Query
	if q.Text != "" {
		var any []query.Query
		for name, f := range m.Properties {
			if !f.Indexed() {
				continue
			}
			switch f.Type {
			case "keyword":
				t := bleve.NewTermQuery(q.Text)
				t.SetField(name)
				any = append(any, t)
			case "text":
				mq := bleve.NewMatchQuery(q.Text)
				mq.SetField(name)
				mq.SetOperator(query.MatchQueryOperatorAnd)
				any = append(any, mq)
			}
		}
		if len(any) == 0 {
			any = append(any, bleve.NewMatchNoneQuery())
		}
		must = append(must, bleve.NewDisjunctionQuery(any...))
	}
	for name, v := range q.Terms {
		f, ok := m.Properties[name]
		if !ok || !f.Indexed() || (f.Type != "keyword" && f.Type != "text") {
			return nil, smp.Errorf(smp.EINVALID, "search: %s is not a searchable keyword field", name)
		}
		t := bleve.NewTermQuery(v)
		t.SetField(name)
		must = append(must, t)
	}
	if q.RangeField != "" && (q.RangeFrom != 0 || q.RangeTo != 0) {
		f, ok := m.Properties[q.RangeField]
		if !ok || !f.Indexed() || (f.Type != "long" && f.Type != "integer" && f.Type != "double" && f.Type != "float") {
			return nil, smp.Errorf(smp.EINVALID, "search: %s is not a numeric field", q.RangeField)
		}
		var lo, hi *float64
		if q.RangeFrom != 0 {
			v := float64(q.RangeFrom)
			lo = &v
		}
		if q.RangeTo != 0 {
			v := float64(q.RangeTo)
			hi = &v
		}
		yes := true
		r := bleve.NewNumericRangeInclusiveQuery(lo, hi, &yes, &yes)
		r.SetField(q.RangeField)
		must = append(must, r)
	}
	if len(must) == 0 {
		return bleve.NewMatchAllQuery(), nil
	}
	return bleve.NewConjunctionQuery(must...), nil
}

// Search searches an index or alias.
func (x *Index) Search(ctx context.Context, index string, q smp.SearchQuery) (smp.SearchResult, error) {
	x.meta.RLock()
	defer x.meta.RUnlock()
	e, err := x.resolveLocked(index)
	if err != nil {
		return smp.SearchResult{}, err
	}
	bq, err := buildQuery(e.mapping, q)
	if err != nil {
		return smp.SearchResult{}, err
	}
	size := q.Size
	if size <= 0 {
		size = 20
	}
	req := bleve.NewSearchRequestOptions(bq, size, max(q.Offset, 0), false)
	sort := []string{"_id"}
	if q.SortField != "" {
		if _, ok := e.mapping.Properties[q.SortField]; !ok {
			return smp.SearchResult{}, smp.Errorf(smp.EINVALID, "search: no field %s to sort by", q.SortField)
		}
		sort = []string{"-" + q.SortField, "-_id"}
	}
	req.SortBy(sort)
	r, err := e.b.SearchInContext(ctx, req)
	if err != nil {
		return smp.SearchResult{}, smp.Errorf(smp.EUNAVAILABLE, "search: %v", err)
	}
	out := smp.SearchResult{Total: int64(r.Total), Docs: make([]smp.Document, 0, len(r.Hits))}
	for _, h := range r.Hits {
		d, err := get(e, h.ID)
		if smp.ErrorCode(err) == smp.ENOTFOUND {
			continue // deleted between the search and the read
		} else if err != nil {
			return smp.SearchResult{}, err
		}
		out.Docs = append(out.Docs, d)
	}
	return out, nil
}

// Count returns the documents of an index or alias.
func (x *Index) Count(ctx context.Context, index string) (int64, error) {
	x.meta.RLock()
	defer x.meta.RUnlock()
	e, err := x.resolveLocked(index)
	if err != nil {
		return 0, err
	}
	n, err := e.b.DocCount()
	if err != nil {
		return 0, smp.Errorf(smp.EUNAVAILABLE, "count: %v", err)
	}
	return int64(n), nil
}

// Mapping returns the mapping an index (or the index an alias names) was
// created with.
func (x *Index) Mapping(ctx context.Context, index string) (smp.SearchMapping, error) {
	x.meta.RLock()
	defer x.meta.RUnlock()
	e, err := x.resolveLocked(index)
	if err != nil {
		return smp.SearchMapping{}, err
	}
	return e.mapping, nil
}

// Scan calls fn with every document in id order, a page at a time.
func (x *Index) Scan(ctx context.Context, index string, fn func(smp.Document) error) error {
	var after []string
	for {
		page, last, err := x.scanPage(ctx, index, after)
		if err != nil {
			return err
		}
		for _, d := range page {
			if err := fn(d); err != nil {
				return err
			}
		}
		if last == "" {
			return nil
		}
		after = []string{last}
	}
}

const scanPage = 1000

// scanPage reads a page after the id in after; last is the page's last
// hit when the page was full ("" at the end).
func (x *Index) scanPage(ctx context.Context, index string, after []string) (docs []smp.Document, last string, err error) {
	x.meta.RLock()
	defer x.meta.RUnlock()
	e, err := x.resolveLocked(index)
	if err != nil {
		return nil, "", err
	}
	req := bleve.NewSearchRequestOptions(bleve.NewMatchAllQuery(), scanPage, 0, false)
	req.SortBy([]string{"_id"})
	if after != nil {
		req.SetSearchAfter(after)
	}
	r, err := e.b.SearchInContext(ctx, req)
	if err != nil {
		return nil, "", smp.Errorf(smp.EUNAVAILABLE, "scan: %v", err)
	}
	docs = make([]smp.Document, 0, len(r.Hits))
	for _, h := range r.Hits {
		d, err := get(e, h.ID)
		if smp.ErrorCode(err) == smp.ENOTFOUND {
			continue // deleted since
		} else if err != nil {
			return nil, "", err
		}
		docs = append(docs, d)
	}
	if len(r.Hits) == scanPage {
		last = r.Hits[len(r.Hits)-1].ID
	}
	return docs, last, nil
}

// Indices is _cat/indices.
func (x *Index) Indices(ctx context.Context) ([]smp.IndexInfo, error) {
	x.meta.RLock()
	defer x.meta.RUnlock()
	out := make([]smp.IndexInfo, 0, len(x.idx))
	for name, e := range x.idx {
		n, err := e.b.DocCount()
		if err != nil {
			return nil, smp.Errorf(smp.EUNAVAILABLE, "indices: %v", err)
		}
		info := smp.IndexInfo{Name: name, Health: "green", Docs: int64(n), Bytes: dirSize(filepath.Join(x.dir, name)), Aliases: []string{}}
		for a, i := range x.alias {
			if i == name {
				info.Aliases = append(info.Aliases, a)
			}
		}
		slices.Sort(info.Aliases)
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b smp.IndexInfo) int { return compare(a.Name, b.Name) })
	return out, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// Health is _cluster/health: one node, green while it answers.
func (x *Index) Health(ctx context.Context) (smp.ClusterHealth, error) {
	x.meta.RLock()
	defer x.meta.RUnlock()
	return smp.ClusterHealth{Cluster: "smp-embedded", Status: "green", Nodes: 1, Indices: len(x.idx)}, nil
}

// Allocation is _cat/allocation: the disk holding the directory.
func (x *Index) Allocation(ctx context.Context) ([]smp.Allocation, error) {
	x.meta.RLock()
	n := len(x.idx)
	x.meta.RUnlock()
	a := smp.Allocation{Node: "smp-embedded", Shards: n, DiskIndices: dirSize(x.dir)}
	total, avail, err := diskUsage(x.dir)
	if err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "allocation: %v", err)
	}
	a.DiskAvail, a.DiskUsed = avail, total-avail
	if total > 0 {
		a.DiskPercent = float64(a.DiskUsed) * 100 / float64(total)
	}
	return []smp.Allocation{a}, nil
}
