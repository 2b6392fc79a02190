// Package esindex is the read model's production backend: smp.SearchIndex
// on Elasticsearch 8 through the typed API of
// github.com/elastic/go-elasticsearch/v8: each call is built by the typed
// endpoint's package (bulk, search, indices/create, …) over the client's
// transport (elastic-transport-go). elasticsearch.NewTypedClient is not
// used: it links every one of the typed API's ~600 endpoint packages
// (a cold build of them took over half an hour on the project's shared
// 2-core machines), for the 13 this package calls.
//
// Writes go through the bulk API with version_type=external_gte (the
// interface's external versions: an older change is a version conflict,
// which is that op's IndexConflict, not an error), deletes carry their
// version too. Every index SMP creates gets a keyword field smp_doc_id (the
// document's id, kept out of _source by _source.excludes, so Get and Scan
// return what was written): Elasticsearch 8 refuses to sort on _id, and
// Scan and the search's tie-break sort on it instead. Bulk requests are
// searchable on return with refresh=wait_for (Config.Refresh), as on the
// embedded index.
package esindex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	catallocation "github.com/elastic/go-elasticsearch/v8/typedapi/cat/allocation"
	catindices "github.com/elastic/go-elasticsearch/v8/typedapi/cat/indices"
	"github.com/elastic/go-elasticsearch/v8/typedapi/cluster/health"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/bulk"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/count"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/get"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/indices/create"
	deleteindex "github.com/elastic/go-elasticsearch/v8/typedapi/indices/delete"
	"github.com/elastic/go-elasticsearch/v8/typedapi/indices/exists"
	"github.com/elastic/go-elasticsearch/v8/typedapi/indices/getalias"
	"github.com/elastic/go-elasticsearch/v8/typedapi/indices/getmapping"
	"github.com/elastic/go-elasticsearch/v8/typedapi/indices/updatealiases"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
	catbytes "github.com/elastic/go-elasticsearch/v8/typedapi/types/enums/bytes"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types/enums/level"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types/enums/refresh"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types/enums/versiontype"

	"smp"
)

// IDField is the keyword field every index SMP creates carries: the
// document's id, indexed but not in _source. Its name is reserved: a
// mapping or a document naming it is refused.
const IDField = "smp_doc_id"

// Refresh policies of Config.Refresh.
const (
	RefreshWaitFor = "wait_for" // a bulk returns once its writes are searchable (the default)
	RefreshFalse   = "false"    // searchable within the index's refresh_interval (1 s): faster bulk writes
)

// Config says how to reach Elasticsearch.
type Config struct {
	// URL is the cluster's address (https://es.internal:9200), several
	// separated by commas. Credentials go in Username/Password or APIKey,
	// never in the URL.
	URL      string
	Username string
	Password string
	// APIKey is the base64 "id:key" Elasticsearch gives (its "encoded").
	APIKey string
	// CACert is the PEM of the CA that signed the cluster's certificate
	// (https only; the system's roots otherwise).
	CACert []byte
	// Refresh is RefreshWaitFor ("") or RefreshFalse.
	Refresh string
	// Transport replaces the HTTP transport (nil: the client's own).
	Transport http.RoundTripper
}

// Validate checks the configuration without reaching the cluster.
func (c Config) Validate() error {
	if strings.TrimSpace(c.URL) == "" {
		return errors.New("the Elasticsearch URL is required")
	}
	https := false
	for _, a := range c.addresses() {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("the Elasticsearch URL %q: must be http(s)://host:port", redact(a))
		}
		if u.User != nil {
			return fmt.Errorf("the Elasticsearch URL %q: give the credentials as a username and password or an API key, not in the URL", redact(a))
		}
		https = https || u.Scheme == "https"
	}
	switch {
	case c.APIKey != "" && (c.Username != "" || c.Password != ""):
		return errors.New("give either an Elasticsearch API key or a username and password, not both")
	case (c.Username == "") != (c.Password == ""):
		return errors.New("an Elasticsearch username needs its password (and a password its username)")
	case len(c.CACert) > 0 && !https:
		return errors.New("an Elasticsearch CA certificate needs an https URL")
	case c.Refresh != "" && c.Refresh != RefreshWaitFor && c.Refresh != RefreshFalse:
		return fmt.Errorf("the Elasticsearch refresh %q: must be %s or %s", c.Refresh, RefreshWaitFor, RefreshFalse)
	}
	return nil
}

func (c Config) addresses() []string {
	var out []string
	for _, a := range strings.Split(c.URL, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// redact keeps a URL's credentials out of a message.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// Index is smp.SearchIndex on Elasticsearch.
type Index struct {
	tp      *elastictransport.Client
	refresh refresh.Refresh
}

var _ smp.SearchIndex = (*Index)(nil)

// Open makes the client. It does not reach the cluster: the read model's
// calls answer EUNAVAILABLE while it cannot be reached.
func Open(cfg Config) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, smp.Errorf(smp.EINVALID, "esindex: %v", err)
	}
	var urls []*url.URL
	for _, a := range cfg.addresses() {
		u, _ := url.Parse(a) // checked by Validate
		urls = append(urls, u)
	}
	opts := []elastictransport.Option{elastictransport.WithUserAgent("smp-readmodel"), elastictransport.WithURLs(urls...)}
	switch {
	case cfg.APIKey != "":
		opts = append(opts, elastictransport.WithAPIKey(cfg.APIKey))
	case cfg.Username != "":
		opts = append(opts, elastictransport.WithBasicAuth(cfg.Username, cfg.Password))
	}
	if len(cfg.CACert) > 0 {
		opts = append(opts, elastictransport.WithCACert(cfg.CACert))
	}
	if cfg.Transport != nil {
		opts = append(opts, elastictransport.WithTransport(cfg.Transport))
	}
	tp, err := elastictransport.NewClient(opts...)
	if err != nil {
		return nil, smp.Errorf(smp.EINVALID, "esindex: %v", err)
	}
	x := &Index{tp: tp, refresh: refresh.Waitfor}
	if cfg.Refresh == RefreshFalse {
		x.refresh = refresh.False
	}
	return x, nil
}

// Close releases the client's connections.
func (x *Index) Close() error {
	err := x.tp.Close(context.Background())
	if err != nil && strings.Contains(err.Error(), "already closed") {
		return nil
	}
	return err
}

// Features: external versions (delete tombstones are kept for the
// index's gc_deletes, 60 s by default: see docs/readmodel.md), atomic
// alias swaps (_aliases), searchable on return with refresh=wait_for.
func (x *Index) Features() smp.SearchFeatures {
	return smp.SearchFeatures{ExternalVersions: true, AtomicAliasSwap: true, RefreshOnWrite: x.refresh == refresh.Waitfor}
}

// performer is every typed endpoint: Perform sends the request it built.
type performer interface {
	Perform(ctx context.Context) (*http.Response, error)
}

// call sends req and decodes a 2xx answer into out (nil: ignored). Any
// other answer is the error mapped to the project's codes; with allow,
// those statuses are returned with a nil error and their body in out.
func call(ctx context.Context, what string, req performer, out any, allow ...int) (int, error) {
	res, err := req.Perform(ctx)
	if err != nil {
		return 0, smp.Errorf(smp.EUNAVAILABLE, "elasticsearch %s: %v", what, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, smp.Errorf(smp.EUNAVAILABLE, "elasticsearch %s: %v", what, err)
	}
	if res.StatusCode >= 300 && !slices.Contains(allow, res.StatusCode) {
		return res.StatusCode, ErrorFrom(res.StatusCode, body)
	}
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			return res.StatusCode, smp.Errorf(smp.EUNAVAILABLE, "elasticsearch %s: unexpected answer (HTTP %d): %v", what, res.StatusCode, err)
		}
	}
	return res.StatusCode, nil
}

// errorBody is Elasticsearch's error answer: "error" is an object
// (type, reason) or, for a few endpoints (a missing alias), a string.
type errorBody struct {
	Error json.RawMessage `json:"error"`
}

// Cause is an Elasticsearch error's type and reason.
func Cause(body []byte) (typ, reason string) {
	var b errorBody
	if json.Unmarshal(body, &b) != nil || len(b.Error) == 0 {
		return "", strings.TrimSpace(smpTruncate(string(body), 200))
	}
	var s string
	if json.Unmarshal(b.Error, &s) == nil {
		return "", s
	}
	var c types.ErrorCause
	if json.Unmarshal(b.Error, &c) != nil {
		return "", smpTruncate(string(b.Error), 200)
	}
	if c.Reason != nil {
		reason = *c.Reason
	}
	return c.Type, reason
}

func smpTruncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// ErrorFrom maps an Elasticsearch error answer to the project's codes:
// ENOTFOUND (404: no such index, alias or document), ECONFLICT (409, an
// index that exists), EINVALID (any other 400: a mapping or a query it
// refuses), EUNAVAILABLE (refused credentials, 429, 5xx: the caller
// retries or the operator looks). The message is "type: reason".
func ErrorFrom(status int, body []byte) error {
	typ, reason := Cause(body)
	msg := reason
	if typ != "" {
		msg = typ + ": " + reason
	}
	switch {
	case status == http.StatusNotFound:
		return smp.Errorf(smp.ENOTFOUND, "%s", msg)
	case status == http.StatusConflict || typ == "resource_already_exists_exception" ||
		(typ == "invalid_index_name_exception" && strings.Contains(reason, "already exists")):
		return smp.Errorf(smp.ECONFLICT, "%s", msg)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return smp.Errorf(smp.EUNAVAILABLE, "elasticsearch refused the credentials (HTTP %d): %s", status, msg)
	case status >= 400 && status < 500 && status != http.StatusTooManyRequests && status != http.StatusRequestTimeout:
		return smp.Errorf(smp.EINVALID, "%s", msg)
	}
	return smp.Errorf(smp.EUNAVAILABLE, "elasticsearch (HTTP %d): %s", status, msg)
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

// checkName refuses what Elasticsearch would read as several indices (a
// wildcard, a comma) or a system index.
func checkName(kind, name string) error {
	if !validName.MatchString(name) {
		return smp.Errorf(smp.EINVALID, "invalid_%s_name_exception: %q (lowercase letters, digits, _ . -)", kind, name)
	}
	return nil
}

// CreateBody is the create-index request for a mapping document: the
// document with IDField added to its properties and kept out of _source.
func CreateBody(doc []byte) ([]byte, error) {
	if _, err := smp.ParseSearchMapping(doc); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, smp.Errorf(smp.EINVALID, "mapping: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(top["mappings"], &m); err != nil {
		return nil, smp.Errorf(smp.EINVALID, "mapping: %v", err)
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(m["properties"], &props); err != nil {
		return nil, smp.Errorf(smp.EINVALID, "mapping: %v", err)
	}
	if _, ok := props[IDField]; ok {
		return nil, smp.Errorf(smp.EINVALID, "mapping: the field %s is reserved (the document id SMP sorts on)", IDField)
	}
	if _, ok := m["_source"]; ok {
		return nil, smp.Errorf(smp.EINVALID, "mapping: _source is set by SMP (it keeps %s out of it)", IDField)
	}
	props[IDField] = json.RawMessage(`{"type":"keyword"}`)
	m["_source"] = json.RawMessage(`{"excludes":["` + IDField + `"]}`)
	var err error
	if m["properties"], err = json.Marshal(props); err != nil {
		return nil, err
	}
	if top["mappings"], err = json.Marshal(m); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}

// CreateIndex creates an index from an Elasticsearch mapping document.
func (x *Index) CreateIndex(ctx context.Context, name string, doc []byte) error {
	if err := checkName("index", name); err != nil {
		return err
	}
	body, err := CreateBody(doc)
	if err != nil {
		return err
	}
	_, err = call(ctx, "create index", create.NewCreateFunc(x.tp)(name).Raw(bytesReader(body)), nil)
	return err
}

func bytesReader(b []byte) io.Reader { return strings.NewReader(string(b)) }

// DeleteIndex drops an index (its aliases go with it).
func (x *Index) DeleteIndex(ctx context.Context, name string) error {
	if err := checkName("index", name); err != nil {
		return err
	}
	_, err := call(ctx, "delete index", deleteindex.NewDeleteFunc(x.tp)(name), nil)
	return err
}

// aliasIndices are the indices alias points at (none: ENOTFOUND).
func (x *Index) aliasIndices(ctx context.Context, alias string) ([]string, error) {
	var got map[string]json.RawMessage
	status, err := call(ctx, "get alias", getalias.New(x.tp).Name(alias), &got, http.StatusNotFound)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNotFound || len(got) == 0 {
		return nil, smp.Errorf(smp.ENOTFOUND, "alias [%s] missing", alias)
	}
	out := make([]string, 0, len(got))
	for i := range got {
		out = append(out, i)
	}
	slices.Sort(out)
	return out, nil
}

// AliasActions is the _aliases request moving alias from the indices in
// from to index, in one step.
func AliasActions(alias, index string, from []string) []byte {
	type ref struct {
		Index string `json:"index"`
		Alias string `json:"alias"`
	}
	var actions []map[string]ref
	for _, f := range from {
		if f != index {
			actions = append(actions, map[string]ref{"remove": {Index: f, Alias: alias}})
		}
	}
	actions = append(actions, map[string]ref{"add": {Index: index, Alias: alias}})
	b, _ := json.Marshal(map[string]any{"actions": actions})
	return b
}

// SetAlias points alias at index alone, in one _aliases request.
func (x *Index) SetAlias(ctx context.Context, alias, index string) error {
	if err := checkName("alias", alias); err != nil {
		return err
	}
	if err := checkName("index", index); err != nil {
		return err
	}
	from, err := x.aliasIndices(ctx, alias)
	if err != nil && smp.ErrorCode(err) != smp.ENOTFOUND {
		return err
	}
	_, err = call(ctx, "update aliases", updatealiases.New(x.tp).Raw(bytesReader(AliasActions(alias, index, from))), nil)
	return err
}

// Alias returns the index alias points at.
func (x *Index) Alias(ctx context.Context, alias string) (string, error) {
	if err := checkName("alias", alias); err != nil {
		return "", smp.Errorf(smp.ENOTFOUND, "alias [%s] missing", alias)
	}
	in, err := x.aliasIndices(ctx, alias)
	if err != nil {
		return "", err
	}
	if len(in) > 1 {
		return "", smp.Errorf(smp.EINVALID, "alias [%s] points at %d indices (%s): the read model expects one", alias, len(in), strings.Join(in, ", "))
	}
	return in[0], nil
}

// exists says whether name is an index or an alias.
func (x *Index) exists(ctx context.Context, name string) (bool, error) {
	if checkName("index", name) != nil {
		return false, nil
	}
	status, err := call(ctx, "exists", exists.NewExistsFunc(x.tp)(name), nil, http.StatusNotFound)
	return status == http.StatusOK, err
}

// BulkRequest is the _bulk body of ops: the action lines (with
// version_type=external_gte for a versioned op) and the sources with
// IDField added. Sent[i] is the op of the request's i-th item; an op that
// cannot be sent (a bad id or source) has its result filled already.
func BulkRequest(ops []smp.IndexOp, skip func(i int) bool) (body []byte, sent []int, res []smp.IndexResult, err error) {
	res = make([]smp.IndexResult, len(ops))
	var buf []byte
	for i, op := range ops {
		if skip != nil && skip(i) {
			continue
		}
		if op.ID == "" || len(op.ID) > 512 {
			res[i] = smp.IndexResult{Status: smp.IndexRejected, Reason: "action_request_validation_exception: id is missing or longer than 512 bytes"}
			continue
		}
		var ver *int64
		var vt *versiontype.VersionType
		if op.Version > 0 {
			v, t := op.Version, versiontype.Externalgte
			ver, vt = &v, &t
		}
		index, id := op.Index, op.ID
		var action types.OperationContainer
		var source []byte
		if op.Delete {
			action.Delete = &types.DeleteOperation{Index_: &index, Id_: &id, Version: ver, VersionType: vt}
		} else {
			if source, err = withID(op.Source, op.ID); err != nil {
				res[i] = smp.IndexResult{Status: smp.IndexRejected, Reason: smp.ErrorMessage(err)}
				continue
			}
			action.Index = &types.IndexOperation{Index_: &index, Id_: &id, Version: ver, VersionType: vt}
		}
		line, err := json.Marshal(action)
		if err != nil {
			return nil, nil, nil, err
		}
		buf = append(append(buf, line...), '\n')
		if source != nil {
			buf = append(append(buf, source...), '\n')
		}
		sent = append(sent, i)
	}
	return buf, sent, res, nil
}

// withID is a document's source with IDField set to id, on one line: the
// source must be a JSON object and not name IDField itself.
func withID(source json.RawMessage, id string) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(source, &fields); err != nil || fields == nil {
		return nil, smp.Errorf(smp.EINVALID, "mapper_parsing_exception: failed to parse: the document is not a JSON object")
	}
	if _, ok := fields[IDField]; ok {
		return nil, smp.Errorf(smp.EINVALID, "mapper_parsing_exception: the field %s is reserved", IDField)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, source); err != nil {
		return nil, smp.Errorf(smp.EINVALID, "mapper_parsing_exception: %v", err)
	}
	idJSON, _ := json.Marshal(id)
	rest := bytes.TrimPrefix(compact.Bytes(), []byte("{"))
	out := append([]byte(`{"`+IDField+`":`), idJSON...)
	if len(bytes.TrimSpace(rest)) > 1 { // not "}"
		out = append(out, ',')
	}
	return append(out, rest...), nil
}

// ItemResult maps a bulk item's answer: applied (a delete of a missing id
// too), conflict (409: a newer version is stored), rejected (any other
// 4xx, with Elasticsearch's reason). retry is set for what says nothing
// about the document (429, 5xx): the request as a whole is to be retried.
func ItemResult(delete bool, it types.ResponseItem) (r smp.IndexResult, retry bool) {
	reason := ""
	if it.Error != nil {
		reason = it.Error.Type
		if it.Error.Reason != nil {
			reason += ": " + *it.Error.Reason
		}
		if it.Error.CausedBy != nil && it.Error.CausedBy.Reason != nil {
			reason += " (" + *it.Error.CausedBy.Reason + ")"
		}
	}
	switch {
	case it.Status >= 200 && it.Status < 300:
		return smp.IndexResult{Status: smp.IndexApplied}, false
	case it.Status == http.StatusNotFound && delete && it.Error == nil:
		return smp.IndexResult{Status: smp.IndexApplied}, false // result "not_found": deleted already
	case it.Status == http.StatusConflict:
		return smp.IndexResult{Status: smp.IndexConflict, Reason: reason}, false
	case it.Status == http.StatusTooManyRequests || it.Status >= 500 || it.Status == 0:
		return smp.IndexResult{}, true
	}
	if reason == "" {
		reason = "HTTP " + strconv.Itoa(it.Status)
	}
	return smp.IndexResult{Status: smp.IndexRejected, Reason: reason}, false
}

// Bulk applies ops in one _bulk request. An op whose index (or alias) does
// not exist is rejected without being sent (Elasticsearch would create the
// index with a guessed mapping).
func (x *Index) Bulk(ctx context.Context, ops []smp.IndexOp) ([]smp.IndexResult, error) {
	missing := map[string]bool{}
	for _, op := range ops {
		if _, seen := missing[op.Index]; seen {
			continue
		}
		ok, err := x.exists(ctx, op.Index)
		if err != nil {
			return nil, fmt.Errorf("bulk: %w", err)
		}
		missing[op.Index] = !ok
	}
	body, sent, res, err := BulkRequest(ops, func(i int) bool { return missing[ops[i].Index] })
	if err != nil {
		return nil, err
	}
	for i, op := range ops {
		if missing[op.Index] {
			res[i] = smp.IndexResult{Status: smp.IndexRejected, Reason: fmt.Sprintf("index_not_found_exception: no such index [%s]", op.Index)}
		}
	}
	if len(sent) == 0 {
		return res, nil
	}
	var out bulk.Response
	if _, err := call(ctx, "bulk", bulk.New(x.tp).Refresh(x.refresh).Raw(bytesReader(body)), &out); err != nil {
		if smp.ErrorCode(err) == smp.EINVALID { // the request as a whole: not a document's fault
			err = smp.Errorf(smp.EUNAVAILABLE, "bulk refused: %s", smp.ErrorMessage(err))
		}
		return nil, err
	}
	if len(out.Items) != len(sent) {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "bulk: %d items answered for %d sent", len(out.Items), len(sent))
	}
	for k, item := range out.Items {
		i := sent[k]
		for _, it := range item {
			r, retry := ItemResult(ops[i].Delete, it)
			if retry {
				return nil, smp.Errorf(smp.EUNAVAILABLE, "bulk: item %s: HTTP %d (%s): retry the request", ops[i].ID, it.Status, r.Reason)
			}
			res[i] = r
		}
	}
	return res, nil
}

// Get returns a document by id (realtime: no refresh needed).
func (x *Index) Get(ctx context.Context, index, id string) (smp.Document, error) {
	if err := checkName("index", index); err != nil {
		return smp.Document{}, smp.Errorf(smp.ENOTFOUND, "index_not_found_exception: no such index [%s]", index)
	}
	if id == "" {
		return smp.Document{}, smp.Errorf(smp.ENOTFOUND, "document with no id")
	}
	var r get.Response
	if _, err := call(ctx, "get", get.NewGetFunc(x.tp)(index, id), &r, http.StatusNotFound); err != nil {
		return smp.Document{}, err
	}
	if !r.Found { // a missing document, or a missing index (its error body has no "found")
		return smp.Document{}, smp.Errorf(smp.ENOTFOUND, "document %s not found in [%s]", id, index)
	}
	d := smp.Document{ID: r.Id_, Source: r.Source_}
	if r.Version_ != nil {
		d.Version = *r.Version_
	}
	return d, nil
}

// Mapping reads the mapping of an index or alias (of the index it names).
func (x *Index) Mapping(ctx context.Context, index string) (smp.SearchMapping, error) {
	if err := checkName("index", index); err != nil {
		return smp.SearchMapping{}, smp.Errorf(smp.ENOTFOUND, "index_not_found_exception: no such index [%s]", index)
	}
	var got map[string]struct {
		Mappings smp.SearchMapping `json:"mappings"`
	}
	if _, err := call(ctx, "get mapping", getmapping.New(x.tp).Index(index), &got); err != nil {
		return smp.SearchMapping{}, err
	}
	if len(got) != 1 {
		return smp.SearchMapping{}, smp.Errorf(smp.EINVALID, "%s names %d indices: the read model searches one", index, len(got))
	}
	var m smp.SearchMapping
	for _, g := range got {
		m = g.Mappings
	}
	delete(m.Properties, IDField)
	return m, nil
}

// SearchBody is the _search request of q against an index of mapping m,
// with the same meaning as on the embedded index: Text matches any indexed
// keyword field exactly or any text field with all its words, Terms are
// exact matches, the range is inclusive (0: unbounded), sorted by
// SortField descending then the id (the id alone, ascending, without).
func SearchBody(m smp.SearchMapping, q smp.SearchQuery) ([]byte, error) {
	var must []any
	if q.Text != "" {
		var should []any
		names := make([]string, 0, len(m.Properties))
		for name := range m.Properties {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			f := m.Properties[name]
			if !f.Indexed() {
				continue
			}
			switch f.Type {
			case "keyword":
				should = append(should, map[string]any{"term": map[string]any{name: q.Text}})
			case "text":
				should = append(should, map[string]any{"match": map[string]any{name: map[string]any{"query": q.Text, "operator": "and"}}})
			}
		}
		if len(should) == 0 {
			must = append(must, map[string]any{"match_none": map[string]any{}})
		} else {
			must = append(must, map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}})
		}
	}
	terms := make([]string, 0, len(q.Terms))
	for name := range q.Terms {
		terms = append(terms, name)
	}
	slices.Sort(terms)
	for _, name := range terms {
		f, ok := m.Properties[name]
		if !ok || !f.Indexed() || (f.Type != "keyword" && f.Type != "text") {
			return nil, smp.Errorf(smp.EINVALID, "search: %s is not a searchable keyword field", name)
		}
		must = append(must, map[string]any{"term": map[string]any{name: q.Terms[name]}})
	}
	if q.RangeField != "" && (q.RangeFrom != 0 || q.RangeTo != 0) {
		f, ok := m.Properties[q.RangeField]
		if !ok || !f.Indexed() || (f.Type != "long" && f.Type != "integer" && f.Type != "double" && f.Type != "float") {
			return nil, smp.Errorf(smp.EINVALID, "search: %s is not a numeric field", q.RangeField)
		}
		r := map[string]any{}
		if q.RangeFrom != 0 {
			r["gte"] = q.RangeFrom
		}
		if q.RangeTo != 0 {
			r["lte"] = q.RangeTo
		}
		must = append(must, map[string]any{"range": map[string]any{q.RangeField: r}})
	}
	query := map[string]any{"match_all": map[string]any{}}
	if len(must) > 0 {
		query = map[string]any{"bool": map[string]any{"filter": must}}
	}
	sort := []any{map[string]any{IDField: "asc"}}
	if q.SortField != "" {
		if _, ok := m.Properties[q.SortField]; !ok {
			return nil, smp.Errorf(smp.EINVALID, "search: no field %s to sort by", q.SortField)
		}
		sort = []any{map[string]any{q.SortField: "desc"}, map[string]any{IDField: "desc"}}
	}
	size := q.Size
	if size <= 0 {
		size = 20
	}
	return json.Marshal(map[string]any{"query": query, "sort": sort, "size": size, "from": max(q.Offset, 0),
		"version": true, "track_total_hits": true})
}

func docs(hits []types.Hit) []smp.Document {
	out := make([]smp.Document, 0, len(hits))
	for _, h := range hits {
		d := smp.Document{Source: h.Source_}
		if h.Id_ != nil {
			d.ID = *h.Id_
		}
		if h.Version_ != nil {
			d.Version = *h.Version_
		}
		out = append(out, d)
	}
	return out
}

// Search searches an index or alias.
func (x *Index) Search(ctx context.Context, index string, q smp.SearchQuery) (smp.SearchResult, error) {
	m, err := x.Mapping(ctx, index)
	if err != nil {
		return smp.SearchResult{}, err
	}
	body, err := SearchBody(m, q)
	if err != nil {
		return smp.SearchResult{}, err
	}
	var r search.Response
	if _, err := call(ctx, "search", search.New(x.tp).Index(index).Raw(bytesReader(body)), &r); err != nil {
		return smp.SearchResult{}, err
	}
	out := smp.SearchResult{Docs: docs(r.Hits.Hits)}
	if r.Hits.Total != nil {
		out.Total = r.Hits.Total.Value
	}
	return out, nil
}

// Count returns how many documents an index or alias holds.
func (x *Index) Count(ctx context.Context, index string) (int64, error) {
	if err := checkName("index", index); err != nil {
		return 0, smp.Errorf(smp.ENOTFOUND, "index_not_found_exception: no such index [%s]", index)
	}
	var r struct {
		Count int64 `json:"count"`
	}
	_, err := call(ctx, "count", count.New(x.tp).Index(index), &r)
	return r.Count, err
}

const scanPage = 1000

// ScanBody is a page of the scan: every document sorted by IDField, after
// the id after ("" for the first page).
func ScanBody(after string) []byte {
	req := map[string]any{"query": map[string]any{"match_all": map[string]any{}}, "size": scanPage,
		"sort": []any{map[string]any{IDField: "asc"}}, "version": true, "track_total_hits": false}
	if after != "" {
		req["search_after"] = []string{after}
	}
	b, _ := json.Marshal(req)
	return b
}

// Scan calls fn with every document in id order, a page at a time
// (search_after on IDField).
func (x *Index) Scan(ctx context.Context, index string, fn func(smp.Document) error) error {
	if err := checkName("index", index); err != nil {
		return smp.Errorf(smp.ENOTFOUND, "index_not_found_exception: no such index [%s]", index)
	}
	after := ""
	for {
		var r search.Response
		if _, err := call(ctx, "scan", search.New(x.tp).Index(index).Raw(bytesReader(ScanBody(after))), &r); err != nil {
			return err
		}
		page := docs(r.Hits.Hits)
		for _, d := range page {
			if err := fn(d); err != nil {
				return err
			}
		}
		if len(page) < scanPage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// number reads a _cat column (bytes=b: plain numbers as strings); 0 for
// none (a closed index, an unassigned row).
func number(v any) int64 {
	switch x := v.(type) {
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	case float64:
		return int64(x)
	}
	return 0
}

// CatIndices is the _cat/indices answer with the aliases of _alias.
func CatIndices(cat []byte, aliases []byte) ([]smp.IndexInfo, error) {
	var rows []struct {
		Index  string `json:"index"`
		Health string `json:"health"`
		Docs   any    `json:"docs.count"`
		Store  any    `json:"store.size"`
	}
	if err := json.Unmarshal(cat, &rows); err != nil {
		return nil, fmt.Errorf("_cat/indices: %w", err)
	}
	var al map[string]struct {
		Aliases map[string]json.RawMessage `json:"aliases"`
	}
	if err := json.Unmarshal(aliases, &al); err != nil {
		return nil, fmt.Errorf("_alias: %w", err)
	}
	out := make([]smp.IndexInfo, 0, len(rows))
	for _, r := range rows {
		info := smp.IndexInfo{Name: r.Index, Health: r.Health, Docs: number(r.Docs), Bytes: number(r.Store), Aliases: []string{}}
		for a := range al[r.Index].Aliases {
			info.Aliases = append(info.Aliases, a)
		}
		slices.Sort(info.Aliases)
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b smp.IndexInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// rawBody reads a 2xx answer's body as it is.
type rawBody []byte

func (r *rawBody) UnmarshalJSON(b []byte) error { *r = slices.Clone(b); return nil }

// Indices is _cat/indices (bytes=b), each with its aliases.
func (x *Index) Indices(ctx context.Context) ([]smp.IndexInfo, error) {
	var cat, aliases rawBody
	if _, err := call(ctx, "_cat/indices", catindices.New(x.tp).Bytes(catbytes.B).Format("json"), &cat); err != nil {
		return nil, err
	}
	if _, err := call(ctx, "_alias", getalias.New(x.tp), &aliases); err != nil {
		return nil, err
	}
	out, err := CatIndices(cat, aliases)
	if err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "elasticsearch: %v", err)
	}
	return out, nil
}

// HealthFrom reads _cluster/health?level=indices.
func HealthFrom(body []byte) (smp.ClusterHealth, error) {
	var r struct {
		Cluster    string                     `json:"cluster_name"`
		Status     string                     `json:"status"`
		Nodes      int                        `json:"number_of_nodes"`
		Unassigned int                        `json:"unassigned_shards"`
		Indices    map[string]json.RawMessage `json:"indices"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return smp.ClusterHealth{}, fmt.Errorf("_cluster/health: %w", err)
	}
	return smp.ClusterHealth{Cluster: r.Cluster, Status: r.Status, Nodes: r.Nodes, Indices: len(r.Indices), Unassigned: r.Unassigned}, nil
}

// Health is _cluster/health (its index count from level=indices).
func (x *Index) Health(ctx context.Context) (smp.ClusterHealth, error) {
	var body rawBody
	req := health.New(x.tp).Level(level.Indices).FilterPath("cluster_name", "status", "number_of_nodes", "unassigned_shards", "indices.*.status")
	// A red cluster answers 408 with the body when a wait times out; with no
	// wait it answers 200 whatever the status.
	if _, err := call(ctx, "_cluster/health", req, &body, http.StatusRequestTimeout); err != nil {
		return smp.ClusterHealth{}, err
	}
	h, err := HealthFrom(body)
	if err != nil {
		return smp.ClusterHealth{}, smp.Errorf(smp.EUNAVAILABLE, "elasticsearch: %v", err)
	}
	return h, nil
}

// AllocationFrom reads _cat/allocation?bytes=b.
func AllocationFrom(body []byte) ([]smp.Allocation, error) {
	var rows []struct {
		Node    string `json:"node"`
		Shards  any    `json:"shards"`
		Indices any    `json:"disk.indices"`
		Used    any    `json:"disk.used"`
		Avail   any    `json:"disk.avail"`
		Percent any    `json:"disk.percent"`
	}
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, fmt.Errorf("_cat/allocation: %w", err)
	}
	out := make([]smp.Allocation, 0, len(rows))
	for _, r := range rows {
		a := smp.Allocation{Node: r.Node, Shards: int(number(r.Shards)), DiskIndices: number(r.Indices), DiskUsed: number(r.Used), DiskAvail: number(r.Avail)}
		if p, ok := r.Percent.(string); ok {
			a.DiskPercent, _ = strconv.ParseFloat(p, 64)
		}
		out = append(out, a)
	}
	return out, nil
}

// Allocation is _cat/allocation (bytes=b): each data node's disk, and an
// UNASSIGNED row when shards are.
func (x *Index) Allocation(ctx context.Context) ([]smp.Allocation, error) {
	var body rawBody
	if _, err := call(ctx, "_cat/allocation", catallocation.New(x.tp).Bytes(catbytes.B).Format("json"), &body); err != nil {
		return nil, err
	}
	out, err := AllocationFrom(body)
	if err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "elasticsearch: %v", err)
	}
	return out, nil
}
