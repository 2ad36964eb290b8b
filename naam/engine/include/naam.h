/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * naam.h -- the ABI between NAAM functions (eBPF, written in C) and the NAAM
 * runtime (crate naam-engine). Compile a function with:
 *
 *     clang-19 -O2 -g0 -target bpf -I naam/engine/include -c f.c -o f.o
 *
 * This ABI is our reconstruction: the NAAM paper (arXiv 2509.07431) publishes
 * only its abstract. See ARTIFACT.md, "What is reconstructed".
 *
 * Execution model (continuation style). A message names a function and a list
 * of access descriptors (rkey, offset, len). The runtime performs those
 * accesses at whatever location the message was steered to (host memory,
 * DMA from the NIC, one-sided reads from a client), then calls the function
 * once per *step* with the fetched bytes. The function returns:
 *
 *   NAAM_DONE   reply bytes were produced with naam_reply(); the message ends;
 *   NAAM_NEXT   it declared new accesses with naam_read() (pointer chasing);
 *               the runtime performs them and calls it again with step + 1;
 *   NAAM_RETRY  it detected a torn or stale read (e.g. a version changed);
 *               the runtime restarts the message from step 0;
 *   any other value: a function-defined error code, reported to the client.
 *
 * A function never blocks and never sees a host pointer: every pointer in
 * struct naam_ctx is an address in the VM's own address space, and every
 * access it declares is checked (bounds, permission, tenant) before a byte
 * moves, at every location alike.
 *
 * Every limit below is mirrored by a constant in naam-engine (src/abi.rs); a
 * test checks that the two agree.
 */
#ifndef NAAM_H
#define NAAM_H

typedef unsigned char naam_u8;
typedef unsigned short naam_u16;
typedef unsigned int naam_u32;
typedef unsigned long long naam_u64;
typedef long long naam_s64;

#define NAAM_ABI_VERSION 1

/* ---- Named limits ------------------------------------------------------ */
#define NAAM_ARGS_BYTES_MAX 256      /* argument block of a message */
#define NAAM_STATE_BYTES_MAX 256     /* state carried from one step to the next */
#define NAAM_REPLY_BYTES_MAX 1024    /* reply payload of one message */
#define NAAM_ACCESSES_PER_STEP_MAX 4 /* descriptors declared for one step */
#define NAAM_ACCESS_BYTES_MAX 4096   /* bytes of one access */
#define NAAM_STEPS_MAX 16            /* steps of one message (one attempt) */
#define NAAM_RETRIES_MAX 8           /* NAAM_RETRY restarts of one message */

/* ---- Return values of a function -------------------------------------- */
#define NAAM_DONE 0
#define NAAM_NEXT 1
#define NAAM_RETRY 2
/* Function-defined error codes should start here to stay clear of the above. */
#define NAAM_ERR_BASE 16

/* ---- Where the function is running (informational) --------------------- */
#define NAAM_LOC_HOST 0
#define NAAM_LOC_NIC 1
#define NAAM_LOC_CLIENT 2

/* One completed access of the current step. */
struct naam_data {
    naam_u64 addr; /* VM address of the fetched bytes (read-only) */
    naam_u32 len;  /* bytes fetched: the descriptor's len */
    naam_u32 _reserved;
};

/* The context: r1 on entry. Read-only for the function. */
struct naam_ctx {
    naam_u64 args;      /* VM address of the argument block (read-only) */
    naam_u32 args_len;  /* bytes in the argument block */
    naam_u32 step;      /* 0 on the first step of an attempt */
    naam_u64 state;     /* VM address of the state buffer (NAAM_STATE_BYTES_MAX, read-write) */
    naam_u32 state_len; /* bytes of state carried into this step (0 at step 0) */
    naam_u32 attempt;   /* 0, then 1.. after each NAAM_RETRY */
    naam_u32 location;  /* NAAM_LOC_* */
    naam_u32 n_data;    /* completed accesses of this step, in declaration order */
    struct naam_data data[NAAM_ACCESSES_PER_STEP_MAX];
};

/* The engine (src/abi.rs) writes this layout; every compile checks it. */
_Static_assert(__builtin_offsetof(struct naam_ctx, state) == 16, "naam_ctx.state offset");
_Static_assert(__builtin_offsetof(struct naam_ctx, n_data) == 36, "naam_ctx.n_data offset");
_Static_assert(__builtin_offsetof(struct naam_ctx, data) == 40, "naam_ctx.data offset");
_Static_assert(sizeof(struct naam_ctx) == 40 + 16 * NAAM_ACCESSES_PER_STEP_MAX, "naam_ctx size");

/* ---- Helpers ------------------------------------------------------------ */
/* Helper ids (the `imm` of `call`); numbered away from Linux's helpers. */
#define NAAM_HELPER_READ 0x4e01
#define NAAM_HELPER_REPLY 0x4e02
#define NAAM_HELPER_SAVE_STATE 0x4e03

/*
 * Declare a read of `len` bytes at `offset` of the region named by `rkey`,
 * performed before the next step. Returns its index in the next step's
 * ctx->data[], or a negative value when the step already has
 * NAAM_ACCESSES_PER_STEP_MAX accesses or len is 0 or > NAAM_ACCESS_BYTES_MAX.
 * Bounds, permission and tenant are checked by the runtime when it performs
 * the access; a denied access ends the message with an access error.
 */
static long (*const naam_read)(naam_u64 rkey, naam_u64 offset, naam_u32 len) =
    (void *)NAAM_HELPER_READ;

/* Append `len` bytes to the reply. Negative when the reply would exceed
 * NAAM_REPLY_BYTES_MAX. */
static long (*const naam_reply)(const void *src, naam_u32 len) = (void *)NAAM_HELPER_REPLY;

/* Carry the first `len` bytes of ctx->state into the next step. Negative when
 * len > NAAM_STATE_BYTES_MAX. Without a call, no state is carried. */
static long (*const naam_save_state)(naam_u32 len) = (void *)NAAM_HELPER_SAVE_STATE;

/* ---- Declaring a function ---------------------------------------------- */
/* NAAM_FUNCTION(mica_get) puts the function in ELF section "naam/mica_get";
 * the runtime loads it by that section name or by its symbol name. */
#define NAAM_FUNCTION(name)                                                      \
    __attribute__((section("naam/" #name), used)) long name(const struct naam_ctx *ctx)

/* Loads of fixed-size little-endian fields from fetched bytes. */
#define NAAM_LOAD(type, base, off) (*(const type *)((const naam_u8 *)(base) + (off)))

#endif /* NAAM_H */
