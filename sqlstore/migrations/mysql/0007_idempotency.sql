CREATE TABLE idempotency_keys (
  customer_id VARCHAR(64) NOT NULL,
  idem_key VARCHAR(255) NOT NULL,
  request_hash VARCHAR(64) NOT NULL,
  order_id VARCHAR(64) NOT NULL,
  response BLOB NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (customer_id, idem_key),
  KEY idempotency_keys_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
