CREATE TABLE wallet_controls (
  partner_id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  actor TEXT NOT NULL,
  since_at INTEGER NOT NULL,
  until_at INTEGER NOT NULL DEFAULT 0,
  chain_seq INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE partner_admin_users (
  partner_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  notes TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (partner_id, user_id)
);
CREATE TABLE compliance_reports (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  partner_id TEXT NOT NULL,
  posting_id TEXT NOT NULL,
  amount_vnd INTEGER NOT NULL,
  threshold_vnd INTEGER NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX compliance_reports_created ON compliance_reports(created_at);
CREATE INDEX compliance_reports_partner ON compliance_reports(partner_id, created_at);
CREATE TABLE partner_ip_allowlists (
  partner_id TEXT PRIMARY KEY,
  cidrs TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
ALTER TABLE wallet_topups ADD COLUMN hold_reason TEXT NOT NULL DEFAULT '';
