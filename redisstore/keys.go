// Package redisstore implements SMP's dispatch-side interfaces on Redis
// (go-redis), under the key names the runbook uses, so that several smp
// processes share queues, invitations, the geo index and locks.
package redisstore

import (
	"strings"
	"time"
)

// KeyClass is one family of keys and its expiry policy. Every key SMP
// writes belongs to a class listed in KeyClasses; a test scans Redis
// after load and fails on any key without a TTL outside the classes
// declared persistent (the runbook's INC-004 leak: keys that never expire).
type KeyClass struct {
	Prefix string
	// TTL set on every write; 0 only for persistent classes.
	TTL        time.Duration
	Persistent bool
	// Cache classes may be flushed by ops (smp ctl redis flush-cache).
	Cache bool
	Why   string
}

// Key prefixes.
const (
	PrefixQueue       = "dispatch:queue:"        // LIST per city: the runbook's LLEN dispatch:queue:HCMC
	PrefixQueued      = "dispatch:queued:"       // STRING per queued order: dedupe marker
	PrefixInvitations = "dispatch:invitations:"  // HASH per order: technician -> invitation
	PrefixTechInv     = "dispatch:techinv:"      // SET per technician: orders offered to them
	PrefixOpen        = "dispatch:open"          // SET of open invitations (order|technician), for counts
	PrefixGeo         = "dispatch:geo:"          // GEO per city and skill: free technicians
	PrefixTech        = "dispatch:tech:"         // HASH per technician: live state
	PrefixLock        = "dispatch:lock:"         // STRING lease
	PrefixStock       = "cache:wms:stock:"       // STRING cached wms stock per SKU
	PrefixCustomer    = "cache:inside:customer:" // STRING cached inside customer info
	PrefixSession     = "session:"               // STRING per technician: their newest connection's id (process/connection)
	ChannelNotify     = "dispatch:notify"        // pub/sub channel: messages for technicians connected to another process
	// Logins (logins.go): the runbook's session:* keys of customers and
	// technicians, their one-time codes and the rate counters.
	PrefixLoginSession = "session:login:" // HASH per login session: owner, secret hash, expiry
	PrefixSessionOwner = "session:owner:" // SET per owner (kind:id): their session ids
	PrefixOTP          = "otp:"           // HASH per phone: the one-time code's hash, expiry, attempts
	PrefixRate         = "ratelimit:"     // STRING per key and window: a counter
	// The fraud detector's windows (fraud.go, runbook INC-011).
	PrefixFraudPartnerTopups = "fraud:partner:topups:" // ZSET per partner: its top-ups within the kept span
	PrefixFraudPartner       = "fraud:partner:"        // HASH per partner: top-up count, sum, largest ratio, country
	PrefixFraudIP            = "fraud:ip:topups:"      // ZSET per IP: its top-ups within the kept span
	PrefixFraudSeen          = "fraud:seen:"           // STRING per event: the answer its first record got
)

// CachePrefix: every cache class lives under it, and only keys under it
// may be flushed by ops.
const CachePrefix = "cache:"

// KeyClasses is the one place that says how long each key lives.
var KeyClasses = []KeyClass{
	{Prefix: PrefixQueue, Persistent: true, Why: "work queue: engines drain it; the database rebuilds it (sweeper)"},
	// Short: a process killed between BRPOP and deleting the marker leaves
	// it behind, and until it expires the sweeper's re-push is swallowed.
	// A duplicate queue entry is harmless (dispatch lock, stage check).
	{Prefix: PrefixQueued, TTL: 30 * time.Second, Why: "dedupe marker (maybe queued): set at push, left to expire (a pop is one BRPOP); a push that finds it checks the list with LPOS"},
	{Prefix: PrefixInvitations, TTL: time.Hour, Why: "deleted at assignment and at the end of a round; the TTL bounds a leak"},
	{Prefix: PrefixTechInv, TTL: time.Hour, Why: "index of invitations; refreshed on every offer"},
	{Prefix: PrefixOpen, Persistent: true, Why: "one set; members removed as invitations close or are deleted"},
	{Prefix: PrefixGeo, Persistent: true, Why: "one GEO set per city and skill, holding only free technicians"},
	{Prefix: PrefixTech, TTL: 24 * time.Hour, Why: "live technician state, refreshed on every update"},
	{Prefix: PrefixLock, Why: "lease; TTL given by the caller"},
	{Prefix: PrefixStock, TTL: 30 * time.Second, Cache: true, Why: "cache of wms stock: must expire (runbook INC-004)"},
	{Prefix: PrefixCustomer, TTL: 24 * time.Hour, Cache: true, Why: "last good customer info from inside, served stale while inside is down"},
	{Prefix: PrefixSession, TTL: 2 * time.Minute, Why: "refreshed by heartbeats while the connection lives"},
	{Prefix: PrefixLoginSession, TTL: 30 * 24 * time.Hour, Why: "TTL set at login: the session's lifetime (--session-ttl, 30 days by default); deleted at logout or revocation"},
	{Prefix: PrefixSessionOwner, TTL: 30 * 24 * time.Hour, Why: "TTL raised to the owner's longest session at each login"},
	{Prefix: PrefixOTP, TTL: 5 * time.Minute, Why: "a one-time code lives 5 minutes; deleted once used"},
	{Prefix: PrefixFraudPartnerTopups, TTL: 25 * time.Hour, Why: "TTL the kept span (24 h by default) and an hour, refreshed by each top-up"},
	{Prefix: PrefixFraudPartner, Persistent: true, Why: "a partner's top-up history (the average the amount rule compares with) and registered country: one small hash per partner"},
	{Prefix: PrefixFraudIP, TTL: 25 * time.Hour, Why: "TTL the kept span and an hour, refreshed by each top-up"},
	{Prefix: PrefixFraudSeen, TTL: 25 * time.Hour, Why: "an event's first answer, for its redeliveries; TTL the kept span and an hour"},
	{Prefix: PrefixRate, TTL: 10 * time.Minute, Why: "TTL set at the first hit: the counter's window (10 minutes by default)"},
}

// ClassOf returns the class of a key (without the store's prefix).
func ClassOf(key string) (KeyClass, bool) {
	best := -1
	for i, c := range KeyClasses {
		if strings.HasPrefix(key, c.Prefix) && (best < 0 || len(c.Prefix) > len(KeyClasses[best].Prefix)) {
			best = i
		}
	}
	if best < 0 {
		return KeyClass{}, false
	}
	return KeyClasses[best], true
}

func ttlOf(prefix string) time.Duration {
	c, _ := ClassOf(prefix)
	return c.TTL
}

// TTLOf returns the TTL of key's class (0 for unknown or persistent keys);
// the embedded cache uses it too, so both backends expire alike.
func TTLOf(key string) time.Duration { return ttlOf(key) }
