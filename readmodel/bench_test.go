package readmodel_test

import (
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"smp"
	"smp/readmodel/bleveindex"
)

var measure = flag.Bool("measure", false, "run TestCommitToSearchable (commit → searchable latency, docs/s)")

// BenchmarkRawBulk is the backend's own bulk rate (500 orders a request),
// the reference for BenchmarkCommitToSearchable.
func BenchmarkRawBulk(b *testing.B) {
	x, err := bleveindex.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	body, _ := mappingBody()
	if err := x.CreateIndex(ctx, "orders-v1", body); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		ops := make([]smp.IndexOp, 500)
		for j := range ops {
			id := fmt.Sprintf("O%09d", n)
			n++
			ops[j] = smp.IndexOp{Index: "orders-v1", ID: id, Version: int64(n), Source: []byte(`{"id":"` + id + `","customer_id":"C0001","city":"HCMC","service":"aircon","lat":10.77,"lng":106.7,"address":"1 Lê Lợi","price_vnd":250000,"stage":"01_created","payment_status":"pending","technician_id":null,"created_at":1000,"stage_changed_at":1000,"dispatch_not_before":0}`)}
		}
		if _, err := x.Bulk(ctx, ops); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "docs/s")
}

func mappingBody() ([]byte, error) {
	return []byte(`{"mappings":{"dynamic":"false","properties":{"id":{"type":"keyword"},"customer_id":{"type":"keyword"},"city":{"type":"keyword"},"address":{"type":"text"},"price_vnd":{"type":"long"},"stage":{"type":"keyword"},"created_at":{"type":"long"}}}}`), nil
}

// TestCommitToSearchable measures commit → searchable latency and the
// documents indexed per second through the whole embedded pipeline (a
// measurement: it fails only when nothing arrives).
func TestCommitToSearchable(t *testing.T) {
	if !*measure {
		t.Skip("a measurement: go test ./readmodel -run CommitToSearchable -measure -v")
	}
	p := open(t)
	p.start(nil)
	const n = 200
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("B%05d", i)
		at := time.Now()
		p.insertOrder(id, "1 Lê Lợi")
		for {
			if _, err := p.index.Get(ctx, "orders", id); err == nil {
				break
			}
			if time.Since(at) > 10*time.Second {
				t.Fatalf("%s not searchable after 10 s", id)
			}
			time.Sleep(time.Millisecond) // polling the index: the measurement's resolution
		}
		lat = append(lat, time.Since(at))
	}
	serial := time.Since(start)
	slices.Sort(lat)
	// Throughput: a burst of rows, then the time until all are indexed.
	burst := time.Now()
	for i := 0; i < n; i++ {
		p.insertOrder(fmt.Sprintf("C%05d", i), "2 Lê Lợi")
	}
	for {
		c, _ := p.index.Count(ctx, "orders")
		if c == 2*n {
			break
		}
		if time.Since(burst) > 30*time.Second {
			t.Fatalf("burst not indexed after 30 s: %d", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("commit → searchable over %d single commits: p50 %v, p99 %v (serial run %v); a burst of %d commits indexed at %.0f docs/s (commits included)",
		n, lat[n/2], lat[n*99/100], serial, n, float64(n)/time.Since(burst).Seconds())
}
