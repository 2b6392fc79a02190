package runbook_test

import (
	"strings"
	"testing"

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
	} {
		v, err := runbook.Check(snapshot(t, tc.metrics), tc.incident)
		if err != nil {
			t.Fatal(err)
		}
		if v.Holds != tc.holds || !strings.Contains(v.Case, tc.caseHas) || (tc.holds && v.Mitigation == "") {
			t.Errorf("%s with %q: %+v", tc.incident, tc.metrics, v)
		}
	}
	if v, _ := runbook.Check(snapshot(t, ""), "INC-003"); !v.Unknown || v.Holds {
		t.Errorf("INC-003 without a replica: %+v", v)
	}
	if _, err := runbook.Check(snapshot(t, ""), "INC-099"); err == nil {
		t.Error("unknown incident accepted")
	}
}
