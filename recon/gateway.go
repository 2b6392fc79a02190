package recon

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"smp"
	"smp/vnpay"
)

// Record is one line of a gateway's daily file: a transaction as the
// gateway settled it.
type Record struct {
	TxnRef        string
	TransactionNo string
	// Currency is VND unless the transaction was settled in another
	// currency; Amount is then a decimal string in it (AmountVND 0).
	Currency  string
	Amount    string
	AmountVND int64
	// Succeeded: vnp_ResponseCode and vnp_TransactionStatus are 00.
	Succeeded bool
	PayDate   time.Time
}

// Gateway gives a gateway's records of a day (YYYY-MM-DD in
// Asia/Ho_Chi_Minh). EUNAVAILABLE when the gateway cannot be reached or
// its circuit breaker is open: the run is then inconclusive.
type Gateway interface {
	Records(ctx context.Context, day string) ([]Record, error)
}

// VNPayFiles reads VNPay's daily transaction files over HTTP
// (<BaseURL>/transactions/<day>.csv, as sim.VNPay serves them) behind a
// circuit breaker: FailureThreshold consecutive failures open it for
// OpenFor, and while it is open no request is made.
type VNPayFiles struct {
	BaseURL string
	Client  *http.Client
	cb      circuitbreaker.CircuitBreaker[[]Record]
}

// NewVNPayFiles returns the reader (defaults: a 15 s timeout, 3
// failures, open for 5 minutes).
func NewVNPayFiles(baseURL string, client *http.Client, failureThreshold uint, openFor time.Duration) *VNPayFiles {
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	if failureThreshold == 0 {
		failureThreshold = 3
	}
	if openFor <= 0 {
		openFor = 5 * time.Minute
	}
	return &VNPayFiles{BaseURL: strings.TrimRight(baseURL, "/"), Client: client,
		cb: circuitbreaker.NewBuilder[[]Record]().WithFailureThreshold(failureThreshold).WithDelay(openFor).WithSuccessThreshold(1).Build()}
}

// BreakerOpen reports whether the breaker is open.
func (g *VNPayFiles) BreakerOpen() bool { return g.cb.IsOpen() }

// Records fetches and parses the day's file.
func (g *VNPayFiles) Records(ctx context.Context, day string) ([]Record, error) {
	if g.BaseURL == "" {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "vnpay: the daily files' URL is not configured (--vnpay-files-url)")
	}
	recs, err := failsafe.With[[]Record](g.cb).WithContext(ctx).Get(func() ([]Record, error) { return g.fetch(ctx, day) })
	switch {
	case errors.Is(err, circuitbreaker.ErrOpen):
		return nil, smp.Errorf(smp.EUNAVAILABLE, "vnpay is unavailable (circuit breaker open)")
	case err != nil:
		return nil, smp.Errorf(smp.EUNAVAILABLE, "vnpay daily file %s: %v", day, err)
	}
	return recs, nil
}

func (g *VNPayFiles) fetch(ctx context.Context, day string) ([]Record, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.BaseURL+"/transactions/"+day+".csv", nil)
	if err != nil {
		return nil, err
	}
	resp, err := g.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return ParseDailyFile(io.LimitReader(resp.Body, 256<<20))
}

// ParseDailyFile reads a daily file: a header naming at least txn_ref,
// transaction_no, amount_vnd, response_code, transaction_status and
// pay_date (currency and amount optional: VND when absent).
func ParseDailyFile(r io.Reader) ([]Record, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("daily file: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(h)] = i
	}
	for _, need := range []string{"txn_ref", "amount_vnd", "response_code", "transaction_status", "pay_date"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("daily file: no %s column", need)
		}
	}
	get := func(row []string, name string) string {
		if i, ok := col[name]; ok && i < len(row) {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	var out []Record
	for line := 2; ; line++ {
		row, err := cr.Read()
		if err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("daily file: line %d: %w", line, err)
		}
		rec := Record{TxnRef: get(row, "txn_ref"), TransactionNo: get(row, "transaction_no"), Currency: get(row, "currency"),
			Amount: get(row, "amount"), Succeeded: get(row, "response_code") == "00" && get(row, "transaction_status") == "00"}
		if rec.TxnRef == "" {
			return nil, fmt.Errorf("daily file: line %d: no txn_ref", line)
		}
		if rec.PayDate, err = vnpay.ParseDate(get(row, "pay_date")); err != nil {
			return nil, fmt.Errorf("daily file: line %d: pay_date %q", line, get(row, "pay_date"))
		}
		if rec.Currency == "" {
			rec.Currency = "VND"
		}
		if rec.Currency == "VND" {
			v := get(row, "amount_vnd")
			if v == "" {
				v = rec.Amount
			}
			if rec.AmountVND, err = strconv.ParseInt(v, 10, 64); err != nil || rec.AmountVND < 0 {
				return nil, fmt.Errorf("daily file: line %d: amount_vnd %q", line, v)
			}
			rec.Amount = strconv.FormatInt(rec.AmountVND, 10)
		} else if !validDecimal(rec.Amount) {
			return nil, fmt.Errorf("daily file: line %d: amount %q in %s", line, rec.Amount, rec.Currency)
		}
		out = append(out, rec)
	}
}
