package etcd

import (
	"context"
	"testing"

	"github.com/weftnet/weft/subnet"
	"github.com/weftnet/weft/subnet/subnettest"
)

func TestContract(t *testing.T) {
	subnettest.RunContract(t, func(t *testing.T) subnettest.Env {
		f := setup(t, `{"Network":"10.5.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`)
		return subnettest.Env{A: f.manager(t, Options{}), B: f.manager(t, Options{}), Remove: func(l subnet.Lease) {
			if _, err := f.cli.Delete(context.Background(), f.prefix+"/subnets/"+l.Key()); err != nil {
				t.Error(err)
			}
		}}
	})
}
