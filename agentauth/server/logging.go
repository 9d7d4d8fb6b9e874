package server

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/agentauth/agentauth/agentauth/config"
)

// NewLogger returns the process logger described by the log section of
// the configuration.
func NewLogger(w io.Writer, c config.Log) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("invalid log.level %q: use debug, info, warn or error", c.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.Format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("invalid log.format %q: use text or json", c.Format)
	}
}
