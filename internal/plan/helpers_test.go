package plan

import (
	"net/netip"
	"testing"

	"github.com/weftnet/weft/cloud/instancetype"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// itype is a type of the built-in table; with builtinSource, the one place the tests name the package that holds it.
func itype(t *testing.T, id string) instanceType {
	t.Helper()
	for _, it := range instancetype.Builtin() {
		if it.ID == id {
			return it
		}
	}
	t.Fatalf("no built-in %s", id)
	return instanceType{}
}

// builtinSource says where itype's figures come from.
const builtinSource = instancetype.BuiltinSource

func mustMake(t *testing.T, in Input) *Plan {
	t.Helper()
	p, err := Make(in)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func result(t *testing.T, p *Plan, backend string) Result {
	t.Helper()
	for _, r := range p.Backends {
		if r.Backend == backend {
			return r
		}
	}
	t.Fatalf("no %s in %+v", backend, p.Backends)
	return Result{}
}

func codes(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}
