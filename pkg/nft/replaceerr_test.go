package nft

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/tunneld/tunneld/pkg/model"
)

// TestReplaceErr: a table the kernel refuses with ENOENT (an expression
// whose module it lacks: kmod-nft-nat missing on a router) says so, and
// names the masquerade module when the table masquerades; other errors
// are only the operation's; the errno stays wrapped. The table's name is
// the operation's (plan.Op.Object), not said twice (a tester saw
// "nftables table inet tunneld: nftables table inet tunneld: replace").
func TestReplaceErr(t *testing.T) {
	masq := &model.Filter{Chains: []model.Chain{{Name: "postrouting", Hook: "postrouting", Rules: []model.FRule{{OIF: "t1", Verdict: model.Verdict{Kind: model.Masquerade}}}}}}
	plain := &model.Filter{Chains: []model.Chain{{Name: "forward", Hook: "forward", Rules: []model.FRule{{IIF: "t1", Verdict: model.Verdict{Kind: model.Drop}}}}}}
	for _, tt := range []struct {
		name  string
		f     *model.Filter
		errno unix.Errno
		want  string
	}{
		{"masquerade, no module", masq, unix.ENOENT, "replace: the kernel lacks an nftables expression the table uses, its module not loaded or not built (masquerade needs nft_masq: on OpenWrt, kmod-nft-nat): no such file or directory"},
		{"no module", plain, unix.ENOENT, "replace: the kernel lacks an nftables expression the table uses, its module not loaded or not built: no such file or directory"},
		{"another error", masq, unix.EPERM, "replace: operation not permitted"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := replaceErr(tt.f, tt.errno)
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" || !errors.Is(err, tt.errno) {
				t.Errorf("error (-want +got):\n%s\nerrors.Is(%v) = %v", diff, tt.errno, errors.Is(err, tt.errno))
			}
		})
	}
	if replaceErr(plain, nil) != nil {
		t.Error("no error became one")
	}
}
