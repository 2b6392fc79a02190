package inmem

import (
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
	cells map[string]map[cell]map[string]bool // city -> cell -> technicians
}

var _ smp.GeoIndex = (*Geo)(nil)

// NewGeo returns an empty index.
func NewGeo() *Geo {
	return &Geo{pos: map[string]*smp.TechnicianPosition{}, cells: map[string]map[cell]map[string]bool{}}
}

func (g *Geo) unindex(p *smp.TechnicianPosition) {
	c := cellOf(p.Lat, p.Lng)
	if m := g.cells[p.City][c]; m != nil {
		delete(m, p.TechnicianID)
		if len(m) == 0 {
			delete(g.cells[p.City], c)
		}
	}
}

func (g *Geo) index(p *smp.TechnicianPosition) {
	if g.cells[p.City] == nil {
		g.cells[p.City] = map[cell]map[string]bool{}
	}
	c := cellOf(p.Lat, p.Lng)
	if g.cells[p.City][c] == nil {
		g.cells[p.City][c] = map[string]bool{}
	}
	g.cells[p.City][c][p.TechnicianID] = true
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

// Update changes an entry in place (or removes it when fn returns false).
func (g *Geo) Update(_ context.Context, id string, fn func(p *smp.TechnicianPosition, ok bool) bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old, ok := g.pos[id]
	var p smp.TechnicianPosition
	if ok {
		p = *old
		g.unindex(old)
	}
	if !fn(&p, ok) {
		delete(g.pos, id)
		return nil
	}
	p.TechnicianID = id
	g.pos[id] = &p
	g.index(&p)
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
func (g *Geo) Nearby(_ context.Context, city, skill string, lat, lng, radiusM float64, limit int) ([]smp.Candidate, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	dLat := radiusM / 111320.0
	dLng := radiusM / (111320.0 * math.Max(0.01, math.Cos(lat*math.Pi/180)))
	lo, hi := cellOf(lat-dLat, lng-dLng), cellOf(lat+dLat, lng+dLng)
	grid := g.cells[city]
	var out []smp.Candidate
	for a := lo.lat; a <= hi.lat; a++ {
		for b := lo.lng; b <= hi.lng; b++ {
			for id := range grid[cell{a, b}] {
				p := g.pos[id]
				if !p.Online || !p.Available || p.Busy || !slices.Contains(p.Skills, skill) {
					continue
				}
				if d := smp.DistanceMeters(lat, lng, p.Lat, p.Lng); d <= radiusM {
					out = append(out, smp.Candidate{TechnicianID: id, DistanceM: d})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].DistanceM != out[j].DistanceM {
			return out[i].DistanceM < out[j].DistanceM
		}
		return out[i].TechnicianID < out[j].TechnicianID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
