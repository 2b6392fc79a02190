// Package replication carries master data between regions (issue 21,
// runbook INC-012) with MirrorMaker 2's naming: a region's master-data
// topics masterdata.<table> appear in another region as
// <source-region>.masterdata.<table>. It holds the names (RemoteTopic,
// SourceTable), the PII guard that refuses, counts and logs anything that
// is not allowlisted non-PII master data (Guard), the target's apply,
// once by (table, key, version) (Apply), the Agent of one path between
// two regions' buses with its checkpoints, leases and pauses kept on the
// target (agent.go), the lag from heartbeats (metrics.go) and the spot
// check across regions (verify.go).
package replication

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
)

// MasterTopicPrefix starts the local master-data topics: masterdata.<table>.
const MasterTopicPrefix = "masterdata."

// RemoteTopic is the name of source's topic in another region:
// <source-region>.<topic> (MirrorMaker 2's default replication policy).
func RemoteTopic(sourceRegion, topic string) string { return sourceRegion + "." + topic }

// SourceTable returns the master-data table of a local topic
// (masterdata.<table>); ok is false for any other topic, remote ones
// (<region>.masterdata.<table>) included, which an agent never mirrors
// again: no loops.
func SourceTable(topic string) (table string, ok bool) {
	table, ok = strings.CutPrefix(topic, MasterTopicPrefix)
	if !ok || table == "" || strings.Contains(table, ".") {
		return "", false
	}
	return table, true
}

// Reasons a record is refused, the values of
// smp_replication_refused_total{reason}.
const (
	// ReasonTable: the table is not allowlisted master data (or the record
	// names another table than its topic).
	ReasonTable = "table_not_allowed"
	// ReasonPII: a field classified pii (pii.go).
	ReasonPII = "pii_field"
	// ReasonUnclassified: a field, or a key of the record, that no
	// classification knows: treated as PII.
	ReasonUnclassified = "unclassified_field"
	// ReasonMalformed: not a master-data event, or its fields are not of
	// their kinds.
	ReasonMalformed = "malformed"
	// ReasonSchema: written by a newer master-data schema than this
	// region's (runbook INC-012 scenario 3: pause, migrate, resume).
	ReasonSchema = "schema_newer"
)

// Refusal is the error of a refused record; Reason is one of the Reason
// constants.
type Refusal struct {
	Reason string
	Detail string
	// Schema is the record's schema version (ReasonSchema).
	Schema int
}

func (r *Refusal) Error() string { return "replication refused (" + r.Reason + "): " + r.Detail }

// RefusalReason returns the reason of a refusal in err's chain, or "".
func RefusalReason(err error) string {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

// Guard decides what may cross regions: only master-data events of
// allowlisted tables (smp.MasterTables) whose every field is classified
// not_pii, of a schema this region knows. Anything else is refused, counted
// in smp_replication_refused_total{reason} and logged (naming the field,
// never a refused field's value), and must not be written on the target.
type Guard struct {
	refused *prometheus.CounterVec
	log     *slog.Logger
	// classify is smp.ColumnClass; tests put a PII column into a
	// master-data table with their own.
	classify func(table, column string) (smp.DataClass, bool)
	schema   atomic.Int64
}

// Schema is the master-data schema version this region knows: records of
// a newer one are refused (ReasonSchema).
func (g *Guard) Schema() int { return int(g.schema.Load()) }

// SetSchema sets the schema version this region knows
// (smp.MasterDataSchemaVersion by default): what a region's migrations
// raise, and what a drill sets to play a target behind its source.
func (g *Guard) SetSchema(v int) { g.schema.Store(int64(v)) }

// NewGuard registers smp_replication_refused_total on reg (nil: not
// registered) and returns the guard.
func NewGuard(reg prometheus.Registerer, log *slog.Logger) (*Guard, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Guard{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_replication_refused_total",
			Help: "Records the replication guard refused to carry or apply across regions, by reason (PII, unclassified fields, tables not allowlisted, malformed, newer schema)."}, []string{"reason"}),
		log:      log.With("service", "replication-guard"),
		classify: smp.ColumnClass,
	}
	g.SetSchema(smp.MasterDataSchemaVersion)
	for _, r := range []string{ReasonTable, ReasonPII, ReasonUnclassified, ReasonMalformed, ReasonSchema} {
		g.refused.WithLabelValues(r)
	}
	if reg != nil {
		if err := reg.Register(g.refused); err != nil {
			return nil, fmt.Errorf("replication: register: %w", err)
		}
	}
	return g, nil
}

// recordKeys are the keys a master-data event's data may have.
var recordKeys = map[string]bool{"table": true, "key": true, "fields": true, "version": true, "region": true, "updated_at": true, "schema_version": true}

// Check returns the master-data record a message of topic carries (a
// local masterdata.<table> topic or a remote <region>.masterdata.<table>
// one, the relay's JSON smp.Event), or a *Refusal, counted and logged.
func (g *Guard) Check(topic string, value []byte) (smp.MasterDataEvent, error) {
	ev, err := g.check(topic, value)
	if err != nil {
		reason := RefusalReason(err)
		g.refused.WithLabelValues(reason).Inc()
		g.log.Warn("replication refused a record", "topic", topic, "reason", reason, "error", err.Error())
	}
	return ev, err
}

func refuse(reason, format string, args ...any) error {
	return &Refusal{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

func (g *Guard) check(topic string, value []byte) (smp.MasterDataEvent, error) {
	var out smp.MasterDataEvent
	local := topic
	if i := strings.Index(topic, "."+MasterTopicPrefix); i > 0 {
		local = topic[i+1:] // <region>.masterdata.<table>
	}
	table, ok := SourceTable(local)
	if !ok {
		return out, refuse(ReasonTable, "topic %q is not a master-data topic", topic)
	}
	mt, err := smp.FindMasterTable(table)
	if err != nil {
		return out, refuse(ReasonTable, "table %q is not allowlisted master data", table)
	}
	var env smp.Event
	if err := json.Unmarshal(value, &env); err != nil || len(env.Data) == 0 {
		return out, refuse(ReasonMalformed, "not an event")
	}
	if env.Type != mt.EventType() {
		return out, refuse(ReasonTable, "event type %q on %s", env.Type, topic)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(env.Data, &raw); err != nil {
		return out, refuse(ReasonMalformed, "data is not an object")
	}
	for k := range raw {
		if !recordKeys[k] {
			return out, refuse(ReasonUnclassified, "%s: record key %q is not a master-data record's", table, k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(env.Data))
	if err := dec.Decode(&out); err != nil {
		return out, refuse(ReasonMalformed, "data: %v", err)
	}
	if out.Table != table {
		return out, refuse(ReasonTable, "record of %q on %s", out.Table, topic)
	}
	// Field by field before anything else: a PII value is refused as PII,
	// whatever else is wrong with the record.
	for name := range out.Fields {
		class, ok := g.classify(table, name)
		switch {
		case !ok:
			return out, refuse(ReasonUnclassified, "%s.%s is not classified", table, name)
		case class != smp.NotPII:
			return out, refuse(ReasonPII, "%s.%s is classified %s", table, name, class)
		}
	}
	if known := g.Schema(); out.SchemaVersion > known {
		return out, &Refusal{Reason: ReasonSchema, Schema: out.SchemaVersion,
			Detail: fmt.Sprintf("%s: schema %d at the source, this region knows %d", table, out.SchemaVersion, known)}
	}
	key, err := mt.Check(out.Fields)
	if err != nil || key != out.Key || out.Version < 1 || smp.ValidRegion(out.Region) != nil {
		return out, refuse(ReasonMalformed, "%s %q version %d: %v", table, out.Key, out.Version, err)
	}
	return out, nil
}
