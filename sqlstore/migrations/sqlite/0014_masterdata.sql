-- Master data (issue 21, runbook INC-012; smp.MasterTables in masterdata.go):
-- each table's fields, then the row's version (raised by one at each
-- change: a copy in another region applies (table, key, version) once),
-- the region the change was made in (the table's owner) and when (µs).
-- currency_rates.rate is an exact decimal in a string (the price of one
-- from_currency in to_currency on rate_date), never a float; rate_date is
-- YYYY-MM-DD. tax_configs.rate_bp is in basis points.
CREATE TABLE countries (
  code TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  region TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE currencies (
  code TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  minor_units INTEGER NOT NULL,
  version INTEGER NOT NULL,
  region TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE currency_rates (
  from_currency TEXT NOT NULL,
  to_currency TEXT NOT NULL,
  rate_date TEXT NOT NULL,
  rate TEXT NOT NULL,
  version INTEGER NOT NULL,
  region TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (from_currency, to_currency, rate_date)
);
CREATE TABLE tax_configs (
  country TEXT NOT NULL,
  tax_code TEXT NOT NULL,
  rate_bp INTEGER NOT NULL,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  region TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (country, tax_code)
);
CREATE TABLE i18n_translations (
  locale TEXT NOT NULL,
  msg_key TEXT NOT NULL,
  text TEXT NOT NULL,
  version INTEGER NOT NULL,
  region TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (locale, msg_key)
);
