package inmem_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"smp/dispatchtest"
	"smp/inmem"
)

func BenchmarkNearby(b *testing.B) {
	for _, n := range []int{200, 10000} {
		for _, radius := range []float64{2000, 5000} {
			b.Run(fmt.Sprintf("technicians=%d/radius=%.0fkm", n, radius/1000), func(b *testing.B) {
				rng := mrand.New(mrand.NewPCG(1, 2))
				g := inmem.NewGeo()
				dispatchtest.Fill(b, g, n, rng)
				ctx := context.Background()
				for b.Loop() {
					g.Nearby(ctx, "HCMC", "plumbing", 10.70+rng.Float64()*0.18, 106.60+rng.Float64()*0.20, radius, 3)
				}
			})
		}
	}
}
