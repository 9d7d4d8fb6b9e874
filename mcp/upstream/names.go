package upstream

import (
	"fmt"
	"strings"
)

// nameSeparator joins a server name and an upstream tool or prompt name.
const nameSeparator = "__"

// uriScheme starts every namespaced resource URI.
const uriScheme = "agentauth://"

// maxToolName is the longest tool name the MCP 2025-11-25 specification
// recommends; it also limits the name to [A-Za-z0-9_.-].
const maxToolName = 128

// JoinName returns the name under which the gateway exposes the tool or
// prompt name of server.
func JoinName(server, name string) string {
	return server + nameSeparator + name
}

// SplitName reverses [JoinName]. It reports false when namespaced does not
// start with a valid server name followed by "__" and a non-empty name.
func SplitName(namespaced string) (server, name string, ok bool) {
	server, name, ok = strings.Cut(namespaced, nameSeparator)
	if !ok || name == "" || ValidServerName(server) != nil {
		return "", "", false
	}
	return server, name, true
}

// JoinURI returns the URI under which the gateway exposes the resource (or
// resource template) uri of server.
func JoinURI(server, uri string) string {
	return uriScheme + server + "/" + uri
}

// SplitURI reverses [JoinURI].
func SplitURI(namespaced string) (server, uri string, ok bool) {
	rest, ok := strings.CutPrefix(namespaced, uriScheme)
	if !ok {
		return "", "", false
	}
	server, uri, ok = strings.Cut(rest, "/")
	if !ok || uri == "" || ValidServerName(server) != nil {
		return "", "", false
	}
	return server, uri, true
}

// ValidServerName checks that name can prefix tool names and sit in a URI
// host and a SPIFFE path: 1 to 63 of [A-Za-z0-9-], with no underscore so
// that the first "__" of a namespaced name always ends the server name.
func ValidServerName(name string) error {
	if name == "" || len(name) > 63 {
		return fmt.Errorf("server name %q must be 1 to 63 characters", name)
	}
	for _, c := range name {
		if !isAlnum(c) && c != '-' {
			return fmt.Errorf("server name %q contains %q; use letters, digits and '-'", name, c)
		}
	}
	return nil
}

// validToolName checks an upstream tool name against the MCP tool-name
// rule: 1 to 128 of [A-Za-z0-9_.-], also after namespacing by server.
func validToolName(server, name string) error {
	if name == "" {
		return fmt.Errorf("tool name is empty")
	}
	for _, c := range name {
		if !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return fmt.Errorf("tool name %q contains %q, outside [A-Za-z0-9_.-]", name, c)
		}
	}
	if n := len(JoinName(server, name)); n > maxToolName {
		return fmt.Errorf("tool name %q is %d characters once namespaced, over %d", name, n, maxToolName)
	}
	return nil
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
