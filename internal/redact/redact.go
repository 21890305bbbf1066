// Package redact keeps credentials out of what weft logs and reports: the userinfo of URLs (an etcd endpoint
// given as http://user:secret@host:2379), wherever it appears in a flag value, an error or a readiness reason.
// Every place that prints a URL or an error that may hold one goes through here, so there is one rule.
package redact

import (
	"net/url"
	"regexp"
)

// Marker replaces what was removed.
const Marker = "<redacted>"

// userinfo matches "user:password@" (with or without a scheme before it): a run without spaces, slashes or
// quotes holding a colon and ending in "@". An address such as bob@example.com, without a colon, is left alone.
var userinfo = regexp.MustCompile(`[^\s/@"'=,;(\[<>]*:[^\s/@"',;<>]*@`)

// Text replaces the userinfo of every URL in s by Marker.
func Text(s string) string {
	return userinfo.ReplaceAllString(s, Marker+"@")
}

// URL is raw with its userinfo (user name and password) replaced by Marker; a string that does not parse as
// a URL goes through Text.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return Text(raw)
	}
	u.User = nil
	s := u.String()
	// u.String() would escape the marker's < and >; put it in by hand after the scheme.
	if u.Scheme != "" {
		return u.Scheme + "://" + Marker + "@" + s[len(u.Scheme)+len("://"):]
	}
	return Text(raw)
}

// StripUserinfo is raw without its userinfo, and whether it had some: what a client should dial (etcd's client
// would otherwise carry the credentials into its own logs), never the credentials themselves.
func StripUserinfo(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw, false
	}
	u.User = nil
	return u.String(), true
}
