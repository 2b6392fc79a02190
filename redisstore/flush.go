package redisstore

import (
	"context"
	"strings"

	"smp"
)

// CheckFlushPattern accepts only SCAN patterns whose literal beginning
// lies inside the cache classes ("cache:..."): sessions, locks and
// dispatch keys can never match (runbook INC-004: "chỉ flush cache, KHÔNG
// flush session/lock").
func CheckFlushPattern(pattern string) error {
	if strings.TrimSpace(pattern) == "" {
		return smp.Errorf(smp.EINVALID, "--pattern is required, e.g. 'cache:wms:stock:*'")
	}
	literal := pattern
	if i := strings.IndexAny(pattern, "*?[\\"); i >= 0 {
		literal = pattern[:i]
	}
	if strings.HasPrefix(literal, CachePrefix) {
		return nil
	}
	could := "keys outside any cache"
	var kinds []string
	for _, c := range KeyClasses {
		if strings.HasPrefix(c.Prefix, literal) || strings.HasPrefix(literal, c.Prefix) {
			kinds = append(kinds, c.Prefix+"*")
		}
	}
	if len(kinds) > 0 {
		could = strings.Join(kinds, ", ")
	}
	return smp.Errorf(smp.EINVALID, "refusing pattern %q: only cache keys (%s...) may be flushed; it could match %s", pattern, CachePrefix, could)
}

// FlushCache deletes keys matching pattern with SCAN and UNLINK (never
// KEYS, which blocks Redis) and returns how many it deleted (or would).
func (s *Store) FlushCache(ctx context.Context, pattern string, dryRun bool) (int64, error) {
	if err := CheckFlushPattern(pattern); err != nil {
		return 0, err
	}
	var n int64
	iter := s.rdb.Scan(ctx, 0, s.prefix+pattern, 1000).Iterator()
	batch := make([]string, 0, 500)
	flush := func() error {
		if len(batch) == 0 || dryRun {
			batch = batch[:0]
			return nil
		}
		err := s.rdb.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return wrap("unlink", err)
	}
	for iter.Next(ctx) {
		n++
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, wrap("scan", err)
	}
	return n, flush()
}
