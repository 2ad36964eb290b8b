/* ELF features the loader must link, as clang-19 emits them (tests/elf.rs runs every function):
 * .rodata tables and strings, a table of pointers (R_BPF_64_ABS64 inside data), writable .data
 * and .bss globals, BPF-to-BPF calls into static noinline functions in .text, and several
 * functions in one object, picked by section name or by symbol name. */
#include "naam.h"

static const naam_u64 primes[8] = {2, 3, 5, 7, 11, 13, 17, 19};
static const char greeting[] = "hello, naam";
static const char *const words[3] = {"zero", "one", "three"};
naam_u64 counter = 40;
naam_u64 scratch[4];

static __attribute__((noinline)) naam_u64 prime_at(naam_u64 i)
{
    return primes[i & 7];
}

static __attribute__((noinline)) naam_u64 weigh(naam_u64 a, naam_u64 b)
{
    return a * prime_at(b) + prime_at(a);
}

/* Sum of the first in[0] primes (at most 8), one BPF-to-BPF call per prime. */
__attribute__((section("naam/sum_primes"), used)) long sum_primes(const naam_u64 *in)
{
    naam_u64 total = 0;
    for (naam_u64 i = 0; i < in[0] && i < 8; i++)
        total += prime_at(i);
    return total;
}

/* Byte in[0] of a .rodata.str string. */
__attribute__((section("naam/greeting_byte"), used)) long greeting_byte(const naam_u64 *in)
{
    return greeting[in[0] % (sizeof greeting - 1)];
}

/* Adds in[0] to a .data global and counts in a .bss array: both start fresh every invocation. */
__attribute__((section("naam/bump"), used)) long bump(const naam_u64 *in)
{
    counter += in[0];
    scratch[in[0] & 3] += 1;
    return counter * 100 + scratch[in[0] & 3];
}

/* Length of words[in[0] % 3], through a table of pointers into a string section. */
__attribute__((section("naam/word_len"), used)) long word_len(const naam_u64 *in)
{
    const char *word = words[in[0] % 3];
    long n = 0;
    while (word[n] != 0 && n < 64)
        n++;
    return n;
}

/* Two functions in .text, picked by symbol name; text_weigh calls its neighbour weigh. */
long text_weigh(const naam_u64 *in)
{
    return weigh(in[0], in[1]);
}

/* Keeps a pointer to a caller's stack slot alive across a call (the callee writes through it). */
static __attribute__((noinline)) void fill(naam_u64 *out, naam_u64 value)
{
    out[0] = value;
    out[1] = value * 2;
}

long stack_pointer_arg(const naam_u64 *in)
{
    naam_u64 pair[2];
    fill(pair, in[0]);
    return pair[0] + pair[1];
}
