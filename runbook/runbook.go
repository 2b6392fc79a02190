// Package runbook runs the Detect and Triage steps of SMP's runbook
// (docs/runbook.md) against a running platform: it reads /metrics and
// /health, says for each incident whether its condition holds, which
// triage case matches, and which mitigation the runbook recommends.
package runbook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one series' value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Snapshot is what a check reads of the platform.
type Snapshot struct {
	Metrics map[string][]Sample
	// Health is /health's status ("ok", "degraded", "fail") and its checks.
	Health       string
	HealthChecks map[string]string // name -> "ok" or the error
}

// ParseMetrics reads a Prometheus text exposition.
func ParseMetrics(r io.Reader) (map[string][]Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("reading /metrics: %w", err)
	}
	out := map[string][]Sample{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			s := Sample{Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
			}
			s.Value = value(f.GetType(), m)
			out[name] = append(out[name], s)
		}
	}
	return out, nil
}

func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// Fetch reads /metrics and /health of the platform at server.
func Fetch(ctx context.Context, server string) (*Snapshot, error) {
	server = strings.TrimRight(server, "/")
	c := &http.Client{Timeout: 15 * time.Second}
	get := func(path string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+path, nil)
		if err != nil {
			return nil, err
		}
		return c.Do(req)
	}
	resp, err := get("/metrics")
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s/metrics answered %d", server, resp.StatusCode)
	}
	ms, err := ParseMetrics(resp.Body)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Metrics: ms, HealthChecks: map[string]string{}}
	hr, err := get("/health")
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", server, err)
	}
	defer hr.Body.Close()
	var h struct {
		Status string `json:"status"`
		Checks map[string]struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"checks"`
	}
	if err := json.NewDecoder(hr.Body).Decode(&h); err != nil {
		return nil, fmt.Errorf("%s/health: %w", server, err)
	}
	s.Health = h.Status
	for k, v := range h.Checks {
		if v.Status == "ok" {
			s.HealthChecks[k] = "ok"
		} else {
			s.HealthChecks[k] = v.Error
		}
	}
	return s, nil
}

// Verdict is one incident's check.
type Verdict struct {
	Incident   string   `json:"incident"`
	Title      string   `json:"title"`
	Holds      bool     `json:"condition_holds"`
	Findings   []string `json:"findings"`
	Case       string   `json:"triage_case,omitempty"`
	Mitigation string   `json:"mitigation,omitempty"`
	// Unknown: the metrics this incident needs are not exported here
	// (the backend is not configured in this deployment).
	Unknown bool `json:"not_applicable,omitempty"`
}

// Incidents SMP can check.
var Incidents = []string{"INC-001", "INC-002", "INC-003", "INC-004", "INC-005", "INC-006", "INC-007"}

func (s *Snapshot) values(name string, match map[string]string) []Sample {
	var out []Sample
	for _, x := range s.Metrics[name] {
		ok := true
		for k, v := range match {
			if x.Labels[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, x)
		}
	}
	return out
}

func (s *Snapshot) sum(name string, match map[string]string) (float64, bool) {
	xs := s.values(name, match)
	total := 0.0
	for _, x := range xs {
		total += x.Value
	}
	return total, len(xs) > 0
}

// Check runs one incident's Detect and Triage steps on s.
func Check(s *Snapshot, incident string) (Verdict, error) {
	v := Verdict{Incident: incident}
	f := func(format string, a ...any) { v.Findings = append(v.Findings, fmt.Sprintf(format, a...)) }
	switch incident {
	case "INC-001":
		v.Title = "Dispatch engine down"
		up, hasUp := s.sum("dispatch_engine_up", nil)
		stuck, _ := s.sum("order_stuck_in_stage_02_count", nil)
		queues := s.values("smp_dispatch_queue_length", nil)
		health := s.HealthChecks["dispatch_engine"]
		if !hasUp {
			f("dispatch_engine_up is not exported: no dispatch engine runs in this process")
		} else {
			f("dispatch_engine_up = %v", up)
		}
		f("order_stuck_in_stage_02_count = %v", stuck)
		if health != "" && health != "ok" {
			f("/health dispatch_engine: %s", health)
		}
		var full []string
		for _, q := range queues {
			if q.Value > 100 {
				full = append(full, fmt.Sprintf("%s=%v", q.Labels["city"], q.Value))
			}
		}
		sort.Strings(full)
		v.Holds = (hasUp && up == 0) || stuck > 10 || len(full) > 0
		switch {
		case hasUp && up == 0:
			v.Case = "engine not running (crash or stopped): check pods and logs for panic/OOM"
			v.Mitigation = "Option A: kubectl -n smp-prod rollout restart deployment/dispatch-engine; meanwhile Option C: manual dispatch (smp ctl orders list --stage 02_dispatching, smp ctl assign)"
		case len(full) > 0:
			v.Case = "queue full (backpressure): " + strings.Join(full, ", ")
			v.Mitigation = "Option B: kubectl -n smp-prod scale deployment/dispatch-engine --replicas=5"
		case stuck > 10:
			v.Case = "engine running but not dispatching: check technicians online (smp ctl stats) and consumer lag (smp ctl bus lag --group dispatch-engine)"
			v.Mitigation = "Option C: manual dispatch; Option D if it persists: smp ctl flags set --name ENABLE_AUTO_DISPATCH --value false"
		}
	case "INC-002":
		v.Title = "Payment webhook failed"
		dlq, _ := s.sum("smp_event_log_events", map[string]string{"status": "dlq"})
		pending, hasPending := s.sum("order_payment_pending_count", nil)
		var total, fivexx float64
		for _, x := range s.values("webhook_requests_total", nil) {
			total += x.Value
			if strings.HasPrefix(x.Labels["code"], "5") {
				fivexx += x.Value
			}
		}
		notFound, _ := s.sum("webhook_processing_errors_total", map[string]string{"reason": "order_not_found"})
		sigFails, _ := s.sum("smp_webhook_signature_failures_total", nil)
		if !hasPending {
			v.Unknown = true
			f("payment metrics are not exported here")
			break
		}
		f("event_log dlq = %v, order_payment_pending_count = %v", dlq, pending)
		if total > 0 {
			f("webhooks answered 5xx since start: %v of %v (%.1f%%)", fivexx, total, 100*fivexx/total)
		}
		v.Holds = dlq > 0 || pending > 50 || (total > 0 && fivexx/total > 0.05)
		switch {
		case dlq > 0:
			v.Case = fmt.Sprintf("case 2, SMP received but could not apply (%v in dlq; order not found %v times): smp ctl events list --status dlq", dlq, notFound)
			v.Mitigation = "Option A: replay from the DLQ once the cause is fixed: smp ctl events replay --type inside.payment.succeeded --reason ..."
		case total > 0 && fivexx/total > 0.05:
			v.Case = "case 2/3, SMP answers 5xx: check the database and /health"
			v.Mitigation = "fix SMP's dependency; inside retries what got no 2xx"
		case pending > 50:
			v.Case = fmt.Sprintf("case 1, payments do not arrive (signature failures: %v): ask inside whether they send", sigFails)
			v.Mitigation = "Option B: reconcile with inside and mark paid (finance): POST /admin/orders/{id}/mark-paid"
		}
	case "INC-003":
		v.Title = "MySQL replica lag > 30s"
		lag, has := s.sum("mysql_replica_lag_seconds", nil)
		onPrimary, _ := s.sum("smp_mysql_reads_on_primary", nil)
		if !has {
			v.Unknown = true
			f("no replica configured (MYSQL_READ_DSN)")
			break
		}
		f("mysql_replica_lag_seconds = %v; reads on primary = %v", lag, onPrimary)
		v.Holds = lag > 30
		if v.Holds {
			v.Case = "replica behind: look for long queries (SHOW PROCESSLIST), disk/network, bulk loads"
			v.Mitigation = "Option A is automatic: SMP already routes reads to the primary (smp_mysql_reads_on_primary = 1)"
		}
	case "INC-004":
		v.Title = "Redis out of memory"
		pct, has := s.sum("redis_memory_used_percent", nil)
		if !has {
			v.Unknown = true
			f("no Redis configured (embedded queues)")
			break
		}
		failures, _ := s.sum("smp_dispatch_queue_push_failures_total", nil)
		f("redis_memory_used_percent = %.1f; queue pushes refused = %v", pct, failures)
		if check := s.HealthChecks["redis"]; check != "" && check != "ok" {
			f("/health redis: %s", check)
		}
		v.Holds = pct > 90 || (s.HealthChecks["redis"] != "" && s.HealthChecks["redis"] != "ok")
		if v.Holds {
			v.Case = "find the culprit prefix: redis-cli --scan --count 1000 | awk -F: '{print $1\":\"$2}' | sort | uniq -c | sort -rn"
			v.Mitigation = "Option A: smp ctl redis flush-cache --pattern 'cache:wms:stock:*' --dry-run, then with --reason (cache keys only; audited); then Option B (more memory)"
		}
	case "INC-005":
		v.Title = "Integration circuit breaker triggered"
		states := s.values("integration_circuit_breaker_state", nil)
		if len(states) == 0 {
			v.Unknown = true
			f("no integration configured (--inside-url, --wms-url)")
			break
		}
		var open []string
		for _, x := range states {
			f("%s breaker state %v", x.Labels["service"], x.Value)
			if x.Value == 1 {
				open = append(open, x.Labels["service"])
			}
		}
		sort.Strings(open)
		v.Holds = len(open) > 0
		if v.Holds {
			v.Case = "breaker open for " + strings.Join(open, ", ") + ": curl http://<service>.local/health from integration-svc"
			v.Mitigation = "Option A once the service answers: smp ctl breakers half-open --service " + open[0] + "; reads are served stale meanwhile (Option C is automatic)"
		}
	case "INC-006":
		v.Title = "Kafka broker down"
		down, has := s.sum("kafka_broker_down", nil)
		if !has {
			v.Unknown = true
			f("the embedded event log is in use (no --kafka-brokers)")
			break
		}
		ups := s.values("kafka_broker_up", nil)
		backlog, _ := s.sum("smp_outbox_backlog", nil)
		f("kafka_broker_down = %v of %d; outbox backlog %v", down, len(ups), backlog)
		v.Holds = down > 0
		switch {
		case down > 0 && int(down) >= len(ups):
			v.Case = "scenario 3: all brokers down (SEV-1); events wait in the outbox"
			v.Mitigation = "page Tech Lead + CTO, restore the cluster; SMP drains the outbox after recovery (no direct HTTP mode needed)"
		case down >= 2:
			v.Case = "scenario 2: most brokers down, writes blocked"
			v.Mitigation = "kubectl rollout restart statefulset/kafka -n smp-prod"
		case down == 1:
			v.Case = "scenario 1: one broker down, cluster healthy"
			v.Mitigation = "no emergency action; fix the broker, hold deploys"
		}
	case "INC-007":
		v.Title = "Consumer lag spike"
		byGroup := map[string]float64{}
		maxPart := map[string]float64{}
		for _, x := range s.values("kafka_consumergroup_lag", nil) {
			byGroup[x.Labels["group"]] += x.Value
			maxPart[x.Labels["group"]] = max(maxPart[x.Labels["group"]], x.Value)
		}
		var hot []string
		for _, g := range sortedKeys(byGroup) {
			f("group %s lag %v", g, byGroup[g])
			if byGroup[g] > 10000 {
				hot = append(hot, g)
			}
		}
		v.Holds = len(hot) > 0
		if v.Holds {
			g := hot[0]
			if byGroup[g] > 0 && maxPart[g] > 0.8*byGroup[g] {
				v.Case = "scenario 2: one partition holds most of the lag of " + g + " (hot key)"
				v.Mitigation = "short term: scale consumers (at most 12); long term: review the key"
			} else {
				v.Case = "scenario 1/3: slow consumers or a traffic spike in " + g + " (smp ctl bus lag --group " + g + ")"
				v.Mitigation = "scale consumers: kubectl -n smp-prod scale deployment/dispatch-engine --replicas=N (at most 12); check smp ctl bus dlq list for poison"
			}
		}
	default:
		return v, fmt.Errorf("unknown incident %q (use %s)", incident, strings.Join(Incidents, ", "))
	}
	return v, nil
}

func sortedKeys(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
