package nft

import (
	"fmt"
	"strings"
)

// udataRuleComment is NFTNL_UDATA_RULE_COMMENT, the TLV type nft stores
// rule comments under in NFTA_RULE_USERDATA.
const udataRuleComment = 0

// maxComment is the longest comment one TLV can carry: its length byte
// counts the terminating NUL.
const maxComment = 254

// commentUserData encodes s as nft encodes a rule comment: type, length
// (including the NUL), the string and a NUL.
func commentUserData(s string) ([]byte, error) {
	if len(s) > maxComment {
		return nil, fmt.Errorf("comment of %d bytes is longer than %d", len(s), maxComment)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return nil, fmt.Errorf("comment %q contains a NUL byte", s)
	}
	b := make([]byte, 0, len(s)+3)
	b = append(b, udataRuleComment, byte(len(s)+1))
	b = append(b, s...)
	return append(b, 0), nil
}

// commentFromUserData finds the comment TLV in a rule's user data; ok is
// false when there is none or the data is malformed.
func commentFromUserData(b []byte) (s string, ok bool) {
	for len(b) >= 2 {
		typ, n := b[0], int(b[1])
		if len(b) < 2+n {
			return "", false
		}
		v := b[2 : 2+n]
		b = b[2+n:]
		if typ != udataRuleComment {
			continue
		}
		// nft rejects a comment that is not NUL-terminated.
		if n == 0 || v[n-1] != 0 {
			return "", false
		}
		return string(v[:n-1]), true
	}
	return "", false
}
