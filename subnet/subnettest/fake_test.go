package subnettest

import (
	"testing"

	"github.com/weftnet/weft/subnet"
)

func TestFakeContract(t *testing.T) {
	RunContract(t, func(t *testing.T) Env {
		cfg, err := subnet.ParseConfig([]byte(`{"Network":"10.5.0.0/16","SubnetLen":24}`))
		if err != nil {
			t.Fatal(err)
		}
		f := NewFake(cfg)
		return Env{A: f.Manager(), B: f.Manager(), Remove: f.RemoveLease}
	})
}
