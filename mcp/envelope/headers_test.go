package envelope

import (
	"errors"
	"net/http"
	"testing"
)

func TestCheckHeaders(t *testing.T) {
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"files__read"}}`
	read := `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///é"}}`
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	modern := "2026-07-28"
	tests := []struct {
		name    string
		body    string
		headers map[string][]string
		ok      bool
	}{
		{"legacy without headers", call, nil, true},
		{"modern matching", call, map[string][]string{"Mcp-Protocol-Version": {modern}, "Mcp-Method": {"tools/call"}, "Mcp-Name": {"files__read"}}, true},
		{"modern base64 name", read, map[string][]string{"Mcp-Protocol-Version": {modern}, "Mcp-Method": {"resources/read"}, "Mcp-Name": {"=?base64?ZmlsZTovLy/DqQ==?="}}, true},
		{"modern list needs no name", list, map[string][]string{"Mcp-Protocol-Version": {modern}, "Mcp-Method": {"tools/list"}}, true},
		{"modern method missing", call, map[string][]string{"Mcp-Protocol-Version": {modern}, "Mcp-Name": {"files__read"}}, false},
		{"modern name missing", call, map[string][]string{"Mcp-Protocol-Version": {modern}, "Mcp-Method": {"tools/call"}}, false},
		{"method differs", call, map[string][]string{"Mcp-Protocol-Version": {modern}, "Mcp-Method": {"tools/list"}, "Mcp-Name": {"files__read"}}, false},
		{"name differs", call, map[string][]string{"Mcp-Protocol-Version": {modern}, "Mcp-Method": {"tools/call"}, "Mcp-Name": {"files__write"}}, false},
		{"name case differs", call, map[string][]string{"Mcp-Protocol-Version": {modern}, "Mcp-Method": {"tools/call"}, "Mcp-Name": {"Files__read"}}, false},
		{"legacy name differs", call, map[string][]string{"Mcp-Name": {"files__write"}}, false},
		{"legacy method differs", call, map[string][]string{"Mcp-Method": {"ping"}}, false},
		{"two method values", call, map[string][]string{"Mcp-Method": {"tools/call", "tools/call"}}, false},
		{"bad base64", call, map[string][]string{"Mcp-Name": {"=?base64?***?="}}, false},
		{"name on list", list, map[string][]string{"Mcp-Name": {"x"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := decode(t, tt.body)
			h := http.Header{}
			for k, vs := range tt.headers {
				for _, v := range vs {
					h.Add(k, v)
				}
			}
			err := CheckHeaders(m, h)
			if tt.ok && err != nil {
				t.Fatalf("CheckHeaders: %v", err)
			}
			var e *Error
			if !tt.ok && (!errors.As(err, &e) || e.Kind != KindHeaderMismatch) {
				t.Fatalf("CheckHeaders = %v, want header_mismatch", err)
			}
		})
	}
}
