package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
)

// maxLine bounds one message read from standard input.
const maxLine = 8 << 20

// ServeStdio relays newline-delimited JSON-RPC messages read from in to the
// gateway and writes every message that comes back, responses, requests
// and notifications alike, to out, one per line. It returns when in ends
// (after in-flight requests finish) or ctx is done.
func (b *Bridge) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &stdio{b: b, out: out}
	r := bufio.NewReaderSize(in, 64<<10)
	var wg sync.WaitGroup
	defer func() { wg.Wait(); s.end() }()
	for {
		line, err := readLine(r)
		if msg := bytes.TrimSpace(line); len(msg) > 0 {
			wg.Add(1)
			go func() { defer wg.Done(); s.send(ctx, msg) }()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("bridge: a message on standard input is over %d bytes", maxLine)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// stdio is the state of one stdio relay: the session and protocol version
// the gateway assigned, and the writer every message goes to.
type stdio struct {
	b *Bridge

	mu        sync.Mutex
	session   string
	version   string
	listening bool

	outMu sync.Mutex
	out   io.Writer
}

// envelope is what the relay reads of a message to route it.
type envelope struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

func (s *stdio) send(ctx context.Context, msg []byte) {
	var env envelope
	_ = json.Unmarshal(msg, &env)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.b.gateway.String(), bytes.NewReader(msg))
	if err != nil {
		s.fail(env.ID, err.Error())
		return
	}
	s.headers(req, env)
	resp, err := s.b.client.Do(req)
	if err != nil {
		s.fail(env.ID, "the agentauth gateway is unreachable: "+err.Error())
		return
	}
	defer resp.Body.Close()
	if env.Method == "initialize" {
		s.initialized(resp)
	}
	s.relay(resp, env.ID)
	if env.Method == "notifications/initialized" {
		s.listen(ctx)
	}
}

func (s *stdio) headers(req *http.Request, env envelope) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	s.mu.Lock()
	session, version := s.session, s.version
	s.mu.Unlock()
	var meta struct {
		Meta map[string]any `json:"_meta"`
	}
	_ = json.Unmarshal(env.Params, &meta)
	if v, ok := meta.Meta[mcp.MetaKeyProtocolVersion].(string); ok && version == "" {
		version = v
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	if version != "" {
		req.Header.Set("MCP-Protocol-Version", version)
	}
	if env.Method != "" && mcp.RequiresStandardHeaders(version) {
		req.Header.Set(mcp.HeaderMethod, env.Method)
		if name, ok := mcp.ExtractHeaderName(mcp.MCPMethod(env.Method), env.Params); ok {
			if v, ok := mcp.EncodeHeaderValue(name); ok {
				req.Header.Set(mcp.HeaderName, v)
			}
		}
	}
}

// initialized keeps the session id and negotiated version of an
// initialize response.
func (s *stdio) initialized(resp *http.Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
		s.session = id
	}
	s.version = "" // set from the result as it is relayed
}

// relay writes the messages of one HTTP response to out.
func (s *stdio) relay(resp *http.Response, id json.RawMessage) {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode == http.StatusAccepted:
	case ct == "text/event-stream":
		s.relayEvents(resp.Body)
	case ct == "application/json":
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxLine))
		s.write(withID(body, id))
	case len(id) > 0:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		s.fail(id, fmt.Sprintf("gateway answered HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body)))
	}
}

// relayEvents writes the data of each server-sent event as one line.
func (s *stdio) relayEvents(body io.Reader) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data.Len() > 0 {
				s.write(data.Bytes())
				data.Reset()
			}
		case bytes.HasPrefix(line, []byte("data:")):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" ")))
		}
	}
	if data.Len() > 0 {
		s.write(data.Bytes())
	}
}

// listen opens the session's GET stream for messages the gateway sends
// on its own (list changes, requests to the client), once per session.
func (s *stdio) listen(ctx context.Context) {
	s.mu.Lock()
	if s.session == "" || s.listening {
		s.mu.Unlock()
		return
	}
	s.listening = true
	s.mu.Unlock()
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.b.gateway.String(), nil)
		if err != nil {
			return
		}
		s.headers(req, envelope{})
		req.Header.Set("Accept", "text/event-stream")
		resp, err := s.b.client.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			s.relayEvents(resp.Body)
		}
	}()
}

// write sends one message to out as a single line, learning the
// negotiated protocol version from an initialize result on the way.
func (s *stdio) write(msg []byte) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, msg); err != nil {
		return
	}
	var env envelope
	if json.Unmarshal(compact.Bytes(), &env) == nil && len(env.Result) > 0 {
		var init struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		if json.Unmarshal(env.Result, &init) == nil && init.ProtocolVersion != "" {
			s.mu.Lock()
			if s.version == "" {
				s.version = init.ProtocolVersion
			}
			s.mu.Unlock()
		}
	}
	compact.WriteByte('\n')
	s.outMu.Lock()
	defer s.outMu.Unlock()
	_, _ = s.out.Write(compact.Bytes())
}

// fail replies to request id with a JSON-RPC internal error.
func (s *stdio) fail(id json.RawMessage, message string) {
	if len(id) == 0 {
		return
	}
	body, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": id,
		"error": map[string]any{"code": mcp.INTERNAL_ERROR, "message": "agentauth connect: " + message},
	})
	s.write(body)
}

// withID gives an error response with a null id the id of the request
// it answers, so a stdio host can match it.
func withID(body []byte, id json.RawMessage) []byte {
	if len(id) == 0 {
		return body
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || string(m["id"]) != "null" {
		return body
	}
	m["id"] = id
	out, _ := json.Marshal(m)
	return out
}

// end closes the gateway session, if one was opened.
func (s *stdio) end() {
	s.mu.Lock()
	session := s.session
	s.mu.Unlock()
	if session == "" {
		return
	}
	req, _ := http.NewRequest(http.MethodDelete, s.b.gateway.String(), nil)
	s.headers(req, envelope{})
	if resp, err := s.b.client.Do(req); err == nil {
		resp.Body.Close()
	}
}
