CREATE TABLE idempotency_keys (
  customer_id TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  order_id TEXT NOT NULL,
  response BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (customer_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
