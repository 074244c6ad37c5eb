package registry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisTimeout bounds dialling and each command to the Redis cache, for distribution's client and ours.
const redisTimeout = 2 * time.Second

// newRedisClient is a client of the blob-descriptor cache for readiness and the startup check; distribution keeps
// its own client with the same options.
func newRedisClient(cfg RedisConfig, password string) redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        cfg.Addrs,
		DB:           cfg.DB,
		Password:     password,
		DialTimeout:  redisTimeout,
		ReadTimeout:  redisTimeout,
		WriteTimeout: redisTimeout,
		PoolSize:     2,
	})
}

// redisCheck pings the cache: with Redis down, distribution fails every blob lookup, so the replica is not ready.
func redisCheck(c redis.UniversalClient) readinessCheck {
	return func(ctx context.Context) error {
		if err := c.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis cache: %w", err)
		}
		return nil
	}
}

// checkRedisEvictionPolicy warns when Redis would not evict cache entries: distribution's blob-descriptor cache
// sets no expiry and grows with every blob, so only an allkeys-* policy keeps it bounded (with noeviction a full
// Redis fails the writes; volatile-* policies never pick these keys).
func checkRedisEvictionPolicy(ctx context.Context, c redis.UniversalClient, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	res, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		logger.Warn("could not check the redis maxmemory-policy (CONFIG GET refused or redis unreachable); "+
			"make sure it is an allkeys-* policy such as allkeys-lru", "err", err)
		return
	}
	policy, ok := res["maxmemory-policy"]
	if !ok {
		logger.Warn("could not check the redis maxmemory-policy (CONFIG GET returned nothing); make sure it is an allkeys-* policy such as allkeys-lru")
		return
	}
	if !strings.HasPrefix(policy, "allkeys-") {
		logger.Warn("redis maxmemory-policy is not an allkeys-* policy: the blob-descriptor cache has no expiry and grows "+
			"without bound, so redis fills up and cache writes fail; set maxmemory and maxmemory-policy allkeys-lru",
			"maxmemory-policy", policy)
	}
}
