package redisstore_test

import (
	"strings"
	"testing"

	"smp/redisstore"
)

func TestKeyClasses(t *testing.T) {
	t.Parallel()
	for _, c := range redisstore.KeyClasses {
		if c.Cache != strings.HasPrefix(c.Prefix, redisstore.CachePrefix) {
			t.Errorf("%s: cache classes, and only they, live under %s", c.Prefix, redisstore.CachePrefix)
		}
		if !c.Persistent && c.TTL == 0 && c.Prefix != redisstore.PrefixLock {
			t.Errorf("%s: neither persistent nor given a TTL", c.Prefix)
		}
		if c.Why == "" {
			t.Errorf("%s: say why", c.Prefix)
		}
	}
	if c, ok := redisstore.ClassOf("dispatch:queued:o1"); !ok || c.Prefix != redisstore.PrefixQueued {
		t.Fatalf("longest prefix wins: %+v", c)
	}
}

func TestCheckFlushPattern(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"cache:wms:stock:*", "cache:*", "cache:wms:stock:SKU-1"} {
		if err := redisstore.CheckFlushPattern(p); err != nil {
			t.Errorf("%q refused: %v", p, err)
		}
	}
	for p, mention := range map[string]string{"*": "session:*", "session:*": "session:*", "dispatch:*": "dispatch:lock:*",
		"dispatch:lock:*": "dispatch:lock:", "c*": "cache", "": "required", "?ache:*": "cache", "[c]ache:*": "cache"} {
		err := redisstore.CheckFlushPattern(p)
		if err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("%q: %v, want a refusal mentioning %q", p, err, mention)
		}
	}
}
