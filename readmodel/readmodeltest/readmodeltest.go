// Package readmodeltest is the conformance suite of smp.SearchIndex: every
// read-model backend (the embedded bleve index, Elasticsearch) runs Run,
// and the cases a backend's Features do not declare are skipped, saying so.
package readmodeltest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"smp"
)

// Open returns an empty backend for one test (closed by the suite), or a
// backend whose indices the test names uniquely (Prefix).
type Open func(t *testing.T) smp.SearchIndex

// Mapping is the suite's mapping: the shape of the orders' one.
const Mapping = `{"mappings":{"dynamic":"strict","properties":{
 "id":{"type":"keyword"},"city":{"type":"keyword"},"stage":{"type":"keyword"},
 "address":{"type":"text"},"price_vnd":{"type":"long"},"created_at":{"type":"long"},
 "lat":{"type":"double","index":false}}}}`

// Run runs every case against backends made by open. prefix is put before
// every index name (a shared Elasticsearch keeps other tests' indices).
func Run(t *testing.T, prefix string, open Open) {
	s := suite{prefix: prefix, open: open}
	for _, c := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Indices", s.indices},
		{"BulkAndGet", s.bulkAndGet},
		{"ExternalVersions", s.externalVersions},
		{"DeletesInsideBulk", s.deletesInsideBulk},
		{"Rejected", s.rejected},
		{"Search", s.search},
		{"Scan", s.scan},
		{"AliasSwap", s.aliasSwap},
		{"Mapping", s.mapping},
		{"Cat", s.cat},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t)
		})
	}
}

type suite struct {
	prefix string
	open   Open
}

func (s suite) index(t *testing.T, x smp.SearchIndex, name string) string {
	t.Helper()
	full := s.prefix + name
	if err := x.CreateIndex(context.Background(), full, []byte(Mapping)); err != nil {
		t.Fatalf("CreateIndex(%s): %v", full, err)
	}
	t.Cleanup(func() { x.DeleteIndex(context.Background(), full) })
	return full
}

func (s suite) backend(t *testing.T) smp.SearchIndex {
	t.Helper()
	x := s.open(t)
	t.Cleanup(func() { x.Close() })
	return x
}

func src(id, city, stage, address string, price, created int64) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"id": id, "city": city, "stage": stage, "address": address, "price_vnd": price, "created_at": created, "lat": 10.77})
	return b
}

func mustBulk(t *testing.T, x smp.SearchIndex, ops ...smp.IndexOp) []smp.IndexResult {
	t.Helper()
	res, err := x.Bulk(context.Background(), ops)
	if err != nil {
		t.Fatalf("Bulk: %v", err)
	}
	if len(res) != len(ops) {
		t.Fatalf("Bulk: %d results for %d ops", len(res), len(ops))
	}
	return res
}

func code(err error) string { return smp.ErrorCode(err) }

func (s suite) indices(t *testing.T) {
	ctx := context.Background()
	x := s.backend(t)
	name := s.index(t, x, "idx-a")
	if err := x.CreateIndex(ctx, name, []byte(Mapping)); code(err) != smp.ECONFLICT {
		t.Errorf("CreateIndex twice: %v, want ECONFLICT", err)
	}
	if err := x.CreateIndex(ctx, s.prefix+"idx-bad", []byte(`{"mappings":{"properties":{"x":{"type":"geo_shape"}}}}`)); code(err) != smp.EINVALID {
		t.Errorf("CreateIndex with an unsupported type: %v, want EINVALID", err)
	}
	if _, err := x.Count(ctx, s.prefix+"missing"); code(err) != smp.ENOTFOUND {
		t.Errorf("Count of a missing index: %v, want ENOTFOUND", err)
	}
	if err := x.DeleteIndex(ctx, s.prefix+"missing"); code(err) != smp.ENOTFOUND {
		t.Errorf("DeleteIndex of a missing index: %v, want ENOTFOUND", err)
	}
	if _, err := x.Alias(ctx, s.prefix+"no-alias"); code(err) != smp.ENOTFOUND {
		t.Errorf("Alias of a missing alias: %v, want ENOTFOUND", err)
	}
	if err := x.SetAlias(ctx, s.prefix+"a", s.prefix+"missing"); code(err) != smp.ENOTFOUND {
		t.Errorf("SetAlias to a missing index: %v, want ENOTFOUND", err)
	}
	if n, err := x.Count(ctx, name); err != nil || n != 0 {
		t.Errorf("Count of a new index = %d, %v", n, err)
	}
}

func (s suite) bulkAndGet(t *testing.T) {
	ctx := context.Background()
	x := s.backend(t)
	name := s.index(t, x, "idx-bulk")
	res := mustBulk(t, x,
		smp.IndexOp{Index: name, ID: "O1", Version: 3, Source: src("O1", "HCMC", "01_created", "12 Lê Lợi", 250000, 100)},
		smp.IndexOp{Index: name, ID: "O2", Version: 4, Source: src("O2", "HN", "02_dispatching", "5 Hàng Bài", 300000, 200)},
	)
	for i, r := range res {
		if r.Status != smp.IndexApplied {
			t.Errorf("op %d: %+v, want applied", i, r)
		}
	}
	d, err := x.Get(ctx, name, "O1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if d.ID != "O1" || d.Version != 3 {
		t.Errorf("Get = %s v%d, want O1 v3", d.ID, d.Version)
	}
	var got map[string]any
	if err := json.Unmarshal(d.Source, &got); err != nil || got["address"] != "12 Lê Lợi" || got["price_vnd"] != float64(250000) {
		t.Errorf("Get source = %s (%v), want what was written", d.Source, err)
	}
	if _, err := x.Get(ctx, name, "O9"); code(err) != smp.ENOTFOUND {
		t.Errorf("Get of a missing id: %v, want ENOTFOUND", err)
	}
	if n, err := x.Count(ctx, name); err != nil || n != 2 {
		t.Errorf("Count = %d, %v, want 2", n, err)
	}
	// A missing index is that op's rejection, not the request's failure.
	res = mustBulk(t, x, smp.IndexOp{Index: s.prefix + "missing", ID: "X", Source: src("X", "HN", "01_created", "", 1, 1)},
		smp.IndexOp{Index: name, ID: "O3", Version: 1, Source: src("O3", "HN", "01_created", "", 1, 1)})
	if res[0].Status != smp.IndexRejected || res[1].Status != smp.IndexApplied {
		t.Errorf("missing index then a good op: %+v", res)
	}
}

func (s suite) externalVersions(t *testing.T) {
	ctx := context.Background()
	x := s.backend(t)
	if !x.Features().ExternalVersions {
		t.Skip("backend does not keep external versions")
	}
	name := s.index(t, x, "idx-versions")
	mustBulk(t, x, smp.IndexOp{Index: name, ID: "O1", Version: 10, Source: src("O1", "HCMC", "03_assigned", "new", 1, 1)})
	// A replayed older change is refused: newer state stays.
	res := mustBulk(t, x, smp.IndexOp{Index: name, ID: "O1", Version: 9, Source: src("O1", "HCMC", "01_created", "old", 1, 1)})
	if res[0].Status != smp.IndexConflict {
		t.Errorf("older version: %+v, want conflict", res[0])
	}
	if d, _ := x.Get(ctx, name, "O1"); d.Version != 10 || !json.Valid(d.Source) || !contains(d.Source, "03_assigned") {
		t.Errorf("after an older write: v%d %s, want v10 03_assigned", d.Version, d.Source)
	}
	// The same version applies again (a replay of the same change).
	res = mustBulk(t, x, smp.IndexOp{Index: name, ID: "O1", Version: 10, Source: src("O1", "HCMC", "03_assigned", "new", 1, 1)})
	if res[0].Status != smp.IndexApplied {
		t.Errorf("equal version: %+v, want applied", res[0])
	}
	// Out of order inside one request: the older one loses.
	res = mustBulk(t, x,
		smp.IndexOp{Index: name, ID: "O2", Version: 7, Source: src("O2", "HN", "04_in_progress", "", 1, 1)},
		smp.IndexOp{Index: name, ID: "O2", Version: 5, Source: src("O2", "HN", "02_dispatching", "", 1, 1)})
	if res[0].Status != smp.IndexApplied || res[1].Status != smp.IndexConflict {
		t.Errorf("out of order in one bulk: %+v", res)
	}
	// A delete keeps its version: an older create does not resurrect.
	res = mustBulk(t, x, smp.IndexOp{Index: name, ID: "O1", Version: 12, Delete: true})
	if res[0].Status != smp.IndexApplied {
		t.Fatalf("delete: %+v", res[0])
	}
	res = mustBulk(t, x, smp.IndexOp{Index: name, ID: "O1", Version: 11, Source: src("O1", "HCMC", "03_assigned", "zombie", 1, 1)})
	if res[0].Status != smp.IndexConflict {
		t.Errorf("older create after a delete: %+v, want conflict", res[0])
	}
	if _, err := x.Get(ctx, name, "O1"); code(err) != smp.ENOTFOUND {
		t.Errorf("deleted document: %v, want ENOTFOUND", err)
	}
	// An older delete does not delete newer state.
	res = mustBulk(t, x, smp.IndexOp{Index: name, ID: "O2", Version: 6, Delete: true})
	if res[0].Status != smp.IndexConflict {
		t.Errorf("older delete: %+v, want conflict", res[0])
	}
	// A write without a version always applies (an operator's repair).
	res = mustBulk(t, x, smp.IndexOp{Index: name, ID: "O2", Source: src("O2", "HN", "05_completed", "", 1, 1)})
	if res[0].Status != smp.IndexApplied {
		t.Errorf("unversioned write: %+v, want applied", res[0])
	}
}

func contains(b []byte, sub string) bool { return strings.Contains(string(b), sub) }

func (s suite) deletesInsideBulk(t *testing.T) {
	ctx := context.Background()
	x := s.backend(t)
	name := s.index(t, x, "idx-deletes")
	mustBulk(t, x,
		smp.IndexOp{Index: name, ID: "A", Version: 1, Source: src("A", "HN", "01_created", "", 1, 1)},
		smp.IndexOp{Index: name, ID: "B", Version: 2, Source: src("B", "HN", "01_created", "", 1, 1)},
		smp.IndexOp{Index: name, ID: "A", Version: 3, Delete: true},
		smp.IndexOp{Index: name, ID: "C", Version: 4, Source: src("C", "HN", "01_created", "", 1, 1)},
		smp.IndexOp{Index: name, ID: "C", Version: 5, Delete: true},
		smp.IndexOp{Index: name, ID: "Z", Version: 6, Delete: true}, // never indexed: still applied
	)
	for _, id := range []string{"A", "C", "Z"} {
		if _, err := x.Get(ctx, name, id); code(err) != smp.ENOTFOUND {
			t.Errorf("%s deleted inside the bulk: Get = %v, want ENOTFOUND", id, err)
		}
	}
	if n, err := x.Count(ctx, name); err != nil || n != 1 {
		t.Errorf("Count = %d, %v, want 1 (B)", n, err)
	}
	r, err := x.Search(ctx, name, smp.SearchQuery{Terms: map[string]string{"city": "HN"}})
	if err != nil || r.Total != 1 {
		t.Errorf("search after deletes inside a bulk: %d, %v, want 1", r.Total, err)
	}
}

func (s suite) rejected(t *testing.T) {
	x := s.backend(t)
	name := s.index(t, x, "idx-rejected")
	res := mustBulk(t, x,
		smp.IndexOp{Index: name, ID: "A", Version: 1, Source: json.RawMessage(`{"id":"A","price_vnd":"two hundred"}`)},
		smp.IndexOp{Index: name, ID: "B", Version: 1, Source: json.RawMessage(`{"id":"B","unknown_field":1}`)},
		smp.IndexOp{Index: name, ID: "C", Version: 1, Source: json.RawMessage(`[1,2]`)},
		smp.IndexOp{Index: name, ID: "D", Version: 1, Source: src("D", "HN", "01_created", "", 1, 1)},
	)
	for i := 0; i < 3; i++ {
		if res[i].Status != smp.IndexRejected || res[i].Reason == "" {
			t.Errorf("op %d: %+v, want rejected with a reason", i, res[i])
		}
	}
	if res[3].Status != smp.IndexApplied {
		t.Errorf("good op after rejected ones: %+v", res[3])
	}
	if n, _ := x.Count(context.Background(), name); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}
}

func (s suite) search(t *testing.T) {
	ctx := context.Background()
	x := s.backend(t)
	name := s.index(t, x, "idx-search")
	var ops []smp.IndexOp
	for i := 1; i <= 30; i++ {
		city, stage := "HCMC", "02_dispatching"
		if i%3 == 0 {
			city = "HN"
		}
		if i%5 == 0 {
			stage = "05_completed"
		}
		id := fmt.Sprintf("O%03d", i)
		ops = append(ops, smp.IndexOp{Index: name, ID: id, Version: int64(i), Source: src(id, city, stage, fmt.Sprintf("%d Nguyễn Huệ, phường P%d", i, i%4+1), int64(i)*1000, int64(i)*1_000_000)})
	}
	mustBulk(t, x, ops...)
	if !x.Features().RefreshOnWrite {
		t.Skip("writes are not searchable on return")
	}
	r, err := x.Search(ctx, name, smp.SearchQuery{Terms: map[string]string{"city": "HN"}, Size: 100})
	if err != nil || r.Total != 10 || len(r.Docs) != 10 {
		t.Fatalf("city HN: total %d, %d docs, %v; want 10", r.Total, len(r.Docs), err)
	}
	r, _ = x.Search(ctx, name, smp.SearchQuery{Terms: map[string]string{"city": "HN", "stage": "05_completed"}})
	if r.Total != 2 { // 15, 30
		t.Errorf("city HN and completed: %d, want 2", r.Total)
	}
	r, _ = x.Search(ctx, name, smp.SearchQuery{Text: "O007"})
	if r.Total != 1 || r.Docs[0].ID != "O007" {
		t.Errorf("text O007: %+v", r)
	}
	r, _ = x.Search(ctx, name, smp.SearchQuery{Text: "Nguyễn Huệ phường p2", Size: 100})
	if r.Total != 8 { // i%4 == 1: 1,5,…,29
		t.Errorf("text in the address: %d, want 8", r.Total)
	}
	r, _ = x.Search(ctx, name, smp.SearchQuery{RangeField: "created_at", RangeFrom: 10_000_000, RangeTo: 12_000_000, SortField: "created_at"})
	if r.Total != 3 || len(r.Docs) != 3 || r.Docs[0].ID != "O012" || r.Docs[2].ID != "O010" {
		t.Errorf("range sorted descending: %+v", ids(r.Docs))
	}
	r, _ = x.Search(ctx, name, smp.SearchQuery{SortField: "created_at", Size: 5, Offset: 5})
	if r.Total != 30 || len(r.Docs) != 5 || r.Docs[0].ID != "O025" {
		t.Errorf("second page: total %d %v", r.Total, ids(r.Docs))
	}
	if _, err := x.Search(ctx, name, smp.SearchQuery{Terms: map[string]string{"nope": "x"}}); code(err) != smp.EINVALID {
		t.Errorf("search on an unknown field: %v, want EINVALID", err)
	}
}

func ids(docs []smp.Document) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out
}

func (s suite) scan(t *testing.T) {
	ctx := context.Background()
	x := s.backend(t)
	name := s.index(t, x, "idx-scan")
	const n = 1234 // more than a page
	var ops []smp.IndexOp
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("S%05d", i)
		ops = append(ops, smp.IndexOp{Index: name, ID: id, Version: int64(i + 1), Source: src(id, "HN", "01_created", "", 1, 1)})
	}
	mustBulk(t, x, ops...)
	var got []string
	if err := x.Scan(ctx, name, func(d smp.Document) error { got = append(got, d.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != n || !slices.IsSorted(got) {
		t.Errorf("Scan: %d ids (sorted %v), want %d in order", len(got), slices.IsSorted(got), n)
	}
}

func (s suite) aliasSwap(t *testing.T) {
	ctx := context.Background()
	x := s.backend(t)
	v1, v2, alias := s.index(t, x, "orders-v1"), s.index(t, x, "orders-v2"), s.prefix+"orders"
	if err := x.SetAlias(ctx, alias, v1); err != nil {
		t.Fatal(err)
	}
	mustBulk(t, x, smp.IndexOp{Index: alias, ID: "O1", Version: 1, Source: src("O1", "HN", "01_created", "", 1, 1)})
	if n, _ := x.Count(ctx, v1); n != 1 {
		t.Errorf("a write through the alias lands in %s: count %d", v1, n)
	}
	mustBulk(t, x, smp.IndexOp{Index: v2, ID: "O1", Version: 1, Source: src("O1", "HN", "01_created", "", 1, 1)},
		smp.IndexOp{Index: v2, ID: "O2", Version: 2, Source: src("O2", "HN", "01_created", "", 1, 1)})
	if err := x.SetAlias(ctx, alias, v2); err != nil {
		t.Fatal(err)
	}
	if i, err := x.Alias(ctx, alias); err != nil || i != v2 {
		t.Errorf("Alias = %s, %v, want %s", i, err, v2)
	}
	if n, _ := x.Count(ctx, alias); n != 2 {
		t.Errorf("count through the swapped alias = %d, want 2", n)
	}
	if err := x.DeleteIndex(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Alias(ctx, alias); code(err) != smp.ENOTFOUND {
		t.Errorf("alias of a dropped index: %v, want ENOTFOUND", err)
	}
	if err := x.CreateIndex(ctx, alias, []byte(Mapping)); err != nil {
		t.Errorf("the name of a removed alias is free: %v", err)
	} else {
		x.DeleteIndex(ctx, alias)
	}
}

func (s suite) cat(t *testing.T) {
	ctx := context.Background()
	x := s.backend(t)
	name := s.index(t, x, "idx-cat")
	if err := x.SetAlias(ctx, s.prefix+"cat", name); err != nil {
		t.Fatal(err)
	}
	mustBulk(t, x, smp.IndexOp{Index: name, ID: "A", Version: 1, Source: src("A", "HN", "01_created", "", 1, 1)})
	infos, err := x.Indices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(infos, func(i smp.IndexInfo) bool { return i.Name == name })
	if i < 0 || infos[i].Docs != 1 || !slices.Contains(infos[i].Aliases, s.prefix+"cat") || infos[i].Health == "" {
		t.Errorf("Indices: %+v, want %s with 1 doc and its alias", infos, name)
	}
	h, err := x.Health(ctx)
	if err != nil || h.Status == "" || h.Nodes < 1 {
		t.Errorf("Health = %+v, %v", h, err)
	}
	a, err := x.Allocation(ctx)
	if err != nil || len(a) == 0 || a[0].Node == "" {
		t.Errorf("Allocation = %+v, %v", a, err)
	}
}

// mapping: an index answers the mapping it was created with, through its
// name and through an alias; a missing one is ENOTFOUND.
func (s suite) mapping(t *testing.T) {
	ctx := context.Background()
	x := s.backend(t)
	name := s.index(t, x, "idx-mapping")
	want, err := smp.ParseSearchMapping([]byte(Mapping))
	if err != nil {
		t.Fatal(err)
	}
	if err := x.SetAlias(ctx, s.prefix+"mapping-alias", name); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{name, s.prefix + "mapping-alias"} {
		got, err := x.Mapping(ctx, n)
		if err != nil {
			t.Fatalf("Mapping(%s): %v", n, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Mapping(%s) = %+v, want %+v", n, got, want)
		}
	}
	if _, err := x.Mapping(ctx, s.prefix+"missing"); code(err) != smp.ENOTFOUND {
		t.Errorf("Mapping of a missing index: %v, want ENOTFOUND", err)
	}
}
