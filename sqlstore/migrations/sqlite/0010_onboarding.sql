ALTER TABLE cities ADD COLUMN lat REAL NOT NULL DEFAULT 0;
ALTER TABLE cities ADD COLUMN lng REAL NOT NULL DEFAULT 0;
ALTER TABLE cities ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE services ADD COLUMN skill TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN price_vnd INTEGER NOT NULL DEFAULT 0;
ALTER TABLE services ADD COLUMN commission_bp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE services ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE partners ADD COLUMN country TEXT NOT NULL DEFAULT 'VN';
ALTER TABLE partners ADD COLUMN contact TEXT NOT NULL DEFAULT '';
ALTER TABLE partners ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
CREATE INDEX partners_name ON partners(name);
ALTER TABLE technicians ADD COLUMN phone TEXT;
ALTER TABLE technicians ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE technicians ADD COLUMN lat REAL NOT NULL DEFAULT 0;
ALTER TABLE technicians ADD COLUMN lng REAL NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX technicians_phone ON technicians(phone);
CREATE INDEX technicians_city ON technicians(city, id);
CREATE INDEX technicians_partner ON technicians(partner_id, id);
ALTER TABLE customers ADD COLUMN phone TEXT;
ALTER TABLE customers ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
CREATE UNIQUE INDEX customers_phone ON customers(phone);
CREATE TABLE id_counters (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO id_counters (name, value) VALUES ('partner', 0), ('technician', 0), ('customer', 0)
