package upstream

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"
)

// Subscribe subscribes to notifications/resources/updated for the upstream
// URI in r.Name. The updates reach Options.OnNotification with the URI
// namespaced. On protocol 2026-07-28 it reopens the subscriptions/listen
// stream with the URI added. Subscriptions belong to the Set, not to a
// caller, and a restarted server starts with none.
func (s *Set) Subscribe(ctx context.Context, r Request) error {
	c, sess, err := s.live(r.Server)
	if err != nil {
		return err
	}
	req := mcp.SubscribeRequest{Header: r.Header}
	req.Params.URI = r.Name
	if err := sess.client.Subscribe(ctx, req); err != nil {
		return c.checkTransport(ctx, sess, err)
	}
	return c.relisten(sess)
}

// Unsubscribe reverses [Set.Subscribe].
func (s *Set) Unsubscribe(ctx context.Context, r Request) error {
	c, sess, err := s.live(r.Server)
	if err != nil {
		return err
	}
	req := mcp.UnsubscribeRequest{Header: r.Header}
	req.Params.URI = r.Name
	if err := sess.client.Unsubscribe(ctx, req); err != nil {
		return c.checkTransport(ctx, sess, err)
	}
	return c.relisten(sess)
}

func (s *Set) live(server string) (*conn, *session, error) {
	c, err := s.conn(server)
	if err != nil {
		return nil, nil, err
	}
	sess, err := c.session()
	if err != nil {
		return nil, nil, err
	}
	return c, sess, nil
}

// relisten reopens the subscriptions/listen stream of a 2026-07-28 session
// with the resource subscriptions the client has recorded.
// NOTE: tests cover subscriptions on 2025-11-25 servers only; this
// 2026-07-28 path has not run against a server that sends updates.
func (c *conn) relisten(s *session) error {
	if !mcp.IsModernProtocol(s.client.ProtocolVersion()) {
		return nil
	}
	filter := s.client.PendingSubscriptionFilter()
	_, err := s.client.ListenAsync(s.ctx, filter, func(err error) {
		c.log.Warn("upstream subscriptions/listen stream ended; updates are no longer seen", "err", err)
	})
	return err
}
