#include "textflag.h"

// The shared block (block in beat_linux.go, offsets checked by a test).
#define B_FD 0
#define B_MSGS 8
#define B_NMSGS 16
#define B_NEXT 24
#define B_INTERVAL 32
#define B_LEASE 40
#define B_STOP 48
#define B_SENT 56
#define B_FAILED 64
#define B_ERRNO 72
#define B_LAPSED 80
#define B_TID 88
#define B_WAKESEC 96
#define B_WAKENSEC 104
#define B_NOWSEC 112
#define B_NOWNSEC 120
#define B_ALLSIGS 128
#define B_OLDSIGS 136
#define B_VDSO 144

#define SYS_rt_sigprocmask 14
#define SYS_clone 56
#define SYS_exit 60
#define SYS_futex 202
#define SYS_clock_gettime 228
#define SYS_sendmmsg 307

// func spawn(b uintptr, stack uintptr, flags uintptr) int64
//
// spawn starts the sender thread and returns its thread ID, or -errno.
// The thread runs only the code below: it has no g, and it shares the
// caller's thread pointer, so it must never take a signal (the runtime's
// handler would act for the caller's g). Every signal is blocked around
// the clone, the new thread keeps that mask, and the caller gets its own
// back.
TEXT ·spawn(SB), NOSPLIT, $0-32
	MOVQ b+0(FP), R12
	MOVQ $SYS_rt_sigprocmask, AX // (SIG_SETMASK, all, old, 8)
	MOVQ $2, DI
	LEAQ B_ALLSIGS(R12), SI
	LEAQ B_OLDSIGS(R12), DX
	MOVQ $8, R10
	SYSCALL
	MOVQ flags+16(FP), DI        // (flags, stack, &tid, &tid, 0)
	MOVQ stack+8(FP), SI
	LEAQ B_TID(R12), DX
	LEAQ B_TID(R12), R10
	XORQ R8, R8
	MOVQ $SYS_clone, AX
	SYSCALL
	CMPQ AX, $0
	JEQ  sender
	MOVQ AX, R13
	MOVQ $SYS_rt_sigprocmask, AX // (SIG_SETMASK, old, nil, 8)
	MOVQ $2, DI
	LEAQ B_OLDSIGS(R12), SI
	XORQ DX, DX
	MOVQ $8, R10
	SYSCALL
	MOVQ R13, ret+24(FP)
	RET

// The sender: R12 holds the block. Each turn sleeps on the stop word
// until the absolute CLOCK_MONOTONIC deadline next (FUTEX_WAIT_BITSET
// takes an absolute time on that clock), so that a stop wakes it at once,
// then sends every message with one sendmmsg, and sets next one interval
// on, or one interval after now if it woke that late (one send however
// late, as the engine's Adver_Timer does). Past the lease it sends no more.
sender:
	MOVL B_STOP(R12), AX
	TESTL AX, AX
	JNE  exit
	MOVQ B_NEXT(R12), AX
	XORQ DX, DX
	MOVQ $1000000000, CX
	DIVQ CX
	MOVQ AX, B_WAKESEC(R12)
	MOVQ DX, B_WAKENSEC(R12)
	MOVQ $SYS_futex, AX          // (&stop, FUTEX_WAIT_BITSET_PRIVATE, 0, &wake, nil, all bits)
	LEAQ B_STOP(R12), DI
	MOVQ $137, SI
	XORQ DX, DX
	LEAQ B_WAKESEC(R12), R10
	XORQ R8, R8
	MOVQ $0xffffffff, R9
	SYSCALL
	CMPQ AX, $-110               // ETIMEDOUT: the deadline
	JEQ  due
	CMPQ AX, $0                  // woken
	JEQ  sender
	CMPQ AX, $-11                // EAGAIN: stop was set
	JEQ  sender
	CMPQ AX, $-4                 // EINTR
	JEQ  sender
	NEGQ AX                      // anything else would spin: give up, as at the lease's end
	MOVQ AX, B_ERRNO(R12)
	JMP  lapse

due:
	MOVL B_STOP(R12), AX
	TESTL AX, AX
	JNE  exit
	MOVQ B_NEXT(R12), AX
	CMPQ AX, B_LEASE(R12)
	JGT  lapse
	MOVQ $SYS_sendmmsg, AX       // (fd, msgs, n, MSG_DONTWAIT)
	MOVQ B_FD(R12), DI
	MOVQ B_MSGS(R12), SI
	MOVQ B_NMSGS(R12), DX
	MOVQ $0x40, R10
	SYSCALL
	CMPQ AX, $0
	JLT  failed
	ADDQ AX, B_SENT(R12)         // single writer: the Go side only loads
	MOVQ B_NMSGS(R12), BX
	SUBQ AX, BX                  // a short count: the rest were not sent
	ADDQ BX, B_FAILED(R12)
	JMP  advance

failed:
	NEGQ AX
	MOVQ AX, B_ERRNO(R12)
	MOVQ B_NMSGS(R12), AX
	ADDQ AX, B_FAILED(R12)

advance:
	MOVQ $1, DI                  // clock_gettime(CLOCK_MONOTONIC, &now)
	LEAQ B_NOWSEC(R12), SI
	MOVQ B_VDSO(R12), AX
	TESTQ AX, AX
	JEQ  clocksys
	CALL AX                      // the vDSO's, C's calling convention: R12 is kept, the stack 16-byte aligned
	JMP  clocked

clocksys:
	MOVQ $SYS_clock_gettime, AX
	SYSCALL

clocked:
	MOVQ B_NOWSEC(R12), AX
	IMULQ $1000000000, AX
	ADDQ B_NOWNSEC(R12), AX      // now in ns
	MOVQ B_NEXT(R12), BX
	ADDQ B_INTERVAL(R12), BX
	CMPQ BX, AX
	JGT  store
	MOVQ AX, BX
	ADDQ B_INTERVAL(R12), BX

store:
	MOVQ BX, B_NEXT(R12)
	JMP  sender

lapse:
	MOVL $1, B_LAPSED(R12)

exit:
	MOVQ $SYS_exit, AX           // this thread only; the kernel clears tid
	XORQ DI, DI
	SYSCALL
	JMP  exit
