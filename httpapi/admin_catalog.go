package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"smp"
	"smp/catalog"
)

// Onboarding's admin API (package catalog does the work, checks and
// audits):
//
//	POST  /admin/{kind}                  create (201)
//	GET   /admin/{kind}?status=&city=&partner_id=&skill=&country=&name=&after=&limit=
//	GET   /admin/{kind}/{key}
//	PATCH /admin/{kind}/{key}            the fields to change, and "reason"
//	POST  /admin/{kind}/{key}/deactivate {"reason": "..."}
//	POST  /admin/import                  {"data": {"cities": [...], ...}, "dry_run": false, "reason": "..."}
//
// for kind in cities, services, partners, technicians, customers.

const (
	maxRecordBody   = 64 << 10
	maxImportBody   = 16 << 20
	maxCatalogLimit = 1000 // smp.CatalogFilter.PageLimit's largest page
)

func (s *Server) catalogRoutes() {
	m := s.mux
	for _, kind := range catalog.Kinds {
		view := catalog.ViewPermission(kind)
		m.HandleFunc("POST /admin/"+kind, s.can("catalog.write", s.withCatalog(handleCatalogCreate(kind))))
		list, get := handleCatalogList(kind), handleCatalogGet(kind)
		if kind == "partners" {
			list, get = s.withWallets(list), s.withWallets(get) // balances and wallet states (wallets.go)
		}
		m.HandleFunc("GET /admin/"+kind, s.can(view, s.withCatalog(list)))
		m.HandleFunc("GET /admin/"+kind+"/{key}", s.can(view, s.withCatalog(get)))
		m.HandleFunc("PATCH /admin/"+kind+"/{key}", s.can("catalog.write", s.withCatalog(handleCatalogUpdate(kind))))
		m.HandleFunc("POST /admin/"+kind+"/{key}/deactivate", s.can("catalog.write", s.withCatalog(handleCatalogDeactivate(kind))))
	}
	m.HandleFunc("POST /admin/import", s.can("catalog.write", s.withCatalog(handleImport)))
}

// catalogHandler is an onboarding handler: it answers with a value (or an
// error, which withCatalog writes) and the status of a success.
type catalogHandler func(c *catalog.Service, r *http.Request, p smp.Principal) (any, int, error)

// withCatalog is the one prologue and epilogue of onboarding's handlers:
// 503 where this process does not serve onboarding, the error written
// once, the value encoded.
func (s *Server) withCatalog(h catalogHandler) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, p smp.Principal) {
		if s.d.Catalog == nil {
			s.writeError(w, r, smp.Errorf(smp.EUNAVAILABLE, "onboarding is not served in this process"))
			return
		}
		v, status, err := h(s.d.Catalog, r, p)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, status, v)
	}
}

// recordBody reads a JSON object of fields and takes its "reason" out.
func recordBody(r *http.Request, optional bool) (json.RawMessage, string, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, "", smp.Errorf(smp.EINVALID, "Content-Type must be application/json")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRecordBody))
	if err != nil {
		return nil, "", smp.Errorf(smp.EINVALID, "the body is larger than %d KiB", maxRecordBody>>10)
	}
	if optional && len(strings.TrimSpace(string(raw))) == 0 {
		return json.RawMessage(`{}`), "", nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, "", smp.Errorf(smp.EINVALID, "malformed JSON body: an object of the record's fields is expected")
	}
	var reason string
	if rr, ok := fields["reason"]; ok {
		if err := json.Unmarshal(rr, &reason); err != nil {
			return nil, "", smp.Errorf(smp.EINVALID, "reason must be a string")
		}
		delete(fields, "reason")
	}
	body, _ := json.Marshal(fields)
	return body, reason, nil
}

func handleCatalogCreate(kind string) catalogHandler {
	return func(c *catalog.Service, r *http.Request, p smp.Principal) (any, int, error) {
		body, reason, err := recordBody(r, false)
		if err != nil {
			return nil, 0, err
		}
		v, err := c.Create(r.Context(), p, kind, body, reason)
		return v, http.StatusCreated, err
	}
}

func handleCatalogUpdate(kind string) catalogHandler {
	return func(c *catalog.Service, r *http.Request, p smp.Principal) (any, int, error) {
		body, reason, err := recordBody(r, false)
		if err != nil {
			return nil, 0, err
		}
		v, _, err := c.Update(r.Context(), p, kind, r.PathValue("key"), body, reason)
		return v, http.StatusOK, err
	}
}

func handleCatalogDeactivate(kind string) catalogHandler {
	return func(c *catalog.Service, r *http.Request, p smp.Principal) (any, int, error) {
		var req reasonRequest
		if err := decodeOptional(r, &req); err != nil {
			return nil, 0, err
		}
		v, _, err := c.Deactivate(r.Context(), p, kind, r.PathValue("key"), req.Reason)
		return v, http.StatusOK, err
	}
}

func handleCatalogGet(kind string) catalogHandler {
	return func(c *catalog.Service, r *http.Request, p smp.Principal) (any, int, error) {
		v, err := c.Get(r.Context(), p, kind, r.PathValue("key"))
		return v, http.StatusOK, err
	}
}

func handleCatalogList(kind string) catalogHandler {
	return func(c *catalog.Service, r *http.Request, p smp.Principal) (any, int, error) {
		limit, err := limitParam(r, 100, maxCatalogLimit)
		if err != nil {
			return nil, 0, err
		}
		q := r.URL.Query()
		f := smp.CatalogFilter{Status: smp.CatalogStatus(q.Get("status")), City: q.Get("city"), PartnerID: q.Get("partner_id"),
			Skill: q.Get("skill"), Country: q.Get("country"), Name: q.Get("name"), After: q.Get("after"), Limit: limit}
		items, next, err := c.List(r.Context(), p, kind, f)
		return map[string]any{kind: items, "next": next}, http.StatusOK, err
	}
}

type importRequest struct {
	Data   catalog.Batch `json:"data"`
	DryRun bool          `json:"dry_run"`
	Reason string        `json:"reason"`
}

// handleImport is POST /admin/import: smp import --server posts the rows
// of its file here; the report says what became of each.
func handleImport(c *catalog.Service, r *http.Request, p smp.Principal) (any, int, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, 0, smp.Errorf(smp.EINVALID, "Content-Type must be application/json")
	}
	var req importRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxImportBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, 0, smp.Errorf(smp.EINVALID, "malformed JSON body (at most %d MiB): %v", maxImportBody>>20, err)
	}
	rep, err := c.Import(r.Context(), p, req.Data, req.DryRun, req.Reason)
	return rep, http.StatusOK, err
}
