// Package oidcop runs a real OpenID provider for tests and the demo:
// zitadel's op package over TLS on 127.0.0.1, with in-memory users, public
// clients that use the authorization code flow with PKCE, and a login form
// that takes a user name (no password, so never use it beyond loopback).
// Callers get ID tokens the way a browser would, by driving the flow over
// HTTP, or sign in through the form in a browser.
package oidcop
