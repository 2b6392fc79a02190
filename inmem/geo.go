package inmem

import (
	"container/heap"
	"context"
	"math"
	"slices"
	"sort"
	"sync"

	"smp"
)

// cellDeg is the grid cell size in degrees (about 1.1 km of latitude).
const cellDeg = 0.01

type cell struct{ lat, lng int32 }

func cellOf(lat, lng float64) cell {
	return cell{int32(math.Floor(lat / cellDeg)), int32(math.Floor(lng / cellDeg))}
}

// Geo is an in-process smp.GeoIndex: a uniform grid per city, so a search
// reads only the cells its radius covers.
type Geo struct {
	mu    sync.RWMutex
	pos   map[string]*smp.TechnicianPosition
	cells map[string]map[cell]map[string]*smp.TechnicianPosition // city -> cell -> technicians (the entries of pos)
}

var _ smp.GeoIndex = (*Geo)(nil)

// NewGeo returns an empty index.
func NewGeo() *Geo {
	return &Geo{pos: map[string]*smp.TechnicianPosition{}, cells: map[string]map[cell]map[string]*smp.TechnicianPosition{}}
}

func (g *Geo) unindex(p *smp.TechnicianPosition) {
	g.unindexAt(p.City, cellOf(p.Lat, p.Lng), p.TechnicianID)
}

func (g *Geo) unindexAt(city string, c cell, id string) {
	if m := g.cells[city][c]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(g.cells[city], c)
		}
	}
}

func (g *Geo) index(p *smp.TechnicianPosition) {
	if g.cells[p.City] == nil {
		g.cells[p.City] = map[cell]map[string]*smp.TechnicianPosition{}
	}
	c := cellOf(p.Lat, p.Lng)
	if g.cells[p.City][c] == nil {
		g.cells[p.City][c] = map[string]*smp.TechnicianPosition{}
	}
	g.cells[p.City][c][p.TechnicianID] = p
}

// Upsert replaces a technician's entry.
func (g *Geo) Upsert(_ context.Context, p smp.TechnicianPosition) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.pos[p.TechnicianID]; ok {
		g.unindex(old)
	}
	c := p
	c.Skills = slices.Clone(p.Skills)
	g.pos[p.TechnicianID] = &c
	g.index(&c)
	return nil
}

// Update makes change on an entry in place (or removes it). An entry
// that stays in its grid cell (a phone's location message moves it a few
// metres, an availability message not at all) is changed where it is: no
// allocation and no re-indexing, for the thousands of location messages
// connected phones send.
func (g *Geo) Update(_ context.Context, id string, change smp.TechnicianChange) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.pos[id]; ok {
		city, c := old.City, cellOf(old.Lat, old.Lng)
		if !change.Apply(old, true) {
			g.unindexAt(city, c, id)
			delete(g.pos, id)
			return nil
		}
		old.TechnicianID = id
		if old.City != city || cellOf(old.Lat, old.Lng) != c {
			g.unindexAt(city, c, id)
			g.index(old)
		}
		return nil
	}
	p := &smp.TechnicianPosition{}
	if !change.Apply(p, false) {
		return nil
	}
	p.TechnicianID = id
	g.pos[id] = p
	g.index(p)
	return nil
}

// Get returns a technician's entry.
func (g *Geo) Get(_ context.Context, id string) (smp.TechnicianPosition, bool, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if p, ok := g.pos[id]; ok {
		return *p, true, nil
	}
	return smp.TechnicianPosition{}, false, nil
}

// Nearby returns matching technicians within radiusM, nearest first.
// With a limit it keeps only the limit nearest while scanning (a bounded
// max-heap) instead of sorting every match: the search then costs little
// more in a dense city than in a sparse one.
func (g *Geo) Nearby(_ context.Context, city, skill string, lat, lng, radiusM float64, limit int) ([]smp.Candidate, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	dLat := radiusM / 111320.0
	dLng := radiusM / (111320.0 * math.Max(0.01, math.Cos(lat*math.Pi/180)))
	lo, hi := cellOf(lat-dLat, lng-dLng), cellOf(lat+dLat, lng+dLng)
	grid := g.cells[city]
	var out nearest
	for a := lo.lat; a <= hi.lat; a++ {
		for b := lo.lng; b <= hi.lng; b++ {
			for id, p := range grid[cell{a, b}] {
				if !p.Online || !p.Available || p.Busy || math.Abs(p.Lat-lat) > dLat || math.Abs(p.Lng-lng) > dLng {
					continue
				}
				d := smp.DistanceMeters(lat, lng, p.Lat, p.Lng)
				if d > radiusM || (limit > 0 && len(out) == limit && !closer(smp.Candidate{TechnicianID: id, DistanceM: d}, out[0])) {
					continue
				}
				if !slices.Contains(p.Skills, skill) {
					continue
				}
				c := smp.Candidate{TechnicianID: id, DistanceM: d}
				if limit <= 0 || len(out) < limit {
					heap.Push(&out, c)
				} else {
					out[0] = c
					heap.Fix(&out, 0)
				}
			}
		}
	}
	res := []smp.Candidate(out)
	sort.Slice(res, func(i, j int) bool { return closer(res[i], res[j]) })
	return res, nil
}

// closer orders candidates by distance, then id (a stable order for ties).
func closer(a, b smp.Candidate) bool {
	if a.DistanceM != b.DistanceM {
		return a.DistanceM < b.DistanceM
	}
	return a.TechnicianID < b.TechnicianID
}

// nearest is a max-heap of candidates: the farthest kept is at the root.
type nearest []smp.Candidate

func (h nearest) Len() int           { return len(h) }
func (h nearest) Less(i, j int) bool { return closer(h[j], h[i]) }
func (h nearest) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nearest) Push(x any)        { *h = append(*h, x.(smp.Candidate)) }
func (h *nearest) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
