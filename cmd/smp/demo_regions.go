package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"smp"
	"smp/auth"
	"smp/catalog"
	"smp/replication"
	"smp/sim"
	"smp/sqlbus"
)

// smp demo --regions asia,china,us (issue 21 item 8): one platform per
// region in this process, each on its own embedded database and event log
// under --data-dir/<region>, joined by the replication agents (each region
// but the master replicates from it; the master replicates from the
// personal-data region, china, a path that carries heartbeats only, where
// the PII guard is shown refusing a record that smuggles a phone number). A simulator edits currency rates and
// translations in the master region; the demo prints what arrives where,
// with the delay, the paths' lag, and shows that china's personal data
// stays in china.

// demoRegionCurrency is each region's display currency in the demo.
var demoRegionCurrency = map[string]string{"china": "CNY", "us": "USD"}

// demoPIIRegion is the region whose personal data the demo shows staying
// home: china when it runs (PIPL), else the last region.
func demoPIIRegion(regions []string, master string) string {
	if slices.Contains(regions, "china") && master != "china" {
		return "china"
	}
	for i := len(regions) - 1; i >= 0; i-- {
		if regions[i] != master {
			return regions[i]
		}
	}
	return ""
}

// parseDemoRegions reads --regions and picks the master region: the
// --master-region when it is one of them, the first listed when it is the
// default (global) and global does not run. A usageError otherwise.
func parseDemoRegions(list, masterFlag string) (regions []string, master string, err error) {
	for _, r := range strings.Split(list, ",") {
		r = strings.TrimSpace(r)
		if err := smp.ValidRegion(r); err != nil {
			return nil, "", usageError{fmt.Sprintf("--regions %q: region %q: lowercase letters and digits, starting with a letter, at most 16 (asia,china,us)", list, r)}
		}
		if slices.Contains(regions, r) {
			return nil, "", usageError{fmt.Sprintf("--regions %q: %s is named twice", list, r)}
		}
		regions = append(regions, r)
	}
	if len(regions) < 2 {
		return nil, "", usageError{fmt.Sprintf("--regions %q: at least two regions, joined by commas (asia,china,us)", list)}
	}
	switch {
	case slices.Contains(regions, masterFlag):
		master = masterFlag
	case masterFlag == "" || masterFlag == smp.DefaultRegion:
		master = regions[0]
	default:
		return nil, "", usageError{fmt.Sprintf("--master-region %s is not one of --regions %s", masterFlag, list)}
	}
	return regions, master, nil
}

// demoRegion is one region's platform in the demo.
type demoRegion struct {
	name string
	dir  string
	app  *App
}

// log is the region's embedded event log: its tables are in smp.db.
func (r *demoRegion) log() string { return filepath.Join(r.dir, "smp.db") }

func runDemoRegions(ctx context.Context, cfg Config, list string, every, duration time.Duration, stdout, stderr io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.fromEnv()
	names, master, err := parseDemoRegions(list, cfg.MasterRegion)
	if err != nil {
		return err
	}
	if cfg.MySQLDSN != "" || cfg.RedisAddr != "" || len(cfg.KafkaBrokerList()) > 0 {
		return usageError{"--regions runs each region on its own embedded database and event log: drop --mysql-dsn, --redis-addr and --kafka-brokers"}
	}
	if every <= 0 {
		return usageError{"--masterdata-every must be positive"}
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return usageError{"--addr: " + err.Error()}
	}
	firstPort := 0
	if port != "0" {
		if firstPort, err = strconv.Atoi(port); err != nil {
			return usageError{"--addr: port " + port}
		}
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = sim.NewToken("adm_")
	}
	stdout = &lockedWriter{w: stdout} // the simulator's followers print too
	log := cfg.logger(stderr)

	var regions []*demoRegion
	for _, n := range names {
		r := &demoRegion{name: n, dir: filepath.Join(cfg.DataDir, n)}
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return err
		}
		// Each log exists before any agent opens it from another region.
		b, err := sqlbus.Open(sqlbus.Config{Path: r.log(), Partitions: cfg.Partitions})
		if err != nil {
			return fmt.Errorf("region %s: event log: %w", n, err)
		}
		b.Close()
		regions = append(regions, r)
	}
	byName := map[string]*demoRegion{}
	for _, r := range regions {
		byName[r.name] = r
	}
	defer func() {
		for i := len(regions) - 1; i >= 0; i-- {
			if a := regions[i].app; a != nil {
				a.HTTP.Stop(context.Background())
				if err := a.Close(); err != nil {
					log.Warn("demo: close region", "region", regions[i].name, "err", err)
				}
			}
		}
	}()
	for i, r := range regions {
		rc := cfg
		rc.Region, rc.MasterRegion, rc.DataDir = r.name, master, r.dir
		rc.ConnectAddr = ""
		rc.Addr = net.JoinHostPort(host, "0")
		if firstPort > 0 {
			rc.Addr = net.JoinHostPort(host, strconv.Itoa(firstPort+i))
		}
		// One agent per path (this process is all of them): it takes every
		// topic at once.
		rc.ReplicationAgents = 1
		rc.DisplayCurrency = "VND"
		if c, ok := demoRegionCurrency[r.name]; ok {
			rc.DisplayCurrency = c
		}
		var from []string
		if r.name == master {
			// The path out of the personal-data region, heartbeats only,
			// where the demo shows the PII guard at work.
			if p := demoPIIRegion(names, master); p != "" {
				from = append(from, p+"=file:"+byName[p].log())
			}
		} else {
			from = append(from, master+"=file:"+byName[master].log())
		}
		rc.ReplicateFrom = strings.Join(from, ";")
		if err := demoSeedRegion(ctx, rc); err != nil {
			return fmt.Errorf("region %s: seed: %w", r.name, err)
		}
		r.app = &App{Cfg: rc.Config, Log: log.With("region", r.name)}
		if err := r.app.Open(ctx); err != nil {
			r.app = nil
			return fmt.Errorf("region %s: %w", r.name, err)
		}
	}

	m := byName[master]
	sim := &masterDataSim{master: m, others: regions, out: stdout, start: time.Now(), arrived: map[string]int{},
		rng: rand.New(rand.NewPCG(1, 2))}
	if err := sim.seed(ctx); err != nil {
		return err
	}
	pii := byName[demoPIIRegion(names, master)]
	fmt.Fprintf(stdout, "SMP demo: %d regions in one process, master data owned by %s\n\n", len(regions), master)
	for _, r := range regions {
		var paths []string
		srcs, _ := r.app.Cfg.ReplicationSources()
		for _, s := range srcs {
			paths = append(paths, smp.ReplicationPathName(s.Region, r.name))
		}
		fmt.Fprintf(stdout, "  %-6s %s   prices in %s   data %s   paths in: %s\n", r.name, r.app.HTTP.URL(), r.app.Cfg.DisplayCurrency, r.dir, strings.Join(paths, ", "))
	}
	var peers []string
	for _, r := range regions {
		if r != m {
			peers = append(peers, r.name+"="+r.app.HTTP.URL())
		}
	}
	other := regions[1]
	if other == m {
		other = regions[0]
	}
	fmt.Fprintf(stdout, `
  Admin token    %s   (every region)
  Price screen   curl %s/v1/prices      (rate_date; a notice when the rates there are over 60 s behind)
  Paths and lag  smp ctl regions status --server %s --admin-token %s
  Consistency    smp ctl regions verify --sample 10 --server %s --peers %s --admin-token %s
  Edit a rate    curl -X PUT -H 'Authorization: Bearer %s' -d '{"fields":{"from_currency":"USD","to_currency":"VND","rate_date":"%s","rate":"25999"},"reason":"demo"}' %s/admin/masterdata/currency_rates

Every %s the simulator edits a currency rate or a translation in %s; each change is followed
by where it arrived and how long after. Ctrl-C stops.

`, cfg.AdminToken, other.app.HTTP.URL(), other.app.HTTP.URL(), cfg.AdminToken, m.app.HTTP.URL(), strings.Join(peers, ","), cfg.AdminToken,
		cfg.AdminToken, time.Now().In(smp.VietnamTime).Format(time.DateOnly), m.app.HTTP.URL(), every, master)

	// --duration counts from here, once every region runs.
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	leak, err := demoPersonalData(ctx, pii, m, stdout)
	if err != nil {
		return err
	}

	// Changes still on their way when the demo ends are followed for a
	// few seconds more.
	followCtx, stopFollowing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFollowing()
	sim.follows = followCtx
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sim.run(ctx, every, &wg) }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			fmt.Fprintf(stdout, "[%5.1fs] lag %s\n         prices %s\n", time.Since(sim.start).Seconds(), demoLags(ctx, regions), demoPrices(ctx, regions))
		}
	}
	grace := time.AfterFunc(5*time.Second, stopFollowing)
	defer grace.Stop()
	wg.Wait()
	fmt.Fprintln(stdout, "stopping demo")
	sim.summary(stdout)
	leak.summary(context.Background(), regions, stdout)
	return nil
}

// demoSeedRegion imports the demo's catalogue (cities, services with their
// VND prices, partners, a few technicians and customers) into a region.
func demoSeedRegion(ctx context.Context, cfg Config) error {
	db, err := openStore(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	cat, err := catalog.New(catalog.Config{Store: db})
	if err != nil {
		return err
	}
	_, _, err = sim.LoadDemo(ctx, cat, db, smp.Principal{Name: "system:demo", Role: smp.RoleAdmin},
		sim.SeedConfig{Technicians: 20, Customers: 10, Seed: 1}, auth.HashToken)
	return err
}

// demoLags is every path's lag, from the target regions' stores.
func demoLags(ctx context.Context, regions []*demoRegion) string {
	var parts []string
	for _, r := range regions {
		paths, err := r.app.Store.FindReplicationPaths(ctx)
		if err != nil {
			continue
		}
		for _, p := range paths {
			parts = append(parts, fmt.Sprintf("%s %.1fs", p.Path, replication.Lag(p, time.Now()).Seconds()))
		}
	}
	return strings.Join(parts, ", ")
}

// demoPrices is the first service's price in each region, in its display
// currency, with the rate date and the notice when stale.
func demoPrices(ctx context.Context, regions []*demoRegion) string {
	var parts []string
	for _, r := range regions {
		list, err := r.app.Pricing.Prices(ctx)
		if err != nil || len(list.Prices) == 0 {
			continue
		}
		p := list.Prices[0]
		part := fmt.Sprintf("%s %s %s %s", r.name, p.Service, p.Price.Amount, p.Price.Currency)
		if list.RateDate != "" {
			part += " (rate of " + list.RateDate + ")"
		}
		if list.Notice != nil {
			part += " [" + list.Notice.En + "]"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// masterDataSim edits master data in the master region and follows each
// change to the other regions.
type masterDataSim struct {
	master *demoRegion
	others []*demoRegion
	out    io.Writer
	start  time.Time
	rng    *rand.Rand
	// follows ends the following of changes (a grace after the demo).
	follows context.Context

	mu      sync.Mutex
	made    int
	arrived map[string]int // by region: changes seen there
	usd     int64          // tenths of VND per USD
	cny     int64
}

var demoEditor = smp.Principal{Name: "system:demo-masterdata", Role: smp.RoleFinance}

// seed puts the currencies, the VAT, today's rates and a translation in
// the master region.
func (s *masterDataSim) seed(ctx context.Context) error {
	md := s.master.app.MasterData
	today := time.Now().In(smp.VietnamTime).Format(time.DateOnly)
	s.usd, s.cny = 254_000, 35_200
	for _, row := range []struct {
		table  string
		fields map[string]string
	}{
		{smp.MasterCurrencies, map[string]string{"code": "VND", "name": "Vietnamese dong", "minor_units": "0"}},
		{smp.MasterCurrencies, map[string]string{"code": "USD", "name": "US dollar", "minor_units": "2"}},
		{smp.MasterCurrencies, map[string]string{"code": "CNY", "name": "Renminbi", "minor_units": "2"}},
		{smp.MasterCountries, map[string]string{"code": "VN", "name": "Viet Nam"}},
		{smp.MasterTaxConfigs, map[string]string{"country": "VN", "tax_code": "VAT", "rate_bp": "1000", "name": "VAT 10%"}},
		{smp.MasterCurrencyRates, rateFields("USD", today, s.usd)},
		{smp.MasterCurrencyRates, rateFields("CNY", today, s.cny)},
		{smp.MasterTranslations, map[string]string{"locale": "vi", "msg_key": "price.stale", "text": "Giá dùng tỷ giá ngày {date}; tỷ giá mới hơn có thể chưa về"}},
		{smp.MasterTranslations, map[string]string{"locale": "en", "msg_key": "price.stale", "text": "Prices use the exchange rate of {date}; newer rates may not have arrived"}},
	} {
		if _, err := md.Put(ctx, demoEditor, row.table, row.fields, "demo seed"); err != nil {
			return fmt.Errorf("master data %s: %w", row.table, err)
		}
	}
	return nil
}

// rateFields is a currency_rates row of cur against VND, tenths of VND per
// unit, as an exact decimal string.
func rateFields(cur, date string, tenths int64) map[string]string {
	v := strconv.FormatInt(tenths/10, 10)
	if tenths%10 != 0 {
		v += "." + strconv.FormatInt(tenths%10, 10)
	}
	return map[string]string{"from_currency": cur, "to_currency": "VND", "rate_date": date, "rate": v}
}

// run makes a change every interval until ctx ends: a USD or CNY rate
// moving a little, or a translation.
func (s *masterDataSim) run(ctx context.Context, every time.Duration, wg *sync.WaitGroup) {
	t := time.NewTicker(every)
	defer t.Stop()
	greetings := []string{"Xin chào", "Chào bạn", "Kính chào quý khách"}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		today := time.Now().In(smp.VietnamTime).Format(time.DateOnly)
		var table string
		var fields map[string]string
		switch i % 3 {
		case 0:
			s.usd += s.rng.Int64N(41) - 20
			table, fields = smp.MasterCurrencyRates, rateFields("USD", today, s.usd)
		case 1:
			s.cny += s.rng.Int64N(11) - 5
			table, fields = smp.MasterCurrencyRates, rateFields("CNY", today, s.cny)
		default:
			table, fields = smp.MasterTranslations, map[string]string{"locale": "vi", "msg_key": "greeting", "text": greetings[(i/3)%len(greetings)]}
		}
		rec, err := s.master.app.MasterData.Put(ctx, demoEditor, table, fields, "demo: master-data simulator")
		if err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(s.out, "master data not changed: %v\n", err)
			}
			continue
		}
		s.mu.Lock()
		s.made++
		s.mu.Unlock()
		wg.Add(1)
		go func() { defer wg.Done(); s.follow(s.follows, rec) }()
	}
}

// follow waits (up to 30 s) for rec to arrive in every other region and
// prints where it arrived, how long after it was made.
func (s *masterDataSim) follow(ctx context.Context, rec smp.MasterRecord) {
	what := fmt.Sprintf("%s %s = %q (v%d)", rec.Table, rec.Key, demoValue(rec), rec.Version)
	pending := map[*demoRegion]bool{}
	for _, r := range s.others {
		if r != s.master {
			pending[r] = true
		}
	}
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for len(pending) > 0 && time.Now().Before(deadline) {
		for r := range pending {
			cur, err := r.app.Store.FindMasterRecord(ctx, rec.Table, rec.Key)
			if err == nil && cur.Version >= rec.Version {
				delete(pending, r)
				got = append(got, fmt.Sprintf("%s +%.2fs", r.name, time.Since(rec.UpdatedAt).Seconds()))
				s.mu.Lock()
				s.arrived[r.name]++
				s.mu.Unlock()
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	for r := range pending {
		got = append(got, r.name+" not yet")
	}
	slices.Sort(got)
	fmt.Fprintf(s.out, "[%5.1fs] %s: %s → %s\n", time.Since(s.start).Seconds(), s.master.name, what, strings.Join(got, ", "))
}

func demoValue(rec smp.MasterRecord) string {
	if v, ok := rec.Fields["rate"]; ok {
		return v
	}
	return rec.Fields["text"]
}

func (s *masterDataSim) summary(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, r := range s.others {
		if r != s.master {
			parts = append(parts, fmt.Sprintf("%s %d/%d", r.name, s.arrived[r.name], s.made))
		}
	}
	fmt.Fprintf(w, "master data: %d changes made in %s; arrived: %s\n", s.made, s.master.name, strings.Join(parts, ", "))
}

// demoLeak is the demo's proof that a region's personal data stays there.
type demoLeak struct {
	region   *demoRegion
	master   *demoRegion
	customer smp.Customer
}

// demoPersonalData signs a customer up in the PII region, then tries to
// smuggle their phone number out as master data: a record on the
// region's masterdata.countries carrying a phone field, which the agent of
// the path into the master region must refuse.
func demoPersonalData(ctx context.Context, r, master *demoRegion, out io.Writer) (*demoLeak, error) {
	l := &demoLeak{region: r, master: master, customer: smp.Customer{ID: "CUST-" + strings.ToUpper(r.name) + "-0001", Name: "Li Hua", Phone: "+8613800138000"}}
	if err := r.app.Store.UpsertCustomer(ctx, &l.customer); err != nil {
		return nil, fmt.Errorf("region %s: customer: %w", r.name, err)
	}
	data, err := json.Marshal(map[string]any{"table": smp.MasterCountries, "key": "CN", "version": 1, "region": r.name, "updated_at": time.Now().UTC(),
		"schema_version": smp.MasterDataSchemaVersion, "fields": map[string]string{"code": "CN", "name": "China", "phone": l.customer.Phone}})
	if err != nil {
		return nil, err
	}
	t, _ := smp.FindMasterTable(smp.MasterCountries)
	ev, err := json.Marshal(smp.Event{ID: "demo-smuggled-phone", Type: t.EventType(), SchemaVersion: smp.EventSchemaVersion, AggregateID: "CN",
		OccurredAt: time.Now().UTC(), Data: data})
	if err != nil {
		return nil, err
	}
	if err := r.app.Bus.Publish(ctx, smp.Message{Topic: "masterdata." + smp.MasterCountries, Key: "CN", Value: ev}); err != nil {
		return nil, fmt.Errorf("region %s: publish: %w", r.name, err)
	}
	fmt.Fprintf(out, "Personal data: customer %s (phone %s) signed up in %s; a record carrying that phone was put on %s's masterdata.countries: the path %s must refuse it.\n\n",
		l.customer.ID, l.customer.Phone, r.name, r.name, smp.ReplicationPathName(r.name, master.name))
	return l, nil
}

// summary checks every other region for the customer (by id and by
// phone) and reads the refusals on the master region's agents.
func (l *demoLeak) summary(ctx context.Context, regions []*demoRegion, w io.Writer) {
	var found []string
	for _, r := range regions {
		if r == l.region {
			continue
		}
		_, e1 := r.app.Store.FindCustomerByID(ctx, l.customer.ID)
		_, e2 := r.app.Store.FindCustomerByPhone(ctx, l.customer.Phone)
		_, e3 := r.app.Store.FindMasterRecord(ctx, smp.MasterCountries, "CN")
		if smp.ErrorCode(e1) != smp.ENOTFOUND || smp.ErrorCode(e2) != smp.ENOTFOUND || smp.ErrorCode(e3) != smp.ENOTFOUND {
			found = append(found, r.name)
		}
	}
	refused := demoRefused(l.master)
	if len(found) > 0 {
		fmt.Fprintf(w, "%s's personal data: FOUND outside %s, in %s\n", l.region.name, l.region.name, strings.Join(found, ", "))
		return
	}
	fmt.Fprintf(w, "%s's personal data: customer %s is in %s only (not found elsewhere by id or phone); records refused at the border into %s: %s\n",
		l.region.name, l.customer.ID, l.region.name, l.master.name, refused)
}

// demoRefused sums smp_replication_refused_total by reason on a region.
func demoRefused(r *demoRegion) string {
	mfs, _ := r.app.Registry.Gather() // what could be gathered
	var parts []string
	for _, mf := range mfs {
		if mf.GetName() != "smp_replication_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetCounter().GetValue(); v > 0 {
				reason := ""
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "reason" {
						reason = lp.GetValue()
					}
				}
				parts = append(parts, fmt.Sprintf("%s %.0f", reason, v))
			}
		}
	}
	if len(parts) == 0 {
		return "none yet"
	}
	return strings.Join(parts, ", ")
}

// lockedWriter serializes the writes of several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
