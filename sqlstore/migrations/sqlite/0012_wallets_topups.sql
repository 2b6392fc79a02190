CREATE TABLE wallet_topups (
  id TEXT PRIMARY KEY,
  partner_id TEXT NOT NULL,
  gateway TEXT NOT NULL,
  txn_ref TEXT NOT NULL,
  amount_vnd INTEGER NOT NULL CHECK (amount_vnd > 0),
  status TEXT NOT NULL,
  client_ip TEXT NOT NULL DEFAULT '',
  transaction_no TEXT NOT NULL DEFAULT '',
  bank_code TEXT NOT NULL DEFAULT '',
  pay_date INTEGER NOT NULL DEFAULT 0,
  posting_id TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (gateway, txn_ref)
);
CREATE INDEX wallet_topups_partner ON wallet_topups(partner_id, created_at);
CREATE INDEX wallet_topups_created ON wallet_topups(created_at);
