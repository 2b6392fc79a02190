package smp

import (
	"maps"
	"strings"
)

// DataClass says whether a column may hold personal data. It decides what
// may cross regions: the replication agent carries only columns classified
// NotPII of allowlisted tables (runbook INC-012: personal data never leaves
// China), and treats a column missing from the classification as PII.
type DataClass string

const (
	// PII: the value identifies a person or is about one: names, phones,
	// addresses, positions of people and of their orders, IP addresses,
	// the ids of people (customers, technicians, operators acting, session
	// owners), free text written by or about people (reasons, notes),
	// payloads that can carry any of these (event bodies, outbox and bus
	// messages, audit states, stored answers), and secrets (token and
	// session hashes), which must never leave their region either.
	PII DataClass = "pii"
	// NotPII: everything else: ids of things (orders, events, partners as
	// businesses), codes and states, amounts, times, configuration, hashes
	// of content, master data.
	NotPII DataClass = "not_pii"
)

// tableClass lists a table's columns by class, space-separated.
type tableClass struct{ pii, notPII string }

// columnLists classifies every column of every table of sqlstore's and
// sqlbus's schemas, on both dialects (tests/schema reads the migrated
// schemas and fails on a column missing here, or named here but in no
// table). A migration that adds a column adds it here in the same commit.
var columnLists = map[string]tableClass{
	// sqlstore
	"alerts":                        {notPII: "annotations ends_at fingerprint labels name severity starts_at status updated_at"},
	"audit_log":                     {pii: "actor after_state before_state reason target", notPII: "action at id role"},
	"cdc_changes":                   {pii: "after_json before_json", notPII: "at op row_key seq tbl"}, // SQLite only: change data capture's change table (rows of orders, order_transitions)
	"cities":                        {notPII: "code dispatch_config lat lng max_lat max_lng min_lat min_lng name status"},
	"connect_configs":               {notPII: "config_json connector target_state updated_at"},  // connector configurations (no credentials on the embedded default)
	"connect_offsets":               {notPII: "connector offset_json partition_key updated_at"}, // source positions (binlog file and position)
	"customers":                     {pii: "id name phone", notPII: "status"},
	"dispatch_offers":               {pii: "technician_id", notPII: "delivered_at distance_m expires_at invitation_id offer_rank order_id rank_reason responded_at round sent_at state wave"},
	"dispatch_waves":                {pii: "candidates note", notPII: "order_id radius_m round started_at wave"},
	"event_log":                     {pii: "body last_error", notPII: "amount_vnd attempts body_sha256 event_id event_type next_attempt_at occurred_at order_id processed_at provider received_at status"},
	"feature_flags":                 {pii: "updated_by", notPII: "name updated_at value"},
	"id_counters":                   {notPII: "name value"},
	"idempotency_keys":              {pii: "customer_id response", notPII: "created_at idem_key order_id request_hash"},
	"leases":                        {notPII: "expires_at name owner"},
	"order_transitions":             {pii: "actor reason", notPII: "at from_stage id order_id to_stage"},
	"orders":                        {pii: "address customer_id lat lng technician_id", notPII: "city created_at dispatch_not_before id payment_status price_vnd service stage stage_changed_at"},
	"outbox":                        {pii: "aggregate_id payload", notPII: "created_at event_id event_type id published_at"},
	"partner_wallet_transactions":   {pii: "actor reason", notPII: "amount_vnd balance_after_vnd body_sha256 created_at credit_account debit_account expected_diff_vnd gateway gateway_ref hash id order_id partner_id prev_hash reverses seq type"},
	"partners":                      {pii: "contact", notPII: "country id name status"},
	"process_heartbeats":            {notPII: "beat_at engine_up expires_at id services ws_connections"},
	"processed_events":              {notPII: "at consumer event_id"},
	"replication_checkpoints":       {notPII: "next_offset part path topic updated_at"},                                                                       // issue 21: how far a path carried each source partition
	"replication_group_checkpoints": {notPII: "consumer_group downstream_offset downstream_part downstream_topic part path topic updated_at upstream_offset"}, // issue 21: MirrorMaker 2's checkpoints
	"replication_heartbeat":         {notPII: "id ts"},                                                                                                        // MySQL only: the replica's lag
	"replication_hops":              {notPII: "heartbeat_at path source_region target_region updated_at via"},                                                 // issue 21: heartbeats mirrored onward
	"replication_offset_syncs":      {notPII: "downstream_offset downstream_part part path topic upstream_offset"},                                            // issue 21: where mirrored records landed
	"replication_paths":             {pii: "reason updated_by", notPII: "heartbeat_at path paused schema_needed source_region target_region updated_at"},
	"schema_migrations":             {notPII: "applied_at version"},
	"services":                      {notPII: "code commission_bp name price_vnd skill status"},
	"sessions":                      {pii: "id ip owner_id secret_hash", notPII: "created_at expires_at owner_kind"},
	"status_components":             {pii: "updated_by", notPII: "component message state updated_at"},
	"technician_settings":           {pii: "days_off technician_id updated_by weekly_days_off work_end work_start", notPII: "max_radius_km updated_at"},
	"technicians":                   {pii: "id lat lng name phone", notPII: "active_order_id city partner_id skills status"},
	"tokens":                        {pii: "owner_id token_hash", notPII: "kind role"},
	"wallet_accounts":               {notPII: "balance_vnd floor_vnd id last_seq partner_id updated_at"},
	"wallet_chain":                  {notPII: "hash id seq"},
	"wallet_recon_runs":             {pii: "actor reason", notPII: "auto_corrected day error_text finished_at id inconclusive max_diff_pct max_diff_vnd mismatches partners started_at status trigger_kind verdict"}, // reconciliation runs (INC-010)
	"wallet_recon_rows":             {pii: "detail_json", notPII: "diff_pct diff_vnd expected_diff_vnd gateway_balance_vnd last_txn_id note partner_id run_id smp_balance_vnd verdict"},                              // their rows (the detail carries adjustments' reasons and actors)
	"wallet_topups":                 {pii: "client_ip device_id user_agent", notPII: "amount_vnd bank_code created_at gateway hold_reason id partner_id pay_date posting_id refund_attempts refund_error refund_no status transaction_no txn_ref updated_at"},

	// Fraud decisions (fraud.go): the evidence holds IPs, user agents and
	// device ids; the rules' values hold the IPs they saw.
	"fraud_decisions":       {pii: "evidence rules", notPII: "amount_vnd created_at event_id event_type id occurred_at outcome partner_id rules_version score severity signals txn_id"},
	"wallet_controls":       {pii: "actor reason", notPII: "chain_seq partner_id since_at state until_at updated_at"}, // freezes and soft blocks (INC-011)
	"partner_admin_users":   {pii: "name notes user_id", notPII: "created_at partner_id updated_at"},
	"compliance_reports":    {notPII: "amount_vnd created_at id kind partner_id posting_id status threshold_vnd"},
	"partner_ip_allowlists": {pii: "cidrs updated_by", notPII: "partner_id updated_at"},

	// Master data (masterdata.go): what regions share; no personal data.
	"countries":         {notPII: "code name region updated_at version"},
	"currencies":        {notPII: "code minor_units name region updated_at version"},
	"currency_rates":    {notPII: "from_currency rate rate_date region to_currency updated_at version"},
	"i18n_translations": {notPII: "locale msg_key region text updated_at version"},
	"tax_configs":       {notPII: "country name rate_bp region tax_code updated_at version"},

	// sqlbus: keys and headers can name people (technician ids, dead
	// letters' errors), values are event payloads.
	"bus_leases":            {notPII: "expires_at grp owner part topic"},
	"bus_messages":          {pii: "headers msg_key msg_value", notPII: "off part topic ts"},
	"bus_offsets":           {notPII: "grp next_off part topic"},
	"bus_partitions":        {notPII: "next_off part topic"},
	"bus_schema_migrations": {notPII: "applied_at version"},
}

// columnClasses is columnLists by table and column.
var columnClasses = buildClasses(columnLists)

func buildClasses(tables map[string]tableClass) map[string]map[string]DataClass {
	out := make(map[string]map[string]DataClass, len(tables))
	for table, tc := range tables {
		cols := map[string]DataClass{}
		for _, c := range strings.Fields(tc.notPII) {
			cols[c] = NotPII
		}
		// PII last: a column listed twice (a mistake pii_test.go reports)
		// is PII.
		for _, c := range strings.Fields(tc.pii) {
			cols[c] = PII
		}
		out[table] = cols
	}
	return out
}

// ColumnClass is the classification of table.column; ok is false for a
// column the classification does not know (callers deciding what may
// leave a region treat it as PII).
func ColumnClass(table, column string) (class DataClass, ok bool) {
	class, ok = columnClasses[table][column]
	return class, ok
}

// ClassifiedColumns returns a copy of the whole classification: table →
// column → class.
func ClassifiedColumns() map[string]map[string]DataClass {
	out := make(map[string]map[string]DataClass, len(columnClasses))
	for t, cols := range columnClasses {
		out[t] = maps.Clone(cols)
	}
	return out
}
