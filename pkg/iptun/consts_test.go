package iptun

import "testing"

// TestAttributeNumbering checks the attribute constants against the
// kernel's enums in include/uapi/linux/if_tunnel.h, which number their
// members consecutively from 0 in this order.
func TestAttributeNumbering(t *testing.T) {
	enums := map[string][]int{
		"IFLA_IPTUN": {
			iflaIPTunUnspec, iflaIPTunLink, iflaIPTunLocal, iflaIPTunRemote, iflaIPTunTTL,
			iflaIPTunTOS, iflaIPTunEncapLimit, iflaIPTunFlowInfo, iflaIPTunFlags, iflaIPTunProto,
			iflaIPTunPMTUDisc, iflaIPTun6RDPrefix, iflaIPTun6RDRelayPrefix, iflaIPTun6RDPrefixLen,
			iflaIPTun6RDRelayPrefixLen, iflaIPTunEncapType, iflaIPTunEncapFlags, iflaIPTunEncapSport,
			iflaIPTunEncapDport, iflaIPTunCollectMetadata, iflaIPTunFwMark,
		},
		"IFLA_GRE": {
			iflaGREUnspec, iflaGRELink, iflaGREIFlags, iflaGREOFlags, iflaGREIKey, iflaGREOKey,
			iflaGRELocal, iflaGRERemote, iflaGRETTL, iflaGRETOS, iflaGREPMTUDisc, iflaGREEncapLimit,
			iflaGREFlowInfo, iflaGREFlags, iflaGREEncapType, iflaGREEncapFlags, iflaGREEncapSport,
			iflaGREEncapDport, iflaGRECollectMetadata, iflaGREIgnoreDF, iflaGREFwMark,
			iflaGREErspanIndex, iflaGREErspanVer, iflaGREErspanDir, iflaGREErspanHwid,
		},
	}
	for name, vals := range enums {
		for i, v := range vals {
			if v != i {
				t.Errorf("%s enum member %d has value %d", name, i, v)
			}
		}
	}
	if len(enums["IFLA_IPTUN"]) != 21 || len(enums["IFLA_GRE"]) != 25 {
		t.Errorf("enum sizes: IFLA_IPTUN %d (want 21), IFLA_GRE %d (want 25)",
			len(enums["IFLA_IPTUN"]), len(enums["IFLA_GRE"]))
	}
}
