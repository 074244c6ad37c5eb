package manifestcache

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Peers carries invalidations between the replicas that share a storage, over a Redis pub/sub channel. Each replica
// publishes the repository a write through it changed, after the change is stored; the others drop their entries
// for it on receipt. While a replica's subscription is down, and until it is confirmed again, its cache neither
// answers nor fills, and it starts again empty, so messages sent meanwhile cannot be missed. What is left is the
// window between a write being stored and its message arriving (the delivery time of a PUBLISH), and a replica that
// fails to publish (it crashed after the write, or Redis refused the message): Options.TTL bounds that.
//
// A write's response waits until its own message has come back through this replica's subscription: Redis hands a
// message to every subscriber before it answers the PUBLISH, so once the echo is here the others have it too, and a
// client that reads the response and then asks another replica finds it invalidated (but for the moment that
// replica takes to process a message it has already received).
type Peers struct {
	client  redis.UniversalClient
	channel string
	id      string
	log     *slog.Logger

	live    atomic.Bool // the subscription is confirmed: echoes will come
	seq     atomic.Uint64
	mu      sync.Mutex
	pending map[uint64]chan struct{} // published by this process, echo not yet received
}

// NewPeers uses channel on client; replicas of one storage must use the same channel, other storages another.
func NewPeers(client redis.UniversalClient, channel string, logger *slog.Logger) *Peers {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Peers{client: client, channel: channel, id: rand.Text(), log: logger, pending: map[uint64]chan struct{}{}}
}

// echoTimeout bounds the wait for a message's echo.
const echoTimeout = time.Second

// publishTimeout bounds one PUBLISH; a write's response waits for it.
const publishTimeout = 2 * time.Second

// Publish tells the other replicas that repo changed ("" for everything). It is Options.Publish.
func (p *Peers) Publish(ctx context.Context, repo string) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	seq := p.seq.Add(1)
	echo := make(chan struct{})
	wait := p.live.Load()
	if wait {
		p.mu.Lock()
		p.pending[seq] = echo
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			delete(p.pending, seq)
			p.mu.Unlock()
		}()
	}
	msg := p.id + " " + strconv.FormatUint(seq, 10) + " " + repo
	if err := p.client.Publish(ctx, p.channel, msg).Err(); err != nil {
		p.log.Warn("telling other replicas about a manifest change failed: they may serve the old manifest until their cache entries expire",
			"repository", repo, "err", err)
		return
	}
	if wait {
		t := time.NewTimer(echoTimeout)
		defer t.Stop()
		select {
		case <-echo:
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// echoed marks this process's message seq as received.
func (p *Peers) echoed(seq string) {
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch, ok := p.pending[n]; ok {
		close(ch)
		delete(p.pending, n)
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
			p.live.Store(false)
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
				p.live.Store(false)
				p.wait(ctx, &down, err)
				break // subscribe again: go-redis reconnects on the next command
			}
			pinged = false
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					h.setLive(true)
					p.live.Store(true)
					if !down.IsZero() {
						p.log.Info("manifest cache invalidation channel is back; cache emptied and in use again",
							"down", time.Since(down).Round(time.Millisecond).String())
						down = time.Time{}
					}
				}
			case *redis.Message:
				id, rest, _ := strings.Cut(m.Payload, " ")
				seq, repo, _ := strings.Cut(rest, " ")
				if id == p.id {
					p.echoed(seq) // this process invalidated already
					continue
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
