//go:build amd64 || arm64

#include "textflag.h"

// growStack has a frame of 24 KiB that it never touches: the prologue the
// assembler gives every function that is not NOSPLIT checks the frame
// against the stack's guard and, when it does not fit, has the runtime
// grow the stack (to 32 KiB from a shallow one) before the body runs.
TEXT ·growStack(SB), 0, $24576-0
	RET
