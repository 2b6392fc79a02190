package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"smp"
)

// Geo is the Redis smp.GeoIndex. A technician's live state is a HASH
// dispatch:tech:{id}; free technicians (online, available, not busy) are
// members of one GEO set per city and skill, dispatch:geo:{CITY}:{skill},
// so GEOSEARCH returns only candidates.
type Geo struct{ s *Store }

var _ smp.GeoIndex = Geo{}

// Geo returns the geo index.
func (s *Store) Geo() Geo { return Geo{s} }

func (g Geo) geoKey(city, skill string) string { return g.s.key(PrefixGeo, city, ":", skill) }

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (g Geo) read(ctx context.Context, c redis.Cmdable, id string) (smp.TechnicianPosition, bool, error) {
	m, err := c.HGetAll(ctx, g.s.key(PrefixTech, id)).Result()
	if err != nil {
		return smp.TechnicianPosition{}, false, wrap("read technician", err)
	}
	if len(m) == 0 {
		return smp.TechnicianPosition{}, false, nil
	}
	p := smp.TechnicianPosition{TechnicianID: id, City: m["city"], Online: m["online"] == "1", Available: m["available"] == "1", Busy: m["busy"] == "1",
		Conn: m["conn"]}
	p.Lat, _ = strconv.ParseFloat(m["lat"], 64)
	p.Lng, _ = strconv.ParseFloat(m["lng"], 64)
	if m["skills"] != "" {
		p.Skills = strings.Split(m["skills"], ",")
	}
	if ns, err := strconv.ParseInt(m["updated"], 10, 64); err == nil {
		p.UpdatedAt = time.Unix(0, ns)
	}
	return p, true, nil
}

func free(p smp.TechnicianPosition) bool { return p.Online && p.Available && !p.Busy }

// write queues the commands that move old to p (remove when p is nil).
func (g Geo) write(ctx context.Context, pipe redis.Pipeliner, old *smp.TechnicianPosition, p *smp.TechnicianPosition) {
	if old != nil {
		for _, sk := range old.Skills {
			pipe.ZRem(ctx, g.geoKey(old.City, sk), old.TechnicianID)
		}
	}
	if p == nil {
		pipe.Del(ctx, g.s.key(PrefixTech, old.TechnicianID))
		return
	}
	hk := g.s.key(PrefixTech, p.TechnicianID)
	pipe.HSet(ctx, hk, "city", p.City, "skills", strings.Join(p.Skills, ","), "online", boolStr(p.Online), "available", boolStr(p.Available),
		"busy", boolStr(p.Busy), "conn", p.Conn, "lat", strconv.FormatFloat(p.Lat, 'f', -1, 64), "lng", strconv.FormatFloat(p.Lng, 'f', -1, 64),
		"updated", strconv.FormatInt(p.UpdatedAt.UnixNano(), 10))
	pipe.Expire(ctx, hk, ttlOf(PrefixTech))
	if free(*p) && p.Lat != 0 && p.Lng != 0 {
		for _, sk := range p.Skills {
			pipe.GeoAdd(ctx, g.geoKey(p.City, sk), &redis.GeoLocation{Name: p.TechnicianID, Longitude: p.Lng, Latitude: p.Lat})
		}
	}
}

// Upsert replaces a technician's entry.
func (g Geo) Upsert(ctx context.Context, p smp.TechnicianPosition) error {
	return g.Update(ctx, p.TechnicianID, func(cur *smp.TechnicianPosition, ok bool) bool {
		*cur = p
		return true
	})
}

// Update changes an entry optimistically (WATCH/MULTI), retrying on conflict.
func (g Geo) Update(ctx context.Context, id string, fn func(p *smp.TechnicianPosition, ok bool) bool) error {
	hk := g.s.key(PrefixTech, id)
	for attempt := 0; attempt < 50; attempt++ {
		err := g.s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			old, ok, err := g.read(ctx, tx, id)
			if err != nil {
				return err
			}
			p := old
			keep := fn(&p, ok)
			p.TechnicianID = id
			_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				var prev *smp.TechnicianPosition
				if ok {
					prev = &old
				}
				switch {
				case keep:
					g.write(ctx, pipe, prev, &p)
				case ok:
					g.write(ctx, pipe, prev, nil)
				}
				return nil
			})
			return err
		}, hk)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return wrap("update technician", err)
	}
	return smp.Errorf(smp.ECONFLICT, "technician %s changed too often to update", id)
}

// Get returns a technician's entry.
func (g Geo) Get(ctx context.Context, id string) (smp.TechnicianPosition, bool, error) {
	return g.read(ctx, g.s.rdb, id)
}

// Nearby is GEOSEARCH ... BYRADIUS ... ASC WITHDIST COUNT limit.
func (g Geo) Nearby(ctx context.Context, city, skill string, lat, lng, radiusM float64, limit int) ([]smp.Candidate, error) {
	q := &redis.GeoSearchLocationQuery{GeoSearchQuery: redis.GeoSearchQuery{Longitude: lng, Latitude: lat, Radius: radiusM, RadiusUnit: "m", Sort: "ASC", Count: limit},
		WithDist: true}
	locs, err := g.s.rdb.GeoSearchLocation(ctx, g.geoKey(city, skill), q).Result()
	if err != nil {
		return nil, wrap("geosearch", err)
	}
	out := make([]smp.Candidate, 0, len(locs))
	for _, l := range locs {
		out = append(out, smp.Candidate{TechnicianID: l.Name, DistanceM: l.Dist})
	}
	return out, nil
}
