package catalog

import (
	"context"
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"smp"
)

// DefaultCityRadiusKm sizes the bounds of a city created with only its
// centre: orders and technicians must lie inside them.
const DefaultCityRadiusKm = 15

// Default dispatch settings of a new city.
var (
	defaultRadiusSteps = []float64{2, 5, 10, 20}
	defaultWaveSize    = 3
	defaultMaxWaves    = 4
)

var (
	cityCode    = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,15}$`)
	serviceCode = regexp.MustCompile(`^[a-z][a-z0-9_]{1,63}$`)
	partnerID   = regexp.MustCompile(`^P[0-9]{3,9}$`)
	personID    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	countryCode = regexp.MustCompile(`^[A-Z]{2}$`)
)

func needName(what string, name *string, max int) error {
	*name = strings.TrimSpace(*name)
	if *name == "" {
		return invalid("%s: name is required", what)
	}
	if n := utf8.RuneCountInString(*name); n > max {
		return invalid("%s: name is %d characters long, at most %d", what, n, max)
	}
	return nil
}

func checkStatus(what string, st *smp.CatalogStatus, allowed ...smp.CatalogStatus) error {
	if *st == "" {
		*st = smp.StatusActive
	}
	if !slices.Contains(allowed, *st) {
		return invalid("%s: status %q is not one of %v", what, *st, allowed)
	}
	return nil
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

var cities = &kind[smp.City]{
	one: "city", many: "cities", keyField: "code", perm: "catalog.view",
	key:    func(c *smp.City) string { return c.Code },
	get1:   func(ctx context.Context, st Store, k string) (*smp.City, error) { return st.FindCityByCode(ctx, k) },
	lock:   func(ctx context.Context, tx smp.Tx, k string) (*smp.City, error) { return tx.CityForUpdate(ctx, k) },
	insert: func(ctx context.Context, tx smp.Tx, c *smp.City) error { return tx.InsertCity(ctx, c) },
	write:  func(ctx context.Context, tx smp.Tx, c *smp.City) error { return tx.UpdateCity(ctx, c) },
	find: func(ctx context.Context, st Store, f smp.CatalogFilter) ([]*smp.City, error) {
		all, err := st.FindCities(ctx)
		return page(all, f, func(c *smp.City) string { return c.Code }, func(c *smp.City) *smp.CatalogStatus { return &c.Status }), err
	},
	status: func(c *smp.City) *smp.CatalogStatus { return &c.Status },
	off:    smp.StatusInactive,
	extras: []string{"radius_km"},
	check:  checkCity,
	natural1: func(ctx context.Context, s *Service, f map[string]json.RawMessage) (string, error) {
		code := stringField(f, "code")
		if code == "" {
			return "", invalid("city: code is required")
		}
		return notFoundIs(code, get(s.store.FindCityByCode(ctx, code)))
	},
}

func get[T any](_ T, err error) error { return err }

func checkCity(_ context.Context, _ *Service, _ smp.Tx, c, old *smp.City, extra map[string]json.RawMessage) error {
	if old == nil && !cityCode.MatchString(c.Code) {
		return invalid("city: code %q must be 2-16 capital letters, digits or _ (e.g. HCMC)", c.Code)
	}
	if err := needName("city "+c.Code, &c.Name, 100); err != nil {
		return err
	}
	if !finite(c.Lat, c.Lng, c.MinLat, c.MaxLat, c.MinLng, c.MaxLng) || c.Lat < -90 || c.Lat > 90 || c.Lng < -180 || c.Lng > 180 {
		return invalid("city %s: lat must be within ±90 and lng within ±180", c.Code)
	}
	if c.Lat == 0 && c.Lng == 0 && (old == nil || old.Lat != 0 || old.Lng != 0) {
		return invalid("city %s: lat and lng (the city's centre) are required", c.Code)
	}
	radius := 0.0
	if raw, ok := extra["radius_km"]; ok {
		if err := json.Unmarshal(raw, &radius); err != nil || !finite(radius) || radius <= 0 || radius > 200 {
			return invalid("city %s: radius_km must be a number of kilometres between 0 and 200", c.Code)
		}
	} else if c.MinLat == 0 && c.MaxLat == 0 && c.MinLng == 0 && c.MaxLng == 0 {
		radius = DefaultCityRadiusKm
	}
	if radius > 0 {
		dLat := radius / 111.32
		dLng := radius / (111.32 * math.Cos(c.Lat*math.Pi/180))
		c.MinLat, c.MaxLat = round6(c.Lat-dLat), round6(c.Lat+dLat)
		c.MinLng, c.MaxLng = round6(c.Lng-dLng), round6(c.Lng+dLng)
	}
	if c.MinLat >= c.MaxLat || c.MinLng >= c.MaxLng {
		return invalid("city %s: bounds need min_lat < max_lat and min_lng < max_lng", c.Code)
	}
	if (c.Lat != 0 || c.Lng != 0) && !c.Contains(c.Lat, c.Lng) {
		return invalid("city %s: the centre (%.5f, %.5f) is outside its bounds", c.Code, c.Lat, c.Lng)
	}
	if len(c.RadiusStepsKm) == 0 {
		c.RadiusStepsKm = slices.Clone(defaultRadiusSteps)
	}
	for i, r := range c.RadiusStepsKm {
		if !finite(r) || r <= 0 || r > 200 || (i > 0 && r <= c.RadiusStepsKm[i-1]) {
			return invalid("city %s: radius_steps_km must be increasing distances between 0 and 200 km", c.Code)
		}
	}
	if c.WaveSize == 0 {
		c.WaveSize = defaultWaveSize
	}
	if c.MaxWaves == 0 {
		c.MaxWaves = defaultMaxWaves
	}
	if c.WaveSize < 1 || c.WaveSize > 50 || c.MaxWaves < 1 || c.MaxWaves > 20 {
		return invalid("city %s: wave_size must be 1-50 and max_waves 1-20", c.Code)
	}
	return checkStatus("city "+c.Code, &c.Status, smp.StatusActive, smp.StatusInactive)
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

var services = &kind[smp.Service]{
	one: "service", many: "services", keyField: "code", perm: "catalog.view",
	key: func(s *smp.Service) string { return s.Code },
	get1: func(ctx context.Context, st Store, k string) (*smp.Service, error) {
		return st.FindServiceByCode(ctx, k)
	},
	lock: func(ctx context.Context, tx smp.Tx, k string) (*smp.Service, error) {
		return tx.ServiceForUpdate(ctx, k)
	},
	insert: func(ctx context.Context, tx smp.Tx, s *smp.Service) error { return tx.InsertService(ctx, s) },
	write:  func(ctx context.Context, tx smp.Tx, s *smp.Service) error { return tx.UpdateService(ctx, s) },
	find: func(ctx context.Context, st Store, f smp.CatalogFilter) ([]*smp.Service, error) {
		all, err := st.FindServices(ctx)
		if f.Skill != "" {
			all = slices.DeleteFunc(all, func(s *smp.Service) bool { return s.SkillOrCode() != f.Skill })
		}
		return page(all, f, func(s *smp.Service) string { return s.Code }, func(s *smp.Service) *smp.CatalogStatus { return &s.Status }), err
	},
	status: func(s *smp.Service) *smp.CatalogStatus { return &s.Status },
	off:    smp.StatusInactive,
	check:  checkService,
	natural1: func(ctx context.Context, s *Service, f map[string]json.RawMessage) (string, error) {
		code := stringField(f, "code")
		if code == "" {
			return "", invalid("service: code is required")
		}
		return notFoundIs(code, get(s.store.FindServiceByCode(ctx, code)))
	},
}

func checkService(_ context.Context, _ *Service, _ smp.Tx, s, old *smp.Service, _ map[string]json.RawMessage) error {
	if old == nil && !serviceCode.MatchString(s.Code) {
		return invalid("service: code %q must be 2-64 lower-case letters, digits or _ (e.g. aircon_repair)", s.Code)
	}
	if err := needName("service "+s.Code, &s.Name, 100); err != nil {
		return err
	}
	if s.Skill == "" {
		s.Skill = s.Code
	}
	if !serviceCode.MatchString(s.Skill) {
		return invalid("service %s: skill %q must be lower-case letters, digits or _", s.Code, s.Skill)
	}
	if s.PriceVND <= 0 {
		return invalid("service %s: price_vnd must be a positive number of VND", s.Code)
	}
	if s.Commission < 0 || s.Commission > 10000 {
		return invalid("service %s: commission_pct must be between 0 and 100", s.Code)
	}
	return checkStatus("service "+s.Code, &s.Status, smp.StatusActive, smp.StatusInactive)
}

var partners = &kind[smp.Partner]{
	one: "partner", many: "partners", keyField: "id", perm: "partners.view", events: true,
	key:  func(p *smp.Partner) string { return p.ID },
	get1: func(ctx context.Context, st Store, k string) (*smp.Partner, error) { return st.FindPartnerByID(ctx, k) },
	lock: func(ctx context.Context, tx smp.Tx, k string) (*smp.Partner, error) {
		return tx.PartnerForUpdate(ctx, k)
	},
	insert: func(ctx context.Context, tx smp.Tx, p *smp.Partner) error { return tx.InsertPartner(ctx, p) },
	write:  func(ctx context.Context, tx smp.Tx, p *smp.Partner) error { return tx.UpdatePartner(ctx, p) },
	find: func(ctx context.Context, st Store, f smp.CatalogFilter) ([]*smp.Partner, error) {
		return st.FindPartners(ctx, f)
	},
	status: func(p *smp.Partner) *smp.CatalogStatus { return &p.Status },
	off:    smp.StatusInactive,
	check:  checkPartner,
	// A partner row is its id when it has one, else its name.
	natural1: func(ctx context.Context, s *Service, f map[string]json.RawMessage) (string, error) {
		if id := stringField(f, "id"); id != "" {
			return notFoundIs(id, get(s.store.FindPartnerByID(ctx, id)))
		}
		name := stringField(f, "name")
		if name == "" {
			return "", invalid("partner: id or name is required")
		}
		ps, err := s.store.FindPartners(ctx, smp.CatalogFilter{Name: name, Limit: 2})
		if err != nil || len(ps) == 0 {
			return "", err
		}
		if len(ps) > 1 {
			return "", smp.Errorf(smp.ECONFLICT, "partner: several partners are named %q; give the id", name)
		}
		return ps[0].ID, nil
	},
}

func checkPartner(_ context.Context, _ *Service, _ smp.Tx, p, old *smp.Partner, _ map[string]json.RawMessage) error {
	if old == nil && p.ID != "" && !partnerID.MatchString(p.ID) {
		return invalid("partner: id %q must look like P001 (or be left out to be allocated)", p.ID)
	}
	if err := needName("partner", &p.Name, 200); err != nil {
		return err
	}
	p.Country = strings.ToUpper(strings.TrimSpace(p.Country))
	if p.Country == "" {
		p.Country = "VN"
	}
	if !countryCode.MatchString(p.Country) {
		return invalid("partner %s: country %q must be an ISO 3166 two-letter code (e.g. VN)", p.Name, p.Country)
	}
	p.Contact = strings.TrimSpace(p.Contact)
	if n := utf8.RuneCountInString(p.Contact); n > 200 {
		return invalid("partner %s: contact is %d characters long, at most 200", p.Name, n)
	}
	return checkStatus("partner "+p.Name, &p.Status, smp.StatusActive, smp.StatusInactive)
}

var technicians = &kind[smp.Technician]{
	one: "technician", many: "technicians", keyField: "id", perm: "people.view",
	key: func(t *smp.Technician) string { return t.ID },
	get1: func(ctx context.Context, st Store, k string) (*smp.Technician, error) {
		return st.FindTechnicianByID(ctx, k)
	},
	lock: func(ctx context.Context, tx smp.Tx, k string) (*smp.Technician, error) {
		return tx.TechnicianForUpdate(ctx, k)
	},
	insert: func(ctx context.Context, tx smp.Tx, t *smp.Technician) error { return tx.InsertTechnician(ctx, t) },
	write:  func(ctx context.Context, tx smp.Tx, t *smp.Technician) error { return tx.UpdateTechnician(ctx, t) },
	find: func(ctx context.Context, st Store, f smp.CatalogFilter) ([]*smp.Technician, error) {
		return st.FindTechnicians(ctx, f)
	},
	status:   func(t *smp.Technician) *smp.CatalogStatus { return &t.Status },
	off:      smp.StatusSuspended,
	readOnly: []string{"active_order_id"},
	check:    checkTechnician,
	natural1: func(ctx context.Context, s *Service, f map[string]json.RawMessage) (string, error) {
		return person(ctx, f, "technician", func(ctx context.Context, phone string) (string, error) {
			t, err := s.store.FindTechnicianByPhone(ctx, phone)
			if err != nil {
				return "", err
			}
			return t.ID, nil
		})
	},
}

// person finds an import row's technician or customer by phone.
func person(ctx context.Context, f map[string]json.RawMessage, what string, byPhone func(context.Context, string) (string, error)) (string, error) {
	raw := stringField(f, "phone")
	if raw == "" {
		return "", invalid("%s: phone is required", what)
	}
	phone, err := smp.ParsePhone(raw)
	if err != nil {
		return "", err
	}
	id, err := byPhone(ctx, phone)
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		return "", nil
	} else if err != nil {
		return "", err
	}
	if given := stringField(f, "id"); given != "" && given != id {
		return "", smp.Errorf(smp.ECONFLICT, "%s: phone %s belongs to %s, not %s", what, phone, id, given)
	}
	return id, nil
}

func checkTechnician(ctx context.Context, s *Service, tx smp.Tx, t, old *smp.Technician, _ map[string]json.RawMessage) error {
	if old == nil && t.ID != "" && !personID.MatchString(t.ID) {
		return invalid("technician: id %q must be 1-64 letters, digits, _ or - (or be left out to be allocated)", t.ID)
	}
	if err := needName("technician", &t.Name, 200); err != nil {
		return err
	}
	phone, err := smp.ParsePhone(t.Phone)
	if err != nil {
		return invalid("technician %s: %s", t.Name, smp.ErrorMessage(err))
	}
	t.Phone = phone
	if t.PartnerID == "" {
		return invalid("technician %s: partner_id is required", t.Name)
	}
	if p, err := tx.PartnerForUpdate(ctx, t.PartnerID); smp.ErrorCode(err) == smp.ENOTFOUND {
		return invalid("technician %s: unknown partner %q", t.Name, t.PartnerID)
	} else if err != nil {
		return err
	} else if !p.Status.Active() && (old == nil || old.PartnerID != t.PartnerID) {
		return invalid("technician %s: partner %s is inactive", t.Name, t.PartnerID)
	}
	if t.City == "" {
		return invalid("technician %s: city is required", t.Name)
	}
	city, err := tx.CityForUpdate(ctx, t.City)
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		return invalid("technician %s: unknown city %q", t.Name, t.City)
	} else if err != nil {
		return err
	}
	if !finite(t.Lat, t.Lng) || ((t.Lat != 0 || t.Lng != 0) && !city.Contains(t.Lat, t.Lng)) {
		return invalid("technician %s: location (%.5f, %.5f) is outside %s", t.Name, t.Lat, t.Lng, city.Code)
	}
	if len(t.Skills) == 0 {
		return invalid("technician %s: skills are required (the skills of services, e.g. [\"aircon_repair\"])", t.Name)
	}
	known, err := s.skills(ctx, tx, t.Skills)
	if err != nil {
		return err
	}
	var skills []string
	for _, sk := range t.Skills {
		sk = strings.TrimSpace(sk)
		if !known[sk] {
			return invalid("technician %s: unknown skill %q (no service needs it)", t.Name, sk)
		}
		if !slices.Contains(skills, sk) {
			skills = append(skills, sk)
		}
	}
	t.Skills = skills
	return checkStatus("technician "+t.Name, &t.Status, smp.StatusActive, smp.StatusSuspended)
}

// skills returns which of want are known: the skill of some service (or,
// for services written in the same transaction, a service's code).
func (s *Service) skills(ctx context.Context, tx smp.Tx, want []string) (map[string]bool, error) {
	all, err := s.store.FindServices(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, sv := range all {
		known[sv.SkillOrCode()] = true
	}
	for _, sk := range want {
		sk = strings.TrimSpace(sk)
		if known[sk] {
			continue
		}
		if sv, err := tx.ServiceForUpdate(ctx, sk); err == nil {
			known[sv.SkillOrCode()] = true
		} else if smp.ErrorCode(err) != smp.ENOTFOUND {
			return nil, err
		}
	}
	return known, nil
}

var customers = &kind[smp.Customer]{
	one: "customer", many: "customers", keyField: "id", perm: "people.view",
	key: func(c *smp.Customer) string { return c.ID },
	get1: func(ctx context.Context, st Store, k string) (*smp.Customer, error) {
		return st.FindCustomerByID(ctx, k)
	},
	lock: func(ctx context.Context, tx smp.Tx, k string) (*smp.Customer, error) {
		return tx.CustomerForUpdate(ctx, k)
	},
	insert: func(ctx context.Context, tx smp.Tx, c *smp.Customer) error { return tx.InsertCustomer(ctx, c) },
	write:  func(ctx context.Context, tx smp.Tx, c *smp.Customer) error { return tx.UpdateCustomer(ctx, c) },
	find: func(ctx context.Context, st Store, f smp.CatalogFilter) ([]*smp.Customer, error) {
		return st.FindCustomers(ctx, f)
	},
	status: func(c *smp.Customer) *smp.CatalogStatus { return &c.Status },
	off:    smp.StatusInactive,
	check:  checkCustomer,
	natural1: func(ctx context.Context, s *Service, f map[string]json.RawMessage) (string, error) {
		return person(ctx, f, "customer", func(ctx context.Context, phone string) (string, error) {
			c, err := s.store.FindCustomerByPhone(ctx, phone)
			if err != nil {
				return "", err
			}
			return c.ID, nil
		})
	},
}

func checkCustomer(_ context.Context, _ *Service, _ smp.Tx, c, old *smp.Customer, _ map[string]json.RawMessage) error {
	if old == nil && c.ID != "" && !personID.MatchString(c.ID) {
		return invalid("customer: id %q must be 1-64 letters, digits, _ or - (or be left out to be allocated)", c.ID)
	}
	if err := needName("customer", &c.Name, 200); err != nil {
		return err
	}
	phone, err := smp.ParsePhone(c.Phone)
	if err != nil {
		return invalid("customer %s: %s", c.Name, smp.ErrorMessage(err))
	}
	c.Phone = phone
	return checkStatus("customer "+c.Name, &c.Status, smp.StatusActive, smp.StatusInactive)
}
