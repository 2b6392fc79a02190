-- Indexes for the retention job's deletes (sqlstore/prune.go).
CREATE INDEX processed_events_at ON processed_events(at);
CREATE INDEX dispatch_waves_started ON dispatch_waves(started_at);
CREATE INDEX dispatch_offers_sent ON dispatch_offers(sent_at);
CREATE INDEX event_log_processed ON event_log(status, processed_at);
CREATE INDEX audit_at ON audit_log(at);
