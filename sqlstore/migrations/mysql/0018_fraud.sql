CREATE TABLE fraud_decisions (
  id VARCHAR(200) PRIMARY KEY,
  event_id VARCHAR(191) NOT NULL,
  event_type VARCHAR(64) NOT NULL,
  partner_id VARCHAR(64) NOT NULL,
  txn_id VARCHAR(100) NOT NULL DEFAULT '',
  amount_vnd BIGINT NOT NULL DEFAULT 0,
  score INT NOT NULL,
  outcome VARCHAR(16) NOT NULL,
  severity VARCHAR(16) NOT NULL DEFAULT '',
  signals VARCHAR(1000) NOT NULL DEFAULT '',
  rules MEDIUMTEXT NOT NULL,
  evidence TEXT NOT NULL,
  rules_version VARCHAR(64) NOT NULL DEFAULT '',
  occurred_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  KEY fraud_decisions_created (created_at),
  KEY fraud_decisions_partner (partner_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
ALTER TABLE wallet_topups ADD COLUMN user_agent VARCHAR(512) NOT NULL DEFAULT '';
ALTER TABLE wallet_topups ADD COLUMN device_id VARCHAR(128) NOT NULL DEFAULT '';
