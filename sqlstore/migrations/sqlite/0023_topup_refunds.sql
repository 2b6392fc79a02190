ALTER TABLE wallet_topups ADD COLUMN refund_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallet_topups ADD COLUMN refund_error TEXT NOT NULL DEFAULT '';
ALTER TABLE wallet_topups ADD COLUMN refund_no TEXT NOT NULL DEFAULT '';
CREATE INDEX wallet_topups_status ON wallet_topups(status, created_at);
