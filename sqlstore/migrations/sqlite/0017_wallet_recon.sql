CREATE TABLE wallet_recon_runs (
  id TEXT PRIMARY KEY,
  day TEXT NOT NULL,
  trigger_kind TEXT NOT NULL,
  actor TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  verdict TEXT NOT NULL,
  partners INTEGER NOT NULL,
  mismatches INTEGER NOT NULL,
  inconclusive INTEGER NOT NULL,
  auto_corrected INTEGER NOT NULL,
  max_diff_pct TEXT NOT NULL,
  max_diff_vnd INTEGER NOT NULL,
  error_text TEXT NOT NULL DEFAULT '',
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL
);
CREATE INDEX wrr_day ON wallet_recon_runs (day, started_at);
CREATE INDEX wrr_status ON wallet_recon_runs (status, started_at);
CREATE INDEX wrr_started ON wallet_recon_runs (started_at);
CREATE TABLE wallet_recon_rows (
  run_id TEXT NOT NULL,
  partner_id TEXT NOT NULL,
  smp_balance_vnd INTEGER NOT NULL,
  gateway_balance_vnd INTEGER NOT NULL,
  diff_vnd INTEGER NOT NULL,
  diff_pct TEXT NOT NULL,
  expected_diff_vnd INTEGER NOT NULL,
  last_txn_id TEXT NOT NULL DEFAULT '',
  verdict TEXT NOT NULL,
  note TEXT NOT NULL DEFAULT '',
  detail_json TEXT NOT NULL,
  PRIMARY KEY (run_id, partner_id)
);
