package upstream

import (
	"context"
	"errors"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

func TestDigestCoversDefinition(t *testing.T) {
	base := mcp.NewTool("t", mcp.WithDescription("d"), mcp.WithString("p", mcp.Required()))
	d0, _, err := Digest(base)
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string]mcp.Tool{
		"description": mcp.NewTool("t", mcp.WithDescription("d2"), mcp.WithString("p", mcp.Required())),
		"schema":      mcp.NewTool("t", mcp.WithDescription("d"), mcp.WithString("p")),
		"annotations": mcp.NewTool("t", mcp.WithDescription("d"), mcp.WithString("p", mcp.Required()), mcp.WithReadOnlyHintAnnotation(true)),
		"title":       mcp.NewTool("t", mcp.WithDescription("d"), mcp.WithString("p", mcp.Required()), mcp.WithTitleAnnotation("T")),
	}
	for name, v := range variants {
		d, _, err := Digest(v)
		if err != nil {
			t.Fatal(err)
		}
		if d == d0 {
			t.Errorf("a change of %s keeps the digest", name)
		}
	}
	again, _, _ := Digest(mcp.NewTool("t", mcp.WithDescription("d"), mcp.WithString("p", mcp.Required())))
	if again != d0 {
		t.Error("the same definition gives two digests")
	}
}

func TestPinsLifecycle(t *testing.T) {
	ctx := context.Background()
	pins, err := OpenPins(ctx, openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	step := func(digest string, wantStatus PinStatus, wantFirst bool) {
		t.Helper()
		status, first, err := pins.Observe(ctx, "s", "t", digest, []byte(`{"d":"`+digest+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		if status != wantStatus || first != wantFirst {
			t.Fatalf("Observe(%s) = %s first=%v, want %s first=%v", digest, status, first, wantStatus, wantFirst)
		}
	}
	step("a", StatusAccepted, true)
	step("a", StatusAccepted, false)
	step("b", StatusChanged, false)
	step("a", StatusAccepted, false) // the server went back to the accepted definition
	step("b", StatusChanged, false)

	if err := pins.Accept(ctx, "s", "t"); err != nil {
		t.Fatal(err)
	}
	pin, err := pins.Status(ctx, "s", "t")
	if err != nil || pin.Status != StatusAccepted || pin.Digest != "b" {
		t.Fatalf("after Accept: %+v, %v", pin, err)
	}
	step("b", StatusAccepted, false)

	if err := pins.Accept(ctx, "s", "missing"); !errors.Is(err, ErrPinNotFound) {
		t.Errorf("Accept(missing) = %v, want ErrPinNotFound", err)
	}
	if err := pins.Quarantine(ctx, "s", "bad name", "invalid"); err != nil {
		t.Fatal(err)
	}
	if err := pins.Accept(ctx, "s", "bad name"); err == nil {
		t.Error("Accept of a quarantined tool succeeded")
	}
	list, err := pins.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v", list, err)
	}
}
