package manifestcache

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Peers carries invalidations between the replicas that share a storage, over a Redis pub/sub channel. Each replica
// publishes the repository a write through it changed, after the change is stored; the others drop their entries
// for it on receipt. While a replica's subscription is down, and until it is confirmed again, its cache neither
// answers nor fills, and it starts again empty, so messages sent meanwhile cannot be missed. What is left is the
// window between a write being stored and its message arriving (the delivery time of a PUBLISH), and a replica that
// fails to publish (it crashed after the write, or Redis refused the message): Options.TTL bounds that.
type Peers struct {
	client  redis.UniversalClient
	channel string
	id      string
	log     *slog.Logger
}

// NewPeers uses channel on client; replicas of one storage must use the same channel, other storages another.
func NewPeers(client redis.UniversalClient, channel string, logger *slog.Logger) *Peers {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Peers{client: client, channel: channel, id: rand.Text(), log: logger}
}

// publishTimeout bounds one PUBLISH; a write's response waits for it.
const publishTimeout = 2 * time.Second

// Publish tells the other replicas that repo changed ("" for everything). It is Options.Publish.
func (p *Peers) Publish(ctx context.Context, repo string) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := p.client.Publish(ctx, p.channel, p.id+" "+repo).Err(); err != nil {
		p.log.Warn("telling other replicas about a manifest change failed: they may serve the old manifest until their cache entries expire",
			"repository", repo, "err", err)
	}
}

// Run subscribes h to the channel until ctx ends. h answers from its cache only while the subscription is
// confirmed.
func (p *Peers) Run(ctx context.Context, h *Handler) {
	h.setLive(false)
	sub := p.client.Subscribe(ctx)
	defer sub.Close()
	down := time.Time{}
	for ctx.Err() == nil {
		if err := sub.Subscribe(ctx, p.channel); err != nil {
			h.setLive(false)
			p.wait(ctx, &down, err)
			continue
		}
		pinged := false
		for ctx.Err() == nil {
			msg, err := sub.ReceiveTimeout(ctx, healthInterval)
			if err != nil && isTimeout(err) && !pinged {
				// Quiet channel: a PING proves the connection still delivers (its reply comes as a message).
				pinged = true
				if err = sub.Ping(ctx); err == nil {
					continue
				}
			}
			if err != nil {
				h.setLive(false)
				p.wait(ctx, &down, err)
				break // subscribe again: go-redis reconnects on the next command
			}
			pinged = false
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					h.setLive(true)
					if !down.IsZero() {
						p.log.Info("manifest cache invalidation channel is back; cache emptied and in use again",
							"down", time.Since(down).Round(time.Millisecond).String())
						down = time.Time{}
					}
				}
			case *redis.Message:
				id, repo, _ := strings.Cut(m.Payload, " ")
				if id == p.id {
					continue // this process invalidated already
				}
				if repo == "" {
					h.store.invalidateAll()
				} else {
					h.store.invalidate(repo)
				}
			}
		}
	}
}

// healthInterval is how long the channel may be quiet before a PING checks it; a connection that answers neither
// within two intervals counts as down.
const healthInterval = 3 * time.Second

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wait notes when the channel went down (logging once) and pauses before trying again.
func (p *Peers) wait(ctx context.Context, down *time.Time, err error) {
	if ctx.Err() != nil {
		return
	}
	if down.IsZero() {
		*down = time.Now()
		p.log.Warn("manifest cache invalidation channel is down: manifests are read from storage until it is back", "err", err)
	}
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
