package lock

import (
	"strconv"
	"strings"
)

// A handover is what a releasing holder tells, through its doorbell, the
// exclusive waiter it made the key's holder: the nonce of the waiter's own
// entry in the line (which only it and readers of the table know, so that
// nobody else can make it believe it holds the key), the RVN and the
// fencing token of its new hold.
type handover struct {
	nonce, rvn string
	token      uint64
	// more is set when another exclusive waiter stood behind it.
	more bool
}

func (h handover) encode() []byte {
	more := "0"
	if h.more {
		more = "1"
	}
	return []byte("handover " + h.nonce + " " + h.rvn + " " + strconv.FormatUint(h.token, 10) + " " + more)
}

func parseHandover(b []byte) (handover, bool) {
	f := strings.Fields(string(b))
	if len(f) != 5 || f[0] != "handover" || f[1] == "" || f[2] == "" || (f[4] != "0" && f[4] != "1") {
		return handover{}, false
	}
	tok, err := strconv.ParseUint(f[3], 10, 64)
	if err != nil || tok == 0 || tok > MaxToken {
		return handover{}, false
	}
	return handover{nonce: f[1], rvn: f[2], token: tok, more: f[4] == "1"}, true
}
