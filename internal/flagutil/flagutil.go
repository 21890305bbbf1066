// Package flagutil holds weft's flag.Value types shared by its commands: today one, a repeatable string list
// that can also split each value at commas, so weftd (--iface, as upstream flanneld: repeatable, never split,
// since a regex may hold a comma), `weft quota`, `weft plan` and alisim (--fault specs carry commas) keep the
// behaviour they always had while sharing one type.
package flagutil

import "strings"

// Strings is a repeatable string flag appending to *Values. With Split, each value is also cut at commas, the
// parts trimmed and empty parts dropped (--backend a,b --backend c); without it a value is kept as given.
type Strings struct {
	Values *[]string
	Split  bool
}

// Repeated is a flag taken once per occurrence, never split (--iface a --iface b).
func Repeated(p *[]string) Strings { return Strings{Values: p} }

// CommaList is a flag taken once per occurrence and split at commas (--backend a,b --backend c).
func CommaList(p *[]string) Strings { return Strings{Values: p, Split: true} }

// String joins the values with commas (the zero Strings, which flag uses for defaults, is empty).
func (s Strings) String() string {
	if s.Values == nil {
		return ""
	}
	return strings.Join(*s.Values, ",")
}

// Set appends v (or its comma-separated parts).
func (s Strings) Set(v string) error {
	if !s.Split {
		*s.Values = append(*s.Values, v)
		return nil
	}
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*s.Values = append(*s.Values, part)
		}
	}
	return nil
}
