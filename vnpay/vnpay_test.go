package vnpay_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"smp/vnpay"
)

var secret = []byte("SECRETKEYOFTHEMERCHANT0123456789")

func ipnParams() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"vnp_Amount": "20000000", "vnp_BankCode": "NCB", "vnp_OrderInfo": "Nap vi SMP P001", "vnp_PayDate": "20261123170102",
		"vnp_ResponseCode": "00", "vnp_TmnCode": "SMPTEST1", "vnp_TransactionNo": "14422574", "vnp_TransactionStatus": "00", "vnp_TxnRef": "W0123456789ABCDEF012"} {
		v.Set(k, x)
	}
	return v
}

func signed(v url.Values, key []byte) url.Values {
	v.Set(vnpay.ParamSecureHashType, "HmacSHA512")
	v.Set(vnpay.ParamSecureHash, vnpay.SignParams(key, v))
	return v
}

// TestSignedData: the signed data is the parameters without the hash and
// its type, sorted by key and form-encoded (url.Values.Encode).
func TestSignedData(t *testing.T) {
	v := url.Values{"vnp_TxnRef": {"5"}, "vnp_Amount": {"1806000"}, "vnp_OrderInfo": {"Thanh toan don hang :5"},
		vnpay.ParamSecureHash: {"x"}, vnpay.ParamSecureHashType: {"HmacSHA512"}}
	if got, want := vnpay.SignedData(v), "vnp_Amount=1806000&vnp_OrderInfo=Thanh+toan+don+hang+%3A5&vnp_TxnRef=5"; got != want {
		t.Fatalf("SignedData = %q, want %q", got, want)
	}
	if h := vnpay.Sign(secret, "a"); len(h) != 128 || strings.ToLower(h) != h {
		t.Fatalf("Sign: %q is not 128 lowercase hex digits", h)
	}
}

// TestVerifyParams: the right secret (any of several while rotating, hex
// in either case) verifies; a changed parameter, a wrong secret, a
// missing, repeated or malformed hash does not.
func TestVerifyParams(t *testing.T) {
	old := []byte("OLDSECRET")
	ok := signed(ipnParams(), secret)
	if err := vnpay.VerifyParams(ok, [][]byte{secret}); err != nil {
		t.Fatal(err)
	}
	if err := vnpay.VerifyParams(signed(ipnParams(), old), [][]byte{secret, old}); err != nil {
		t.Fatalf("rotation: %v", err)
	}
	upper := signed(ipnParams(), secret)
	upper.Set(vnpay.ParamSecureHash, strings.ToUpper(upper.Get(vnpay.ParamSecureHash)))
	if err := vnpay.VerifyParams(upper, [][]byte{secret}); err != nil {
		t.Fatalf("upper-case hex: %v", err)
	}
	for name, mutate := range map[string]func(v url.Values){
		"amount changed":   func(v url.Values) { v.Set("vnp_Amount", "2000000000") },
		"param added":      func(v url.Values) { v.Set("utm_source", "x") },
		"no hash":          func(v url.Values) { v.Del(vnpay.ParamSecureHash) },
		"hash twice":       func(v url.Values) { v.Add(vnpay.ParamSecureHash, v.Get(vnpay.ParamSecureHash)) },
		"not hex":          func(v url.Values) { v.Set(vnpay.ParamSecureHash, strings.Repeat("z", 128)) },
		"short":            func(v url.Values) { v.Set(vnpay.ParamSecureHash, "abcd") },
		"other secret":     func(v url.Values) { signed(v, []byte("wrong")) },
		"ref changed case": func(v url.Values) { v.Set("vnp_TxnRef", strings.ToLower(v.Get("vnp_TxnRef"))) },
	} {
		v := signed(ipnParams(), secret)
		mutate(v)
		if err := vnpay.VerifyParams(v, [][]byte{secret}); err != vnpay.ErrChecksum {
			t.Errorf("%s: %v, want ErrChecksum", name, err)
		}
	}
	if err := vnpay.VerifyParams(ok, nil); err != vnpay.ErrChecksum {
		t.Errorf("no secrets: %v", err)
	}
}

func TestParseIPN(t *testing.T) {
	n, err := vnpay.ParseIPN(signed(ipnParams(), secret))
	if err != nil {
		t.Fatal(err)
	}
	if n.AmountVND != 200_000 || n.TxnRef != "W0123456789ABCDEF012" || !n.Succeeded() || n.TransactionNo != "14422574" ||
		!n.PayDate.Equal(time.Date(2026, 11, 23, 10, 1, 2, 0, time.UTC)) {
		t.Fatalf("ParseIPN = %+v", n)
	}
	for name, mutate := range map[string]func(v url.Values){
		"amount not ×100":  func(v url.Values) { v.Set("vnp_Amount", "20000050") },
		"amount negative":  func(v url.Values) { v.Set("vnp_Amount", "-100") },
		"amount sign":      func(v url.Values) { v.Set("vnp_Amount", "+20000000") },
		"amount float":     func(v url.Values) { v.Set("vnp_Amount", "2e7") },
		"no ref":           func(v url.Values) { v.Del("vnp_TxnRef") },
		"ref too long":     func(v url.Values) { v.Set("vnp_TxnRef", strings.Repeat("A", 35)) },
		"no tmn code":      func(v url.Values) { v.Del("vnp_TmnCode") },
		"bad date":         func(v url.Values) { v.Set("vnp_PayDate", "2026-11-23") },
		"param twice":      func(v url.Values) { v.Add("vnp_TxnRef", "W2") },
		"no response code": func(v url.Values) { v.Del("vnp_ResponseCode") },
	} {
		v := ipnParams()
		mutate(v)
		if _, err := vnpay.ParseIPN(v); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	failed := ipnParams()
	failed.Set("vnp_ResponseCode", "24")
	if n, err := vnpay.ParseIPN(failed); err != nil || n.Succeeded() {
		t.Fatalf("a cancelled payment: %+v %v", n, err)
	}
}

// TestPaymentURL: the URL carries vnp_Amount = VND × 100, version 2.1.0,
// dates in GMT+7, and a hash over the rest that verifies.
func TestPaymentURL(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	raw := vnpay.PaymentURL("https://sandbox.vnpayment.vn/paymentv2/vpcpay.html", secret, vnpay.PaymentRequest{TmnCode: "SMPTEST1", AmountVND: 200_000,
		TxnRef: "W1", OrderInfo: "Nap vi", ReturnURL: "https://smp.vn/return", IPAddr: "203.0.113.7", Created: at, Expires: at.Add(15 * time.Minute)})
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, want := range map[string]string{"vnp_Amount": "20000000", "vnp_Version": "2.1.0", "vnp_Command": "pay", "vnp_CurrCode": "VND",
		"vnp_CreateDate": "20261123170000", "vnp_ExpireDate": "20261123171500", "vnp_TmnCode": "SMPTEST1", "vnp_IpAddr": "203.0.113.7"} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	if err := vnpay.VerifyParams(q, [][]byte{secret}); err != nil {
		t.Fatalf("payment URL does not verify: %v", err)
	}
}

// TestQueryHashData: querydr signs its fields joined with "|" in the
// protocol's order.
func TestQueryHashData(t *testing.T) {
	q := vnpay.QueryRequest{RequestID: "r1", Version: "2.1.0", Command: "querydr", TmnCode: "T", TxnRef: "W1", OrderInfo: "i",
		TransactionDate: "20261123170000", CreateDate: "20261123180000", IPAddr: "1.2.3.4"}
	if got := q.HashData(); got != "r1|2.1.0|querydr|T|W1|20261123170000|20261123180000|1.2.3.4|i" {
		t.Fatalf("request hash data %q", got)
	}
	r := vnpay.QueryResponse{ResponseID: "a", Command: "querydr", ResponseCode: "00", Message: "m", TmnCode: "T", TxnRef: "W1", Amount: "100",
		BankCode: "NCB", PayDate: "p", TransactionNo: "n", TransactionType: "01", TransactionStatus: "00", OrderInfo: "i"}
	if got := r.HashData(); got != "a|querydr|00|m|T|W1|100|NCB|p|n|01|00|i||" {
		t.Fatalf("response hash data %q", got)
	}
}

// FuzzIPN: any query string is parsed and verified without panicking; a
// parameter set signed with the secret always verifies, and changing any
// signed value breaks it; what ParseIPN accepts has a positive amount.
func FuzzIPN(f *testing.F) {
	f.Add(signed(ipnParams(), secret).Encode())
	f.Add("vnp_Amount=100&vnp_TxnRef=A&vnp_TmnCode=T&vnp_ResponseCode=00")
	f.Add("vnp_SecureHash=" + strings.Repeat("0", 128))
	f.Add("%zz&&==;")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		_ = vnpay.VerifyParams(v, [][]byte{secret})
		if n, err := vnpay.ParseIPN(v); err == nil && (n.AmountVND <= 0 || n.TxnRef == "") {
			t.Fatalf("ParseIPN accepted %q: %+v", raw, n)
		}
		v.Del(vnpay.ParamSecureHash)
		v.Set(vnpay.ParamSecureHash, vnpay.SignParams(secret, v))
		if err := vnpay.VerifyParams(v, [][]byte{secret}); err != nil {
			t.Fatalf("signed %q does not verify: %v", v.Encode(), err)
		}
		for k := range v {
			if k == vnpay.ParamSecureHash || k == vnpay.ParamSecureHashType {
				continue
			}
			w := url.Values{}
			for kk, vs := range v {
				w[kk] = append([]string(nil), vs...)
			}
			w[k] = append(w[k], "x")
			if vnpay.VerifyParams(w, [][]byte{secret}) == nil {
				t.Fatalf("changing %s kept the hash valid", k)
			}
			break
		}
	})
}
