package upstream

import (
	"strings"
	"testing"
)

func TestSplitName(t *testing.T) {
	tests := []struct {
		in           string
		server, name string
		ok           bool
	}{
		{"files__read", "files", "read", true},
		{"files__read__twice", "files", "read__twice", true},
		{"files___x", "files", "_x", true},
		{"my-files__a.b", "my-files", "a.b", true},
		{"files__", "", "", false},
		{"__read", "", "", false},
		{"files_read", "", "", false},
		{"fi/les__read", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		server, name, ok := SplitName(tt.in)
		if server != tt.server || name != tt.name || ok != tt.ok {
			t.Errorf("SplitName(%q) = %q, %q, %v; want %q, %q, %v", tt.in, server, name, ok, tt.server, tt.name, tt.ok)
		}
	}
}

func TestSplitURI(t *testing.T) {
	tests := []struct {
		in          string
		server, uri string
		ok          bool
	}{
		{"agentauth://files/file:///tmp/a.txt", "files", "file:///tmp/a.txt", true},
		{"agentauth://files/demo://x/y?q=1#f", "files", "demo://x/y?q=1#f", true},
		{"agentauth://files/", "", "", false},
		{"agentauth://files", "", "", false},
		{"agentauth://fi_les/x", "", "", false},
		{"file:///tmp/a.txt", "", "", false},
		{"AGENTAUTH://files/x", "", "", false},
	}
	for _, tt := range tests {
		server, uri, ok := SplitURI(tt.in)
		if server != tt.server || uri != tt.uri || ok != tt.ok {
			t.Errorf("SplitURI(%q) = %q, %q, %v; want %q, %q, %v", tt.in, server, uri, ok, tt.server, tt.uri, tt.ok)
		}
	}
}

func TestValidToolName(t *testing.T) {
	good := []string{"read", "read_file", "a.b-c", strings.Repeat("x", 128-len("srv__"))}
	bad := []string{"", "read file", "read/file", "réad", "a:b", strings.Repeat("x", 128-len("srv__")+1)}
	for _, n := range good {
		if err := validToolName("srv", n); err != nil {
			t.Errorf("validToolName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range bad {
		if err := validToolName("srv", n); err == nil {
			t.Errorf("validToolName(%q) accepted an invalid name", n)
		}
	}
}

func FuzzSplitName(f *testing.F) {
	for _, s := range []string{"files__read", "a__b__c", "__", "x_y__z", "agentauth://files/file:///a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if server, name, ok := SplitName(s); ok {
			if JoinName(server, name) != s {
				t.Fatalf("JoinName(SplitName(%q)) = %q", s, JoinName(server, name))
			}
			if strings.Contains(server, "_") {
				t.Fatalf("server %q from %q contains an underscore", server, s)
			}
		}
		if server, uri, ok := SplitURI(s); ok {
			if JoinURI(server, uri) != s {
				t.Fatalf("JoinURI(SplitURI(%q)) = %q", s, JoinURI(server, uri))
			}
		}
	})
}
