package redisstore

import (
	"context"
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
	p, ok := parsePosition(id, m)
	return p, ok, nil
}

// parsePosition is a technician's entry from its hash's fields.
func parsePosition(id string, m map[string]string) (smp.TechnicianPosition, bool) {
	if len(m) == 0 {
		return smp.TechnicianPosition{}, false
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
	return p, true
}

func free(p smp.TechnicianPosition) bool { return p.Online && p.Available && !p.Busy }

// Upsert replaces a technician's entry.
func (g Geo) Upsert(ctx context.Context, p smp.TechnicianPosition) error {
	return g.Update(ctx, p.TechnicianID, func(cur *smp.TechnicianPosition, ok bool) bool {
		*cur = p
		return true
	})
}

// updateScript writes a technician's entry only if its hash still holds
// exactly what was read (compare and set, as WATCH did, in one round trip):
// KEYS[1] the hash, then the geo sets to leave, then the geo sets to join;
// ARGV: id, how many fields were read and those fields' names and values,
// mode ("keep": write; "del": remove), the hash's TTL in seconds, lng, lat,
// how many sets to leave and to join, then the fields to write. It returns
// 0 when the hash changed since it was read (the caller reads again).
var updateScript = redis.NewScript(`#!lua
local id = ARGV[1]
local n = tonumber(ARGV[2])
local cur = redis.call('HGETALL', KEYS[1])
if #cur ~= 2 * n then
  return 0
end
local want = {}
for i = 1, n do
  want[ARGV[1 + 2 * i]] = ARGV[2 + 2 * i]
end
for i = 1, #cur, 2 do
  if want[cur[i]] ~= cur[i + 1] then
    return 0
  end
end
local a = 2 * n + 3
local mode, ttl, lng, lat = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
local nrem, nadd = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
for k = 2, 1 + nrem do
  redis.call('ZREM', KEYS[k], id)
end
if mode == 'del' then
  redis.call('DEL', KEYS[1])
  return 1
end
local fields = {}
for i = a + 6, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ttl)
for k = 2 + nrem, 1 + nrem + nadd do
  redis.call('GEOADD', KEYS[k], lng, lat, id)
end
return 1`)

// Update changes an entry optimistically, retrying on conflict: it reads
// the hash (HGETALL), computes the change in Go, and writes it with
// updateScript only if the hash is still what was read: two round trips
// (WATCH, HGETALL, MULTI/EXEC and UNWATCH were four).
func (g Geo) Update(ctx context.Context, id string, fn func(p *smp.TechnicianPosition, ok bool) bool) error {
	hk := g.s.key(PrefixTech, id)
	for attempt := 0; attempt < 50; attempt++ {
		raw, err := g.s.rdb.HGetAll(ctx, hk).Result()
		if err != nil {
			return wrap("update technician", err)
		}
		old, ok := parsePosition(id, raw)
		p := old
		keep := fn(&p, ok)
		p.TechnicianID = id
		if !keep && !ok {
			return nil // nothing there, nothing to write
		}
		keys := []string{hk}
		args := make([]any, 0, 2+2*len(raw)+6+18)
		args = append(args, id, len(raw))
		for f, v := range raw {
			args = append(args, f, v)
		}
		mode := "del"
		if keep {
			mode = "keep"
		}
		var rem, add []string
		if ok {
			for _, sk := range old.Skills {
				rem = append(rem, g.geoKey(old.City, sk))
			}
		}
		if keep && free(p) && p.Lat != 0 && p.Lng != 0 {
			for _, sk := range p.Skills {
				add = append(add, g.geoKey(p.City, sk))
			}
		}
		keys = append(append(keys, rem...), add...)
		args = append(args, mode, int(ttlOf(PrefixTech).Seconds()), strconv.FormatFloat(p.Lng, 'f', -1, 64), strconv.FormatFloat(p.Lat, 'f', -1, 64),
			len(rem), len(add))
		if keep {
			args = append(args, "city", p.City, "skills", strings.Join(p.Skills, ","), "online", boolStr(p.Online), "available", boolStr(p.Available),
				"busy", boolStr(p.Busy), "conn", p.Conn, "lat", strconv.FormatFloat(p.Lat, 'f', -1, 64), "lng", strconv.FormatFloat(p.Lng, 'f', -1, 64),
				"updated", strconv.FormatInt(p.UpdatedAt.UnixNano(), 10))
		}
		done, err := updateScript.Run(ctx, g.s.rdb, keys, args...).Int()
		if err != nil {
			return wrap("update technician", err)
		}
		if done == 1 {
			return nil
		}
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
