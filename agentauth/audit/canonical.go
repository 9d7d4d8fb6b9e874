package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/agentauth/agentauth/agentauth/authz"
)

// GenesisHash is the previous hash of record 1: 64 hex zeros.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// MaxRecordSize bounds the canonical encoding of one record, and so one
// line of an export, in bytes.
const MaxRecordSize = 1 << 20

// body is the encoded form of a record without its place in the chain.
// Field order is fixed by the struct, so encoding/json produces the same
// bytes for the same record every time.
type body struct {
	Time             time.Time       `json:"time"`
	Kind             Kind            `json:"kind"`
	Effect           authz.Effect    `json:"effect,omitempty"`
	Reason           authz.Reason    `json:"reason,omitempty"`
	Message          string          `json:"message,omitempty"`
	SponsorIssuer    string          `json:"sponsor_issuer,omitempty"`
	SponsorSubject   string          `json:"sponsor_subject,omitempty"`
	ActorIssuer      string          `json:"actor_issuer,omitempty"`
	ActorSubject     string          `json:"actor_subject,omitempty"`
	Chain            []hop           `json:"chain,omitempty"`
	RunID            string          `json:"run_id,omitempty"`
	ParentRunID      string          `json:"parent_run_id,omitempty"`
	RootRunID        string          `json:"root_run_id,omitempty"`
	Method           string          `json:"method,omitempty"`
	TargetKind       authz.Kind      `json:"target_kind,omitempty"`
	Server           string          `json:"server,omitempty"`
	Tool             string          `json:"tool,omitempty"`
	ArgumentsDigest  string          `json:"arguments_digest,omitempty"`
	Arguments        json.RawMessage `json:"arguments,omitempty"`
	ArgumentsOmitted string          `json:"arguments_omitted,omitempty"`
	GrantID          string          `json:"grant_id,omitempty"`
	ApprovalID       string          `json:"approval_id,omitempty"`
	BreakGlass       bool            `json:"break_glass,omitempty"`
	TraceID          string          `json:"trace_id,omitempty"`
	SpanID           string          `json:"span_id,omitempty"`
	Outcome          Outcome         `json:"outcome,omitempty"`
	LatencyNS        int64           `json:"latency_ns,omitempty"`
}

// hop is the encoded form of authz.Hop.
type hop struct {
	RunID    string `json:"run_id,omitempty"`
	Agent    string `json:"agent,omitempty"`
	SPIFFEID string `json:"spiffe_id"`
}

// line is the decoded form of a canonical record or an export line.
type line struct {
	Seq  uint64 `json:"seq"`
	Prev string `json:"prev"`
	body
	Hash string `json:"hash,omitempty"`
}

func toBody(r *Record) body {
	b := body{
		Time: r.Time.UTC(), Kind: r.Kind, Effect: r.Effect, Reason: r.Reason,
		Message:       r.Message,
		SponsorIssuer: r.SponsorIssuer, SponsorSubject: r.SponsorSubject,
		ActorIssuer: r.ActorIssuer, ActorSubject: r.ActorSubject,
		RunID: r.RunID, ParentRunID: r.ParentRunID, RootRunID: r.RootRunID,
		Method: r.Method, TargetKind: r.TargetKind, Server: r.Server, Tool: r.Tool,
		ArgumentsDigest: r.ArgumentsDigest, Arguments: r.Arguments,
		ArgumentsOmitted: r.ArgumentsOmitted,
		GrantID:          r.GrantID, ApprovalID: r.ApprovalID, BreakGlass: r.BreakGlass,
		TraceID: r.TraceID, SpanID: r.SpanID,
		Outcome: r.Outcome, LatencyNS: int64(r.Latency),
	}
	for _, h := range r.Chain {
		b.Chain = append(b.Chain, hop{RunID: h.RunID, Agent: h.Agent, SPIFFEID: h.SPIFFEID})
	}
	return b
}

func (b *body) record() Record {
	r := Record{
		Time: b.Time, Kind: b.Kind, Effect: b.Effect, Reason: b.Reason,
		Message:       b.Message,
		SponsorIssuer: b.SponsorIssuer, SponsorSubject: b.SponsorSubject,
		ActorIssuer: b.ActorIssuer, ActorSubject: b.ActorSubject,
		RunID: b.RunID, ParentRunID: b.ParentRunID, RootRunID: b.RootRunID,
		Method: b.Method, TargetKind: b.TargetKind, Server: b.Server, Tool: b.Tool,
		ArgumentsDigest: b.ArgumentsDigest, Arguments: b.Arguments,
		ArgumentsOmitted: b.ArgumentsOmitted,
		GrantID:          b.GrantID, ApprovalID: b.ApprovalID, BreakGlass: b.BreakGlass,
		TraceID: b.TraceID, SpanID: b.SpanID,
		Outcome: b.Outcome, Latency: time.Duration(b.LatencyNS),
	}
	for _, h := range b.Chain {
		r.Chain = append(r.Chain, authz.Hop{RunID: h.RunID, Agent: h.Agent, SPIFFEID: h.SPIFFEID})
	}
	return r
}

// encodeBody returns the JSON object of a record's event fields. Callers
// encode in their own goroutine, so that the single writer only splices
// in the sequence number and the previous hash.
func encodeBody(r *Record) ([]byte, error) {
	b := toBody(r)
	out, err := json.Marshal(&b)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record: %w", err)
	}
	return out, nil
}

// canonical returns the canonical encoding of a record: a JSON object
// whose first members are "seq" and "prev", followed by the members of
// the encoded body in struct order. The record's hash is the SHA-256 of
// exactly these bytes.
func canonical(seq uint64, prev string, encodedBody []byte) []byte {
	out := make([]byte, 0, len(encodedBody)+100)
	out = append(out, `{"seq":`...)
	out = strconv.AppendUint(out, seq, 10)
	out = append(out, `,"prev":"`...)
	out = append(out, prev...)
	out = append(out, `",`...)
	return append(out, encodedBody[1:]...)
}

// hashOf returns the hex SHA-256 of a canonical encoding.
func hashOf(canon []byte) string {
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])
}

// decodeLine strictly decodes a canonical record or an export line.
func decodeLine(data []byte) (line, error) {
	var l line
	if len(data) > MaxRecordSize {
		return l, fmt.Errorf("record of %d bytes is over the limit of %d", len(data), MaxRecordSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return l, fmt.Errorf("invalid record: %w", err)
	}
	if dec.More() {
		return l, errors.New("invalid record: data after the JSON object")
	}
	if err := l.check(); err != nil {
		return l, fmt.Errorf("invalid record: %w", err)
	}
	return l, nil
}

func (l *line) check() error {
	switch {
	case l.Seq == 0:
		return errors.New("seq is missing or zero")
	case !isHexHash(l.Prev):
		return fmt.Errorf("prev %q is not a hex SHA-256", l.Prev)
	case l.Hash != "" && !isHexHash(l.Hash):
		return fmt.Errorf("hash %q is not a hex SHA-256", l.Hash)
	case !l.Kind.Valid():
		return fmt.Errorf("unknown kind %q", l.Kind)
	case l.Time.Location() != time.UTC:
		return fmt.Errorf("time %s is not in UTC", l.Time.Format(time.RFC3339Nano))
	}
	return nil
}

// reencode returns the canonical encoding of a decoded line.
func (l *line) reencode() ([]byte, error) {
	b, err := json.Marshal(&l.body)
	if err != nil {
		return nil, err
	}
	return canonical(l.Seq, l.Prev, b), nil
}

func (l *line) toRecord(hash string) Record {
	r := l.body.record()
	r.Seq, r.PrevHash, r.Hash = l.Seq, l.Prev, hash
	return r
}

// ParseRecord decodes one line of an export, as written by Export, and
// checks that its hash matches its content. It does not check the
// record's place in a chain; VerifyExport does.
func ParseRecord(data []byte) (Record, error) {
	l, err := decodeLine(bytes.TrimSpace(data))
	if err != nil {
		return Record{}, fmt.Errorf("audit: %w", err)
	}
	if l.Hash == "" {
		return Record{}, fmt.Errorf("audit: record seq %d has no hash", l.Seq)
	}
	canon, err := l.reencode()
	if err != nil {
		return Record{}, fmt.Errorf("audit: record seq %d: %w", l.Seq, err)
	}
	if got := hashOf(canon); got != l.Hash {
		return Record{}, fmt.Errorf("audit: record seq %d: content does not match its hash %s", l.Seq, l.Hash)
	}
	return l.toRecord(l.Hash), nil
}

// MarshalJSON encodes r as one export line: its canonical encoding with
// the hash appended as the last member.
func (r Record) MarshalJSON() ([]byte, error) {
	b, err := encodeBody(&r)
	if err != nil {
		return nil, err
	}
	canon := canonical(r.Seq, r.PrevHash, b)
	return appendHash(canon, r.Hash), nil
}

// UnmarshalJSON decodes one export line, as MarshalJSON writes it. It
// rejects unknown members but does not check the hash; ParseRecord does.
func (r *Record) UnmarshalJSON(data []byte) error {
	l, err := decodeLine(data)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	*r = l.toRecord(l.Hash)
	return nil
}

func appendHash(canon []byte, hash string) []byte {
	out := make([]byte, 0, len(canon)+80)
	out = append(out, canon[:len(canon)-1]...)
	out = append(out, `,"hash":"`...)
	out = append(out, hash...)
	return append(out, `"}`...)
}

func isHexHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
