/* Constructs clang compiles but the NAAM VM refuses at load, each with a typed error naming the
 * section and relocation (tests/elf.rs): an extern, a BPF map, and the address of a function. */
#include "naam.h"

extern naam_u64 tenant_secret;

struct map_def {
    int type;
    int max_entries;
};
struct map_def lookup_map __attribute__((section(".maps"), used));

static __attribute__((noinline)) long callee(long x)
{
    return x + 1;
}

__attribute__((section("naam/uses_extern"), used)) long uses_extern(const naam_u64 *in)
{
    return tenant_secret + in[0];
}

__attribute__((section("naam/uses_map"), used)) long uses_map(const naam_u64 *in)
{
    return (long)&lookup_map + in[0];
}

__attribute__((section("naam/function_address"), used)) long function_address(const naam_u64 *in)
{
    long (*volatile f)(long) = callee;
    return (long)f + callee(in[0]);
}
