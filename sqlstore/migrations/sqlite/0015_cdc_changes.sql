-- Change data capture on the embedded default (issue 19): SQLite has no
-- binlog, so triggers on the order tables append every committed change to
-- cdc_changes, in commit order (seq), with the row before and after as
-- JSON. The row's JSON is built from the same column list as the
-- snapshot's (sqlstore/cdc.go), so a snapshot row and a change of the same
-- data are equal. at is when the change was written, in Unix microseconds
-- (retention prunes by it, as the binlog expires). MySQL and MariaDB have their binlog instead. (The
-- runner splits statements on a semicolon at the end of a line: each
-- trigger's inner statement ends mid-line.)
CREATE TABLE cdc_changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tbl TEXT NOT NULL,
  op TEXT NOT NULL,
  row_key TEXT NOT NULL,
  before_json TEXT,
  after_json TEXT,
  at INTEGER NOT NULL
);
CREATE INDEX cdc_changes_at ON cdc_changes (at);
CREATE TRIGGER cdc_orders_insert AFTER INSERT ON orders BEGIN
  INSERT INTO cdc_changes (tbl, op, row_key, before_json, after_json, at)
  VALUES ('orders', 'c', json_object('id', NEW.id), NULL, json_object('id', NEW.id, 'customer_id', NEW.customer_id, 'city', NEW.city, 'service', NEW.service, 'lat', NEW.lat, 'lng', NEW.lng, 'address', NEW.address, 'price_vnd', NEW.price_vnd, 'stage', NEW.stage, 'payment_status', NEW.payment_status, 'technician_id', NEW.technician_id, 'created_at', NEW.created_at, 'stage_changed_at', NEW.stage_changed_at, 'dispatch_not_before', NEW.dispatch_not_before), CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)); END;
CREATE TRIGGER cdc_orders_update AFTER UPDATE ON orders BEGIN
  INSERT INTO cdc_changes (tbl, op, row_key, before_json, after_json, at)
  VALUES ('orders', 'u', json_object('id', NEW.id), json_object('id', OLD.id, 'customer_id', OLD.customer_id, 'city', OLD.city, 'service', OLD.service, 'lat', OLD.lat, 'lng', OLD.lng, 'address', OLD.address, 'price_vnd', OLD.price_vnd, 'stage', OLD.stage, 'payment_status', OLD.payment_status, 'technician_id', OLD.technician_id, 'created_at', OLD.created_at, 'stage_changed_at', OLD.stage_changed_at, 'dispatch_not_before', OLD.dispatch_not_before), json_object('id', NEW.id, 'customer_id', NEW.customer_id, 'city', NEW.city, 'service', NEW.service, 'lat', NEW.lat, 'lng', NEW.lng, 'address', NEW.address, 'price_vnd', NEW.price_vnd, 'stage', NEW.stage, 'payment_status', NEW.payment_status, 'technician_id', NEW.technician_id, 'created_at', NEW.created_at, 'stage_changed_at', NEW.stage_changed_at, 'dispatch_not_before', NEW.dispatch_not_before), CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)); END;
CREATE TRIGGER cdc_orders_delete AFTER DELETE ON orders BEGIN
  INSERT INTO cdc_changes (tbl, op, row_key, before_json, after_json, at)
  VALUES ('orders', 'd', json_object('id', OLD.id), json_object('id', OLD.id, 'customer_id', OLD.customer_id, 'city', OLD.city, 'service', OLD.service, 'lat', OLD.lat, 'lng', OLD.lng, 'address', OLD.address, 'price_vnd', OLD.price_vnd, 'stage', OLD.stage, 'payment_status', OLD.payment_status, 'technician_id', OLD.technician_id, 'created_at', OLD.created_at, 'stage_changed_at', OLD.stage_changed_at, 'dispatch_not_before', OLD.dispatch_not_before), NULL, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)); END;
CREATE TRIGGER cdc_order_transitions_insert AFTER INSERT ON order_transitions BEGIN
  INSERT INTO cdc_changes (tbl, op, row_key, before_json, after_json, at)
  VALUES ('order_transitions', 'c', json_object('id', NEW.id), NULL, json_object('id', NEW.id, 'order_id', NEW.order_id, 'from_stage', NEW.from_stage, 'to_stage', NEW.to_stage, 'at', NEW.at, 'actor', NEW.actor, 'reason', NEW.reason), CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)); END;
CREATE TRIGGER cdc_order_transitions_update AFTER UPDATE ON order_transitions BEGIN
  INSERT INTO cdc_changes (tbl, op, row_key, before_json, after_json, at)
  VALUES ('order_transitions', 'u', json_object('id', NEW.id), json_object('id', OLD.id, 'order_id', OLD.order_id, 'from_stage', OLD.from_stage, 'to_stage', OLD.to_stage, 'at', OLD.at, 'actor', OLD.actor, 'reason', OLD.reason), json_object('id', NEW.id, 'order_id', NEW.order_id, 'from_stage', NEW.from_stage, 'to_stage', NEW.to_stage, 'at', NEW.at, 'actor', NEW.actor, 'reason', NEW.reason), CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)); END;
CREATE TRIGGER cdc_order_transitions_delete AFTER DELETE ON order_transitions BEGIN
  INSERT INTO cdc_changes (tbl, op, row_key, before_json, after_json, at)
  VALUES ('order_transitions', 'd', json_object('id', OLD.id), json_object('id', OLD.id, 'order_id', OLD.order_id, 'from_stage', OLD.from_stage, 'to_stage', OLD.to_stage, 'at', OLD.at, 'actor', OLD.actor, 'reason', OLD.reason), NULL, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)); END;
