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
	// Now is when it was read (the zero time: time.Now()), for the ages
	// of timestamps it holds.
	Now time.Time
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
	// RunbookURL is the incident's section of the published runbook
	// (absolute; set by the caller, who knows the base).
	RunbookURL string `json:"runbook_url,omitempty"`
}

// Incidents SMP can check.
var Incidents = []string{"INC-001", "INC-002", "INC-003", "INC-004", "INC-005", "INC-006", "INC-007", "INC-008", "INC-009", "INC-010", "INC-011", "INC-012"}

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
		checkINC001(s, &v, f)
	case "INC-002":
		v.Title = "Payment webhook failed"
		checkINC002(s, &v, f)
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
		checkINC004(s, &v, f)
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
	case "INC-008":
		v.Title = "Debezium connector crashed"
		checkINC008(s, &v, f)
	case "INC-009":
		v.Title = "Elasticsearch read model drift"
		checkINC009(s, &v, f)
	case "INC-010":
		v.Title = "Wallet reconciliation mismatch"
		checkINC010(s, &v, f)
	case "INC-011":
		v.Title = "Fraud detection triggered"
		checkINC011(s, &v, f)
	case "INC-012":
		v.Title = "Cross-region replication lag"
		checkINC012(s, &v, f)
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
		// Scenario 4 (poison): what went to the dead-letter topic.
		deadBy := map[string]float64{}
		for _, x := range s.values("smp_consumer_events_total", map[string]string{"outcome": "dead_lettered"}) {
			deadBy[x.Labels["group"]] += x.Value
		}
		kept, _ := s.sum("smp_bus_dead_letters", nil)
		var dead []string
		for _, g := range sortedKeys(deadBy) {
			if deadBy[g] > 0 {
				dead = append(dead, fmt.Sprintf("%s=%v", g, deadBy[g]))
			}
		}
		if kept > 0 || len(dead) > 0 {
			f("dead letters kept on the .dlq topics: %v; dead-lettered since start by group: %s", kept, strings.Join(dead, ", "))
		}
		v.Holds = len(hot) > 0 || len(dead) > 0
		if len(hot) == 0 && len(dead) > 0 {
			v.Case = "scenario 4: poison messages: events dead-lettered (" + strings.Join(dead, ", ") + "): smp ctl bus dlq list --topic orders.events.dlq"
			v.Mitigation = "fix the cause, then smp ctl bus dlq replay --topic orders.events.dlq --offset P:O --reason ... (it goes back to the group that dead-lettered it)"
		}
		if len(hot) > 0 {
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

// flag reads smp_feature_flag_enabled{name}: its value and whether it is
// exported.
func (s *Snapshot) flag(name string) (on, known bool) {
	v, ok := s.sum("smp_feature_flag_enabled", map[string]string{"name": name})
	return v == 1, ok
}

// engineDeadLetters counts the dispatch engine's events dead-lettered
// since the process started, and the dead letters kept on orders.events.dlq.
func (s *Snapshot) engineDeadLetters() (engine, kept float64) {
	engine, _ = s.sum("smp_consumer_events_total", map[string]string{"group": "dispatch-engine", "outcome": "dead_lettered"})
	kept, _ = s.sum("smp_bus_dead_letters", map[string]string{"topic": "orders.events.dlq"})
	return engine, kept
}

const manualDispatch = "Option C: manual dispatch of the stuck orders (smp ctl orders list --stage 02_dispatching --older-than 5m, smp ctl candidates, smp ctl assign)"

// checkINC001 judges the engine from dispatch_engine_up (every process
// exports it from the engines' heartbeats), the stuck orders, the queues
// and ENABLE_AUTO_DISPATCH, so that the mitigation fits: a dead engine is
// restarted (Option A), a full queue scaled (B), and option D is never
// recommended when it is already in force.
func checkINC001(s *Snapshot, v *Verdict, f func(string, ...any)) {
	up, hasUp := s.sum("dispatch_engine_up", nil)
	stuck, _ := s.sum("order_stuck_in_stage_02_count", nil)
	auto, autoKnown := s.flag("ENABLE_AUTO_DISPATCH")
	health := s.HealthChecks["dispatch_engine"]
	if !hasUp {
		f("dispatch_engine_up is not exported: this process cannot read the engines' heartbeats (is the database up? see /health)")
	} else {
		f("dispatch_engine_up = %v", up)
	}
	f("order_stuck_in_stage_02_count = %v", stuck)
	if autoKnown {
		f("ENABLE_AUTO_DISPATCH = %v", auto)
	}
	if health != "" && health != "ok" {
		f("/health dispatch_engine: %s", health)
	}
	var full []string
	var queued float64
	for _, q := range s.values("smp_dispatch_queue_length", nil) {
		queued += q.Value
		if q.Value > 100 {
			full = append(full, fmt.Sprintf("%s=%v", q.Labels["city"], q.Value))
		}
	}
	sort.Strings(full)
	if queued > 0 {
		f("orders waiting in dispatch:queue:* = %v", queued)
	}
	engineDown := (hasUp && up == 0) || !hasUp
	v.Holds = engineDown || stuck > 10 || len(full) > 0
	offNote := ""
	if autoKnown && !auto {
		offNote = "; ENABLE_AUTO_DISPATCH is already off (option D in force): switch it back on once the engine dispatches (smp ctl flags set --name ENABLE_AUTO_DISPATCH --value true --reason ...)"
	}
	switch {
	case hasUp && up == 0:
		v.Case = "engine not running: no dispatch engine heartbeat is fresh (crash, OOMKilled, stopped, or its workers hang): kubectl -n smp-prod get pods -l app=dispatch-engine; logs for panic/OOM"
		v.Mitigation = "Option A: kubectl -n smp-prod rollout restart deployment/dispatch-engine; meanwhile " + manualDispatch + offNote
	case !hasUp:
		v.Case = "engine state unknown: dispatch_engine_up is missing (treat as down; DispatchEngineUpMissing)"
		v.Mitigation = "check /health (database) and the dispatch-engine pods; Option A if they are down: kubectl -n smp-prod rollout restart deployment/dispatch-engine; meanwhile " + manualDispatch
	case len(full) > 0:
		v.Case = "queue full (backpressure): " + strings.Join(full, ", ")
		v.Mitigation = "Option B: kubectl -n smp-prod scale deployment/dispatch-engine --replicas=5" + offNote
	case stuck > 10 && autoKnown && !auto:
		v.Case = "auto dispatch is off (ENABLE_AUTO_DISPATCH = false, option D in force): orders wait for ops"
		v.Mitigation = manualDispatch + offNote
	case stuck > 10:
		v.Case = "engine running but not dispatching: check technicians online and the queues (smp ctl stats) and consumer lag (smp ctl bus lag --group dispatch-engine)"
		v.Mitigation = manualDispatch
		if autoKnown {
			v.Mitigation += "; Option D if it persists: smp ctl flags set --name ENABLE_AUTO_DISPATCH --value false --reason ..."
		}
	}
}

// checkINC004 judges Redis memory and what an out-of-memory episode left
// behind: queue pushes refused, orders still stuck, engine events
// dead-lettered. Those are not healthy even once Redis takes writes again.
func checkINC004(s *Snapshot, v *Verdict, f func(string, ...any)) {
	pct, has := s.sum("redis_memory_used_percent", nil)
	if !has {
		v.Unknown = true
		f("no Redis configured (embedded queues)")
		return
	}
	failures, _ := s.sum("smp_dispatch_queue_push_failures_total", nil)
	stuck, _ := s.sum("order_stuck_in_stage_02_count", nil)
	engineDead, kept := s.engineDeadLetters()
	limit := "maxmemory"
	if set, ok := s.sum("redis_maxmemory_configured", nil); ok && set == 0 {
		limit = "the host's memory"
		f("maxmemory is not set: Redis grows until the host runs out (set maxmemory and maxmemory-policy noeviction, docs/redis.md)")
	}
	f("redis_memory_used_percent = %.1f (of %s); queue pushes refused = %v", pct, limit, failures)
	redisFail := s.HealthChecks["redis"] != "" && s.HealthChecks["redis"] != "ok"
	if redisFail {
		f("/health redis: %s", s.HealthChecks["redis"])
	}
	if stuck > 0 {
		f("order_stuck_in_stage_02_count = %v", stuck)
	}
	if engineDead > 0 || kept > 0 {
		f("dead letters: %v engine events dead-lettered since start, %v kept on orders.events.dlq", engineDead, kept)
	}
	after := engineDead > 0 || (failures > 0 && stuck > 0)
	v.Holds = pct > 90 || redisFail || after
	switch {
	case pct > 90 || redisFail:
		v.Case = "find the culprit prefix: redis-cli --scan -i 0.01 | head -n 1000 | awk -F: '{print $1\":\"$2}' | sort | uniq -c | sort -rn"
		v.Mitigation = "Option A: smp ctl redis flush-cache --pattern 'cache:wms:stock:*' --dry-run, then with --reason (cache keys only; audited); then Option B (more memory)"
	case after:
		v.Case = fmt.Sprintf("after an out-of-memory episode: Redis takes writes again but %v orders are stuck in 02_dispatching and %v engine events were dead-lettered", stuck, engineDead)
		v.Mitigation = "the sweeper re-queues stuck orders every 5 s (check smp ctl orders list --stage 02_dispatching --older-than 5m); replay the engine's dead letters once Redis is healthy: smp ctl bus dlq list --topic orders.events.dlq, then smp ctl bus dlq replay --topic orders.events.dlq --offset P:O --reason ...; " + manualDispatch
	}
}

// checkINC002 judges the payment webhooks: the 5xx share over the alert's
// window (the last 5 minutes, as the service counts them; since start only
// from a platform that does not export the window), a missing signing
// secret named as such, the DLQ and the overdue payments.
func checkINC002(s *Snapshot, v *Verdict, f func(string, ...any)) {
	dlq, _ := s.sum("smp_event_log_events", map[string]string{"status": "dlq"})
	pending, hasPending := s.sum("order_payment_pending_count", nil)
	notFound, _ := s.sum("webhook_processing_errors_total", map[string]string{"reason": "order_not_found"})
	sigFails, _ := s.sum("smp_webhook_signature_failures_total", nil)
	if !hasPending {
		v.Unknown = true
		f("payment metrics are not exported here")
		return
	}
	f("event_log dlq = %v, order_payment_pending_count = %v", dlq, pending)
	var total, fivexx float64
	window := "over the last 5 min"
	if all, ok := s.sum("smp_webhook_requests_last_5m", map[string]string{"class": "all"}); ok {
		total = all
		fivexx, _ = s.sum("smp_webhook_requests_last_5m", map[string]string{"class": "5xx"})
	} else {
		window = "since start"
		for _, x := range s.values("webhook_requests_total", nil) {
			total += x.Value
			if strings.HasPrefix(x.Labels["code"], "5") {
				fivexx += x.Value
			}
		}
	}
	if total > 0 {
		f("webhooks answered 5xx %s: %v of %v (%.1f%%)", window, fivexx, total, 100*fivexx/total)
	}
	secret, secretKnown := s.sum("smp_webhook_secret_configured", nil)
	noSecret := secretKnown && secret == 0
	if noSecret {
		f("SMP_INSIDE_WEBHOOK_SECRET is not set in the webhook-serving process: every webhook is refused with 503")
	}
	high5xx := total > 0 && fivexx/total > 0.05
	v.Holds = dlq > 0 || pending > 50 || high5xx || noSecret
	switch {
	case noSecret:
		v.Case = "case 2, SMP refuses every webhook: the signing secret is missing (not a database problem)"
		v.Mitigation = "set SMP_INSIDE_WEBHOOK_SECRET (smp-secrets) on integration-svc and restart it: kubectl -n smp-prod rollout restart deployment/integration-svc; inside retries what got no 2xx"
	case dlq > 0:
		v.Case = fmt.Sprintf("case 2, SMP received but could not apply (%v in dlq; order not found %v times): smp ctl events list --status dlq", dlq, notFound)
		v.Mitigation = "Option A: replay from the DLQ once the cause is fixed: smp ctl events replay --type inside.payment.succeeded --reason ..."
	case high5xx:
		v.Case = "case 2/3, SMP answers 5xx " + window + ": check /health (database) and the integration-svc logs"
		v.Mitigation = "fix SMP's dependency; inside retries what got no 2xx"
	case pending > 50:
		v.Case = fmt.Sprintf("case 1, payments do not arrive (signature failures: %v): ask inside whether they send", sigFails)
		v.Mitigation = "Option B: reconcile with inside and mark paid (finance): smp ctl orders list --payment pending, then POST /admin/orders/{id}/mark-paid"
	}
}

// checkINC008 judges the change data capture connector from the Connect
// worker's metrics (on the platform's /metrics when serve runs it with
// --connect-addr, or on smp connect's own): the runbook's trigger (the
// connector not RUNNING) and its tasks (a FAILED task under a RUNNING
// connector is what the watchdog gave up on).
func checkINC008(s *Snapshot, v *Verdict, f func(string, ...any)) {
	const c = "smp-mysql-connector"
	states := s.values("kafka_connect_connector_status", map[string]string{"connector": c})
	if len(states) == 0 {
		v.Unknown = true
		f("no Kafka Connect worker here (smp connect, or smp serve --connect-addr)")
		return
	}
	state := "UNKNOWN"
	for _, x := range states {
		if x.Value == 1 {
			state = x.Labels["state"]
		}
	}
	f("%s is %s", c, state)
	var failed []string
	for _, x := range s.values("kafka_connect_task_status", map[string]string{"connector": c, "state": "FAILED"}) {
		if x.Value == 1 {
			failed = append(failed, x.Labels["task"])
		}
	}
	sort.Strings(failed)
	if len(failed) > 0 {
		f("FAILED tasks: %s", strings.Join(failed, ", "))
	}
	v.Holds = state != "RUNNING" || len(failed) > 0
	switch {
	case state == "PAUSED" || state == "STOPPED":
		v.Case = "scenario 1: the connector was " + strings.ToLower(state) + " by an operator (audit log)"
		v.Mitigation = "smp ctl connect resume (after resetting offsets if a new snapshot was wanted)"
	case v.Holds:
		v.Case = "scenario 1/2: the connector or a task failed and the watchdog gave up: read the trace (smp ctl connect status); " +
			"\"no longer available on the server\" is scenario 2 (position lost), a lost connection is MySQL's"
		v.Mitigation = "scenario 1: smp ctl connect restart --include-tasks --only-failed; scenario 2: smp ctl connect stop, " +
			"smp ctl connect offsets --reset, smp ctl connect resume (a new snapshot: duplicates downstream)"
	}
}

// checkINC009: es_sink_lag_seconds above 300 s (or the dashboards' 60 s),
// the sink connector's state, its dead letters and the last drift check's
// ratio; the scenario from which of them is off.
func checkINC009(s *Snapshot, v *Verdict, f func(string, ...any)) {
	const c = "elasticsearch-sink"
	lags := s.values("es_sink_lag_seconds", nil)
	if len(lags) == 0 {
		v.Unknown = true
		f("no read model here (the Connect worker runs it: smp connect, or smp serve --connect-addr)")
		return
	}
	lag := 0.0
	for _, x := range lags {
		lag = max(lag, x.Value)
	}
	state := "UNKNOWN"
	for _, x := range s.values("kafka_connect_connector_status", map[string]string{"connector": c}) {
		if x.Value == 1 {
			state = x.Labels["state"]
		}
	}
	failed := 0
	for _, x := range s.values("kafka_connect_task_status", map[string]string{"connector": c, "state": "FAILED"}) {
		if x.Value == 1 {
			failed++
		}
	}
	dead, _ := s.sum("smp_es_sink_records_total", map[string]string{"outcome": "dead_lettered"})
	drift := 0.0
	for _, x := range s.values("smp_readmodel_drift_ratio", nil) {
		drift = max(drift, x.Value)
	}
	f("es_sink_lag_seconds = %v; %s is %s (%d FAILED tasks); dead-lettered %v; last drift check %.4f%%", lag, c, state, failed, dead, drift*100)
	v.Holds = lag > 300 || lag > 60 || drift > 0.001
	switch {
	case state != "RUNNING" || failed > 0:
		v.Holds = true
		v.Case = "scenario 2: the sink connector is " + state + " (smp ctl connect status --connector " + c + ")"
		v.Mitigation = "smp ctl readmodel restart (the sink through the Connect API), then watch es_sink_lag_seconds fall"
	case lag > 60:
		v.Case = "scenario 1/2: the sink is behind (smp ctl readmodel health; smp ctl bus lag --group connect-elasticsearch-sink)"
		v.Mitigation = "index slow: smp ctl readmodel health, indices, allocation; sink stalled: smp ctl readmodel restart"
	case drift > 0.001:
		v.Case = "scenario 3/4: the daily check found drift above 0.1 % (smp ctl readmodel check)"
		v.Mitigation = "a mapping mismatch: smp ctl readmodel reindex --mapping orders-vN.json; data clearly wrong: smp ctl readmodel resync; " +
			"then smp ctl readmodel compare --order ID"
	}
	if dead > 0 && v.Case == "" {
		f("records the sink could not write are on elasticsearch-sink.dlq (smp ctl bus dlq list --topic elasticsearch-sink.dlq)")
	}
}

// checkINC012: region_replication_lag_seconds per path (from heartbeats,
// exported by the replication agents of the target region) above 300 s,
// or above 60 s for hot data (currency_rates, tax_configs, carried by
// every path); a path paused for a newer schema is scenario 3.
func checkINC012(s *Snapshot, v *Verdict, f func(string, ...any)) {
	lags := s.values("region_replication_lag_seconds", nil)
	if len(lags) == 0 {
		v.Unknown = true
		f("no replication agent here (smp replicate, or smp serve --replicate-from)")
		return
	}
	byPath := map[string]float64{}
	for _, x := range lags {
		byPath[x.Labels["region"]] = max(byPath[x.Labels["region"]], x.Value)
	}
	schema, operator := map[string]bool{}, map[string]bool{}
	for _, x := range s.values("smp_replication_path_paused", nil) {
		if x.Value == 1 && x.Labels["cause"] == "schema" {
			schema[x.Labels["region"]] = true
		} else if x.Value == 1 {
			operator[x.Labels["region"]] = true
		}
	}
	var behind, hot, paused []string
	for _, p := range sortedKeys(byPath) {
		f("path %s lag %.0fs", p, byPath[p])
		switch {
		case byPath[p] > 300:
			behind = append(behind, p)
		case byPath[p] > 60:
			hot = append(hot, p)
		}
		if schema[p] {
			paused = append(paused, p)
			f("path %s paused: its target is behind the source's master-data schema", p)
		} else if operator[p] {
			f("path %s paused by an operator (audit log: replication.pause)", p)
		}
	}
	if refused, ok := s.sum("smp_replication_refused_total", map[string]string{"reason": "pii_field"}); ok && refused > 0 {
		f("%v records refused for PII (smp_replication_refused_total{reason=\"pii_field\"}): nothing was written", refused)
	}
	v.Holds = len(behind) > 0 || len(hot) > 0 || len(paused) > 0
	switch {
	case len(paused) > 0:
		v.Case = "scenario 3: schema incompatibility on " + strings.Join(paused, ", ")
		v.Mitigation = "deploy the target's schema migration first: the path resumes by itself (or smp ctl regions resume --path " + paused[0] + " --reason ...); then smp ctl regions verify --sample 10"
	case v.Holds:
		all := append(behind, hot...)
		v.Case = "scenario 1/2/4 on " + strings.Join(all, ", ") + ": a network blip, an agent down, or a volume spike at the source; stale currency_rates/tax_configs there"
		v.Mitigation = "wait 5-10 min for a blip; check the replication-agent pods (smp ctl regions status); restart the agents (smp replicate) if down; " +
			"once the lag is < 30s: smp ctl regions verify --sample 10"
	}
}

// checkINC010 judges the wallets' last completed reconciliation from
// the figures every process exports (read from the stored runs): the
// runbook's trigger (wallet_recon_diff_pct > 0.01% or an absolute diff
// > 100k VND), its escalation, and a nightly run missed for 26 hours.
func checkINC010(s *Snapshot, v *Verdict, f func(string, ...any)) {
	pcts := s.values("wallet_recon_diff_pct", nil)
	if len(pcts) == 0 {
		v.Unknown = true
		f("no wallet reconciliation here (wallet_recon_diff_pct is not exported)")
		return
	}
	var pct, vnd, mism, inc, last float64
	for _, x := range pcts {
		pct = max(pct, x.Value)
	}
	for _, x := range s.values("wallet_recon_diff_amount_vnd", nil) {
		vnd = max(vnd, x.Value)
	}
	for _, x := range s.values("wallet_recon_mismatches", nil) {
		mism = max(mism, x.Value)
	}
	for _, x := range s.values("wallet_recon_inconclusive_partners", nil) {
		inc = max(inc, x.Value)
	}
	for _, x := range s.values("wallet_recon_last_success_timestamp_seconds", nil) {
		last = max(last, x.Value)
	}
	now := s.Now
	if now.IsZero() {
		now = time.Now()
	}
	if last == 0 {
		f("no reconciliation has completed yet (wallet-reconciliation-cron needs --vnpay-files-url; recon-report --date=yesterday --run runs one)")
		return
	}
	age := now.Sub(time.Unix(int64(last), 0)).Round(time.Minute)
	f("last completed run %s ago: wallet_recon_diff_pct = %v, largest absolute diff %v VND, %v partner(s) mismatched, %v inconclusive", age, pct, vnd, mism, inc)
	mismatch := pct > 0.01 || vnd > 100000
	missed := age > 26*time.Hour
	v.Holds = mismatch || missed
	switch {
	case mismatch:
		v.Case = "mismatch: recon-report --date=yesterday --format=csv > recon.csv; each row's verdict and note, the run's pairs (recon-report --format=json) name the scenario: " +
			"missing_in_smp (1: webhook lag), adjustments without a matching expected_diff (2), inconclusive stale rate (3), amount_differs (4: calculation)"
		v.Mitigation = "scenario 1: wait 1h, recon-report --date=yesterday --run; still off: replay-webhooks --gateway=vnpay --from=... --to=...; " +
			"scenario 2: smp ctl wallets adjust with --expected-diff (or a reversal) after Finance confirms; scenario 3: update currency_rates (PUT /admin/masterdata) and re-run; " +
			"scenario 4: compare the pair's SMP entry and gateway record, patch and backfill"
		if pct > 5 {
			v.Mitigation = "page the CFO (> 5%); " + v.Mitigation
		} else if pct > 1 {
			v.Mitigation = "page on-call (> 1%); " + v.Mitigation
		}
	case missed:
		v.Case = "the nightly run was missed: no completed reconciliation for over 26 hours (the gateway unreachable makes runs inconclusive)"
		v.Mitigation = "recon-report --date=yesterday --run (finance), and check --vnpay-files-url and the VNPay breaker"
	}
}

// checkINC011 reads the fraud detector's signals: the runbook's trigger is
// fraud_detection_signals_total{severity="high"} > 0. The counter counts
// since the detector started (the FraudSignalHigh alert takes its increase
// over 15 minutes); the triage names the rules that fired and the
// enforcement already in force (smp_wallet_refusals_total).
func checkINC011(s *Snapshot, v *Verdict, f func(string, ...any)) {
	signals := s.values("fraud_detection_signals_total", nil)
	if len(signals) == 0 {
		v.Unknown = true
		f("no fraud-detector here (fraud_detection_signals_total is not exported)")
		return
	}
	bySeverity := map[string]float64{}
	highByRule := map[string]float64{}
	for _, x := range signals {
		bySeverity[x.Labels["severity"]] += x.Value
		if x.Labels["severity"] == "high" && x.Value > 0 {
			highByRule[x.Labels["rule"]] += x.Value
		}
	}
	for _, sev := range sortedKeys(bySeverity) {
		f("fraud_detection_signals_total{severity=%q} = %v", sev, bySeverity[sev])
	}
	refused := map[string]float64{}
	for _, x := range s.values("smp_wallet_refusals_total", nil) {
		if x.Value > 0 {
			refused[x.Labels["rule"]] += x.Value
		}
	}
	for _, r := range sortedKeys(refused) {
		f("postings refused by the ledger (%s): %v", r, refused[r])
	}
	rules := sortedKeys(highByRule)
	v.Holds = len(rules) > 0
	if v.Holds {
		v.Case = "high-severity signals from " + strings.Join(rules, ", ") +
			": triage with curl -H \"Authorization: Bearer $JWT\" <api>/internal/fraud-alerts/recent?hours=1 (partner_id, txn_ids, signals); the decisions with their rule trees: GET /admin/fraud/decisions?flagged=true"
		v.Mitigation = "scenario 1 (confirmed): admin freeze --partner=P00X --reason=\"fraud_alert_INC-011-<date>\", then smp ctl fraud export --partner P00X --from ... --to ... for the evidence; " +
			"scenario 2 (false positive): admin unfreeze --partner=P00X --note=\"...\" and tune the rule in rules_engine.yaml (reloaded on change or SIGHUP); " +
			"scenario 3 (inconclusive): admin soft-block --partner=P00X --reason=\"...\" (1,000,000 VND per rolling 24 h, lapses after 48 h)"
	}
}
