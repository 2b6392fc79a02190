package wallet

import (
	"context"
	"fmt"
	"time"

	"smp"
)

// maxProblems bounds the problems a verification lists (it counts them
// all).
const maxProblems = 100

// Verification is the result of checking the ledger: the hash chain, that
// every entry balances, and every account's balance against its entries.
type Verification struct {
	OK        bool      `json:"ok"`
	Entries   int64     `json:"entries"`
	Accounts  int       `json:"accounts"`
	HeadSeq   int64     `json:"head_seq"`
	HeadHash  string    `json:"head_hash"`
	Problems  []string  `json:"problems"`
	Count     int       `json:"problem_count"`
	CheckedAt time.Time `json:"checked_at"`
}

// Verifier checks a ledger given as its accounts, then its entries in
// chain order (as smp.WalletStore.ScanWalletLedger reads them). The zero
// value is ready; Result says what it found.
type Verifier struct {
	prev     string
	seq      int64
	sums     map[string]int64
	lastSeq  map[string]int64
	accounts []*smp.WalletAccount
	ids      map[string]smp.WalletTxType
	reversed map[string]bool
	v        Verification
}

func (v *Verifier) problem(format string, args ...any) {
	v.v.Count++
	if len(v.v.Problems) < maxProblems {
		v.v.Problems = append(v.v.Problems, fmt.Sprintf(format, args...))
	}
}

func (v *Verifier) init() {
	if v.sums == nil {
		v.prev, v.sums, v.lastSeq = smp.GenesisHash, map[string]int64{}, map[string]int64{}
		v.ids, v.reversed = map[string]smp.WalletTxType{}, map[string]bool{}
	}
}

// Accounts takes the ledger's accounts.
func (v *Verifier) Accounts(as []*smp.WalletAccount) error {
	v.init()
	v.accounts = as
	return nil
}

// Entry checks the next entry of the chain.
func (v *Verifier) Entry(e *smp.WalletEntry) error {
	v.init()
	v.seq++
	v.v.Entries++
	if e.Seq != v.seq {
		v.problem("entry %s: seq %d where %d was expected (an entry is missing or out of order)", e.ID, e.Seq, v.seq)
		v.seq = e.Seq
	}
	if e.PrevHash != v.prev {
		v.problem("entry %d (%s): prev_hash %.12s… does not match the previous entry's hash %.12s… (the chain is broken)", e.Seq, e.ID, e.PrevHash, v.prev)
	}
	if h := e.ComputeHash(); h != e.Hash {
		v.problem("entry %d (%s): hash %.12s… is not the hash of its fields %.12s… (the entry was changed)", e.Seq, e.ID, e.Hash, h)
	}
	v.prev = e.Hash
	wallet := smp.PartnerAccount(e.PartnerID)
	switch {
	case e.AmountVND <= 0:
		v.problem("entry %d (%s): amount %d VND is not positive", e.Seq, e.ID, e.AmountVND)
	case e.DebitAccount == e.CreditAccount:
		v.problem("entry %d (%s): debits and credits the same account %s", e.Seq, e.ID, e.DebitAccount)
	case e.DebitAccount != wallet && e.CreditAccount != wallet:
		v.problem("entry %d (%s): moves neither leg through partner %s's wallet", e.Seq, e.ID, e.PartnerID)
	}
	if !smp.ValidWalletTxType(e.Type) {
		v.problem("entry %d (%s): unknown type %q", e.Seq, e.ID, e.Type)
	}
	if _, dup := v.ids[e.ID]; dup {
		v.problem("entry %d: posting id %s appears twice", e.Seq, e.ID)
	}
	v.ids[e.ID] = e.Type
	if e.Type == smp.WalletReversal {
		if _, ok := v.ids[e.Reverses]; !ok {
			v.problem("entry %d (%s): reverses %s, which is not an earlier entry", e.Seq, e.ID, e.Reverses)
		} else if v.reversed[e.Reverses] {
			v.problem("entry %d (%s): reverses %s a second time", e.Seq, e.ID, e.Reverses)
		}
		v.reversed[e.Reverses] = true
	}
	v.sums[e.DebitAccount] -= e.AmountVND
	v.sums[e.CreditAccount] += e.AmountVND
	v.lastSeq[e.DebitAccount], v.lastSeq[e.CreditAccount] = e.Seq, e.Seq
	if got := v.sums[wallet]; got != e.BalanceAfterVND {
		v.problem("entry %d (%s): balance_after %d VND, the wallet's entries up to it sum to %d", e.Seq, e.ID, e.BalanceAfterVND, got)
	}
	return nil
}

// Result compares every account with its entries and returns the
// verification.
func (v *Verifier) Result(now time.Time) Verification {
	v.init()
	var total int64
	seen := map[string]bool{}
	for _, a := range v.accounts {
		seen[a.ID] = true
		total += a.BalanceVND
		if a.BalanceVND != v.sums[a.ID] {
			v.problem("account %s: balance %d VND, its entries sum to %d (diff %d)", a.ID, a.BalanceVND, v.sums[a.ID], a.BalanceVND-v.sums[a.ID])
		}
		if a.LastSeq != v.lastSeq[a.ID] {
			v.problem("account %s: last_seq %d, its last entry is %d", a.ID, a.LastSeq, v.lastSeq[a.ID])
		}
		if p := smp.PartnerOfAccount(a.ID); p != a.PartnerID {
			v.problem("account %s: partner_id %q", a.ID, a.PartnerID)
		}
	}
	for id, sum := range v.sums {
		if !seen[id] {
			v.problem("account %s: moved by entries (sum %d VND) but has no balance", id, sum)
		}
	}
	if total != 0 {
		v.problem("the balances sum to %d VND, not 0 (double entry is broken)", total)
	}
	v.v.Accounts, v.v.HeadSeq, v.v.HeadHash = len(v.accounts), v.seq, v.prev
	v.v.OK, v.v.CheckedAt = v.v.Count == 0, now
	if v.v.Problems == nil {
		v.v.Problems = []string{}
	}
	return v.v
}

// Verify reads the whole ledger from one snapshot and checks it: the
// chain links and every hash is its entry's, every entry balances, every
// balance equals the sum of its entries and all balances sum to zero.
// Problems found are in the result (OK false), not an error; an error is
// the store's.
func (s *Service) Verify(ctx context.Context) (Verification, error) {
	var v Verifier
	if err := s.store.ScanWalletLedger(ctx, v.Accounts, v.Entry); err != nil {
		return Verification{}, err
	}
	res := v.Result(s.cfg.Now())
	if !res.OK {
		s.log.Error("wallet ledger verification failed", "problems", res.Count, "first", res.Problems[0])
	}
	return res, nil
}
