package httpapi

import (
	"html/template"
	"net/http"
	"strings"

	"smp"
)

// Prices and invoices in the region's display currency (issue 21 item 7,
// package pricing): each answer names the rate date it used and, where
// the region's hot master data is behind (replication lag above
// smp.HotDataMaxLag), carries the stale notice.

func (s *Server) pricingRoutes() {
	if s.d.Pricing == nil {
		return
	}
	m := s.mux
	if s.d.PublicAPI {
		m.HandleFunc("GET /v1/prices", s.handlePrices)
		m.HandleFunc("GET /v1/prices/{service}", s.handleQuote)
		m.HandleFunc("GET /v1/orders/{id}/invoice", s.handleInvoice)
	}
	m.HandleFunc("GET /admin/orders/{id}/invoice", s.can("view", s.handleAdminInvoice))
}

// handlePrices is GET /v1/prices: the price screen, every service offered
// at today's rate, tax included.
func (s *Server) handlePrices(w http.ResponseWriter, r *http.Request) {
	list, err := s.d.Pricing.Prices(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// handleQuote is GET /v1/prices/{service}: what an order of the service
// costs today (ENOTFOUND, EINVALID for one not offered).
func (s *Server) handleQuote(w http.ResponseWriter, r *http.Request) {
	q, err := s.d.Pricing.Quote(r.Context(), r.PathValue("service"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, q)
}

// handleInvoice is GET /v1/orders/{id}/invoice, the customer's own order
// (ENOTFOUND for another's); HTML with ?format=html or Accept: text/html.
func (s *Server) handleInvoice(w http.ResponseWriter, r *http.Request) {
	o, _, err := s.customerOrder(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeInvoice(w, r, o)
}

// handleAdminInvoice is GET /admin/orders/{id}/invoice: any order's.
func (s *Server) handleAdminInvoice(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	o, err := s.d.Store.FindOrderByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeInvoice(w, r, o)
}

func (s *Server) writeInvoice(w http.ResponseWriter, r *http.Request, o *smp.Order) {
	inv, err := s.d.Pricing.Invoice(r.Context(), o)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.URL.Query().Get("format") == "html" || (r.URL.Query().Get("format") == "" && strings.Contains(r.Header.Get("Accept"), "text/html")) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		if err := invoiceHTML.Execute(w, inv); err != nil {
			s.log.Warn("invoice page not written", "err", err)
		}
		return
	}
	writeJSON(w, http.StatusOK, inv)
}

var invoiceHTML = template.Must(template.New("invoice").Parse(`<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Hóa đơn / Invoice {{.Number}}</title>
<style>body{font-family:sans-serif;max-width:46em;margin:2em auto}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ccc;padding:.3em;text-align:left}td.n,th.n{text-align:right}
.notice{background:#fff3cd;border:1px solid #e0b000;padding:.6em;margin:1em 0}</style></head><body>
<h1>Hóa đơn / Invoice {{.Number}}</h1>
<p>Đơn hàng / Order {{.OrderID}} · {{.OrderedAt.Format "2006-01-02 15:04 UTC"}} · {{.Stage}} · {{.PaymentStatus}} · region {{.Region}}</p>
{{with .Notice}}<div class="notice" role="alert"><p lang="vi">{{.Vi}}</p><p lang="en">{{.En}}</p></div>{{end}}
<table><tr><th>Dịch vụ / Service</th><th class="n">SL / Qty</th><th class="n">Đơn giá / Unit (VND)</th><th class="n">Thành tiền / Amount (VND)</th><th class="n">{{.Currency}}</th></tr>
{{range .Lines}}<tr><td>{{.Description}}</td><td class="n">{{.Quantity}}</td><td class="n">{{.UnitPriceVND}}</td><td class="n">{{.AmountVND}}</td><td class="n">{{.Amount.Amount}}</td></tr>
{{end}}<tr><td colspan="3">Chưa thuế / Net</td><td class="n">{{.NetVND}}</td><td class="n">{{.Net.Amount}}</td></tr>
<tr><td colspan="3">Thuế / Tax{{with .Terms.Tax}} ({{.Name}}, {{.RateBP}} bp){{end}}</td><td class="n">{{.TaxVND}}</td><td class="n">{{.Tax.Amount}}</td></tr>
<tr><th colspan="3">Tổng / Total</th><th class="n">{{.TotalVND}}</th><th class="n">{{.Total.Amount}} {{.Total.Currency}}</th></tr></table>
{{with .Rate}}<p>Tỷ giá / Exchange rate: 1 {{.From}} = {{.Rate}} {{.To}}, ngày / of {{.Date}}</p>{{end}}
</body></html>
`))
