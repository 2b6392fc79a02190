CREATE TABLE wallet_controls (
  partner_id VARCHAR(64) PRIMARY KEY,
  state VARCHAR(16) NOT NULL,
  reason VARCHAR(1000) NOT NULL DEFAULT '',
  actor VARCHAR(200) NOT NULL,
  since_at BIGINT NOT NULL,
  until_at BIGINT NOT NULL DEFAULT 0,
  chain_seq BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE partner_admin_users (
  partner_id VARCHAR(64) NOT NULL,
  user_id VARCHAR(64) NOT NULL,
  name VARCHAR(200) NOT NULL DEFAULT '',
  notes TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (partner_id, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE compliance_reports (
  id VARCHAR(160) PRIMARY KEY,
  kind VARCHAR(32) NOT NULL,
  partner_id VARCHAR(64) NOT NULL,
  posting_id VARCHAR(128) NOT NULL,
  amount_vnd BIGINT NOT NULL,
  threshold_vnd BIGINT NOT NULL,
  status VARCHAR(16) NOT NULL,
  created_at BIGINT NOT NULL,
  KEY compliance_reports_created (created_at),
  KEY compliance_reports_partner (partner_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE partner_ip_allowlists (
  partner_id VARCHAR(64) PRIMARY KEY,
  cidrs VARCHAR(2000) NOT NULL,
  updated_by VARCHAR(200) NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
ALTER TABLE wallet_topups ADD COLUMN hold_reason VARCHAR(32) NOT NULL DEFAULT '';
