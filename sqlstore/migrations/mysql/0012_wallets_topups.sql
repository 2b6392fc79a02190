CREATE TABLE wallet_topups (
  id VARCHAR(64) PRIMARY KEY,
  partner_id VARCHAR(64) NOT NULL,
  gateway VARCHAR(16) NOT NULL,
  txn_ref VARCHAR(100) NOT NULL,
  amount_vnd BIGINT NOT NULL CHECK (amount_vnd > 0),
  status VARCHAR(16) NOT NULL,
  client_ip VARCHAR(64) NOT NULL DEFAULT '',
  transaction_no VARCHAR(64) NOT NULL DEFAULT '',
  bank_code VARCHAR(32) NOT NULL DEFAULT '',
  pay_date BIGINT NOT NULL DEFAULT 0,
  posting_id VARCHAR(128) NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE KEY wallet_topups_ref (gateway, txn_ref),
  KEY wallet_topups_partner (partner_id, created_at),
  KEY wallet_topups_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
