package runbook_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"smp/runbook"
)

func snapshot(t *testing.T, text string) *runbook.Snapshot {
	t.Helper()
	ms, err := runbook.ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return &runbook.Snapshot{Metrics: ms, Health: "ok", HealthChecks: map[string]string{}}
}

// TestVerdictsFromMetrics: the conditions that need servers this test
// does not start (a lagging MySQL replica, a hot partition) judged from
// the metrics SMP exports in them.
func TestVerdictsFromMetrics(t *testing.T) {
	for _, tc := range []struct {
		incident, metrics string
		holds             bool
		caseHas           string
	}{
		{"INC-003", "mysql_replica_lag_seconds 45\nsmp_mysql_reads_on_primary 1\n", true, "long queries"},
		{"INC-003", "mysql_replica_lag_seconds 2\nsmp_mysql_reads_on_primary 0\n", false, ""},
		{"INC-004", "redis_memory_used_percent 95\n", true, "culprit"},
		{"INC-004", "redis_memory_used_percent 40\n", false, ""},
		{"INC-007", "kafka_consumergroup_lag{group=\"dispatch-engine\",topic=\"orders.events\",partition=\"0\"} 12000\nkafka_consumergroup_lag{group=\"dispatch-engine\",topic=\"orders.events\",partition=\"1\"} 100\n", true, "scenario 2"},
		{"INC-007", "kafka_consumergroup_lag{group=\"dispatch-engine\",topic=\"orders.events\",partition=\"0\"} 6000\nkafka_consumergroup_lag{group=\"dispatch-engine\",topic=\"orders.events\",partition=\"1\"} 5000\n", true, "scenario 1/3"},
		{"INC-007", "kafka_consumergroup_lag{group=\"order-svc\",topic=\"orders.events\",partition=\"0\"} 999\n", false, ""},
		{"INC-006", "kafka_broker_down{cluster=\"prod\"} 1\nkafka_broker_up{cluster=\"prod\",broker=\"a\"} 0\nkafka_broker_up{cluster=\"prod\",broker=\"b\"} 1\nkafka_broker_up{cluster=\"prod\",broker=\"c\"} 1\n", true, "scenario 1"},
		{"INC-008", "kafka_connect_connector_status{connector=\"smp-mysql-connector\",state=\"RUNNING\"} 1\nkafka_connect_connector_status{connector=\"smp-mysql-connector\",state=\"FAILED\"} 0\n" +
			"kafka_connect_task_status{connector=\"smp-mysql-connector\",task=\"0\",state=\"RUNNING\"} 1\nkafka_connect_task_status{connector=\"smp-mysql-connector\",task=\"0\",state=\"FAILED\"} 0\n", false, ""},
		{"INC-008", "kafka_connect_connector_status{connector=\"smp-mysql-connector\",state=\"RUNNING\"} 1\n" +
			"kafka_connect_task_status{connector=\"smp-mysql-connector\",task=\"0\",state=\"FAILED\"} 1\n", true, "watchdog gave up"},
		{"INC-008", "kafka_connect_connector_status{connector=\"smp-mysql-connector\",state=\"FAILED\"} 1\nkafka_connect_connector_status{connector=\"smp-mysql-connector\",state=\"RUNNING\"} 0\n", true, "scenario 1/2"},
		{"INC-008", "kafka_connect_connector_status{connector=\"smp-mysql-connector\",state=\"STOPPED\"} 1\n", true, "stopped by an operator"},
		{"INC-009", "es_sink_lag_seconds 0\nkafka_connect_connector_status{connector=\"elasticsearch-sink\",state=\"RUNNING\"} 1\n", false, ""},
		{"INC-009", "es_sink_lag_seconds 420\nkafka_connect_connector_status{connector=\"elasticsearch-sink\",state=\"RUNNING\"} 1\n", true, "scenario 1/2"},
		{"INC-009", "es_sink_lag_seconds 30\nkafka_connect_connector_status{connector=\"elasticsearch-sink\",state=\"PAUSED\"} 1\n", true, "scenario 2"},
		{"INC-009", "es_sink_lag_seconds 0\nkafka_connect_connector_status{connector=\"elasticsearch-sink\",state=\"RUNNING\"} 1\nsmp_readmodel_drift_ratio{table=\"orders\"} 0.01\n", true, "scenario 3/4"},
		{"INC-011", "fraud_detection_signals_total{severity=\"medium\",rule=\"velocity\"} 3\nfraud_detection_signals_total{severity=\"high\",rule=\"amount_spike\"} 0\n", false, ""},
		{"INC-011", "fraud_detection_signals_total{severity=\"high\",rule=\"ip_multi_partner_high_value\"} 1\nfraud_detection_signals_total{severity=\"medium\",rule=\"velocity\"} 0\nsmp_wallet_refusals_total{rule=\"frozen\"} 4\n", true, "ip_multi_partner_high_value"},
		{"INC-012", "region_replication_lag_seconds{region=\"global-to-china\"} 1.2\nregion_replication_lag_seconds{region=\"global-to-asia\"} 0.8\n", false, ""},
		{"INC-012", "region_replication_lag_seconds{region=\"global-to-china\"} 61\n", true, "global-to-china"},
		{"INC-012", "region_replication_lag_seconds{region=\"cn-to-global\"} 301\n", true, "cn-to-global"},
		{"INC-012", "region_replication_lag_seconds{region=\"global-to-china\"} 20\nsmp_replication_path_paused{region=\"global-to-china\",cause=\"schema\"} 1\n", true, "scenario 3"},
	} {
		v, err := runbook.Check(snapshot(t, tc.metrics), tc.incident)
		if err != nil {
			t.Fatal(err)
		}
		if v.Holds != tc.holds || !strings.Contains(v.Case, tc.caseHas) || (tc.holds && v.Mitigation == "") {
			t.Errorf("%s with %q: %+v", tc.incident, tc.metrics, v)
		}
	}
	if v, _ := runbook.Check(snapshot(t, ""), "INC-008"); !v.Unknown || v.Holds {
		t.Errorf("INC-008 without a Connect worker: %+v", v)
	}
	if v, _ := runbook.Check(snapshot(t, ""), "INC-011"); !v.Unknown || v.Holds {
		t.Errorf("INC-011 without a fraud detector: %+v", v)
	}
	if v, _ := runbook.Check(snapshot(t, ""), "INC-012"); !v.Unknown || v.Holds {
		t.Errorf("INC-012 without a replication agent: %+v", v)
	}
	if v, _ := runbook.Check(snapshot(t, ""), "INC-003"); !v.Unknown || v.Holds {
		t.Errorf("INC-003 without a replica: %+v", v)
	}
	if _, err := runbook.Check(snapshot(t, ""), "INC-099"); err == nil {
		t.Error("unknown incident accepted")
	}
}

// verdictCase is one situation as /metrics shows it, and what the
// verdict must (and must not) say.
type verdictCase struct {
	name, incident, metrics string
	holds                   bool
	caseHas, mitigationHas  string
	mitigationLacks         string
}

func checkVerdicts(t *testing.T, cases []verdictCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := runbook.Check(snapshot(t, tc.metrics), tc.incident)
			if err != nil {
				t.Fatal(err)
			}
			if v.Holds != tc.holds || !strings.Contains(v.Case, tc.caseHas) || !strings.Contains(v.Mitigation, tc.mitigationHas) ||
				(tc.mitigationLacks != "" && strings.Contains(v.Mitigation, tc.mitigationLacks)) {
				t.Errorf("%s verdict:\n holds %v (want %v)\n case %q (want %q)\n mitigation %q (want %q, without %q)\n findings %q",
					tc.incident, v.Holds, tc.holds, v.Case, tc.caseHas, v.Mitigation, tc.mitigationHas, tc.mitigationLacks, v.Findings)
			}
		})
	}
}

const (
	autoOn  = "smp_feature_flag_enabled{name=\"ENABLE_AUTO_DISPATCH\"} 1\n"
	autoOff = "smp_feature_flag_enabled{name=\"ENABLE_AUTO_DISPATCH\"} 0\n"
)

// TestINC001Verdicts: the mitigation fits the situation: a dead engine is
// restarted (Option A), whatever the flag; option D is never recommended
// while it is in force; a running engine with stuck orders is triaged as
// such.
func TestINC001Verdicts(t *testing.T) {
	t.Parallel()
	checkVerdicts(t, []verdictCase{
		{name: "EngineDead", incident: "INC-001", metrics: "dispatch_engine_up 0\norder_stuck_in_stage_02_count 3\n" + autoOn,
			holds: true, caseHas: "engine not running", mitigationHas: "Option A: kubectl -n smp-prod rollout restart deployment/dispatch-engine", mitigationLacks: "--value false"},
		{name: "EngineDeadFlagOff", incident: "INC-001", metrics: "dispatch_engine_up 0\norder_stuck_in_stage_02_count 40\n" + autoOff,
			holds: true, caseHas: "engine not running", mitigationHas: "already off", mitigationLacks: "--value false"},
		{name: "EngineStateUnknown", incident: "INC-001", metrics: "order_stuck_in_stage_02_count 0\n" + autoOn,
			holds: true, caseHas: "engine state unknown", mitigationHas: "Option A"},
		{name: "FlagOffEngineUp", incident: "INC-001", metrics: "dispatch_engine_up 1\norder_stuck_in_stage_02_count 25\n" + autoOff,
			holds: true, caseHas: "auto dispatch is off", mitigationHas: "Option C", mitigationLacks: "--value false"},
		{name: "RunningNotDispatching", incident: "INC-001", metrics: "dispatch_engine_up 1\norder_stuck_in_stage_02_count 25\n" + autoOn,
			holds: true, caseHas: "engine running but not dispatching", mitigationHas: "Option D if it persists"},
		{name: "QueueFull", incident: "INC-001", metrics: "dispatch_engine_up 1\norder_stuck_in_stage_02_count 0\nsmp_dispatch_queue_length{city=\"HCMC\"} 150\n" + autoOn,
			holds: true, caseHas: "backpressure", mitigationHas: "Option B"},
		{name: "Healthy", incident: "INC-001", metrics: "dispatch_engine_up 1\norder_stuck_in_stage_02_count 2\n" + autoOn},
	})
}

// TestINC004Verdicts: Redis full, and what an out-of-memory episode
// leaves once Redis takes writes again (stuck orders under the alert's 10,
// engine events dead-lettered): not healthy.
func TestINC004Verdicts(t *testing.T) {
	t.Parallel()
	checkVerdicts(t, []verdictCase{
		{name: "Full", incident: "INC-004", metrics: "redis_memory_used_percent 95\nredis_maxmemory_configured 1\n",
			holds: true, caseHas: "culprit", mitigationHas: "Option A"},
		{name: "AfterOOMDeadLetters", incident: "INC-004", metrics: "redis_memory_used_percent 40\nredis_maxmemory_configured 1\norder_stuck_in_stage_02_count 9\n" +
			"smp_dispatch_queue_push_failures_total 12\nsmp_consumer_events_total{group=\"dispatch-engine\",outcome=\"dead_lettered\"} 10\nsmp_bus_dead_letters{topic=\"orders.events.dlq\"} 10\n",
			holds: true, caseHas: "after an out-of-memory episode", mitigationHas: "dlq replay"},
		{name: "AfterOOMStuck", incident: "INC-004", metrics: "redis_memory_used_percent 40\norder_stuck_in_stage_02_count 9\nsmp_dispatch_queue_push_failures_total 12\n",
			holds: true, caseHas: "9 orders are stuck", mitigationHas: "sweeper"},
		{name: "Healthy", incident: "INC-004", metrics: "redis_memory_used_percent 40\nredis_maxmemory_configured 1\norder_stuck_in_stage_02_count 0\n"},
	})
	v, _ := runbook.Check(snapshot(t, "redis_memory_used_percent 3\nredis_maxmemory_configured 0\n"), "INC-004")
	if v.Holds || !strings.Contains(strings.Join(v.Findings, "\n"), "maxmemory is not set") || !strings.Contains(strings.Join(v.Findings, "\n"), "of the host's memory") {
		t.Errorf("INC-004 without maxmemory: %+v", v)
	}
}

// TestINC007DeadLetters: runbook check INC-007 looks at the DLQ
// (scenario 4) even when the lag is low.
func TestINC007DeadLetters(t *testing.T) {
	t.Parallel()
	checkVerdicts(t, []verdictCase{
		{name: "Poison", incident: "INC-007", metrics: "kafka_consumergroup_lag{group=\"dispatch-engine\",topic=\"orders.events\",partition=\"0\"} 3\n" +
			"smp_consumer_events_total{group=\"dispatch-engine\",outcome=\"dead_lettered\"} 1\nsmp_bus_dead_letters{topic=\"orders.events.dlq\"} 1\n",
			holds: true, caseHas: "scenario 4", mitigationHas: "dlq replay"},
		{name: "Healthy", incident: "INC-007", metrics: "kafka_consumergroup_lag{group=\"dispatch-engine\",topic=\"orders.events\",partition=\"0\"} 3\n" +
			"smp_consumer_events_total{group=\"dispatch-engine\",outcome=\"dead_lettered\"} 0\nsmp_bus_dead_letters{topic=\"orders.events.dlq\"} 0\n"},
	})
}

// TestINC002Verdicts (15.7): the 5xx share is the last 5 minutes' (a
// platform that answered 5xx for a while an hour ago is healthy now, and
// one that starts failing now is not hidden by an hour of 200s); a
// missing webhook secret is named, not blamed on the database.
func TestINC002Verdicts(t *testing.T) {
	t.Parallel()
	base := "order_payment_pending_count 0\nsmp_event_log_events{status=\"dlq\"} 0\n"
	checkVerdicts(t, []verdictCase{
		{name: "OldFailuresOnly", incident: "INC-002", metrics: base +
			"webhook_requests_total{provider=\"inside\",code=\"200\"} 100\nwebhook_requests_total{provider=\"inside\",code=\"503\"} 50\n" +
			"smp_webhook_requests_last_5m{class=\"all\"} 40\nsmp_webhook_requests_last_5m{class=\"5xx\"} 0\n"},
		{name: "FailingNow", incident: "INC-002", metrics: base +
			"webhook_requests_total{provider=\"inside\",code=\"200\"} 10000\nwebhook_requests_total{provider=\"inside\",code=\"503\"} 30\n" +
			"smp_webhook_requests_last_5m{class=\"all\"} 40\nsmp_webhook_requests_last_5m{class=\"5xx\"} 30\nsmp_webhook_secret_configured 1\n",
			holds: true, caseHas: "over the last 5 min", mitigationHas: "inside retries"},
		{name: "NoSecret", incident: "INC-002", metrics: base +
			"smp_webhook_requests_last_5m{class=\"all\"} 10\nsmp_webhook_requests_last_5m{class=\"5xx\"} 10\nsmp_webhook_secret_configured 0\n",
			holds: true, caseHas: "signing secret is missing", mitigationHas: "SMP_INSIDE_WEBHOOK_SECRET", mitigationLacks: "database"},
	})
}

// TestINC010: the wallets' reconciliation judged from its metrics: the
// trigger's two thresholds, the escalation, a missed run, no run yet.
func TestINC010(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ran := fmt.Sprintf("wallet_recon_last_success_timestamp_seconds %d\n", now.Add(-7*time.Hour).Unix())
	stale := fmt.Sprintf("wallet_recon_last_success_timestamp_seconds %d\n", now.Add(-27*time.Hour).Unix())
	for _, tc := range []struct {
		metrics         string
		holds           bool
		caseHas, mitHas string
	}{
		{"wallet_recon_diff_pct 0.005\nwallet_recon_diff_amount_vnd 50000\n" + ran, false, "", ""},
		{"wallet_recon_diff_pct 0.02\nwallet_recon_diff_amount_vnd 20000\n" + ran, true, "mismatch", "replay-webhooks"},
		{"wallet_recon_diff_pct 0.001\nwallet_recon_diff_amount_vnd 150000\n" + ran, true, "mismatch", "expected-diff"},
		{"wallet_recon_diff_pct 2\nwallet_recon_diff_amount_vnd 150000\n" + ran, true, "mismatch", "page on-call"},
		{"wallet_recon_diff_pct 6\nwallet_recon_diff_amount_vnd 150000\n" + ran, true, "mismatch", "page the CFO"},
		{"wallet_recon_diff_pct 0\nwallet_recon_diff_amount_vnd 0\n" + stale, true, "missed", "--run"},
		{"wallet_recon_diff_pct 0\nwallet_recon_diff_amount_vnd 0\nwallet_recon_last_success_timestamp_seconds 0\n", false, "", ""},
	} {
		s := snapshot(t, tc.metrics)
		s.Now = now
		v, err := runbook.Check(s, "INC-010")
		if err != nil {
			t.Fatal(err)
		}
		if v.Holds != tc.holds || !strings.Contains(v.Case, tc.caseHas) || !strings.Contains(v.Mitigation, tc.mitHas) || v.Unknown {
			t.Errorf("%q: %+v", tc.metrics, v)
		}
	}
	if v, _ := runbook.Check(snapshot(t, ""), "INC-010"); !v.Unknown || v.Holds {
		t.Errorf("INC-010 without a reconciliation: %+v", v)
	}
}
