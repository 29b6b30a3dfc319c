#include "base/rng.h"

#include <math.h>

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t zl_rng_bits(uint64_t seed, uint64_t stream, uint64_t index)
{
    /* Chain the finaliser so that nearby (stream, index) pairs land far apart. */
    uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
    h = mix64(h ^ (stream * 0xd1b54a32d192ed03ULL));
    return mix64(h ^ (index + 0x632be59bd9b4e019ULL));
}

float zl_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    return (float)(zl_rng_bits(seed, stream, index) >> 40) * 0x1p-24f;
}

float zl_rng_normal(uint64_t seed, uint64_t stream, uint64_t index)
{
    /* Two uniforms from one 64-bit draw: 32 bits each, u1 kept away from 0 for the log. */
    uint64_t r = zl_rng_bits(seed, stream, index);
    double u1 = ((double)(r >> 32) + 0.5) * 0x1p-32;
    double u2 = (double)(r & 0xffffffffULL) * 0x1p-32;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
