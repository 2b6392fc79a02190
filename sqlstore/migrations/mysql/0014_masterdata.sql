-- Master data (issue 21, runbook INC-012; smp.MasterTables in masterdata.go):
-- each table's fields, then the row's version (raised by one at each
-- change: a copy in another region applies (table, key, version) once),
-- the region the change was made in (the table's owner) and when (µs).
-- currency_rates.rate is an exact decimal in a string (the price of one
-- from_currency in to_currency on rate_date), never a float; rate_date is
-- YYYY-MM-DD. tax_configs.rate_bp is in basis points. Sizes: sqlstore/limits.go.
CREATE TABLE countries (
  code CHAR(2) NOT NULL PRIMARY KEY,
  name VARCHAR(200) NOT NULL,
  version BIGINT NOT NULL,
  region VARCHAR(16) NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE currencies (
  code CHAR(3) NOT NULL PRIMARY KEY,
  name VARCHAR(200) NOT NULL,
  minor_units BIGINT NOT NULL,
  version BIGINT NOT NULL,
  region VARCHAR(16) NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE currency_rates (
  from_currency CHAR(3) NOT NULL,
  to_currency CHAR(3) NOT NULL,
  rate_date CHAR(10) NOT NULL,
  rate VARCHAR(33) NOT NULL,
  version BIGINT NOT NULL,
  region VARCHAR(16) NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (from_currency, to_currency, rate_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE tax_configs (
  country CHAR(2) NOT NULL,
  tax_code VARCHAR(50) NOT NULL,
  rate_bp BIGINT NOT NULL,
  name VARCHAR(200) NOT NULL,
  version BIGINT NOT NULL,
  region VARCHAR(16) NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (country, tax_code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE i18n_translations (
  locale VARCHAR(5) NOT NULL,
  msg_key VARCHAR(50) NOT NULL,
  text VARCHAR(2000) NOT NULL,
  version BIGINT NOT NULL,
  region VARCHAR(16) NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (locale, msg_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
