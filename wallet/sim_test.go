package wallet_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/bus"
	"smp/sim"
	"smp/sqlstore"
	"smp/vnpay"
	"smp/wallet"
)

// The money path's deterministic simulation, in the manner of
// TigerBeetle's VOPR and Blnk's invariant harness: each seed drives
// random top-ups (paid or cancelled at the VNPay simulator), IPNs
// delivered duplicated, late, dropped (then replayed), reordered or with a
// wrong hash, commissions on completed orders (some events delivered
// twice), adjustments and reversals, and process restarts (the store and
// the service closed and opened again) between any two steps, on an
// injected clock. After every step it checks the invariants: every
// posting balances, every wallet equals the sum of its entries and the
// model's balance, every gateway success is applied exactly once (one
// 00, then 02), and the chain verifies. A failing seed is printed and
// replays exactly: go test ./wallet -run TestMoneyPathSimulation -sim.seed N.

var (
	simSeeds = flag.Int("sim.seeds", 500, "seeds of the money-path simulation")
	simSeed  = flag.Uint64("sim.seed", 0, "replay one seed of the money-path simulation")
	simSteps = flag.Int("sim.steps", defaultSimSteps, "steps per seed (default 24, 12 under -race)")
)

var partners = []string{"P001", "P002", "P003"}

// template is a migrated, seeded database that each seed copies (opening
// and migrating one per seed would take most of the minute).
var template struct {
	once sync.Once
	path string
	err  error
}

func templateDB(t *testing.T, dir string) string {
	template.once.Do(func() {
		template.path = filepath.Join(dir, "template.db")
		s, err := sqlstore.Open(ctx, sqlstore.Config{Path: template.path})
		if err != nil {
			template.err = err
			return
		}
		defer s.Close()
		for _, id := range partners {
			if template.err = s.UpsertPartner(ctx, &smp.Partner{ID: id, Name: id}); template.err != nil {
				return
			}
		}
		template.err = s.UpsertCity(ctx, &smp.City{Code: "HCMC", Name: "HCMC", MinLat: 10, MaxLat: 11, MinLng: 106, MaxLng: 107,
			RadiusStepsKm: []float64{2}, WaveSize: 3, MaxWaves: 2})
		if template.err == nil {
			template.err = s.UpsertService(ctx, &smp.Service{Code: "plumbing", Name: "Plumbing", Skill: "plumbing", PriceVND: 300_000, Commission: 1250})
		}
		for i, id := range partners {
			if template.err == nil {
				template.err = s.UpsertTechnician(ctx, &smp.Technician{ID: fmt.Sprint("T", i), PartnerID: id, Name: id, City: "HCMC", Skills: []string{"plumbing"}})
			}
		}
		if template.err == nil {
			template.err = s.UpsertCustomer(ctx, &smp.Customer{ID: "C1", Name: "C"})
		}
	})
	if template.err != nil {
		t.Fatal(template.err)
	}
	return template.path
}

// simDir is a directory for one seed's database: in memory (/dev/shm)
// where the system has it, since every commit is fsynced and the
// simulation commits thousands of times; t.TempDir() otherwise.
func simDir(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "smp-wallet-sim-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// world is one seed's run.
type world struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	now   time.Time
	path  string
	store *sqlstore.DB
	svc   *wallet.Service
	gw    *sim.VNPay
	refs  int
	step  int
	log   []string

	// The model: what the balances must be.
	balance   map[string]int64
	paid      map[string]bool  // txn refs paid successfully at the gateway
	confirmed map[string]int   // 00 answers to a success IPN, per txn ref
	topupOf   map[string]int64 // txn ref → amount
	late      []url.Values     // IPNs held back, delivered later
	orders    []string         // completed orders
	commOf    map[string]int64 // order → commission
	reversed  map[string]bool
	owner     map[string]string // txn ref → partner
	seenRef   map[string]bool   // txn refs answered 00 once
}

func (w *world) clock() time.Time { return w.now }

func (w *world) open() {
	var err error
	if w.store, err = sqlstore.Open(ctx, sqlstore.Config{Path: w.path, Now: w.clock}); err != nil {
		w.t.Fatalf("seed %d: open: %v", w.seed, err)
	}
	w.svc, err = wallet.New(w.store, wallet.Config{VNPay: wallet.VNPay{TmnCode: tmn, Secrets: [][]byte{vnpSecret},
		PayURL: "https://vnpay.test/paymentv2/vpcpay.html"}, NewRef: func() string { w.refs++; return fmt.Sprintf("S%dR%d", w.seed%1000, w.refs) },
		Now: w.clock})
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) fail(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("seed %d failed at step %d: %s\nsteps:\n%v\nreplay: go test ./wallet -run TestMoneyPathSimulation -sim.seed %d",
		w.seed, w.step, fmt.Sprintf(format, args...), w.log, w.seed)
}

func runSeed(t *testing.T, tmpl string, seed uint64, steps int) {
	w := &world{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), now: time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC),
		path: filepath.Join(simDir(t), "smp.db"), balance: map[string]int64{}, paid: map[string]bool{}, confirmed: map[string]int{},
		topupOf: map[string]int64{}, commOf: map[string]int64{}, reversed: map[string]bool{}, owner: map[string]string{}, seenRef: map[string]bool{}}
	if err := copyFile(w.path, tmpl); err != nil {
		t.Fatal(err)
	}
	w.gw = &sim.VNPay{TmnCode: tmn, Secret: vnpSecret, Now: w.clock, Seed: seed}
	w.open()
	defer func() { w.store.Close() }()
	for w.step = 1; w.step <= steps; w.step++ {
		w.now = w.now.Add(time.Duration(w.rng.IntN(600)) * time.Second)
		w.act()
		w.check()
	}
	// The end of the run: every held-back or dropped IPN arrives (the
	// replay of INC-010 scenario 1), and every success is applied once.
	w.log = append(w.log, "final replay")
	for _, ipn := range append(w.late, w.gw.Dropped()...) {
		w.deliver(ipn)
	}
	w.late = nil
	for _, ipn := range w.gw.Pending() {
		w.deliver(ipn)
	}
	w.check()
	for ref := range w.paid {
		if w.confirmed[ref] != 1 {
			w.fail("paid top-up %s confirmed %d times after the final replay", ref, w.confirmed[ref])
		}
	}
}

func (w *world) partner() string { return partners[w.rng.IntN(len(partners))] }

// act takes one random step.
func (w *world) act() {
	switch k := w.rng.IntN(100); {
	case k < 25: // a top-up requested and paid (or cancelled) at the gateway
		p, amt := w.partner(), int64(10_000*(1+w.rng.IntN(50)))
		c, err := w.svc.CreateTopup(ctx, p, amt, "203.0.113.9")
		if err != nil {
			w.fail("create top-up: %v", err)
		}
		w.topupOf[c.TxnRef] = amt
		ok := w.rng.IntN(10) < 8
		w.gw.SetFaults(sim.VNPayFaults{DropRate: 0.15, DuplicateRate: 0.3, Reorder: true})
		if _, err := w.gw.Pay(c.PaymentURL, ok); err != nil {
			w.fail("pay: %v", err)
		}
		w.owner[c.TxnRef] = p
		if ok {
			w.paid[c.TxnRef] = true
		}
		w.log = append(w.log, fmt.Sprintf("topup %s %s %d paid=%v", c.TxnRef, p, amt, ok))
	case k < 45: // deliver what the gateway queued, some held back as late
		for _, ipn := range w.gw.Pending() {
			if w.rng.IntN(4) == 0 {
				w.late = append(w.late, ipn)
				continue
			}
			w.deliver(ipn)
		}
		w.log = append(w.log, "deliver")
	case k < 52: // late IPNs arrive, in any order
		w.rng.Shuffle(len(w.late), func(i, j int) { w.late[i], w.late[j] = w.late[j], w.late[i] })
		for _, ipn := range w.late {
			w.deliver(ipn)
		}
		w.late = nil
		w.log = append(w.log, "late")
	case k < 56: // an IPN with a wrong hash (a forgery or a misconfigured secret)
		v := url.Values{"vnp_TxnRef": {"S1R1"}, "vnp_Amount": {"100000000"}, "vnp_TmnCode": {tmn}, "vnp_ResponseCode": {"00"},
			"vnp_TransactionStatus": {"00"}}
		v.Set(vnpay.ParamSecureHash, vnpay.SignParams([]byte("forged"), v))
		if ans, err := w.svc.HandleIPN(ctx, v); err != nil || ans.RspCode != vnpay.RspInvalidChecksum {
			w.fail("forged IPN answered %+v %v", ans, err)
		}
		w.log = append(w.log, "forged")
	case k < 72: // an order completed: its commission, the event sometimes delivered twice
		id := fmt.Sprintf("o%d", len(w.orders)+1)
		tech := w.rng.IntN(len(partners))
		price := int64(50_000 + 1_000*w.rng.IntN(500))
		err := w.store.InTx(ctx, func(tx smp.Tx) error {
			return tx.InsertOrder(ctx, &smp.Order{ID: id, CustomerID: "C1", City: "HCMC", Service: "plumbing", Lat: 10.5, Lng: 106.5, PriceVND: price,
				Stage: smp.StageCompleted, PaymentStatus: smp.PaymentPaid, TechnicianID: fmt.Sprint("T", tech), CreatedAt: w.now, StageChangedAt: w.now})
		})
		if err != nil {
			w.fail("insert order: %v", err)
		}
		data, _ := json.Marshal(smp.OrderEventData{OrderID: id, Service: "plumbing", To: smp.StageCompleted, TechnicianID: fmt.Sprint("T", tech)})
		ev := smp.Event{ID: "ev-" + id, Type: smp.EventOrderCompleted, SchemaVersion: 1, AggregateID: id, OccurredAt: w.now, Data: data}
		times := 1 + w.rng.IntN(2)
		for i := range times {
			res, err := w.svc.HandleOrderEvent(ctx, ev)
			if i == 0 && (err != nil || res != bus.DoneRecorded) || i > 0 && err != bus.ErrDuplicate {
				w.fail("order event %s delivery %d: %v %v", id, i+1, res, err)
			}
		}
		c := wallet.CommissionVND(price, 1250)
		w.orders = append(w.orders, id)
		w.commOf[id] = c
		w.balance[partners[tech]] -= c
		w.log = append(w.log, fmt.Sprintf("commission %s %s -%d x%d", id, partners[tech], c, times))
	case k < 82: // a manual adjustment, either way
		p, amt := w.partner(), int64(w.rng.IntN(200_001)-100_000)
		if amt == 0 {
			amt = 1
		}
		id := fmt.Sprintf("adj-%d", w.step)
		if _, err := w.svc.Post(ctx, smp.Posting{ID: id, Type: smp.WalletAdjustment, PartnerID: p, AmountVND: amt, Reason: "sim", Actor: "finance:sim"}, ""); err != nil {
			w.fail("adjust: %v", err)
		}
		// The same adjustment again (a retried request) changes nothing;
		// another amount under its id is refused.
		if out, err := w.svc.Post(ctx, smp.Posting{ID: id, Type: smp.WalletAdjustment, PartnerID: p, AmountVND: amt, Reason: "sim", Actor: "finance:sim"}, ""); err != nil || !out.Duplicate {
			w.fail("retried adjustment: %+v %v", out, err)
		}
		if _, err := w.svc.Post(ctx, smp.Posting{ID: id, Type: smp.WalletAdjustment, PartnerID: p, AmountVND: amt + 1, Reason: "sim", Actor: "finance:sim"}, ""); smp.ErrorCode(err) != smp.ECONFLICT {
			w.fail("conflicting adjustment: %v", err)
		}
		w.balance[p] += amt
		w.log = append(w.log, fmt.Sprintf("adjust %s %+d", p, amt))
	case k < 88: // a commission reversed (the order refunded)
		if len(w.orders) == 0 {
			return
		}
		o := w.orders[w.rng.IntN(len(w.orders))]
		if w.reversed[o] || w.commOf[o] == 0 {
			return
		}
		e, err := w.store.FindWalletEntry(ctx, "commission:"+o)
		if err != nil {
			w.fail("find commission %s: %v", o, err)
		}
		if _, err := w.svc.Post(ctx, smp.Posting{ID: "rev:" + o, Type: smp.WalletReversal, PartnerID: e.PartnerID, AmountVND: e.AmountVND,
			Reverses: e.ID, Reason: "order refunded", Actor: "finance:sim"}, ""); err != nil {
			w.fail("reverse %s: %v", o, err)
		}
		w.reversed[o] = true
		w.balance[e.PartnerID] += e.AmountVND
		w.log = append(w.log, "reverse "+o)
	default: // the process restarts
		w.store.Close()
		w.open()
		w.log = append(w.log, "restart")
	}
}

// deliver hands one IPN to the service and checks its answer against the
// model: a success's first delivery is 00 (credited), later ones 02; a
// cancelled payment is 00 once (the top-up fails), then 02.
func (w *world) deliver(ipn url.Values) {
	ref := ipn.Get("vnp_TxnRef")
	ans, err := w.svc.HandleIPN(ctx, ipn)
	if err != nil {
		w.fail("IPN %s: %v", ref, err)
	}
	first := !w.seenRef[ref]
	switch {
	case first && ans.RspCode != vnpay.RspConfirmed:
		w.fail("first IPN of %s answered %s, want 00", ref, ans.RspCode)
	case !first && ans.RspCode != vnpay.RspAlreadyConfirmed:
		w.fail("repeated IPN of %s answered %s, want 02", ref, ans.RspCode)
	}
	if ans.RspCode == vnpay.RspConfirmed {
		w.seenRef[ref] = true
		if w.paid[ref] {
			w.confirmed[ref]++
			w.balance[w.owner[ref]] += w.topupOf[ref]
		}
	}
}

// check verifies the invariants after a step.
func (w *world) check() {
	v, err := w.svc.Verify(ctx)
	if err != nil {
		w.fail("verify: %v", err)
	}
	if !v.OK {
		w.fail("the ledger does not verify: %v", v.Problems)
	}
	for _, p := range partners {
		wl, err := w.svc.FindWallet(ctx, p)
		if err != nil {
			w.fail("wallet %s: %v", p, err)
		}
		if wl.BalanceVND != w.balance[p] {
			w.fail("wallet %s holds %d VND, the model %d", p, wl.BalanceVND, w.balance[p])
		}
	}
	es, err := w.store.FindWalletEntries(ctx, smp.WalletEntryFilter{Type: smp.WalletTopup, Limit: 10000})
	if err != nil {
		w.fail("entries: %v", err)
	}
	n := 0
	for _, e := range es {
		if !w.paid[e.GatewayRef] || w.confirmed[e.GatewayRef] != 1 {
			w.fail("top-up entry %s: paid %v, confirmed %d", e.ID, w.paid[e.GatewayRef], w.confirmed[e.GatewayRef])
		}
		n++
	}
	want := 0
	for _, c := range w.confirmed {
		want += c
	}
	if n != want {
		w.fail("%d top-up entries, %d successes confirmed", n, want)
	}
}

// TestMoneyPathSimulation runs -sim.seeds seeds (500 by default, in
// parallel), or only -sim.seed.
func TestMoneyPathSimulation(t *testing.T) {
	t.Parallel()
	tmpl := templateDB(t, t.TempDir())
	if *simSeed != 0 {
		runSeed(t, tmpl, *simSeed, *simSteps)
		return
	}
	for seed := uint64(1); seed <= uint64(*simSeeds); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			runSeed(t, tmpl, seed, *simSteps)
		})
	}
}
