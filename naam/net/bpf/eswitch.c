// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * eswitch.c -- the NAAM eSwitch as a kernel SO_REUSEPORT selector.
 *
 * The server's host role and NIC role bind the same UDP address in one
 * SO_REUSEPORT group: host sockets first (indices 0 .. H-1), then NIC sockets
 * (H .. H+N-1). This BPF_PROG_TYPE_SOCKET_FILTER program is attached to the
 * group with setsockopt(SO_ATTACH_REUSEPORT_EBPF); the kernel runs it for every
 * datagram that reaches the group, with the skb's data advanced past the UDP
 * header (net/core/sock_reuseport.c, run_bpf_filter: pskb_pull(skb, hdr_len)),
 * and uses its return value as the index of the receiving socket. An index
 * outside the group makes the kernel fall back to its own hash selection, so
 * the program always returns an index it was told exists (config map).
 *
 * Decision, mirrored in Rust by naam_net::eswitch::decide and checked message
 * by message against naam_engine::steer::RuleTable::route by the tests:
 *   - not a well-formed NAAM Invoke (header checks below) -> host socket 0;
 *   - shares = most specific rule: (tenant, function, flow), (tenant,
 *     function), (tenant), default;
 *   - the steering key is the UDP source port (naam_net::steer_port): port
 *     base + b (b < 1000) is bucket b, port base + 1000 is pinned to the host;
 *     a datagram from any other port carries no key and uses its request id's
 *     bucket ((request_id * 0x9e3779b97f4a7c15) >> 32) % 1000;
 *   - pinned -> host socket request_id % H;
 *   - client <= bucket < client + nic -> NIC socket H + request_id % N;
 *   - otherwise (host range, and the client range, which the host pushes
 *     back) -> host socket request_id % H.
 * The source port is read relative to the network header (the skb's data
 * starts past the UDP header here): IPv4 at the header length, IPv6 at 40
 * (our senders add no extension headers).
 *
 * Maps: eswitch_rules (hash: rule key -> shares; the default rule is the key
 * of kind RULE_KIND_DEFAULT), eswitch_config (array[1]: socket counts),
 * eswitch_counters (per-CPU array: datagrams per decision). Legacy `maps`
 * section definitions: aya 0.14 parses them without BTF.
 */
#include <linux/bpf.h>
#include "naam.h"

#define SEC(name) __attribute__((section(name), used))
#define INLINE static inline __attribute__((always_inline))

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

/* ---- the NAAM wire format (naam-engine src/wire.rs, version 1, little-endian) ---- */
#define WIRE_MAGIC 0x4e41
#define WIRE_VERSION 1
#define WIRE_KIND_INVOKE 1
#define WIRE_FLAGS_KNOWN 0x0001 /* InvokeFlags::KNOWN */
#define WIRE_DESCRIPTOR_BYTES 24

/* The fixed part of an Invoke, header included (54 bytes). */
struct invoke_wire {
	u16 magic;
	u8 version;
	u8 kind;
	u32 tenant;
	u32 function;
	u64 request_id;
	u32 flow;
	u16 flags;
	u8 step;
	u8 attempt;
	u8 descriptors;
	u8 origin;
	u16 args_len;
	u16 state_len;
	u8 reply_to[20];
} __attribute__((packed));
_Static_assert(sizeof(struct invoke_wire) == 54, "Invoke fixed part is 54 bytes");

/* ---- steering (naam-engine src/steer.rs) ---- */
#define STEER_BUCKETS 1000
#define STEER_HASH_MULTIPLIER 0x9e3779b97f4a7c15ULL
/* RULES_MAX non-default rules plus the default rule. */
#define ESWITCH_RULES_MAX 65537

#define RULE_KIND_DEFAULT 0
#define RULE_KIND_FLOW 1     /* (tenant, function, flow) */
#define RULE_KIND_FUNCTION 2 /* (tenant, function) */
#define RULE_KIND_TENANT 3   /* (tenant) */

struct rule_key {
	u32 tenant;
	u32 function;
	u32 flow;
	u32 kind;
};

struct shares {
	u16 host;
	u16 nic;
	u16 client;
	u16 pad;
};

struct config {
	u32 host_sockets;
	u32 nic_sockets;
	u32 steer_port_base; /* first port of the steering range */
	u32 steer_ports;     /* STEER_BUCKETS + 1: a port per bucket, then pinned */
};

#define KEY_NONE 0xffffffffu /* no key in the source port */
#define KEY_PINNED STEER_BUCKETS

#define COUNTER_HOST 0      /* host range: a host socket */
#define COUNTER_NIC 1       /* NIC range: a NIC socket */
#define COUNTER_CLIENT 2    /* client range: a host socket (the host pushes back) */
#define COUNTER_MALFORMED 3 /* not a well-formed Invoke: host socket 0 */
#define COUNTERS 4

/* ---- maps (legacy definitions) ---- */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") eswitch_rules = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(struct rule_key),
	.value_size = sizeof(struct shares),
	.max_entries = ESWITCH_RULES_MAX,
};

struct bpf_map_def SEC("maps") eswitch_config = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(struct config),
	.max_entries = 1,
};

struct bpf_map_def SEC("maps") eswitch_counters = {
	.type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = COUNTERS,
};

/* ---- helpers (no libbpf headers on the build machine: declared by id) ---- */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static long (*bpf_skb_load_bytes)(const void *skb, u32 offset, void *to, u32 len) =
	(void *)BPF_FUNC_skb_load_bytes;
static long (*bpf_skb_load_bytes_relative)(const void *skb, u32 offset, void *to, u32 len,
					   u32 start_header) = (void *)BPF_FUNC_skb_load_bytes_relative;

INLINE void count(u32 counter)
{
	u64 *value = bpf_map_lookup_elem(&eswitch_counters, &counter);
	if (value)
		*value += 1; /* per-CPU slot: no other writer */
}

/* The header checks of a well-formed Invoke; the engine decodes the rest. */
INLINE int invoke_well_formed(const struct invoke_wire *h, u32 len)
{
	if (h->magic != WIRE_MAGIC || h->version != WIRE_VERSION || h->kind != WIRE_KIND_INVOKE)
		return 0;
	if (h->flags & ~WIRE_FLAGS_KNOWN)
		return 0;
	if (h->descriptors > NAAM_ACCESSES_PER_STEP_MAX || h->origin > NAAM_ACCESSES_PER_STEP_MAX)
		return 0;
	if (h->args_len > NAAM_ARGS_BYTES_MAX || h->state_len > NAAM_STATE_BYTES_MAX)
		return 0;
	if (h->step > NAAM_STEPS_MAX || (h->step == 0) != (h->origin == 0))
		return 0;
	u32 expected = sizeof(struct invoke_wire) + h->args_len + h->state_len +
		       WIRE_DESCRIPTOR_BYTES * ((u32)h->descriptors + h->origin);
	return expected == len;
}

/* The steering key in the UDP source port: a bucket, KEY_PINNED, or KEY_NONE. */
INLINE u32 source_port_key(struct __sk_buff *skb, const struct config *cfg)
{
	u8 first;
	if (bpf_skb_load_bytes_relative(skb, 0, &first, 1, BPF_HDR_START_NET) < 0)
		return KEY_NONE;
	u32 udp_at;
	if ((first >> 4) == 4)
		udp_at = (u32)(first & 0x0f) * 4;
	else if ((first >> 4) == 6)
		udp_at = 40;
	else
		return KEY_NONE;
	u8 port_be[2];
	if (bpf_skb_load_bytes_relative(skb, udp_at, port_be, 2, BPF_HDR_START_NET) < 0)
		return KEY_NONE;
	u32 port = ((u32)port_be[0] << 8) | port_be[1];
	if (port < cfg->steer_port_base || port - cfg->steer_port_base >= cfg->steer_ports)
		return KEY_NONE;
	return port - cfg->steer_port_base;
}

INLINE struct shares *lookup_rule(const struct invoke_wire *h)
{
	struct rule_key key = {
		.tenant = h->tenant, .function = h->function, .flow = h->flow, .kind = RULE_KIND_FLOW};
	struct shares *found = bpf_map_lookup_elem(&eswitch_rules, &key);
	if (found)
		return found;
	key.flow = 0;
	key.kind = RULE_KIND_FUNCTION;
	found = bpf_map_lookup_elem(&eswitch_rules, &key);
	if (found)
		return found;
	key.function = 0;
	key.kind = RULE_KIND_TENANT;
	found = bpf_map_lookup_elem(&eswitch_rules, &key);
	if (found)
		return found;
	key.tenant = 0;
	key.kind = RULE_KIND_DEFAULT;
	return bpf_map_lookup_elem(&eswitch_rules, &key);
}

SEC("socket")
int naam_eswitch(struct __sk_buff *skb)
{
	u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&eswitch_config, &zero);
	if (!cfg)
		return 0;
	u32 host_sockets = cfg->host_sockets;
	u32 nic_sockets = cfg->nic_sockets;
	if (host_sockets == 0)
		return 0;

	struct invoke_wire h;
	u32 len = skb->len;
	if (len < sizeof(h) || bpf_skb_load_bytes(skb, 0, &h, sizeof(h)) < 0 ||
	    !invoke_well_formed(&h, len)) {
		count(COUNTER_MALFORMED);
		return 0;
	}

	/* No default rule yet (the loader writes one before attaching): all at the host. */
	u32 client = 0;
	u32 nic = 0;
	struct shares *s = lookup_rule(&h);
	if (s) {
		client = s->client;
		nic = s->nic;
	}
	u32 bucket = source_port_key(skb, cfg);
	if (bucket == KEY_NONE)
		bucket = ((h.request_id * STEER_HASH_MULTIPLIER) >> 32) % STEER_BUCKETS;
	if (bucket >= KEY_PINNED) {
		count(COUNTER_HOST);
		return (u32)(h.request_id % host_sockets);
	}

	if (bucket >= client && bucket < client + nic && nic_sockets > 0) {
		count(COUNTER_NIC);
		return host_sockets + (u32)(h.request_id % nic_sockets);
	}
	count(bucket < client ? COUNTER_CLIENT : COUNTER_HOST);
	return (u32)(h.request_id % host_sockets);
}

/* Uses no GPL-only helper, so the project licence is declared. */
char _license[] SEC("license") = "MIT OR Apache-2.0";
