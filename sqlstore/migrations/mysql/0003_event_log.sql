CREATE TABLE event_log (
  event_id VARCHAR(64) PRIMARY KEY,
  provider VARCHAR(32) NOT NULL,
  event_type VARCHAR(64) NOT NULL,
  order_id VARCHAR(64) NOT NULL,
  amount_vnd BIGINT NOT NULL,
  occurred_at BIGINT NOT NULL,
  body_sha256 CHAR(64) NOT NULL,
  body MEDIUMTEXT NOT NULL,
  status VARCHAR(16) NOT NULL,
  attempts INT NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL,
  received_at BIGINT NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  processed_at BIGINT NULL,
  KEY event_log_due (status, next_attempt_at),
  KEY event_log_type (status, event_type),
  KEY event_log_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX orders_payment ON orders(payment_status, stage, stage_changed_at);
