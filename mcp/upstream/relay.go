package upstream

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// inflight is one call in progress on a server.
type inflight struct {
	id  uint64
	run string // the run the call acts for, "" when the caller gave none
	// ctx is the caller's context, kept so that a request the server sends
	// back during the call is handled in the caller's name.
	ctx         context.Context
	token       mcp.ProgressToken // unique token sent upstream
	callerToken mcp.ProgressToken // the caller's token, restored on relay
	progress    func(mcp.ProgressNotificationParams)
	// failed is set when the call ended in an error, the server's or the
	// tool's: the server may still be working on it.
	failed bool
	// release returns the call's run session, if it used one.
	release func()
}

type callKey struct{}

// Quiet times: how long after a call of one run ends a message that no
// call carries is still kept from the call of another run. After a call
// that got a result it is a while, since the server's last messages may
// still be on their way or come from work it goes on with. After a call
// that failed or whose caller went away it is long, since the server may
// well work on.
const (
	answeredQuiet  = 30 * time.Second
	abandonedQuiet = 10 * time.Minute
	// maxQuietRuns bounds the runs remembered for that; past it, no
	// message that no call carries is attributed until some quiet times
	// are over.
	maxQuietRuns = 4096
)

// inflightCalls tracks the calls in progress on one server, and until
// when each run whose calls ended may still be sent messages for them.
type inflightCalls struct {
	mu    sync.Mutex
	m     map[uint64]*inflight
	quiet map[string]time.Time // run -> end of its quiet time
	// forgotten is the end of the latest quiet time of a run that quiet
	// had no room for. Until then nothing is attributed by elimination.
	forgotten time.Time
	now       func() time.Time
}

func (ic *inflightCalls) begin(ctx context.Context, id uint64, run string, progress func(mcp.ProgressNotificationParams)) *inflight {
	call := &inflight{id: id, run: run, token: fmt.Sprintf("agentauth-%d", id), progress: progress}
	call.ctx = context.WithValue(ctx, callKey{}, call)
	ic.mu.Lock()
	ic.m[id] = call
	ic.mu.Unlock()
	return call
}

// end removes a call. A call that failed or whose caller went away (its
// context ended) keeps its run's quiet time longer than one that got a
// result.
func (ic *inflightCalls) end(call *inflight) {
	quiet := answeredQuiet
	if call.failed || call.ctx.Err() != nil {
		quiet = abandonedQuiet
	}
	if call.release != nil {
		call.release()
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	delete(ic.m, call.id)
	now := ic.clock()
	until := now.Add(quiet)
	if ic.quiet == nil {
		ic.quiet = map[string]time.Time{}
	}
	if len(ic.quiet) >= maxQuietRuns {
		ic.pruneQuiet(now)
	}
	prev, known := ic.quiet[call.run]
	switch {
	case known && !until.After(prev):
	case known || len(ic.quiet) < maxQuietRuns:
		ic.quiet[call.run] = until
	case until.After(ic.forgotten):
		ic.forgotten = until
	}
}

// pruneQuiet removes the runs whose quiet time is over. The caller holds
// ic.mu.
func (ic *inflightCalls) pruneQuiet(now time.Time) {
	for run, until := range ic.quiet {
		if !until.After(now) {
			delete(ic.quiet, run)
		}
	}
}

func (ic *inflightCalls) clock() time.Time {
	if ic.now != nil {
		return ic.now()
	}
	return time.Now()
}

// attribute returns the call a server message belongs to. That is the
// call carried by ctx, because a request sent on the call's own stream is
// handled on the call's context. Otherwise it is the only call in flight,
// provided that no other run is within its quiet time. attribute returns
// nil in every other case, since handling the message in the wrong run's
// name would leak across runs.
func (ic *inflightCalls) attribute(ctx context.Context) *inflight {
	if call, ok := ctx.Value(callKey{}).(*inflight); ok {
		return call
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if len(ic.m) != 1 {
		return nil
	}
	var only *inflight
	for _, call := range ic.m {
		only = call
	}
	now := ic.clock()
	if ic.forgotten.After(now) {
		return nil
	}
	ic.pruneQuiet(now)
	for run := range ic.quiet {
		if run != only.run {
			return nil
		}
	}
	return only
}

// attributeRun returns the call of run a message that arrived on run's
// own session belongs to: the call carried by ctx, or else the only call
// of run in flight. A message on a run's session cannot belong to another
// run, so no quiet time applies.
func (ic *inflightCalls) attributeRun(ctx context.Context, run string) *inflight {
	if call, ok := ctx.Value(callKey{}).(*inflight); ok && call.run == run {
		return call
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	var only *inflight
	for _, call := range ic.m {
		if call.run != run {
			continue
		}
		if only != nil {
			return nil
		}
		only = call
	}
	return only
}

func (ic *inflightCalls) byToken(token string) *inflight {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	for _, call := range ic.m {
		if call.token == token {
			return call
		}
	}
	return nil
}

// onNotification consumes progress and list_changed notifications and
// relays the rest.
func (c *conn) onNotification(s *session, n mcp.JSONRPCNotification) {
	switch n.Method {
	case string(mcp.MethodNotificationProgress):
		c.relayProgress(n, "")
	case mcp.MethodNotificationToolsListChanged:
		go c.refresh(s, "tools")
	case mcp.MethodNotificationPromptsListChanged:
		go c.refresh(s, "prompts")
	case mcp.MethodNotificationResourcesListChanged:
		go c.refresh(s, "resources")
	default:
		c.relayOther(n, "")
	}
}

// onRunNotification handles a notification on run's session. The shared
// session receives list changes, so only progress and the rest are
// handled here.
func (c *conn) onRunNotification(_ *session, run string, n mcp.JSONRPCNotification) {
	switch n.Method {
	case string(mcp.MethodNotificationProgress):
		c.relayProgress(n, run)
	case mcp.MethodNotificationToolsListChanged, mcp.MethodNotificationPromptsListChanged,
		mcp.MethodNotificationResourcesListChanged:
	default:
		c.relayOther(n, run)
	}
}

// relayProgress passes progress on to the call whose token it names. On
// a run's session (run not empty) only a call of that run is considered.
func (c *conn) relayProgress(n mcp.JSONRPCNotification, run string) {
	token, _ := n.Params.AdditionalFields["progressToken"].(string)
	call := c.calls.byToken(token)
	if call == nil || call.progress == nil || (run != "" && call.run != run) {
		return
	}
	p := mcp.ProgressNotificationParams{ProgressToken: call.callerToken}
	p.Progress, _ = n.Params.AdditionalFields["progress"].(float64)
	p.Total, _ = n.Params.AdditionalFields["total"].(float64)
	p.Message, _ = n.Params.AdditionalFields["message"].(string)
	call.progress(p)
}

// relayOther passes a notification on. run names the run whose session it
// arrived on, empty for the shared session.
func (c *conn) relayOther(n mcp.JSONRPCNotification, run string) {
	if c.set.opts.OnNotification == nil {
		return
	}
	ctx := c.set.ctx
	if n.Method == string(mcp.MethodNotificationMessage) {
		// A log message names no call, so it goes to a call only when it
		// can be tied to one without risk of crossing runs.
		call := c.calls.attribute(context.Background())
		if run != "" {
			call = c.calls.attributeRun(context.Background(), run)
		}
		if call == nil {
			c.log.Debug("dropped a log message not tied to one call")
			return
		}
		ctx = call.ctx
	}
	if n.Method == mcp.MethodNotificationResourceUpdated {
		if uri, ok := n.Params.AdditionalFields["uri"].(string); ok {
			fields := map[string]any{}
			for k, v := range n.Params.AdditionalFields {
				fields[k] = v
			}
			fields["uri"] = JoinURI(c.cfg.Name, uri)
			n.Params.AdditionalFields = fields
		}
	}
	c.set.opts.OnNotification(ctx, c.cfg.Name, n)
}

// samplingRelay handles sampling requests of the shared session (run
// empty) or of one run's session.
type samplingRelay struct {
	c   *conn
	run string
}

func (r samplingRelay) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	call := r.c.attributeTo(ctx, r.run)
	if call == nil {
		return nil, r.c.unattributed("sampling/createMessage")
	}
	return r.c.set.opts.Sampling(call.ctx, r.c.cfg.Name, req)
}

// elicitationRelay handles elicitation requests of the shared session
// (run empty) or of one run's session.
type elicitationRelay struct {
	c   *conn
	run string
}

func (r elicitationRelay) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	call := r.c.attributeTo(ctx, r.run)
	if call == nil {
		return nil, r.c.unattributed("elicitation/create")
	}
	return r.c.set.opts.Elicitation(call.ctx, r.c.cfg.Name, req)
}

type rootsRelay struct{ c *conn }

func (r rootsRelay) ListRoots(ctx context.Context, _ mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return r.c.set.opts.Roots(ctx, r.c.cfg.Name)
}

// attributeTo ties a server request to a call: of run when it came on
// run's session, by the shared session's rules otherwise.
func (c *conn) attributeTo(ctx context.Context, run string) *inflight {
	if run != "" {
		return c.calls.attributeRun(ctx, run)
	}
	return c.calls.attribute(ctx)
}

func (c *conn) unattributed(method string) error {
	c.log.Warn("upstream request rejected: not tied to exactly one call in flight", "method", method)
	return fmt.Errorf("%s from server %q rejected: it cannot be tied to exactly one call in flight", method, c.cfg.Name)
}
