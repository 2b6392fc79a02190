CREATE TABLE cities (
  code TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  min_lat REAL NOT NULL, max_lat REAL NOT NULL, min_lng REAL NOT NULL, max_lng REAL NOT NULL,
  dispatch_config TEXT NOT NULL
);
CREATE TABLE services (code TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE partners (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE technicians (
  id TEXT PRIMARY KEY,
  partner_id TEXT NOT NULL REFERENCES partners(id),
  name TEXT NOT NULL,
  city TEXT NOT NULL REFERENCES cities(code),
  skills TEXT NOT NULL,
  active_order_id TEXT
);
CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE tokens (
  token_hash TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  owner_id TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT ''
);
CREATE TABLE orders (
  id TEXT PRIMARY KEY,
  customer_id TEXT NOT NULL,
  city TEXT NOT NULL,
  service TEXT NOT NULL,
  lat REAL NOT NULL, lng REAL NOT NULL,
  address TEXT NOT NULL DEFAULT '',
  price_vnd INTEGER NOT NULL CHECK (price_vnd > 0),
  stage TEXT NOT NULL,
  payment_status TEXT NOT NULL,
  technician_id TEXT,
  created_at INTEGER NOT NULL,
  stage_changed_at INTEGER NOT NULL,
  dispatch_not_before INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX orders_stage ON orders(stage, stage_changed_at);
CREATE INDEX orders_customer ON orders(customer_id, created_at);
CREATE INDEX orders_technician ON orders(technician_id);
CREATE TABLE order_transitions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  order_id TEXT NOT NULL,
  from_stage TEXT NOT NULL,
  to_stage TEXT NOT NULL,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX order_transitions_order ON order_transitions(order_id, id);
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  event_type TEXT NOT NULL,
  aggregate_id TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  published_at INTEGER
);
CREATE INDEX outbox_unpublished ON outbox(published_at, id);
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  role TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  before_state TEXT NOT NULL,
  after_state TEXT NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX audit_target ON audit_log(target, id);
CREATE TABLE feature_flags (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  updated_by TEXT NOT NULL
);
CREATE TABLE dispatch_waves (
  order_id TEXT NOT NULL,
  round INTEGER NOT NULL,
  wave INTEGER NOT NULL,
  radius_m REAL NOT NULL,
  started_at INTEGER NOT NULL,
  candidates INTEGER NOT NULL,
  note TEXT NOT NULL,
  PRIMARY KEY (order_id, round, wave)
);
CREATE TABLE dispatch_offers (
  invitation_id TEXT PRIMARY KEY,
  order_id TEXT NOT NULL,
  technician_id TEXT NOT NULL,
  round INTEGER NOT NULL,
  wave INTEGER NOT NULL,
  offer_rank INTEGER NOT NULL,
  distance_m REAL NOT NULL,
  rank_reason TEXT NOT NULL,
  state TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  delivered_at INTEGER,
  responded_at INTEGER
);
CREATE INDEX dispatch_offers_order ON dispatch_offers(order_id, sent_at);
CREATE TABLE processed_events (
  consumer TEXT NOT NULL,
  event_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (consumer, event_id)
);
