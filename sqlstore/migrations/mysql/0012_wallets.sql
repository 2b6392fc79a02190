CREATE TABLE wallet_accounts (
  id VARCHAR(80) PRIMARY KEY,
  partner_id VARCHAR(64) NOT NULL DEFAULT '',
  balance_vnd BIGINT NOT NULL,
  floor_vnd BIGINT NOT NULL DEFAULT 0,
  last_seq BIGINT NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE wallet_chain (
  id TINYINT PRIMARY KEY CHECK (id = 1),
  seq BIGINT NOT NULL,
  hash CHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO wallet_chain (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE partner_wallet_transactions (
  seq BIGINT PRIMARY KEY,
  id VARCHAR(128) NOT NULL,
  type VARCHAR(16) NOT NULL,
  partner_id VARCHAR(64) NOT NULL,
  debit_account VARCHAR(80) NOT NULL,
  credit_account VARCHAR(80) NOT NULL,
  amount_vnd BIGINT NOT NULL CHECK (amount_vnd > 0),
  balance_after_vnd BIGINT NOT NULL,
  gateway VARCHAR(16) NOT NULL DEFAULT '',
  gateway_ref VARCHAR(100) NOT NULL DEFAULT '',
  order_id VARCHAR(64) NOT NULL DEFAULT '',
  reverses VARCHAR(128) NOT NULL DEFAULT '',
  reason VARCHAR(1000) NOT NULL DEFAULT '',
  expected_diff_vnd BIGINT NULL,
  actor VARCHAR(200) NOT NULL,
  body_sha256 CHAR(64) NOT NULL,
  created_at BIGINT NOT NULL,
  prev_hash CHAR(64) NOT NULL,
  hash CHAR(64) NOT NULL,
  UNIQUE KEY pwt_id (id),
  KEY pwt_partner (partner_id, seq),
  KEY pwt_type_day (type, created_at),
  KEY pwt_created (created_at),
  KEY pwt_reverses (reverses),
  KEY pwt_gateway (gateway, gateway_ref),
  CHECK (debit_account <> credit_account)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TRIGGER pwt_no_update BEFORE UPDATE ON partner_wallet_transactions FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'partner_wallet_transactions is append-only';
CREATE TRIGGER pwt_no_delete BEFORE DELETE ON partner_wallet_transactions FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'partner_wallet_transactions is append-only';
