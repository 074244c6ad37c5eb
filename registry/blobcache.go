package registry

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/distribution/distribution/v3"
	registrymiddleware "github.com/distribution/distribution/v3/registry/middleware/registry"
	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/cache"
	memorycache "github.com/distribution/distribution/v3/registry/storage/cache/memory"
	rediscache "github.com/distribution/distribution/v3/registry/storage/cache/redis"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/redis/go-redis/v9"
)

// distribution fixes its blob descriptor cache when the App is built, and an in-memory one then keeps saying a blob
// exists after garbage collection deleted it. So the App is built with no storage.cache, and with one provider for
// the whole process (registry options are global) that hands each call to the cache of the server the request
// came in through: blobCache, found in the request context, whose in-memory cache the collector can replace.

// blobCache is one server's blob descriptor cache.
type blobCache struct {
	p atomic.Pointer[cache.BlobDescriptorCacheProvider]
	// inMemory says reset replaces the provider (with Redis, the collector clears the deleted keys instead).
	inMemory bool
}

func newBlobCache(redisClient redis.UniversalClient) *blobCache {
	c := &blobCache{inMemory: redisClient == nil}
	var p cache.BlobDescriptorCacheProvider
	if redisClient != nil {
		p = rediscache.NewRedisBlobDescriptorCacheProvider(redisClient)
	} else {
		p = memorycache.NewInMemoryBlobDescriptorCacheProvider(memorycache.DefaultSize)
	}
	c.p.Store(&p)
	registerCacheDispatch()
	return c
}

// reset forgets everything an in-memory cache holds.
func (c *blobCache) reset() {
	if c.inMemory {
		p := memorycache.NewInMemoryBlobDescriptorCacheProvider(memorycache.DefaultSize)
		c.p.Store(&p)
	}
}

type blobCacheKey struct{}

// withBlobCache puts c in ctx for the dispatching provider.
func withBlobCache(ctx context.Context, c *blobCache) context.Context {
	return context.WithValue(ctx, blobCacheKey{}, c)
}

func providerFrom(ctx context.Context) cache.BlobDescriptorCacheProvider {
	if c, ok := ctx.Value(blobCacheKey{}).(*blobCache); ok {
		return *c.p.Load()
	}
	return nil
}

var registerDispatchOnce sync.Once

func registerCacheDispatch() {
	registerDispatchOnce.Do(func() {
		_ = registrymiddleware.RegisterOptions(storage.BlobDescriptorCacheProvider(cacheDispatch{}))
	})
}

// cacheDispatch is the process-wide provider; a request without a blobCache is served uncached.
type cacheDispatch struct{}

var _ cache.BlobDescriptorCacheProvider = cacheDispatch{}

func (cacheDispatch) Stat(ctx context.Context, d digest.Digest) (v1.Descriptor, error) {
	if p := providerFrom(ctx); p != nil {
		return p.Stat(ctx, d)
	}
	return v1.Descriptor{}, distribution.ErrBlobUnknown
}

func (cacheDispatch) Clear(ctx context.Context, d digest.Digest) error {
	if p := providerFrom(ctx); p != nil {
		return p.Clear(ctx, d)
	}
	return nil
}

func (cacheDispatch) SetDescriptor(ctx context.Context, d digest.Digest, desc v1.Descriptor) error {
	if p := providerFrom(ctx); p != nil {
		return p.SetDescriptor(ctx, d, desc)
	}
	return nil
}

func (cacheDispatch) RepositoryScoped(repo string) (distribution.BlobDescriptorService, error) {
	return scopedDispatch{repo: repo}, nil
}

type scopedDispatch struct{ repo string }

func (s scopedDispatch) scoped(ctx context.Context) distribution.BlobDescriptorService {
	p := providerFrom(ctx)
	if p == nil {
		return nil
	}
	bs, err := p.RepositoryScoped(s.repo)
	if err != nil {
		return nil
	}
	return bs
}

func (s scopedDispatch) Stat(ctx context.Context, d digest.Digest) (v1.Descriptor, error) {
	if bs := s.scoped(ctx); bs != nil {
		return bs.Stat(ctx, d)
	}
	return v1.Descriptor{}, distribution.ErrBlobUnknown
}

func (s scopedDispatch) Clear(ctx context.Context, d digest.Digest) error {
	if bs := s.scoped(ctx); bs != nil {
		return bs.Clear(ctx, d)
	}
	return nil
}

func (s scopedDispatch) SetDescriptor(ctx context.Context, d digest.Digest, desc v1.Descriptor) error {
	if bs := s.scoped(ctx); bs != nil {
		return bs.SetDescriptor(ctx, d, desc)
	}
	return nil
}
