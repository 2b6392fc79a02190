package esindex_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/elastic/go-elasticsearch/v8/typedapi/core/bulk"

	"smp"
	"smp/readmodel"
	"smp/readmodel/esindex"
	"smp/readmodel/readmodeltest"
)

// The answers below are Elasticsearch 8's, as its documentation and
// servers give them; these tests check the reading of them and the
// requests built, not a server.

func ndjson(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestBulkRequest(t *testing.T) {
	ops := []smp.IndexOp{
		{Index: "orders", ID: "O1", Version: 7, Source: json.RawMessage(`{ "id": "O1", "stage": "03_assigned" }`)},
		{Index: "orders", ID: "O2", Version: 8, Delete: true},
		{Index: "orders", ID: "O3", Source: json.RawMessage(`{}`)}, // unversioned
		{Index: "orders", ID: "", Version: 1, Source: json.RawMessage(`{}`)},
		{Index: "orders", ID: "O5", Version: 1, Source: json.RawMessage(`[1,2]`)},
		{Index: "orders", ID: "O6", Version: 1, Source: json.RawMessage(`{"smp_doc_id":"forged"}`)},
		{Index: "gone", ID: "O7", Version: 1, Source: json.RawMessage(`{}`)},
		{Index: "orders", ID: strings.Repeat("x", 513), Delete: true},
	}
	body, sent, res, err := esindex.BulkRequest(ops, func(i int) bool { return ops[i].Index == "gone" })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sent, []int{0, 1, 2}) {
		t.Fatalf("sent %v, want ops 0, 1, 2", sent)
	}
	for _, i := range []int{3, 4, 5, 7} {
		if res[i].Status != smp.IndexRejected || res[i].Reason == "" {
			t.Errorf("op %d: %+v, want rejected before sending", i, res[i])
		}
	}
	if res[6].Status != "" {
		t.Errorf("a skipped op's result is the caller's: %+v", res[6])
	}
	lines := ndjson(t, body)
	want := []map[string]any{
		{"index": map[string]any{"_index": "orders", "_id": "O1", "version": float64(7), "version_type": "external_gte"}},
		{"smp_doc_id": "O1", "id": "O1", "stage": "03_assigned"},
		{"delete": map[string]any{"_index": "orders", "_id": "O2", "version": float64(8), "version_type": "external_gte"}},
		{"index": map[string]any{"_index": "orders", "_id": "O3"}},
		{"smp_doc_id": "O3"},
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("bulk body:\n%s\nwant %v", body, want)
	}
	if !strings.HasPrefix(strings.Split(string(body), "\n")[1], `{"smp_doc_id":"O1",`) {
		t.Errorf("the source is not one line with the id first: %s", body)
	}
}

func TestItemResults(t *testing.T) {
	// A _bulk answer with an applied index, a version conflict, a delete
	// of a missing id, a mapping rejection and an unversioned delete.
	answer := `{"errors":true,"took":12,"items":[
{"index":{"_index":"orders-v1","_id":"O1","_version":7,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}},
{"index":{"_index":"orders-v1","_id":"O1","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[O1]: version conflict, current version [10] is higher than the one provided [9]","index_uuid":"aAsFqTI0Tc2W0LCWgPNrOA","shard":"0","index":"orders-v1"}}},
{"delete":{"_index":"orders-v1","_id":"Z","_version":6,"result":"not_found","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":3,"_primary_term":1,"status":404}},
{"index":{"_index":"orders-v1","_id":"A","status":400,"error":{"type":"document_parsing_exception","reason":"[1:31] failed to parse field [price_vnd] of type [long] in document with id 'A'. Preview of field's value: 'two hundred'","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"two hundred\""}}}},
{"delete":{"_index":"orders-v1","_id":"O9","_version":3,"result":"deleted","status":200}},
{"index":{"_index":"orders-v1","_id":"B","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}}}
]}`
	var r bulk.Response
	if err := json.Unmarshal([]byte(answer), &r); err != nil {
		t.Fatal(err)
	}
	deletes := []bool{false, false, true, false, true, false}
	want := []string{smp.IndexApplied, smp.IndexConflict, smp.IndexApplied, smp.IndexRejected, smp.IndexApplied, ""}
	for i, item := range r.Items {
		if len(item) != 1 {
			t.Fatalf("item %d: %v", i, item)
		}
		for _, it := range item {
			got, retry := esindex.ItemResult(deletes[i], it)
			if got.Status != want[i] || retry != (want[i] == "") {
				t.Errorf("item %d: %+v retry %v, want %q", i, got, retry, want[i])
			}
			if want[i] == smp.IndexRejected && !strings.Contains(got.Reason, "two hundred") {
				t.Errorf("item %d: reason %q, want Elasticsearch's", i, got.Reason)
			}
			if want[i] == smp.IndexConflict && !strings.Contains(got.Reason, "version_conflict_engine_exception") {
				t.Errorf("item %d: reason %q", i, got.Reason)
			}
		}
	}
}

func TestErrorFrom(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		code   string
		msg    string
	}{
		{404, `{"error":{"root_cause":[{"type":"index_not_found_exception","reason":"no such index [x]"}],"type":"index_not_found_exception","reason":"no such index [x]","index":"x"},"status":404}`, smp.ENOTFOUND, "index_not_found_exception: no such index [x]"},
		{404, `{"error":"alias [orders] missing","status":404}`, smp.ENOTFOUND, "alias [orders] missing"},
		{400, `{"error":{"type":"resource_already_exists_exception","reason":"index [orders-v1/abc] already exists"},"status":400}`, smp.ECONFLICT, "resource_already_exists_exception"},
		{400, `{"error":{"type":"invalid_index_name_exception","reason":"Invalid index name [orders], already exists as alias"},"status":400}`, smp.ECONFLICT, "already exists as alias"},
		{400, `{"error":{"type":"invalid_alias_name_exception","reason":"Invalid alias name [orders-v1]: an index or data stream exists with the same name as the alias"},"status":400}`, smp.EINVALID, "invalid_alias_name_exception"},
		{400, `{"error":{"type":"mapper_parsing_exception","reason":"No handler for type [geo_x] declared on field [x]"},"status":400}`, smp.EINVALID, "mapper_parsing_exception"},
		{401, `{"error":{"type":"security_exception","reason":"missing authentication credentials for REST request [/_bulk]"},"status":401}`, smp.EUNAVAILABLE, "refused the credentials"},
		{429, `{"error":{"type":"es_rejected_execution_exception","reason":"rejected execution"},"status":429}`, smp.EUNAVAILABLE, "es_rejected_execution_exception"},
		{503, `{"error":{"type":"master_not_discovered_exception","reason":null},"status":503}`, smp.EUNAVAILABLE, "master_not_discovered_exception"},
		{502, `<html>Bad Gateway</html>`, smp.EUNAVAILABLE, "Bad Gateway"},
	} {
		err := esindex.ErrorFrom(c.status, []byte(c.body))
		if smp.ErrorCode(err) != c.code || !strings.Contains(smp.ErrorMessage(err), c.msg) {
			t.Errorf("HTTP %d %s: %s %q, want %s with %q", c.status, c.body, smp.ErrorCode(err), smp.ErrorMessage(err), c.code, c.msg)
		}
	}
}

func TestCreateBody(t *testing.T) {
	ms, err := readmodel.LatestMappings()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range append(ms, readmodel.Mapping{Table: "suite", Body: []byte(readmodeltest.Mapping)}) {
		body, err := esindex.CreateBody(m.Body)
		if err != nil {
			t.Fatalf("%s: %v", m.Table, err)
		}
		var got, orig struct {
			Mappings map[string]json.RawMessage `json:"mappings"`
		}
		json.Unmarshal(body, &got)
		json.Unmarshal(m.Body, &orig)
		var props, origProps map[string]json.RawMessage
		json.Unmarshal(got.Mappings["properties"], &props)
		json.Unmarshal(orig.Mappings["properties"], &origProps)
		if string(props["smp_doc_id"]) != `{"type":"keyword"}` || string(got.Mappings["_source"]) != `{"excludes":["smp_doc_id"]}` {
			t.Errorf("%s: %s, want smp_doc_id a keyword kept out of _source", m.Table, body)
		}
		delete(props, "smp_doc_id")
		if len(props) != len(origProps) || string(got.Mappings["dynamic"]) != string(orig.Mappings["dynamic"]) {
			t.Errorf("%s: the mapping's own fields changed: %s", m.Table, body)
		}
		for name, p := range origProps {
			var a, b any
			json.Unmarshal(p, &a)
			json.Unmarshal(props[name], &b)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s.%s: %s, want %s", m.Table, name, props[name], p)
			}
		}
	}
	for _, bad := range []string{
		`{"mappings":{"properties":{"x":{"type":"geo_shape"}}}}`,
		`{"mappings":{"properties":{"smp_doc_id":{"type":"keyword"}}}}`,
		`{"mappings":{"_source":{"enabled":false},"properties":{"x":{"type":"keyword"}}}}`,
		`not json`,
	} {
		if _, err := esindex.CreateBody([]byte(bad)); smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("%s: %v, want EINVALID", bad, err)
		}
	}
}

func TestSearchBody(t *testing.T) {
	m, err := smp.ParseSearchMapping([]byte(readmodeltest.Mapping))
	if err != nil {
		t.Fatal(err)
	}
	body, err := esindex.SearchBody(m, smp.SearchQuery{Text: "Lê Lợi", Terms: map[string]string{"stage": "03_assigned", "city": "HN"},
		RangeField: "created_at", RangeFrom: 10, SortField: "created_at", Size: 5, Offset: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got any
	json.Unmarshal(body, &got)
	var want any
	json.Unmarshal([]byte(`{"query":{"bool":{"filter":[
 {"bool":{"should":[{"match":{"address":{"query":"Lê Lợi","operator":"and"}}},{"term":{"city":"Lê Lợi"}},{"term":{"id":"Lê Lợi"}},{"term":{"stage":"Lê Lợi"}}],"minimum_should_match":1}},
 {"term":{"city":"HN"}},{"term":{"stage":"03_assigned"}},
 {"range":{"created_at":{"gte":10}}}]}},
 "sort":[{"created_at":"desc"},{"smp_doc_id":"desc"}],"size":5,"from":10,"version":true,"track_total_hits":true}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("search body:\n%s\nwant the same query as the embedded index builds", body)
	}
	body, _ = esindex.SearchBody(m, smp.SearchQuery{})
	json.Unmarshal(body, &got)
	json.Unmarshal([]byte(`{"query":{"match_all":{}},"sort":[{"smp_doc_id":"asc"}],"size":20,"from":0,"version":true,"track_total_hits":true}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("empty query: %s", body)
	}
	for _, q := range []smp.SearchQuery{
		{Terms: map[string]string{"nope": "x"}},
		{Terms: map[string]string{"lat": "1"}}, // not indexed
		{RangeField: "city", RangeFrom: 1},
		{SortField: "nope"},
	} {
		if _, err := esindex.SearchBody(m, q); smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("%+v: %v, want EINVALID", q, err)
		}
	}
	var scan map[string]any
	json.Unmarshal(esindex.ScanBody("S00999"), &scan)
	if !reflect.DeepEqual(scan["search_after"], []any{"S00999"}) || !reflect.DeepEqual(scan["sort"], []any{map[string]any{"smp_doc_id": "asc"}}) {
		t.Errorf("scan page: %v", scan)
	}
}

func TestAliasActions(t *testing.T) {
	got := string(esindex.AliasActions("orders", "orders-v2", []string{"orders-v1", "orders-v2"}))
	want := `{"actions":[{"remove":{"index":"orders-v1","alias":"orders"}},{"add":{"index":"orders-v2","alias":"orders"}}]}`
	if got != want {
		t.Errorf("alias swap: %s, want %s", got, want)
	}
	if got := string(esindex.AliasActions("orders", "orders-v1", nil)); got != `{"actions":[{"add":{"index":"orders-v1","alias":"orders"}}]}` {
		t.Errorf("new alias: %s", got)
	}
}

func TestCatAnswers(t *testing.T) {
	infos, err := esindex.CatIndices(
		[]byte(`[{"health":"yellow","status":"open","index":"orders-v1","uuid":"u1","pri":"1","rep":"1","docs.count":"1200","docs.deleted":"3","store.size":"98765","pri.store.size":"98765","dataset.size":"98765"},
{"health":"red","status":"close","index":"old","uuid":"u2","pri":"1","rep":"1","docs.count":null,"docs.deleted":null,"store.size":null,"pri.store.size":null,"dataset.size":null},
{"health":"green","status":"open","index":"order_transitions-v1","uuid":"u3","pri":"1","rep":"0","docs.count":"5","docs.deleted":"0","store.size":"2048","pri.store.size":"2048"}]`),
		[]byte(`{"orders-v1":{"aliases":{"orders":{},"orders-read":{}}},"old":{"aliases":{}},"order_transitions-v1":{"aliases":{"order_transitions":{}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []smp.IndexInfo{
		{Name: "old", Health: "red", Aliases: []string{}},
		{Name: "order_transitions-v1", Health: "green", Docs: 5, Bytes: 2048, Aliases: []string{"order_transitions"}},
		{Name: "orders-v1", Health: "yellow", Docs: 1200, Bytes: 98765, Aliases: []string{"orders", "orders-read"}},
	}
	if !reflect.DeepEqual(infos, want) {
		t.Errorf("indices: %+v\nwant %+v", infos, want)
	}
	h, err := esindex.HealthFrom([]byte(`{"cluster_name":"smp-prod","status":"yellow","number_of_nodes":3,"unassigned_shards":2,"indices":{"orders-v1":{"status":"yellow"},"order_transitions-v1":{"status":"green"}}}`))
	if err != nil || h != (smp.ClusterHealth{Cluster: "smp-prod", Status: "yellow", Nodes: 3, Indices: 2, Unassigned: 2}) {
		t.Errorf("health: %+v, %v", h, err)
	}
	h, err = esindex.HealthFrom([]byte(`{"cluster_name":"empty","status":"green","number_of_nodes":1,"unassigned_shards":0}`))
	if err != nil || h.Indices != 0 || h.Status != "green" {
		t.Errorf("health with no index: %+v, %v", h, err)
	}
	a, err := esindex.AllocationFrom([]byte(`[{"shards":"5","shards.undesired":"0","write_load.forecast":"0.0","disk.indices.forecast":"12345","disk.indices":"12345","disk.used":"1000000","disk.avail":"9000000","disk.total":"10000000","disk.percent":"10","host":"10.0.0.1","ip":"10.0.0.1","node":"es-1","node.role":"cdfhilmrstw"},
{"shards":"2","shards.undesired":null,"write_load.forecast":null,"disk.indices.forecast":null,"disk.indices":null,"disk.used":null,"disk.avail":null,"disk.total":null,"disk.percent":null,"host":null,"ip":null,"node":"UNASSIGNED","node.role":null}]`))
	want2 := []smp.Allocation{{Node: "es-1", Shards: 5, DiskIndices: 12345, DiskUsed: 1000000, DiskAvail: 9000000, DiskPercent: 10}, {Node: "UNASSIGNED", Shards: 2}}
	if err != nil || !reflect.DeepEqual(a, want2) {
		t.Errorf("allocation: %+v, %v", a, err)
	}
}
