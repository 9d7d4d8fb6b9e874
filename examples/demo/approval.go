package demo

import (
	"context"
	"path/filepath"
)

// approval makes a call that needs a data steward's approval.
func (d *demo) approval(ctx context.Context, a *actor) error {
	d.say("\n6. a write that needs a data steward's approval")
	a.call(ctx, "fs__write_file", map[string]any{
		"path":    filepath.Join(d.files, "reports", "launch-summary.md"),
		"content": "# Launch summary\nShip on Monday; every run has its own identity.\n",
	})
	return nil
}
