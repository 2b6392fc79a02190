CREATE TABLE wallet_accounts (
  id TEXT PRIMARY KEY,
  partner_id TEXT NOT NULL DEFAULT '',
  balance_vnd INTEGER NOT NULL,
  floor_vnd INTEGER NOT NULL DEFAULT 0,
  last_seq INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL
);
CREATE TABLE wallet_chain (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO wallet_chain (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE partner_wallet_transactions (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  partner_id TEXT NOT NULL,
  debit_account TEXT NOT NULL,
  credit_account TEXT NOT NULL,
  amount_vnd INTEGER NOT NULL CHECK (amount_vnd > 0),
  balance_after_vnd INTEGER NOT NULL,
  gateway TEXT NOT NULL DEFAULT '',
  gateway_ref TEXT NOT NULL DEFAULT '',
  order_id TEXT NOT NULL DEFAULT '',
  reverses TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  expected_diff_vnd INTEGER,
  actor TEXT NOT NULL,
  body_sha256 TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  CHECK (debit_account <> credit_account)
);
CREATE INDEX pwt_partner ON partner_wallet_transactions(partner_id, seq);
CREATE INDEX pwt_type_day ON partner_wallet_transactions(type, created_at);
CREATE INDEX pwt_created ON partner_wallet_transactions(created_at);
CREATE INDEX pwt_reverses ON partner_wallet_transactions(reverses);
CREATE INDEX pwt_gateway ON partner_wallet_transactions(gateway, gateway_ref);
-- append-only: entries are never changed or removed
CREATE TRIGGER pwt_no_update BEFORE UPDATE ON partner_wallet_transactions BEGIN SELECT RAISE(ABORT, 'partner_wallet_transactions is append-only'); END;
CREATE TRIGGER pwt_no_delete BEFORE DELETE ON partner_wallet_transactions BEGIN SELECT RAISE(ABORT, 'partner_wallet_transactions is append-only'); END;
