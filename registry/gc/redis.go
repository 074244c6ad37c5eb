package gc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/distribution/distribution/v3"
	rediscache "github.com/distribution/distribution/v3/registry/storage/cache/redis"
	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"
)

// Redis coordinates collections among replicas sharing a Redis (the one that holds their blob descriptor cache):
// a lock key so one collection runs at a time, a fence key every replica checks on each guarded write, a sorted set
// journal scored by time, and Forget clears distribution's own cache keys, which all replicas read.
type Redis struct {
	client redis.UniversalClient
	prefix string
	// lockTTL bounds how long a crashed collector holds the lock or the fence; both are renewed while it runs.
	lockTTL time.Duration
	now     func() time.Time
	// fenceToken is the lock's token, also the fence's value, so only its collector renews the fence.
	fenceToken string
}

var _ Coordinator = (*Redis)(nil)

// NewRedis returns a coordinator over client. Its keys start with "registry-kit:gc:".
func NewRedis(client redis.UniversalClient) *Redis {
	return &Redis{client: client, prefix: "registry-kit:gc:", lockTTL: 30 * time.Second, now: time.Now}
}

func (r *Redis) key(k string) string { return r.prefix + k }

// Record adds digests to the journal and reads the fence in one pipeline: Redis runs them in order, so a write that
// saw no fence was journaled before any fence was set.
func (r *Redis) Record(ctx context.Context, digests []digest.Digest) error {
	now := float64(r.now().UnixMilli())
	pipe := r.client.Pipeline()
	if len(digests) > 0 {
		members := make([]redis.Z, len(digests))
		for i, d := range digests {
			members[i] = redis.Z{Score: now, Member: d.String()}
		}
		pipe.ZAdd(ctx, r.key("journal"), members...)
		// Bounded whether or not collections run.
		pipe.ZRemRangeByScore(ctx, r.key("journal"), "-inf", "("+strconv.FormatInt(r.now().Add(-JournalKeep).UnixMilli(), 10))
	}
	fence := pipe.Exists(ctx, r.key("fence"))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("journaling write for garbage collection: %w", err)
	}
	if fence.Val() > 0 {
		return ErrFenced
	}
	return nil
}

// unlockScript deletes key only while it still holds this collector's token.
var unlockScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)

// renewScript extends key's expiry only while it still holds this collector's token.
var renewScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) end return 0`)

// ErrLocked says another collection holds the lock.
var ErrLocked = errors.New("another garbage collection is running")

// Lock takes the lock or returns ErrLocked at once; it is renewed until release.
func (r *Redis) Lock(ctx context.Context) (func(), error) {
	token := rand.Text()
	ok, err := r.client.SetNX(ctx, r.key("lock"), token, r.lockTTL).Result()
	if err != nil {
		return nil, fmt.Errorf("taking the garbage collection lock in redis: %w", err)
	}
	if !ok {
		return nil, ErrLocked
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.lockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				ms := strconv.FormatInt(r.lockTTL.Milliseconds(), 10)
				renewScript.Run(context.Background(), r.client, []string{r.key("lock")}, token, ms)
				renewScript.Run(context.Background(), r.client, []string{r.key("fence")}, token, ms)
			}
		}
	}()
	r.fenceToken = token
	return func() {
		close(stop)
		<-done
		unlockScript.Run(context.Background(), r.client, []string{r.key("lock")}, token)
	}, nil
}

func (r *Redis) Fence(ctx context.Context) error {
	if err := r.client.Set(ctx, r.key("fence"), r.fenceToken, r.lockTTL).Err(); err != nil {
		return fmt.Errorf("setting the write fence in redis: %w", err)
	}
	return nil
}

func (r *Redis) Unfence(ctx context.Context) error {
	if err := r.client.Del(ctx, r.key("fence")).Err(); err != nil {
		return fmt.Errorf("lifting the write fence in redis: %w", err)
	}
	return nil
}

func (r *Redis) Touched(ctx context.Context, since time.Time) (map[digest.Digest]bool, error) {
	min := strconv.FormatInt(since.UnixMilli(), 10)
	if err := r.client.ZRemRangeByScore(ctx, r.key("journal"), "-inf", "("+min).Err(); err != nil {
		return nil, fmt.Errorf("pruning the garbage collection journal in redis: %w", err)
	}
	members, err := r.client.ZRangeByScore(ctx, r.key("journal"), &redis.ZRangeBy{Min: min, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("reading the garbage collection journal in redis: %w", err)
	}
	out := make(map[digest.Digest]bool, len(members))
	for _, m := range members {
		out[digest.Digest(m)] = true
	}
	return out, nil
}

// Forget clears the deleted blobs from distribution's Redis blob descriptor cache, globally and per repository.
func (r *Redis) Forget(ctx context.Context, d Deleted) error {
	p := rediscache.NewRedisBlobDescriptorCacheProvider(r.client)
	var errs []error
	for _, dg := range d.Blobs {
		if err := p.Clear(ctx, dg); err != nil && !isUnknown(err) {
			errs = append(errs, err)
		}
	}
	for repo, ds := range d.Links {
		scoped, err := p.RepositoryScoped(repo)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, dg := range ds {
			if err := scoped.Clear(ctx, dg); err != nil && !isUnknown(err) {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clearing deleted blobs from the redis blob descriptor cache: %w", err)
	}
	return nil
}

func isUnknown(err error) bool { return errors.Is(err, distribution.ErrBlobUnknown) }
