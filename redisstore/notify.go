package redisstore

import (
	"context"
	"encoding/json"
	"log/slog"

	"smp"
	"smp/internal/startstop"
)

// Broadcaster is an smp.Notifier for several processes: a message for a
// technician connected to this process goes straight to them; otherwise
// it is published on dispatch:notify, and the process holding the
// technician's connection delivers it.
type Broadcaster struct {
	startstop.Base
	s     *Store
	local smp.Notifier
	log   *slog.Logger
}

var _ smp.Notifier = (*Broadcaster)(nil)

// NewBroadcaster wraps the local hub.
func NewBroadcaster(s *Store, local smp.Notifier, log *slog.Logger) *Broadcaster {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Broadcaster{s: s, local: local, log: log}
}

type envelope struct {
	TechnicianID string                `json:"technician_id"`
	Message      smp.TechnicianMessage `json:"message"`
}

// Notify delivers locally or publishes; false means "not connected here".
func (b *Broadcaster) Notify(techID string, m smp.TechnicianMessage) bool {
	if b.local.Notify(techID, m) {
		return true
	}
	payload, _ := json.Marshal(envelope{techID, m})
	if err := b.s.rdb.Publish(context.Background(), b.s.key(ChannelNotify), payload).Err(); err != nil {
		b.log.Warn("redis: publish technician message", "technician_id", techID, "type", m.Type, "err", err)
	}
	return false
}

// Connections counts this process's connections.
func (b *Broadcaster) Connections() int { return b.local.Connections() }

// Start subscribes (an unreachable Redis fails here) and delivers messages
// published by other processes in the background until Stop (from
// startstop.Base: it waits for the delivery loop, bounded by its
// context); idempotent.
func (b *Broadcaster) Start(ctx context.Context) error {
	ctx, ok := b.StartInit(ctx)
	if !ok {
		return nil
	}
	sub := b.s.rdb.Subscribe(ctx, b.s.key(ChannelNotify))
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		sub.Close()
		b.Abort()
		return wrap("subscribe "+ChannelNotify, err)
	}
	b.Go(func() {
		defer sub.Close()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case msg, ok := <-ch:
				if !ok {
					return
				}
				var e envelope
				if err := json.Unmarshal([]byte(msg.Payload), &e); err != nil {
					b.log.Warn("redis: bad technician message", "err", err)
					continue
				}
				b.local.Notify(e.TechnicianID, e.Message)
			}
		}
	})
	b.MarkStarted()
	return nil
}
