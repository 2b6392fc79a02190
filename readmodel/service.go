package readmodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/cdc"
	"smp/connect"
)

// Rows is the database side of the read model: every row of the captured
// tables, read from the tables themselves as of one instant, and the
// source position of that instant (smp.ChangeLogStore's SnapshotTables on
// the embedded default, BinlogRows on MySQL). A
// document repaired from it is written at that position, so a change
// after it still wins.
type Rows interface {
	SnapshotTables(ctx context.Context, fn func(table string, key, row []byte) error) (last int64, err error)
}

// RowReader is what Rows may do besides: read one row by id now (nil when
// there is none), so that compare reads that row instead of every row.
type RowReader interface {
	ReadCapturedRow(ctx context.Context, table, id string) ([]byte, error)
}

// TableReader reads tables in one consistent view and gives that view's
// binlog position, and one row by id (cdc.Binlog on MySQL).
type TableReader interface {
	ReadTables(ctx context.Context, tables []string, fn func(table string, key, row []byte) error) (cdc.Source, error)
	RowReader
}

// BinlogRows is Rows on MySQL: the captured tables read from the database
// in one consistent view, whose binlog position, as a document version
// (Version), is the snapshot's: a document whose change came after the
// view has a higher version and is left alone, and a repair written at it
// never overwrites a newer change.
func BinlogRows(r TableReader) Rows { return binlogRows{r} }

type binlogRows struct{ r TableReader }

func (b binlogRows) ReadCapturedRow(ctx context.Context, table, id string) ([]byte, error) {
	return b.r.ReadCapturedRow(ctx, table, id)
}

func (b binlogRows) SnapshotTables(ctx context.Context, fn func(table string, key, row []byte) error) (int64, error) {
	src, err := b.r.ReadTables(ctx, Tables, fn)
	if err != nil {
		return 0, err
	}
	return Version(src), nil
}

// Connectors is what the service needs of the Connect worker: the sink's
// and the source's states (the re-sync pauses one and re-snapshots the
// other) and the statuses the drift report shows.
type Connectors interface {
	Pause(name string) error
	Resume(name string) error
	StopConnector(name string) error
	ResetOffsets(ctx context.Context, name string) error
	Status(name string) (connect.Status, error)
}

// DeadLetters counts what a topic holds (the sink's dead-letter depth).
type DeadLetters interface {
	Read(ctx context.Context, topic string, max int) ([]smp.Message, error)
}

// ServiceConfig configures the read model's operations.
type ServiceConfig struct {
	Index smp.SearchIndex
	// Rows is nil where the database cannot give a snapshot (a process
	// without the database's rows): the drift check and compare answer
	// EUNAVAILABLE there.
	Rows Rows
	// Connect is nil in a process without the Connect worker: reindex and
	// re-sync answer EUNAVAILABLE there.
	Connect Connectors
	// SourceConnector is the source's name (smp-mysql-connector).
	SourceConnector string
	DeadLetters     DeadLetters
	// CustomerByPhone finds the customer id of an E.164 phone (ENOTFOUND).
	CustomerByPhone func(ctx context.Context, phone string) (string, error)
	// Sink gives the lag (nil: unknown).
	Sink *Sink
	// Locker and Owner make the daily check run once across processes.
	Locker smp.Locker
	Owner  string
	// Every is the drift check's period (24 h); Sample how many ids per
	// table it compares field by field (100).
	Every  time.Duration
	Sample int
	// SettleTimeout is how long a check that found drift waits for the
	// sink to catch up before it looks again (10 s).
	SettleTimeout time.Duration
	Rand          *rand.Rand
	Now           func() time.Time
	Logger        *slog.Logger
	// Registerer gets smp_readmodel_drift_ratio{table} and
	// smp_readmodel_checks_total{outcome}.
	Registerer prometheus.Registerer
}

// Service is the read model's operations: the runbook's health views,
// reindex, re-sync, the drift check and its repair, and the reads.
type Service struct {
	cfg    ServiceConfig
	drift  *prometheus.GaugeVec
	checks *prometheus.CounterVec
}

// JobName is the daily drift check's name, and LeaseKey its lease.
const (
	JobName  = "readmodel-reconciliation"
	LeaseKey = "lock:" + JobName
)

// NewService returns the service.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Index == nil {
		return nil, errors.New("readmodel: ServiceConfig.Index is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Every <= 0 {
		cfg.Every = 24 * time.Hour
	}
	if cfg.Sample <= 0 {
		cfg.Sample = 100
	}
	if cfg.SettleTimeout <= 0 {
		cfg.SettleTimeout = 10 * time.Second
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(uint64(cfg.Now().UnixNano()), 20))
	}
	if cfg.SourceConnector == "" {
		cfg.SourceConnector = "smp-mysql-connector"
	}
	s := &Service{cfg: cfg,
		drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "smp_readmodel_drift_ratio",
			Help: "The last drift check's share of a table's rows whose document is missing, extra or different (before its repair)."}, []string{"table"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_readmodel_checks_total",
			Help: "Drift checks (readmodel-reconciliation) by outcome: clean, repaired, drift_left, failed."}, []string{"outcome"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.drift, s.checks} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("readmodel: metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Health, Indices and Allocation are the runbook's _cluster/health,
// _cat/indices and _cat/allocation.
func (s *Service) Health(ctx context.Context) (smp.ClusterHealth, error) {
	return s.cfg.Index.Health(ctx)
}

// Indices is _cat/indices.
func (s *Service) Indices(ctx context.Context) ([]smp.IndexInfo, error) {
	return s.cfg.Index.Indices(ctx)
}

// Allocation is _cat/allocation.
func (s *Service) Allocation(ctx context.Context) ([]smp.Allocation, error) {
	return s.cfg.Index.Allocation(ctx)
}

// Lag is es_sink_lag_seconds now (-1 when this process has no sink).
func (s *Service) Lag(ctx context.Context) (float64, error) {
	if s.cfg.Sink == nil {
		return -1, nil
	}
	return s.cfg.Sink.Lag(ctx)
}

// OrderSearch is a search of the orders' read model. Q is free text: an
// E.164 or Vietnamese phone finds the customer's orders, a stage name the
// stage's, a technician id (T0001) theirs, anything else matches ids and
// addresses.
type OrderSearch struct {
	Q            string
	Phone        string
	TechnicianID string
	Stage        string
	City         string
	From, To     time.Time // created between, inclusive; zero: unbounded
	Limit        int
	Offset       int
}

// OrderHits is a page of order documents, newest first.
type OrderHits struct {
	Total  int64             `json:"total"`
	Orders []json.RawMessage `json:"orders"`
	// LagSeconds is es_sink_lag_seconds when the search ran (-1 unknown):
	// the portal shows its banner above 60.
	LagSeconds float64 `json:"lag_seconds"`
}

// SearchOrders searches the orders' documents. EINVALID for a bad filter.
func (s *Service) SearchOrders(ctx context.Context, f OrderSearch) (OrderHits, error) {
	q := smp.SearchQuery{Terms: map[string]string{}, SortField: "created_at", Size: f.Limit, Offset: f.Offset}
	if q.Size <= 0 || q.Size > 200 {
		q.Size = 50
	}
	if f.Offset < 0 || f.Offset > 10_000 {
		return OrderHits{}, smp.Errorf(smp.EINVALID, "offset %d: must be between 0 and 10000", f.Offset)
	}
	text := strings.TrimSpace(f.Q)
	phone := f.Phone
	if text != "" {
		switch {
		case looksLikePhone(text):
			phone, text = text, ""
		case slices.Contains(stageNames(), text):
			q.Terms["stage"], text = text, ""
		case isTechnicianID(text):
			q.Terms["technician_id"], text = text, ""
		}
	}
	q.Text = text
	if phone != "" {
		p, err := smp.ParsePhone(phone)
		if err != nil {
			return OrderHits{}, err
		}
		if s.cfg.CustomerByPhone == nil {
			return OrderHits{}, smp.Errorf(smp.EUNAVAILABLE, "search by phone: the customer directory is not available here")
		}
		id, err := s.cfg.CustomerByPhone(ctx, p)
		if smp.ErrorCode(err) == smp.ENOTFOUND {
			return OrderHits{Orders: []json.RawMessage{}, LagSeconds: s.lag(ctx)}, nil
		} else if err != nil {
			return OrderHits{}, err
		}
		q.Terms["customer_id"] = id
	}
	if f.TechnicianID != "" {
		q.Terms["technician_id"] = f.TechnicianID
	}
	if f.Stage != "" {
		if !slices.Contains(stageNames(), f.Stage) {
			return OrderHits{}, smp.Errorf(smp.EINVALID, "unknown stage %q", f.Stage)
		}
		q.Terms["stage"] = f.Stage
	}
	if f.City != "" {
		q.Terms["city"] = f.City
	}
	if !f.From.IsZero() || !f.To.IsZero() {
		if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
			return OrderHits{}, smp.Errorf(smp.EINVALID, "the date range ends before it starts")
		}
		q.RangeField = "created_at"
		if !f.From.IsZero() {
			q.RangeFrom = f.From.UnixMicro()
		}
		if !f.To.IsZero() {
			q.RangeTo = f.To.UnixMicro()
		}
	}
	r, err := s.cfg.Index.Search(ctx, "orders", q)
	if err != nil {
		return OrderHits{}, err
	}
	out := OrderHits{Total: r.Total, Orders: make([]json.RawMessage, 0, len(r.Docs)), LagSeconds: s.lag(ctx)}
	for _, d := range r.Docs {
		out.Orders = append(out.Orders, d.Source)
	}
	return out, nil
}

func (s *Service) lag(ctx context.Context) float64 {
	v, err := s.Lag(ctx)
	if err != nil {
		return -1
	}
	return v
}

func stageNames() []string {
	out := make([]string, len(smp.Stages))
	for i, st := range smp.Stages {
		out[i] = string(st)
	}
	return out
}

func looksLikePhone(s string) bool {
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' || r == ' ' || r == '.' || r == '-':
		default:
			return false
		}
	}
	return digits >= 9
}

func isTechnicianID(s string) bool {
	if len(s) < 2 || s[0] != 'T' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Difference is one field that differs between a row and its document.
type Difference struct {
	Field    string `json:"field"`
	Database any    `json:"database"`
	Index    any    `json:"index"`
}

// Comparison is the runbook's spot check: one order in the database and
// in the read model.
type Comparison struct {
	Table       string       `json:"table"`
	ID          string       `json:"id"`
	InDatabase  bool         `json:"in_database"`
	InIndex     bool         `json:"in_index"`
	Version     int64        `json:"version"`
	Match       bool         `json:"match"`
	Differences []Difference `json:"differences"`
}

// Compare reads an order from the database and from the read model and
// says whether they match, field by field. ENOTFOUND when it is in
// neither; EUNAVAILABLE without a database snapshot.
func (s *Service) Compare(ctx context.Context, table, id string) (Comparison, error) {
	if table == "" {
		table = "orders"
	}
	if !slices.Contains(Tables, table) {
		return Comparison{}, smp.Errorf(smp.EINVALID, "table %q: one of %s", table, strings.Join(Tables, ", "))
	}
	if s.cfg.Rows == nil {
		return Comparison{}, smp.Errorf(smp.EUNAVAILABLE, "compare: the database snapshot is not available on this backend")
	}
	c := Comparison{Table: table, ID: id, Differences: []Difference{}}
	var row []byte
	if rr, ok := s.cfg.Rows.(RowReader); ok {
		r, err := rr.ReadCapturedRow(ctx, table, id)
		if err != nil {
			return Comparison{}, err
		}
		row = r
	} else if _, err := s.cfg.Rows.SnapshotTables(ctx, func(t string, key, r []byte) error {
		if t != table {
			return nil
		}
		if k, err := DocID(key); err == nil && k == id {
			row = slices.Clone(r)
		}
		return nil
	}); err != nil {
		return Comparison{}, err
	}
	d, err := s.cfg.Index.Get(ctx, table, id)
	switch smp.ErrorCode(err) {
	case "":
		c.InIndex, c.Version = true, d.Version
	case smp.ENOTFOUND:
	default:
		return Comparison{}, err
	}
	c.InDatabase = row != nil
	if !c.InDatabase && !c.InIndex {
		return Comparison{}, smp.Errorf(smp.ENOTFOUND, "%s %s is neither in the database nor in the read model", table, id)
	}
	if c.InDatabase && c.InIndex {
		c.Differences = diff(row, d.Source)
	}
	c.Match = c.InDatabase && c.InIndex && len(c.Differences) == 0
	return c, nil
}

// diff compares a row and a document field by field (the row's fields:
// a document never has fewer).
func diff(row, doc []byte) []Difference {
	var a, b map[string]any
	json.Unmarshal(row, &a)
	json.Unmarshal(doc, &b)
	out := []Difference{}
	names := make([]string, 0, len(a)+len(b))
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		if !reflect.DeepEqual(a[k], b[k]) {
			out = append(out, Difference{Field: k, Database: a[k], Index: b[k]})
		}
	}
	return out
}
