package registry

import (
	"context"
	"net/http"
	"path"
	"time"

	"github.com/distribution/distribution/v3/registry/auth"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/registry-kit/registry-kit/registry/manifestcache"
)

// DefaultManifestCacheMB is the default bound of the manifest cache: about ten thousand typical manifests.
const DefaultManifestCacheMB = 32

// How long a cached manifest may be served when another process could change the storage unheard:
//   - with Redis, replicas hear each other's writes through pub/sub (manifestcache.Peers) within the delivery time of
//     one message; peerTTL only bounds a message that is never sent (a replica dying between its write and its
//     PUBLISH, or Redis refusing it) or lost on a connection that died silently;
//   - on object storage without Redis, replicas cannot hear each other at all: entries live sharedTTL.
//
// On the filesystem without Redis this process is the only writer and entries live until a write invalidates them.
const (
	peerTTL   = 10 * time.Second
	sharedTTL = time.Second
)

// withManifestCache puts the manifest cache in front of next, unless it is turned off. It goes inside the access
// policy's enforcer and authorizes each request itself (answered from the grant the enforcer stored, or by the
// authenticating controller), so the cache never answers a request that may not pull the repository.
func (s *Server) withManifestCache(next http.Handler, reg prometheus.Registerer, redisPassword string) http.Handler {
	if s.cfg.ManifestCacheMB == 0 {
		return next
	}
	o := manifestcache.Options{
		MaxBytes:  int64(s.cfg.ManifestCacheMB) << 20,
		Authorize: s.authorizePull,
		PassOn:    withAuthDecision,
		// On object storage a blob HEAD costs distribution several round trips; on the filesystem the blob fast path
		// answers it with one stat.
		BlobHeads:  s.cfg.objectStorage(),
		Registerer: reg,
		Logger:     s.logger,
	}
	var peers *manifestcache.Peers
	switch {
	case len(s.cfg.Redis.Addrs) > 0:
		client := newRedisClient(s.cfg.Redis, redisPassword)
		peers = manifestcache.NewPeers(client, manifestChannel(s.cfg), s.logger)
		o.TTL, o.Publish = peerTTL, peers.Publish
		s.closers = append(s.closers, client)
	case s.cfg.objectStorage():
		o.TTL = sharedTTL
	}
	h := manifestcache.New(next, o)
	s.manifests = h
	if peers != nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			peers.Run(ctx, h)
		}()
		s.stopPeers = func() { cancel(); <-done }
	}
	return h
}

// manifestChannel is the pub/sub channel of the replicas sharing this storage.
func manifestChannel(cfg Config) string {
	where := "file://" + cfg.DataDir
	if cfg.objectStorage() {
		where = "s3://" + cfg.S3.Endpoint + "/" + cfg.S3.Bucket + path.Clean("/"+cfg.S3.RootDirectory)
	}
	return "registry-kit:manifests:" + where
}

// authorizePull checks pull access to repo as distribution would for a manifest GET.
func (s *Server) authorizePull(r *http.Request, repo string) (any, bool) {
	if s.ac == nil {
		return nil, true
	}
	access := []auth.Access{{Resource: auth.Resource{Type: "repository", Name: repo}, Action: "pull"}}
	grant, err := s.ac.Authorized(r, access...)
	return &authDecision{access: access, grant: grant, err: err}, err == nil
}

// withAuthDecision carries authorizePull's decision to distribution (onceAuthorized) for a request the cache
// passes on.
func withAuthDecision(r *http.Request, decision any) *http.Request {
	d, ok := decision.(*authDecision)
	if !ok {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), authDecisionKey{}, d))
}

// StorageChanged drops every cached manifest and blob answer, here and (through Redis) in the other replicas. Code
// that changes storage other than through the registry API (garbage collection) calls it after each change.
func (s *Server) StorageChanged(ctx context.Context) {
	if s.manifests != nil {
		s.manifests.InvalidateAll(ctx)
	}
}

// stopManifestCache stops listening for the other replicas' invalidations.
func (s *Server) stopManifestCache() {
	if s.stopPeers != nil {
		s.stopPeers()
		s.stopPeers = nil
	}
	for _, c := range s.closers {
		c.Close()
	}
	s.closers = nil
}
