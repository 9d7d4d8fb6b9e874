package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
)

func TestDrainedDeadlineIsWarning(t *testing.T) {
	var logs bytes.Buffer
	g := &Gateway{logger: slog.New(slog.NewTextHandler(&logs, nil))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counter := &connCounter{Listener: ln}
	defer counter.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := counter.Accept()
	if err != nil {
		t.Fatal(err)
	}

	if err := g.drained(fmt.Errorf("shutdown: %w", context.DeadlineExceeded), counter); err != nil {
		t.Errorf("drained(deadline) = %v; want nil", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("log %q; want a warning", logs.String())
	}
	if !strings.Contains(logs.String(), "connections=1") {
		t.Errorf("log %q; want it to name 1 open connection", logs.String())
	}

	conn.Close()
	conn.Close()
	if n := counter.open.Load(); n != 0 {
		t.Errorf("open connections after close = %d; want 0", n)
	}
	other := errors.New("listener failed")
	if err := g.drained(other, counter); err != other {
		t.Errorf("drained(other) = %v; want it returned", err)
	}
}
