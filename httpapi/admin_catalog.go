package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
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
	maxRecordBody = 64 << 10
	maxImportBody = 16 << 20
)

func (s *Server) catalogRoutes() {
	m := s.mux
	for _, kind := range catalog.Kinds {
		view := catalog.ViewPermission(kind)
		m.HandleFunc("POST /admin/"+kind, s.can("catalog.write", s.handleCatalogCreate(kind)))
		m.HandleFunc("GET /admin/"+kind, s.can(view, s.handleCatalogList(kind)))
		m.HandleFunc("GET /admin/"+kind+"/{key}", s.can(view, s.handleCatalogGet(kind)))
		m.HandleFunc("PATCH /admin/"+kind+"/{key}", s.can("catalog.write", s.handleCatalogUpdate(kind)))
		m.HandleFunc("POST /admin/"+kind+"/{key}/deactivate", s.can("catalog.write", s.handleCatalogDeactivate(kind)))
	}
	m.HandleFunc("POST /admin/import", s.can("catalog.write", s.handleImport))
}

func (s *Server) catalogService() (*catalog.Service, error) {
	if s.d.Catalog == nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "onboarding is not served in this process")
	}
	return s.d.Catalog, nil
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

func (s *Server) handleCatalogCreate(kind string) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, p smp.Principal) {
		c, err := s.catalogService()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		body, reason, err := recordBody(r, false)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		v, err := c.Create(r.Context(), p, kind, body, reason)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, v)
	}
}

func (s *Server) handleCatalogUpdate(kind string) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, p smp.Principal) {
		c, err := s.catalogService()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		body, reason, err := recordBody(r, false)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		v, _, err := c.Update(r.Context(), p, kind, r.PathValue("key"), body, reason)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) handleCatalogDeactivate(kind string) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, p smp.Principal) {
		c, err := s.catalogService()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var req reasonRequest
		if err := decodeOptional(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		v, _, err := c.Deactivate(r.Context(), p, kind, r.PathValue("key"), req.Reason)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) handleCatalogGet(kind string) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, p smp.Principal) {
		c, err := s.catalogService()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		v, err := c.Get(r.Context(), p, kind, r.PathValue("key"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) handleCatalogList(kind string) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, p smp.Principal) {
		c, err := s.catalogService()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		q := r.URL.Query()
		f := smp.CatalogFilter{Status: smp.CatalogStatus(q.Get("status")), City: q.Get("city"), PartnerID: q.Get("partner_id"),
			Skill: q.Get("skill"), Country: q.Get("country"), Name: q.Get("name"), After: q.Get("after")}
		if l := q.Get("limit"); l != "" {
			if f.Limit, err = strconv.Atoi(l); err != nil || f.Limit < 1 || f.Limit > 1000 {
				s.writeError(w, r, smp.Errorf(smp.EINVALID, "limit must be a number from 1 to 1000"))
				return
			}
		}
		items, next, err := c.List(r.Context(), p, kind, f)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{kind: items, "next": next})
	}
}

type importRequest struct {
	Data   catalog.Batch `json:"data"`
	DryRun bool          `json:"dry_run"`
	Reason string        `json:"reason"`
}

// handleImport is POST /admin/import: smp import --server posts the rows
// of its file here; the report says what became of each.
func (s *Server) handleImport(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	c, err := s.catalogService()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "Content-Type must be application/json"))
		return
	}
	var req importRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxImportBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "malformed JSON body (at most %d MiB): %v", maxImportBody>>20, err))
		return
	}
	rep, err := c.Import(r.Context(), p, req.Data, req.DryRun, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
