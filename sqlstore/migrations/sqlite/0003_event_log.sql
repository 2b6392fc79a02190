CREATE TABLE event_log (
  event_id TEXT PRIMARY KEY,
  provider TEXT NOT NULL,
  event_type TEXT NOT NULL,
  order_id TEXT NOT NULL,
  amount_vnd INTEGER NOT NULL,
  occurred_at INTEGER NOT NULL,
  body_sha256 TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  received_at INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  processed_at INTEGER
);
CREATE INDEX event_log_due ON event_log(status, next_attempt_at);
CREATE INDEX event_log_type ON event_log(status, event_type);
CREATE INDEX event_log_order ON event_log(order_id);
CREATE INDEX orders_payment ON orders(payment_status, stage, stage_changed_at);
