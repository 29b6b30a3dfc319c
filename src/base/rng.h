/* Counter-based random numbers: value i of stream s under seed k is a pure function of
 * (k, s, i). Parameter initialisation draws element i of parameter p as
 * zl_rng_normal(seed, p, i), so any rank can initialise any slice of any parameter and
 * get exactly the bits a single rank would: the initial model does not depend on how it
 * is later sharded (ZeRO-3, tensor or pipeline parallelism). */
#ifndef ZL_BASE_RNG_H
#define ZL_BASE_RNG_H

#include <stdint.h>

/* 64 random bits: SplitMix64's finaliser applied to a mix of the three inputs. */
uint64_t zl_rng_bits(uint64_t seed, uint64_t stream, uint64_t index);
/* Uniform in [0, 1), 24 bits of resolution (exactly representable in f32). */
float zl_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
/* Standard normal (Box-Muller on two independent uniforms). */
float zl_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);

#endif
