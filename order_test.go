package smp_test

import (
	"math"
	"testing"

	"smp"
)

func TestCanTransition(t *testing.T) {
	t.Parallel()
	allowed := map[[2]smp.Stage]bool{
		{smp.StageCreated, smp.StageDispatching}:   true,
		{smp.StageCreated, smp.StageCancelled}:     true,
		{smp.StageDispatching, smp.StageAssigned}:  true,
		{smp.StageDispatching, smp.StageCancelled}: true,
		{smp.StageAssigned, smp.StageInProgress}:   true,
		{smp.StageAssigned, smp.StageCancelled}:    true,
		{smp.StageInProgress, smp.StageCompleted}:  true,
		{smp.StageInProgress, smp.StageCancelled}:  true,
	}
	for _, from := range smp.Stages {
		for _, to := range smp.Stages {
			if got := smp.CanTransition(from, to); got != allowed[[2]smp.Stage{from, to}] {
				t.Errorf("CanTransition(%s, %s) = %v", from, to, got)
			}
		}
	}
	if !smp.StageCompleted.Terminal() || !smp.StageCancelled.Terminal() || smp.StageAssigned.Terminal() {
		t.Error("terminal stages wrong")
	}
}

func TestNewOrderValidate(t *testing.T) {
	t.Parallel()
	city := &smp.City{Code: "HCMC", MinLat: 10.70, MaxLat: 10.88, MinLng: 106.60, MaxLng: 106.80}
	svc := &smp.Service{Code: "plumbing"}
	ok := smp.NewOrder{City: "HCMC", Service: "plumbing", Lat: 10.78, Lng: 106.7, PriceVND: 1}
	cases := []struct {
		name string
		edit func(*smp.NewOrder)
		city *smp.City
		svc  *smp.Service
		want string
	}{
		{"OK", func(*smp.NewOrder) {}, city, svc, ""},
		{"NoCity", func(n *smp.NewOrder) { n.City = " " }, city, svc, "city is required"},
		{"UnknownCity", func(n *smp.NewOrder) { n.City = "X" }, nil, svc, `unknown city "X"`},
		{"NoService", func(n *smp.NewOrder) { n.Service = "" }, city, svc, "service is required"},
		{"UnknownService", func(n *smp.NewOrder) { n.Service = "x" }, city, nil, `unknown service "x"`},
		{"NaN", func(n *smp.NewOrder) { n.Lat = math.NaN() }, city, svc, "must be numbers"},
		{"Outside", func(n *smp.NewOrder) { n.Lat = 10.9 }, city, svc, "outside HCMC"},
		{"OnBoundary", func(n *smp.NewOrder) { n.Lat = 10.88 }, city, svc, ""},
		{"ZeroPrice", func(n *smp.NewOrder) { n.PriceVND = 0 }, city, svc, "positive"},
		{"LongAddress", func(n *smp.NewOrder) { n.Address = string(make([]byte, 501)) }, city, svc, "longer than 500"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := ok
			c.edit(&n)
			err := n.Validate(c.city, c.svc)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if smp.ErrorCode(err) != smp.EINVALID || smp.ErrorMessage(err) != c.want && !contains(smp.ErrorMessage(err), c.want) {
				t.Fatalf("err = %v, want EINVALID %q", err, c.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestDistanceMeters(t *testing.T) {
	t.Parallel()
	// Two points in District 1, Saigon, about 0.8 km apart.
	d := smp.DistanceMeters(10.7725, 106.6980, 10.7798, 106.6990)
	if d < 780 || d > 840 {
		t.Fatalf("distance = %.0f m", d)
	}
	if smp.DistanceMeters(1, 2, 1, 2) != 0 {
		t.Fatal("distance to self")
	}
}

func TestPrincipalAllows(t *testing.T) {
	t.Parallel()
	if !(smp.Principal{Role: smp.RoleAdmin}).Allows(smp.RoleOps) {
		t.Error("admin must pass every role check")
	}
	if (smp.Principal{Role: smp.RoleFinance}).Allows(smp.RoleOps) {
		t.Error("finance passed an ops check")
	}
}
