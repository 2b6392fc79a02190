CREATE TABLE cities (
  code VARCHAR(16) PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  min_lat DOUBLE NOT NULL, max_lat DOUBLE NOT NULL, min_lng DOUBLE NOT NULL, max_lng DOUBLE NOT NULL,
  dispatch_config TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE services (code VARCHAR(64) PRIMARY KEY, name VARCHAR(100) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE partners (id VARCHAR(64) PRIMARY KEY, name VARCHAR(200) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE technicians (
  id VARCHAR(64) PRIMARY KEY,
  partner_id VARCHAR(64) NOT NULL,
  name VARCHAR(200) NOT NULL,
  city VARCHAR(16) NOT NULL,
  skills VARCHAR(500) NOT NULL,
  active_order_id VARCHAR(64) NULL,
  CONSTRAINT technicians_partner FOREIGN KEY (partner_id) REFERENCES partners(id),
  CONSTRAINT technicians_city FOREIGN KEY (city) REFERENCES cities(code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE customers (id VARCHAR(64) PRIMARY KEY, name VARCHAR(200) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE tokens (
  token_hash CHAR(64) PRIMARY KEY,
  kind VARCHAR(16) NOT NULL,
  owner_id VARCHAR(64) NOT NULL,
  role VARCHAR(16) NOT NULL DEFAULT ''
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (
  id VARCHAR(64) PRIMARY KEY,
  customer_id VARCHAR(64) NOT NULL,
  city VARCHAR(16) NOT NULL,
  service VARCHAR(64) NOT NULL,
  lat DOUBLE NOT NULL, lng DOUBLE NOT NULL,
  address VARCHAR(500) NOT NULL DEFAULT '',
  price_vnd BIGINT NOT NULL CHECK (price_vnd > 0),
  stage VARCHAR(20) NOT NULL,
  payment_status VARCHAR(16) NOT NULL,
  technician_id VARCHAR(64) NULL,
  created_at BIGINT NOT NULL,
  stage_changed_at BIGINT NOT NULL,
  dispatch_not_before BIGINT NOT NULL DEFAULT 0,
  KEY orders_stage (stage, stage_changed_at),
  KEY orders_customer (customer_id, created_at),
  KEY orders_technician (technician_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE order_transitions (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  order_id VARCHAR(64) NOT NULL,
  from_stage VARCHAR(20) NOT NULL,
  to_stage VARCHAR(20) NOT NULL,
  at BIGINT NOT NULL,
  actor VARCHAR(200) NOT NULL,
  reason VARCHAR(1000) NOT NULL,
  KEY order_transitions_order (order_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE outbox (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  event_id VARCHAR(64) NOT NULL,
  event_type VARCHAR(64) NOT NULL,
  aggregate_id VARCHAR(64) NOT NULL,
  payload MEDIUMTEXT NOT NULL,
  created_at BIGINT NOT NULL,
  published_at BIGINT NULL,
  UNIQUE KEY outbox_event (event_id),
  KEY outbox_unpublished (published_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE audit_log (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  at BIGINT NOT NULL,
  actor VARCHAR(200) NOT NULL,
  role VARCHAR(16) NOT NULL,
  action VARCHAR(64) NOT NULL,
  target VARCHAR(200) NOT NULL,
  before_state TEXT NOT NULL,
  after_state TEXT NOT NULL,
  reason VARCHAR(1000) NOT NULL,
  KEY audit_target (target, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE feature_flags (
  name VARCHAR(64) PRIMARY KEY,
  value TINYINT(1) NOT NULL,
  updated_at BIGINT NOT NULL,
  updated_by VARCHAR(200) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE dispatch_waves (
  order_id VARCHAR(64) NOT NULL,
  round INT NOT NULL,
  wave INT NOT NULL,
  radius_m DOUBLE NOT NULL,
  started_at BIGINT NOT NULL,
  candidates INT NOT NULL,
  note VARCHAR(500) NOT NULL,
  PRIMARY KEY (order_id, round, wave)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE dispatch_offers (
  invitation_id VARCHAR(64) PRIMARY KEY,
  order_id VARCHAR(64) NOT NULL,
  technician_id VARCHAR(64) NOT NULL,
  round INT NOT NULL,
  wave INT NOT NULL,
  offer_rank INT NOT NULL,
  distance_m DOUBLE NOT NULL,
  rank_reason VARCHAR(500) NOT NULL,
  state VARCHAR(16) NOT NULL,
  sent_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  delivered_at BIGINT NULL,
  responded_at BIGINT NULL,
  KEY dispatch_offers_order (order_id, sent_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE processed_events (
  consumer VARCHAR(64) NOT NULL,
  event_id VARCHAR(64) NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (consumer, event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE replication_heartbeat (
  id INT PRIMARY KEY,
  ts DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO replication_heartbeat (id, ts) VALUES (1, UNIX_TIMESTAMP(NOW(6)));
