// Package vnpay is VNPay's payment gateway protocol, version 2.1.0, as
// both sides speak it: SMP (building payment URLs, verifying IPNs,
// querying transactions with querydr) and the simulator in sim/. It does
// no I/O and holds no secret of its own: callers pass them in.
//
// Signatures: vnp_SecureHash is the hex HMAC-SHA512, keyed with the
// merchant's hash secret, of the request's parameters (without
// vnp_SecureHash and vnp_SecureHashType) sorted by key and form-encoded
// (url.Values.Encode). querydr signs the "|"-joined values of fixed
// fields instead (QueryRequest.HashData, QueryResponse.HashData).
package vnpay

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Version is the protocol version SMP speaks.
const Version = "2.1.0"

// Parameters excluded from the signed data.
const (
	ParamSecureHash     = "vnp_SecureHash"
	ParamSecureHashType = "vnp_SecureHashType"
)

// IPN answer codes (RspCode), as VNPay expects them from the merchant.
const (
	RspConfirmed        = "00" // Confirm Success
	RspOrderNotFound    = "01" // Order not found
	RspAlreadyConfirmed = "02" // Order already confirmed
	RspInvalidAmount    = "04" // Invalid amount
	RspInvalidChecksum  = "97" // Invalid Checksum
	RspUnknownError     = "99" // Unknown error
)

// RspMessages are the messages of the answer codes.
var RspMessages = map[string]string{
	RspConfirmed:        "Confirm Success",
	RspOrderNotFound:    "Order not found",
	RspAlreadyConfirmed: "Order already confirmed",
	RspInvalidAmount:    "Invalid amount",
	RspInvalidChecksum:  "Invalid Checksum",
	RspUnknownError:     "Unknown error",
}

// IPNAnswer is the merchant's JSON answer to an IPN.
type IPNAnswer struct {
	RspCode string `json:"RspCode"`
	Message string `json:"Message"`
}

// Answer returns the answer for code.
func Answer(code string) IPNAnswer { return IPNAnswer{RspCode: code, Message: RspMessages[code]} }

// Loc is Asia/Ho_Chi_Minh (GMT+7, no daylight saving): VNPay's dates
// (yyyyMMddHHmmss) are in it, and so is its day.
var Loc = time.FixedZone("Asia/Ho_Chi_Minh", 7*3600)

// DateLayout is VNPay's date format.
const DateLayout = "20060102150405"

// FormatDate formats t as VNPay does, in GMT+7.
func FormatDate(t time.Time) string { return t.In(Loc).Format(DateLayout) }

// ParseDate parses a VNPay date (GMT+7).
func ParseDate(s string) (time.Time, error) { return time.ParseInLocation(DateLayout, s, Loc) }

// SignedData returns what is signed of params: every parameter but
// vnp_SecureHash and vnp_SecureHashType, sorted by key and form-encoded.
func SignedData(params url.Values) string {
	v := make(url.Values, len(params))
	for k, vs := range params {
		if k != ParamSecureHash && k != ParamSecureHashType {
			v[k] = vs
		}
	}
	return v.Encode()
}

// Sign returns the hex HMAC-SHA512 of data keyed with secret.
func Sign(secret []byte, data string) string {
	m := hmac.New(sha512.New, secret)
	m.Write([]byte(data))
	return hex.EncodeToString(m.Sum(nil))
}

// SignParams returns the vnp_SecureHash of params.
func SignParams(secret []byte, params url.Values) string { return Sign(secret, SignedData(params)) }

// ErrChecksum is a signature that matches none of the secrets (or none
// was given).
var ErrChecksum = errors.New("vnpay: invalid checksum")

// VerifyHash reports whether hash (hex, any case) is the HMAC-SHA512 of
// data under one of secrets, comparing in constant time (every secret is
// tried, so the time does not tell which one matched).
func VerifyHash(hash, data string, secrets [][]byte) error {
	got, err := hex.DecodeString(hash)
	if err != nil || len(got) != sha512.Size || len(secrets) == 0 {
		return ErrChecksum
	}
	ok := false
	for _, s := range secrets {
		m := hmac.New(sha512.New, s)
		m.Write([]byte(data))
		if hmac.Equal(got, m.Sum(nil)) {
			ok = true
		}
	}
	if !ok {
		return ErrChecksum
	}
	return nil
}

// VerifyParams checks params' vnp_SecureHash (ErrChecksum).
func VerifyParams(params url.Values, secrets [][]byte) error {
	hs := params[ParamSecureHash]
	if len(hs) != 1 {
		return ErrChecksum
	}
	return VerifyHash(hs[0], SignedData(params), secrets)
}

// PaymentRequest is what SMP asks VNPay to collect (vnp_Command=pay).
type PaymentRequest struct {
	TmnCode   string
	AmountVND int64
	TxnRef    string
	OrderInfo string
	ReturnURL string
	IPAddr    string
	Created   time.Time
	Expires   time.Time
	Locale    string // vn (default) or en
}

// PaymentURL returns the signed payment URL at base (the gateway's
// vpcpay.html): vnp_Amount is VND × 100.
func PaymentURL(base string, secret []byte, r PaymentRequest) string {
	if r.Locale == "" {
		r.Locale = "vn"
	}
	v := url.Values{}
	v.Set("vnp_Version", Version)
	v.Set("vnp_Command", "pay")
	v.Set("vnp_TmnCode", r.TmnCode)
	v.Set("vnp_Amount", strconv.FormatInt(r.AmountVND*100, 10))
	v.Set("vnp_CurrCode", "VND")
	v.Set("vnp_TxnRef", r.TxnRef)
	v.Set("vnp_OrderInfo", r.OrderInfo)
	v.Set("vnp_OrderType", "other")
	v.Set("vnp_Locale", r.Locale)
	v.Set("vnp_ReturnUrl", r.ReturnURL)
	v.Set("vnp_IpAddr", r.IPAddr)
	v.Set("vnp_CreateDate", FormatDate(r.Created))
	if !r.Expires.IsZero() {
		v.Set("vnp_ExpireDate", FormatDate(r.Expires))
	}
	return base + "?" + v.Encode() + "&" + ParamSecureHash + "=" + SignParams(secret, v)
}

// IPN is a payment notification's content, once its hash is verified.
type IPN struct {
	TmnCode           string
	AmountVND         int64 // vnp_Amount / 100
	TxnRef            string
	TransactionNo     string
	ResponseCode      string
	TransactionStatus string
	BankCode          string
	BankTranNo        string
	CardType          string
	OrderInfo         string
	PayDate           time.Time
}

// Succeeded: vnp_ResponseCode and vnp_TransactionStatus are both 00.
func (n *IPN) Succeeded() bool { return n.ResponseCode == "00" && n.TransactionStatus == "00" }

// MaxTxnRef is the longest vnp_TxnRef SMP issues and accepts (VNPay
// allows 100; SMP's are 20).
const MaxTxnRef = 34

// ParseIPN reads an IPN's parameters (after VerifyParams). A parameter
// given twice, a missing required one, or an amount that is not a
// positive whole number of VND × 100 is an error.
func ParseIPN(params url.Values) (*IPN, error) {
	for k, vs := range params {
		if len(vs) != 1 {
			return nil, fmt.Errorf("vnpay: parameter %s given %d times", k, len(vs))
		}
	}
	get := params.Get
	n := &IPN{TmnCode: get("vnp_TmnCode"), TxnRef: get("vnp_TxnRef"), TransactionNo: get("vnp_TransactionNo"),
		ResponseCode: get("vnp_ResponseCode"), TransactionStatus: get("vnp_TransactionStatus"), BankCode: get("vnp_BankCode"),
		BankTranNo: get("vnp_BankTranNo"), CardType: get("vnp_CardType"), OrderInfo: get("vnp_OrderInfo")}
	for name, v := range map[string]string{"vnp_TmnCode": n.TmnCode, "vnp_TxnRef": n.TxnRef, "vnp_ResponseCode": n.ResponseCode} {
		if v == "" {
			return nil, fmt.Errorf("vnpay: %s is missing", name)
		}
	}
	if len(n.TxnRef) > MaxTxnRef {
		return nil, fmt.Errorf("vnpay: vnp_TxnRef is %d characters, at most %d", len(n.TxnRef), MaxTxnRef)
	}
	amt := get("vnp_Amount")
	cents, err := strconv.ParseInt(amt, 10, 64)
	if err != nil || cents <= 0 || cents%100 != 0 || strings.TrimLeft(amt, "0123456789") != "" {
		return nil, fmt.Errorf("vnpay: vnp_Amount %q is not a positive amount in VND × 100", amt)
	}
	n.AmountVND = cents / 100
	if d := get("vnp_PayDate"); d != "" {
		if n.PayDate, err = ParseDate(d); err != nil {
			return nil, fmt.Errorf("vnpay: vnp_PayDate %q: %v", d, err)
		}
	}
	return n, nil
}

// QueryRequest is a querydr request (POST JSON to the gateway's
// merchant_webapi/api/transaction).
type QueryRequest struct {
	RequestID       string `json:"vnp_RequestId"`
	Version         string `json:"vnp_Version"`
	Command         string `json:"vnp_Command"`
	TmnCode         string `json:"vnp_TmnCode"`
	TxnRef          string `json:"vnp_TxnRef"`
	OrderInfo       string `json:"vnp_OrderInfo"`
	TransactionNo   string `json:"vnp_TransactionNo,omitempty"`
	TransactionDate string `json:"vnp_TransactionDate"`
	CreateDate      string `json:"vnp_CreateDate"`
	IPAddr          string `json:"vnp_IpAddr"`
	SecureHash      string `json:"vnp_SecureHash"`
}

// HashData is the request's signed data: its fields joined with "|".
func (q *QueryRequest) HashData() string {
	return strings.Join([]string{q.RequestID, q.Version, q.Command, q.TmnCode, q.TxnRef, q.TransactionDate, q.CreateDate, q.IPAddr, q.OrderInfo}, "|")
}

// querydr response codes.
const (
	QueryOK           = "00"
	QueryNotFound     = "91"
	QueryDuplicate    = "94" // the request id was used before
	QueryBadChecksum  = "97"
	QueryUnknownError = "99"
)

// QueryResponse is querydr's answer.
type QueryResponse struct {
	ResponseID        string `json:"vnp_ResponseId"`
	Command           string `json:"vnp_Command"`
	ResponseCode      string `json:"vnp_ResponseCode"`
	Message           string `json:"vnp_Message"`
	TmnCode           string `json:"vnp_TmnCode"`
	TxnRef            string `json:"vnp_TxnRef"`
	Amount            string `json:"vnp_Amount"` // VND × 100
	BankCode          string `json:"vnp_BankCode"`
	PayDate           string `json:"vnp_PayDate"`
	TransactionNo     string `json:"vnp_TransactionNo"`
	TransactionType   string `json:"vnp_TransactionType"`
	TransactionStatus string `json:"vnp_TransactionStatus"`
	OrderInfo         string `json:"vnp_OrderInfo"`
	PromotionCode     string `json:"vnp_PromotionCode"`
	PromotionAmount   string `json:"vnp_PromotionAmount"`
	SecureHash        string `json:"vnp_SecureHash"`
}

// HashData is the response's signed data: its fields joined with "|".
func (r *QueryResponse) HashData() string {
	return strings.Join([]string{r.ResponseID, r.Command, r.ResponseCode, r.Message, r.TmnCode, r.TxnRef, r.Amount, r.BankCode,
		r.PayDate, r.TransactionNo, r.TransactionType, r.TransactionStatus, r.OrderInfo, r.PromotionCode, r.PromotionAmount}, "|")
}

// RefundRequest is a refund request (vnp_Command=refund, POST JSON to the
// merchant API, as querydr): a full (TransactionType 02) or partial (03)
// refund of a paid transaction to its payer. Amount is VND × 100.
type RefundRequest struct {
	RequestID       string `json:"vnp_RequestId"`
	Version         string `json:"vnp_Version"`
	Command         string `json:"vnp_Command"`
	TmnCode         string `json:"vnp_TmnCode"`
	TransactionType string `json:"vnp_TransactionType"`
	TxnRef          string `json:"vnp_TxnRef"`
	Amount          string `json:"vnp_Amount"`
	OrderInfo       string `json:"vnp_OrderInfo"`
	TransactionNo   string `json:"vnp_TransactionNo,omitempty"`
	TransactionDate string `json:"vnp_TransactionDate"`
	CreateBy        string `json:"vnp_CreateBy"`
	CreateDate      string `json:"vnp_CreateDate"`
	IPAddr          string `json:"vnp_IpAddr"`
	SecureHash      string `json:"vnp_SecureHash"`
}

// Refund transaction types.
const (
	RefundFull    = "02"
	RefundPartial = "03"
)

// HashData is the request's signed data: its fields joined with "|".
func (q *RefundRequest) HashData() string {
	return strings.Join([]string{q.RequestID, q.Version, q.Command, q.TmnCode, q.TransactionType, q.TxnRef, q.Amount, q.TransactionNo,
		q.TransactionDate, q.CreateBy, q.CreateDate, q.IPAddr, q.OrderInfo}, "|")
}

// Refund response codes.
const (
	RefundOK          = "00"
	RefundBadMerchant = "02" // unknown vnp_TmnCode
	RefundBadFormat   = "03" // a malformed request (an amount above the payment's)
	RefundNotFound    = "91" // no such transaction
	// RefundDuplicate: a refund of the transaction was requested before
	// and VNPay has it (processing or done): the retried request refunds
	// nothing more.
	RefundDuplicate    = "94"
	RefundNotAllowed   = "95" // the transaction did not succeed at VNPay: nothing to refund
	RefundBadChecksum  = "97"
	RefundUnknownError = "99"
)

// RefundDefinite reports whether a refund answer code is VNPay's final
// word that it refunded nothing for this request and holds no refund of
// the transaction (the request may be made again or the money credited
// instead). 00 and 94 mean a refund exists; 99 and a failed call leave
// the outcome unknown.
func RefundDefinite(code string) bool {
	switch code {
	case RefundBadMerchant, RefundBadFormat, RefundNotFound, RefundNotAllowed, RefundBadChecksum:
		return true
	}
	return false
}

// RefundResponse is the refund's answer.
type RefundResponse struct {
	ResponseID        string `json:"vnp_ResponseId"`
	Command           string `json:"vnp_Command"`
	ResponseCode      string `json:"vnp_ResponseCode"`
	Message           string `json:"vnp_Message"`
	TmnCode           string `json:"vnp_TmnCode"`
	TxnRef            string `json:"vnp_TxnRef"`
	Amount            string `json:"vnp_Amount"`
	BankCode          string `json:"vnp_BankCode"`
	PayDate           string `json:"vnp_PayDate"`
	TransactionNo     string `json:"vnp_TransactionNo"`
	TransactionType   string `json:"vnp_TransactionType"`
	TransactionStatus string `json:"vnp_TransactionStatus"`
	OrderInfo         string `json:"vnp_OrderInfo"`
	SecureHash        string `json:"vnp_SecureHash"`
}

// HashData is the response's signed data: its fields joined with "|".
func (r *RefundResponse) HashData() string {
	return strings.Join([]string{r.ResponseID, r.Command, r.ResponseCode, r.Message, r.TmnCode, r.TxnRef, r.Amount, r.BankCode,
		r.PayDate, r.TransactionNo, r.TransactionType, r.TransactionStatus, r.OrderInfo}, "|")
}
