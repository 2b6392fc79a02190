package sim

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"smp/vnpay"
)

// VNPay simulates VNPay's gateway (protocol 2.1.0) for one merchant: the
// payment step (a signed payment URL paid or cancelled), IPN delivery to
// the merchant with fault knobs (delay, drop, duplicate, reorder, wrong
// hash), the querydr transaction query, the refund API (fault knobs: an
// error code, a lost answer), and the daily transaction file.
// It serves HTTP (ServeHTTP) and is driven directly by tests and the
// simulation (Pay, Deliver). Its randomness is seeded (Seed).
type VNPay struct {
	TmnCode string
	Secret  []byte
	// IPNURL is the merchant's IPN endpoint (GET with the parameters).
	IPNURL string
	// Now is the gateway's clock (default time.Now).
	Now func() time.Time
	// Client delivers IPNs (default http.DefaultClient).
	Client *http.Client
	// AutoPay: a payment page visited over HTTP is paid at once and its
	// IPN delivered (the demo); otherwise tests call Pay.
	AutoPay bool
	// Seed seeds the fault knobs' randomness.
	Seed uint64

	mu       sync.Mutex
	rng      *rand.Rand
	faults   VNPayFaults
	txns     map[string]*VNPayTxn
	order    []string // txn refs in payment order
	queue    []url.Values
	dropped  []url.Values
	requests map[string]bool
	answers  []vnpay.IPNAnswer
	nextNo   int64
	wg       sync.WaitGroup
}

// VNPayFaults are the IPN delivery knobs.
type VNPayFaults struct {
	// Delay holds each IPN before delivery (AutoPay's background
	// delivery waits it; Deliver ignores it).
	Delay time.Duration
	// DropRate is the share of IPNs never delivered (kept in Dropped).
	DropRate float64
	// DuplicateRate is the share of IPNs delivered twice.
	DuplicateRate float64
	// Reorder delivers the queued IPNs in a shuffled order.
	Reorder bool
	// WrongHash signs IPNs with a wrong secret.
	WrongHash bool
	// QueryDown makes querydr answer 99 (the gateway's query API failing).
	QueryDown bool
	// RefundCode makes the refund API answer this code and refund nothing
	// (e.g. 99, 95, 91).
	RefundCode string
	// RefundTimeout makes the refund API refund and then never answer:
	// the request is held until the caller gives up (its timeout), the
	// refund made at the gateway all the same.
	RefundTimeout bool
}

// SetFaults replaces the delivery knobs.
func (g *VNPay) SetFaults(f VNPayFaults) { g.mu.Lock(); g.faults = f; g.mu.Unlock() }

// VNPayTxn is a transaction as the gateway records it.
type VNPayTxn struct {
	TxnRef            string
	TransactionNo     string
	AmountVND         int64
	OrderInfo         string
	ResponseCode      string // 00 paid, 24 cancelled by the customer
	TransactionStatus string // 00 success, 02 failed
	BankCode          string
	PayDate           time.Time
	CreateDate        string
	// Currency and Amount are how the daily file reports the transaction
	// when it was settled in another currency than VND (an international
	// card): Amount a decimal string in Currency. Empty: VND, AmountVND.
	Currency string
	Amount   string
	// Refunds counts the refunds made of the transaction (at most one: a
	// second request answers 94); RefundNo is the refund's transaction
	// number and RefundedVND its amount.
	Refunds     int
	RefundNo    string
	RefundedVND int64
}

// AlterRecord edits the gateway's own record of a transaction after the
// fact, as the daily file will report it (a fault knob for
// reconciliation: a record in another currency, a tampered amount).
// false when there is no such transaction.
func (g *VNPay) AlterRecord(ref string, edit func(*VNPayTxn)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.init()
	t, ok := g.txns[ref]
	if ok {
		edit(t)
	}
	return ok
}

func (g *VNPay) init() {
	if g.txns == nil {
		g.txns, g.requests = map[string]*VNPayTxn{}, map[string]bool{}
		g.rng = rand.New(rand.NewPCG(g.Seed, 0x7a9a7))
		g.nextNo = 14000000
	}
}

func (g *VNPay) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Pay is the payment step: it checks the payment URL (its hash, the
// merchant code, VND × 100) and records the transaction, paid (success)
// or cancelled; the IPN is queued for Deliver unless the drop knob drops
// it. Paying a txn ref twice returns the first transaction.
func (g *VNPay) Pay(paymentURL string, success bool) (*VNPayTxn, error) {
	u, err := url.Parse(paymentURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	if err := vnpay.VerifyParams(q, [][]byte{g.Secret}); err != nil {
		return nil, fmt.Errorf("vnpay sim: payment URL: %w", err)
	}
	if q.Get("vnp_TmnCode") != g.TmnCode || q.Get("vnp_Version") != vnpay.Version || q.Get("vnp_Command") != "pay" {
		return nil, fmt.Errorf("vnpay sim: payment URL for another merchant or version")
	}
	cents, err := strconv.ParseInt(q.Get("vnp_Amount"), 10, 64)
	if err != nil || cents <= 0 || cents%100 != 0 {
		return nil, fmt.Errorf("vnpay sim: vnp_Amount %q", q.Get("vnp_Amount"))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.init()
	ref := q.Get("vnp_TxnRef")
	if t, ok := g.txns[ref]; ok {
		return t, nil
	}
	g.nextNo++
	t := &VNPayTxn{TxnRef: ref, TransactionNo: strconv.FormatInt(g.nextNo, 10), AmountVND: cents / 100, OrderInfo: q.Get("vnp_OrderInfo"),
		ResponseCode: "00", TransactionStatus: "00", BankCode: "NCB", PayDate: g.now(), CreateDate: q.Get("vnp_CreateDate")}
	if !success {
		t.ResponseCode, t.TransactionStatus = "24", "02"
	}
	g.txns[ref] = t
	g.order = append(g.order, ref)
	ipn := g.ipnLocked(t)
	if g.faults.DropRate > 0 && g.rng.Float64() < g.faults.DropRate {
		g.dropped = append(g.dropped, ipn)
	} else {
		g.queue = append(g.queue, ipn)
		if g.faults.DuplicateRate > 0 && g.rng.Float64() < g.faults.DuplicateRate {
			g.queue = append(g.queue, ipn)
		}
	}
	return t, nil
}

// IPN returns the signed IPN parameters of a transaction (as the gateway
// sends them; signed with a wrong secret under the WrongHash knob).
func (g *VNPay) ipnLocked(t *VNPayTxn) url.Values {
	v := url.Values{}
	v.Set("vnp_Amount", strconv.FormatInt(t.AmountVND*100, 10))
	v.Set("vnp_BankCode", t.BankCode)
	v.Set("vnp_BankTranNo", "VNP"+t.TransactionNo)
	v.Set("vnp_CardType", "ATM")
	v.Set("vnp_OrderInfo", t.OrderInfo)
	v.Set("vnp_PayDate", vnpay.FormatDate(t.PayDate))
	v.Set("vnp_ResponseCode", t.ResponseCode)
	v.Set("vnp_TmnCode", g.TmnCode)
	v.Set("vnp_TransactionNo", t.TransactionNo)
	v.Set("vnp_TransactionStatus", t.TransactionStatus)
	v.Set("vnp_TxnRef", t.TxnRef)
	secret := g.Secret
	if g.faults.WrongHash {
		secret = []byte("not-the-merchant-secret")
	}
	v.Set("vnp_SecureHashType", "HmacSHA512")
	v.Set(vnpay.ParamSecureHash, vnpay.SignParams(secret, v))
	return v
}

// Pending returns the queued IPNs (shuffled under Reorder) and empties
// the queue: the caller delivers them (the simulation hands them to the
// merchant's handler directly).
func (g *VNPay) Pending() []url.Values {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.init()
	q := g.queue
	g.queue = nil
	if g.faults.Reorder {
		g.rng.Shuffle(len(q), func(i, j int) { q[i], q[j] = q[j], q[i] })
	}
	return q
}

// Dropped returns the IPNs the drop knob kept from the merchant.
func (g *VNPay) Dropped() []url.Values {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]url.Values(nil), g.dropped...)
}

// Deliver sends the queued IPNs to IPNURL and returns the merchant's
// answers (also kept in Answers). An IPN that could not be delivered or
// was not answered 00 or 02 is queued again, as VNPay retries.
func (g *VNPay) Deliver(ctx context.Context) ([]vnpay.IPNAnswer, error) {
	client := g.Client
	if client == nil {
		client = http.DefaultClient
	}
	var out []vnpay.IPNAnswer
	var retry []url.Values
	var firstErr error
	for _, ipn := range g.Pending() {
		ans, err := g.deliverOne(ctx, client, ipn)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			retry = append(retry, ipn)
			continue
		}
		out = append(out, ans)
		if ans.RspCode != vnpay.RspConfirmed && ans.RspCode != vnpay.RspAlreadyConfirmed && ans.RspCode != vnpay.RspInvalidChecksum {
			retry = append(retry, ipn)
		}
	}
	g.mu.Lock()
	g.answers = append(g.answers, out...)
	g.queue = append(g.queue, retry...)
	g.mu.Unlock()
	return out, firstErr
}

func (g *VNPay) deliverOne(ctx context.Context, client *http.Client, ipn url.Values) (vnpay.IPNAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.IPNURL+"?"+ipn.Encode(), nil)
	if err != nil {
		return vnpay.IPNAnswer{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return vnpay.IPNAnswer{}, err
	}
	defer resp.Body.Close()
	var ans vnpay.IPNAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&ans); err != nil {
		return vnpay.IPNAnswer{}, fmt.Errorf("vnpay sim: IPN answer (HTTP %d): %w", resp.StatusCode, err)
	}
	return ans, nil
}

// Answers returns every answer the merchant gave to a delivered IPN.
func (g *VNPay) Answers() []vnpay.IPNAnswer {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]vnpay.IPNAnswer(nil), g.answers...)
}

// Txn returns a recorded transaction.
func (g *VNPay) Txn(ref string) (*VNPayTxn, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.init()
	t, ok := g.txns[ref]
	return t, ok
}

// Close waits for background deliveries (AutoPay).
func (g *VNPay) Close() { g.wg.Wait() }

// QueryDR answers a querydr request as the gateway does: 97 for a bad
// request hash, 94 for a request id seen before, 91 for an unknown
// transaction, 99 under the QueryDown knob, else 00 with the transaction;
// the response is signed over its "|"-joined fields.
func (g *VNPay) QueryDR(q vnpay.QueryRequest) vnpay.QueryResponse {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.init()
	r := vnpay.QueryResponse{ResponseID: fmt.Sprintf("R%d", g.rng.Uint64()%1e12), Command: "querydr", TmnCode: g.TmnCode, TxnRef: q.TxnRef}
	switch {
	case vnpay.VerifyHash(q.SecureHash, q.HashData(), [][]byte{g.Secret}) != nil || q.TmnCode != g.TmnCode:
		r.ResponseCode, r.Message = vnpay.QueryBadChecksum, "Invalid Checksum"
	case g.requests[q.RequestID]:
		r.ResponseCode, r.Message = vnpay.QueryDuplicate, "Duplicate request"
	case g.faults.QueryDown:
		r.ResponseCode, r.Message = vnpay.QueryUnknownError, "Unknown error"
	default:
		g.requests[q.RequestID] = true
		t, ok := g.txns[q.TxnRef]
		if !ok {
			r.ResponseCode, r.Message = vnpay.QueryNotFound, "Transaction not found"
			break
		}
		r.ResponseCode, r.Message = vnpay.QueryOK, "Success"
		r.Amount, r.BankCode, r.PayDate = strconv.FormatInt(t.AmountVND*100, 10), t.BankCode, vnpay.FormatDate(t.PayDate)
		r.TransactionNo, r.TransactionType, r.TransactionStatus, r.OrderInfo = t.TransactionNo, "01", t.TransactionStatus, t.OrderInfo
	}
	if r.ResponseCode != vnpay.QueryOK && q.RequestID != "" && r.ResponseCode != vnpay.QueryDuplicate {
		g.requests[q.RequestID] = true
	}
	r.SecureHash = vnpay.Sign(g.Secret, r.HashData())
	return r
}

// Refund answers a refund request (vnp_Command=refund) as the gateway
// does: 97 for a bad request hash, 02 for another merchant's code, 91 for
// an unknown transaction, 95 for one that did not succeed, 03 for an
// amount above it or a malformed one, 94 for a transaction refunded
// before (nothing more is refunded), the code of the RefundCode knob
// (nothing refunded), else 00: the transaction is refunded once. The
// response is signed over its "|"-joined fields. hang is true under the
// RefundTimeout knob: the refund is made and the answer is to be lost.
func (g *VNPay) Refund(q vnpay.RefundRequest) (r vnpay.RefundResponse, hang bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.init()
	r = vnpay.RefundResponse{ResponseID: fmt.Sprintf("R%d", g.rng.Uint64()%1e12), Command: "refund", TmnCode: g.TmnCode, TxnRef: q.TxnRef,
		Amount: q.Amount, TransactionType: q.TransactionType, OrderInfo: q.OrderInfo}
	t, ok := g.txns[q.TxnRef]
	cents, err := strconv.ParseInt(q.Amount, 10, 64)
	switch {
	case vnpay.VerifyHash(q.SecureHash, q.HashData(), [][]byte{g.Secret}) != nil:
		r.ResponseCode, r.Message = vnpay.RefundBadChecksum, "Invalid Checksum"
	case q.TmnCode != g.TmnCode:
		r.ResponseCode, r.Message = vnpay.RefundBadMerchant, "Invalid TmnCode"
	case !ok:
		r.ResponseCode, r.Message = vnpay.RefundNotFound, "Transaction not found"
	case t.ResponseCode != "00" || t.TransactionStatus != "00":
		r.ResponseCode, r.Message = vnpay.RefundNotAllowed, "Transaction not successful: refund refused"
	case err != nil || cents <= 0 || cents%100 != 0 || cents/100 > t.AmountVND ||
		(q.TransactionType != vnpay.RefundFull && q.TransactionType != vnpay.RefundPartial) ||
		(q.TransactionType == vnpay.RefundFull && cents/100 != t.AmountVND):
		r.ResponseCode, r.Message = vnpay.RefundBadFormat, "Invalid request data"
	case t.Refunds > 0:
		r.ResponseCode, r.Message = vnpay.RefundDuplicate, "Refund already requested for this transaction"
		r.TransactionNo = t.RefundNo
	case g.faults.RefundCode != "":
		r.ResponseCode, r.Message = g.faults.RefundCode, "Refund failed"
	default:
		g.nextNo++
		t.Refunds, t.RefundNo, t.RefundedVND = t.Refunds+1, strconv.FormatInt(g.nextNo, 10), cents/100
		r.ResponseCode, r.Message, r.TransactionNo = vnpay.RefundOK, "Success", t.RefundNo
		hang = g.faults.RefundTimeout
	}
	if ok {
		r.BankCode, r.PayDate, r.TransactionStatus = t.BankCode, vnpay.FormatDate(g.now()), "05" // 05: VNPay is processing the refund
	}
	r.SecureHash = vnpay.Sign(g.Secret, r.HashData())
	return r, hang
}

// DailyFile writes the transactions paid on day (a date in
// Asia/Ho_Chi_Minh, YYYY-MM-DD) as CSV: txn_ref, transaction_no,
// amount_vnd, response_code, transaction_status, bank_code, pay_date,
// currency, amount (amount_vnd empty for a record in another currency,
// amount in that currency).
func (g *VNPay) DailyFile(w io.Writer, day string) error {
	start, err := time.ParseInLocation("2006-01-02", day, vnpay.Loc)
	if err != nil {
		return fmt.Errorf("vnpay sim: day %q: %w", day, err)
	}
	end := start.AddDate(0, 0, 1)
	g.mu.Lock()
	g.init()
	var rows [][]string
	for _, ref := range g.order {
		t := g.txns[ref]
		if t.PayDate.Before(start) || !t.PayDate.Before(end) {
			continue
		}
		vnd, cur, amount := strconv.FormatInt(t.AmountVND, 10), "VND", strconv.FormatInt(t.AmountVND, 10)
		if t.Currency != "" && t.Currency != "VND" {
			vnd, cur, amount = "", t.Currency, t.Amount
		}
		rows = append(rows, []string{t.TxnRef, t.TransactionNo, vnd, t.ResponseCode, t.TransactionStatus,
			t.BankCode, vnpay.FormatDate(t.PayDate), cur, amount})
	}
	g.mu.Unlock()
	sort.SliceStable(rows, func(i, j int) bool { return rows[i][6] < rows[j][6] })
	cw := csv.NewWriter(w)
	cw.Write([]string{"txn_ref", "transaction_no", "amount_vnd", "response_code", "transaction_status", "bank_code", "pay_date", "currency", "amount"})
	cw.WriteAll(rows)
	return cw.Error()
}

// ServeHTTP serves the gateway: GET /paymentv2/vpcpay.html (the payment
// page: paid at once with AutoPay, its IPN delivered after the Delay
// knob, and the partner redirected to vnp_ReturnUrl), POST
// /merchant_webapi/api/transaction (querydr and refund, by vnp_Command)
// and GET
// /transactions/{YYYY-MM-DD}.csv (the daily file).
func (g *VNPay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/paymentv2/vpcpay.html":
		full := "http://vnpay" + r.URL.Path + "?" + r.URL.RawQuery
		t, err := g.Pay(full, true)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if g.AutoPay {
			g.mu.Lock()
			delay := g.faults.Delay
			g.wg.Add(1)
			g.mu.Unlock()
			go func() {
				defer g.wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), delay+30*time.Second)
				defer cancel()
				if delay > 0 {
					select {
					case <-time.After(delay):
					case <-ctx.Done():
						return
					}
				}
				g.Deliver(ctx)
			}()
		}
		ret := r.URL.Query().Get("vnp_ReturnUrl")
		if ret == "" {
			fmt.Fprintf(w, "paid %s (%d VND)\n", t.TxnRef, t.AmountVND)
			return
		}
		g.mu.Lock()
		back := g.ipnLocked(t)
		g.mu.Unlock()
		http.Redirect(w, r, ret+"?"+back.Encode(), http.StatusFound)
	case r.Method == http.MethodPost && r.URL.Path == "/merchant_webapi/api/transaction":
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		var cmd struct {
			Command string `json:"vnp_Command"`
		}
		w.Header().Set("Content-Type", "application/json")
		if err == nil {
			err = json.Unmarshal(body, &cmd)
		}
		switch {
		case err == nil && cmd.Command == "querydr":
			var q vnpay.QueryRequest
			if json.Unmarshal(body, &q) == nil {
				json.NewEncoder(w).Encode(g.QueryDR(q))
				return
			}
		case err == nil && cmd.Command == "refund":
			var q vnpay.RefundRequest
			if json.Unmarshal(body, &q) == nil {
				ans, hang := g.Refund(q)
				if hang {
					<-r.Context().Done() // the answer is lost: the caller times out
					return
				}
				json.NewEncoder(w).Encode(ans)
				return
			}
		}
		json.NewEncoder(w).Encode(map[string]string{"vnp_ResponseCode": "99", "vnp_Message": "Invalid request"})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/transactions/") && strings.HasSuffix(r.URL.Path, ".csv"):
		day := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/transactions/"), ".csv")
		w.Header().Set("Content-Type", "text/csv")
		if err := g.DailyFile(w, day); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	default:
		http.NotFound(w, r)
	}
}
