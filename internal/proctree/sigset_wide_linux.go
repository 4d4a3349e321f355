//go:build linux && (mips || mipsle || mips64 || mips64le)

package proctree

// kernelSigsetBits is the size of the kernel's sigset_t (_NSIG) in bits.
const kernelSigsetBits = 128
