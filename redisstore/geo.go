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

// Upsert replaces a technician's entry.
func (g Geo) Upsert(ctx context.Context, p smp.TechnicianPosition) error {
	return g.Update(ctx, p.TechnicianID, smp.TechnicianChange{Set: smp.AllTechnicianFields, To: p, Create: true})
}

// updateScript makes a smp.TechnicianChange atomically, in one round
// trip: it reads the hash, checks the change's conditions, writes the
// fields and moves the technician between the geo sets (a member of
// dispatch:geo:{CITY}:{skill} for each skill exactly when online,
// available, not busy and placed). KEYS[1] the hash; ARGV: id, the geo
// sets' key prefix, mode ("remove", "create" or "update"), IfConn, the
// hash's TTL in seconds, then the fields to set as name, value pairs. The
// geo sets' keys are derived from the hash's city and skills (SMP's Redis
// is one server, as in heldScript). Returns 1 when it changed the entry, 0
// when it left it as it was. The GEOADDs come before any other write, so
// that a position Redis refuses leaves the entry unchanged.
var updateScript = redis.NewScript(`#!lua
local id, gp, mode, ifconn, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local cur = redis.call('HGETALL', KEYS[1])
local old = {}
for i = 1, #cur, 2 do old[cur[i]] = cur[i + 1] end
local exists = #cur > 0
local function sets(e)
  local out = {}
  if e['skills'] and e['skills'] ~= '' then
    for sk in string.gmatch(e['skills'], '[^,]+') do out[#out + 1] = gp .. (e['city'] or '') .. ':' .. sk end
  end
  return out
end
local function member(e)
  return e['online'] == '1' and e['available'] == '1' and e['busy'] ~= '1' and (tonumber(e['lat']) or 0) ~= 0 and (tonumber(e['lng']) or 0) ~= 0
end
if mode == 'remove' then
  if not exists then return 0 end
  for _, k in ipairs(sets(old)) do redis.call('ZREM', k, id) end
  redis.call('DEL', KEYS[1])
  return 1
end
if not exists and mode ~= 'create' then return 0 end
if exists and ifconn ~= '' and old['conn'] and old['conn'] ~= '' and old['conn'] ~= ifconn then return 0 end
local new, kv = {}, {}
for k, v in next, old do new[k] = v end
for i = 6, #ARGV, 2 do
  new[ARGV[i]] = ARGV[i + 1]
  kv[#kv + 1] = ARGV[i]
  kv[#kv + 1] = ARGV[i + 1]
end
if not exists and not new['city'] then
  new['city'] = ''
  kv[#kv + 1] = 'city'
  kv[#kv + 1] = ''
end
local keep = {}
if member(new) then
  for _, k in ipairs(sets(new)) do
    redis.call('GEOADD', k, new['lng'], new['lat'], id)
    keep[k] = true
  end
end
if exists then
  for _, k in ipairs(sets(old)) do
    if not keep[k] then redis.call('ZREM', k, id) end
  end
end
if #kv > 0 then redis.call('HSET', KEYS[1], unpack(kv)) end
redis.call('EXPIRE', KEYS[1], ttl)
return 1`)

// Update makes change atomically: one script, one round trip (a read and
// a compare-and-set script were two; WATCH, HGETALL, MULTI/EXEC and
// UNWATCH were four).
func (g Geo) Update(ctx context.Context, id string, change smp.TechnicianChange) error {
	mode := "update"
	switch {
	case change.Remove:
		mode = "remove"
	case change.Create:
		mode = "create"
	}
	args := make([]any, 0, 5+16)
	args = append(args, id, g.s.key(PrefixGeo), mode, change.IfConn, int(ttlOf(PrefixTech).Seconds()))
	if !change.Remove {
		set, p := change.Set, change.To
		if set&smp.FieldCity != 0 {
			args = append(args, "city", p.City)
		}
		if set&smp.FieldSkills != 0 {
			args = append(args, "skills", strings.Join(p.Skills, ","))
		}
		if set&smp.FieldLocation != 0 {
			args = append(args, "lat", strconv.FormatFloat(p.Lat, 'f', -1, 64), "lng", strconv.FormatFloat(p.Lng, 'f', -1, 64))
		}
		if set&smp.FieldOnline != 0 {
			args = append(args, "online", boolStr(p.Online))
		}
		if set&smp.FieldAvailable != 0 {
			args = append(args, "available", boolStr(p.Available))
		}
		if set&smp.FieldBusy != 0 {
			args = append(args, "busy", boolStr(p.Busy))
		}
		if set&smp.FieldConn != 0 {
			args = append(args, "conn", p.Conn)
		}
		if set&smp.FieldUpdatedAt != 0 {
			args = append(args, "updated", strconv.FormatInt(p.UpdatedAt.UnixNano(), 10))
		}
	}
	return wrap("update technician", updateScript.Run(ctx, g.s.rdb, []string{g.s.key(PrefixTech, id)}, args...).Err())
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
