package flagutil

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestStrings(t *testing.T) {
	for _, c := range []struct {
		name  string
		split bool
		args  []string
		want  []string
	}{
		{"repeated keeps each value whole", false, []string{"-v", "a,b", "-v", " c ", "-v", ""}, []string{"a,b", " c ", ""}},
		{"a fault spec keeps its commas", false, []string{"-v", "CreateRouteEntries=Throttling:0.2,InternalError:0.1@50ms"},
			[]string{"CreateRouteEntries=Throttling:0.2,InternalError:0.1@50ms"}},
		{"comma list splits, trims and drops empty parts", true, []string{"-v", "a, b,,", "-v", "c"}, []string{"a", "b", "c"}},
		{"not given", true, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.Var(Strings{Values: &got, Split: c.split}, "v", "values")
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			if s := fs.Lookup("v").Value.String(); s != strings.Join(c.want, ",") {
				t.Fatalf("String() = %q", s)
			}
		})
	}
	// flag's help calls String on a zero value to decide whether to print a default: it must not panic.
	var out strings.Builder
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(&out)
	var v []string
	fs.Var(Repeated(&v), "iface", "interface")
	fs.Var(CommaList(&v), "backend", "backend")
	fs.PrintDefaults()
	if !strings.Contains(out.String(), "-iface") || (Strings{}).String() != "" {
		t.Fatalf("help: %s", out.String())
	}
}
