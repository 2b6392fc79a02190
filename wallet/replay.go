package wallet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"smp"
	"smp/vnpay"
)

// ReplayResult counts what a replay of a gateway's records did.
type ReplayResult struct {
	Gateway string    `json:"gateway"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	// Applied: top-ups the gateway had settled and SMP had missed, now
	// applied (credited, or marked failed).
	Applied int `json:"applied"`
	// AlreadyPresent: top-ups SMP had already settled.
	AlreadyPresent int `json:"already_present"`
	// NotPaid: top-ups the gateway has no transaction for (never paid).
	NotPaid int `json:"not_paid"`
	// Failed: top-ups whose query or application failed (see Errors).
	Failed int      `json:"failed"`
	Errors []string `json:"errors"`
}

// QueryDR asks VNPay for a transaction (querydr): the request signed over
// its "|"-joined fields, the answer's hash checked. EUNAVAILABLE when the
// gateway cannot be reached or answers with a bad hash.
func (s *Service) QueryDR(ctx context.Context, t *smp.Topup) (*vnpay.QueryResponse, error) {
	v := s.cfg.VNPay
	if v.APIURL == "" || len(v.Secrets) == 0 {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "VNPay's query API is not configured (--vnpay-api-url, SMP_VNPAY_HASH_SECRET)")
	}
	now := s.cfg.Now()
	q := vnpay.QueryRequest{RequestID: requestID("Q"), Version: vnpay.Version, Command: "querydr",
		TmnCode: v.TmnCode, TxnRef: t.TxnRef, OrderInfo: "Truy van " + t.TxnRef, TransactionDate: vnpay.FormatDate(t.CreatedAt),
		CreateDate: vnpay.FormatDate(now), IPAddr: "127.0.0.1"}
	q.SecureHash = vnpay.Sign(v.Secrets[0], q.HashData())
	var r vnpay.QueryResponse
	status, doErr, err := s.merchantAPI(ctx, q, &r)
	if doErr != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "VNPay querydr: %v", doErr)
	}
	if err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "VNPay querydr: HTTP %d: %v", status, err)
	}
	if vnpay.VerifyHash(r.SecureHash, r.HashData(), v.Secrets) != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "VNPay querydr: the answer's hash does not verify (code %s)", r.ResponseCode)
	}
	return &r, nil
}

// ReplayGateway fetches, with querydr, the gateway's record of every
// top-up created in [from, to) that SMP has not settled, and applies each
// the gateway settled as its IPN would have been (idempotently: a top-up
// settled meanwhile is already present). Runbook INC-010 scenario 1.
// EINVALID for another gateway than vnpay or an empty window.
func (s *Service) ReplayGateway(ctx context.Context, gateway string, from, to time.Time, actor string) (ReplayResult, error) {
	res := ReplayResult{Gateway: gateway, From: from, To: to, Errors: []string{}}
	if gateway != smp.GatewayVNPay {
		return res, smp.Errorf(smp.EINVALID, "gateway %q: only vnpay", gateway)
	}
	if !from.Before(to) {
		return res, smp.Errorf(smp.EINVALID, "--from must be before --to")
	}
	ts, err := smp.AllTopups(ctx, s.store, smp.TopupFilter{From: from, To: to})
	if err != nil {
		return res, err
	}
	for _, t := range ts {
		if t.Status != smp.TopupPending {
			res.AlreadyPresent++
			continue
		}
		outcome, err := s.ReplayTopup(ctx, t, actor)
		switch {
		case err != nil:
			res.Failed++
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %s", t.TxnRef, smp.ErrorMessage(err)))
		case outcome == ReplayApplied:
			res.Applied++
		case outcome == ReplayAlreadyPresent:
			res.AlreadyPresent++
		case outcome == ReplayNotPaid:
			res.NotPaid++
		}
	}
	return res, nil
}

// Outcomes of ReplayTopup.
const (
	ReplayApplied        = "applied"         // the gateway settled it; applied now
	ReplayAlreadyPresent = "already_present" // SMP had settled it meanwhile
	ReplayNotPaid        = "not_paid"        // the gateway has no such transaction (91)
)

// ReplayTopup asks the gateway (querydr) for one top-up and applies what
// it settled exactly as its IPN would have been (idempotent: a top-up
// settled meanwhile is already present). EUNAVAILABLE when the gateway
// cannot be asked or answers an error; EINVALID for an answer that cannot
// be read; the application's own codes.
func (s *Service) ReplayTopup(ctx context.Context, t *smp.Topup, actor string) (string, error) {
	r, err := s.QueryDR(ctx, t)
	if err != nil {
		return "", err
	}
	switch r.ResponseCode {
	case vnpay.QueryOK:
	case vnpay.QueryNotFound:
		return ReplayNotPaid, nil
	default:
		return "", smp.Errorf(smp.EUNAVAILABLE, "querydr answered %s %s", r.ResponseCode, r.Message)
	}
	n, err := ipnOf(r)
	if err != nil {
		return "", smp.Errorf(smp.EINVALID, "%v", err)
	}
	raw, _ := json.Marshal(r)
	ans, err := s.ApplyIPN(ctx, n, string(raw), actor)
	switch {
	case err != nil:
		return "", err
	case ans.RspCode == vnpay.RspConfirmed:
		return ReplayApplied, nil
	case ans.RspCode == vnpay.RspAlreadyConfirmed:
		return ReplayAlreadyPresent, nil
	}
	return "", smp.Errorf(smp.EINVALID, "%s", ans.Message)
}

// ipnOf reads a querydr answer as the IPN of its transaction.
func ipnOf(r *vnpay.QueryResponse) (*vnpay.IPN, error) {
	cents, err := strconv.ParseInt(r.Amount, 10, 64)
	if err != nil || cents <= 0 || cents%100 != 0 {
		return nil, fmt.Errorf("querydr amount %q", r.Amount)
	}
	n := &vnpay.IPN{TmnCode: r.TmnCode, AmountVND: cents / 100, TxnRef: r.TxnRef, TransactionNo: r.TransactionNo, ResponseCode: r.TransactionStatus,
		TransactionStatus: r.TransactionStatus, BankCode: r.BankCode, OrderInfo: r.OrderInfo}
	if r.PayDate != "" {
		if n.PayDate, err = vnpay.ParseDate(r.PayDate); err != nil {
			return nil, fmt.Errorf("querydr pay date %q", r.PayDate)
		}
	}
	return n, nil
}

// requestID is a merchant API request's vnp_RequestId: prefix and 24 random
// hex digits.
func requestID(prefix string) string {
	rid := make([]byte, 12)
	rand.Read(rid) // never fails (crypto/rand, Go 1.24+)
	return prefix + hex.EncodeToString(rid)
}

// merchantAPI posts a signed request to VNPay's merchant API (querydr,
// refund) and decodes its JSON answer into out. doErr: no answer (the
// request failed or timed out); err: the request could not be made or the
// answer not read (status is the answer's HTTP status).
func (s *Service) merchantAPI(ctx context.Context, q, out any) (status int, doErr, err error) {
	body, err := json.Marshal(q)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.VNPay.APIURL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	client := s.cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err, nil
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil, json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(out)
}
