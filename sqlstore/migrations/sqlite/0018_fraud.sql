CREATE TABLE fraud_decisions (
  id TEXT PRIMARY KEY,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  partner_id TEXT NOT NULL,
  txn_id TEXT NOT NULL DEFAULT '',
  amount_vnd INTEGER NOT NULL DEFAULT 0,
  score INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  severity TEXT NOT NULL DEFAULT '',
  signals TEXT NOT NULL DEFAULT '',
  rules TEXT NOT NULL,
  evidence TEXT NOT NULL,
  rules_version TEXT NOT NULL DEFAULT '',
  occurred_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX fraud_decisions_created ON fraud_decisions(created_at);
CREATE INDEX fraud_decisions_partner ON fraud_decisions(partner_id, created_at);
ALTER TABLE wallet_topups ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE wallet_topups ADD COLUMN device_id TEXT NOT NULL DEFAULT '';
