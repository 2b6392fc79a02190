ALTER TABLE wallet_topups ADD COLUMN refund_attempts INT NOT NULL DEFAULT 0;
ALTER TABLE wallet_topups ADD COLUMN refund_error VARCHAR(1000) NOT NULL DEFAULT '';
ALTER TABLE wallet_topups ADD COLUMN refund_no VARCHAR(64) NOT NULL DEFAULT '';
CREATE INDEX wallet_topups_status ON wallet_topups(status, created_at);
