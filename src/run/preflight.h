/* A run's check before it allocates: will it fit its device budget and the host's
 * memory? (preflight.c; zl_run_init calls it, so `zerolab train` does) */
#ifndef ZL_RUN_PREFLIGHT_H
#define ZL_RUN_PREFLIGHT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"
#include "comm/comm.h"
#include "engine/engine.h"
#include "model/gpt_config.h"

typedef struct zl_run_preflight {
    const zl_gpt_config *model;
    const zl_engine_options *options; /* as the engine will get them (dp is ignored) */
    size_t device_memory;             /* each rank's device budget; 0: unlimited */
    const char *device_name;          /* the card's display name; NULL: none */
    bool gpu;                         /* a card: the f32 stand-ins ("cast") are exempt */
    size_t host_nbytes;               /* host bytes each rank holds besides the engine's: the
                                       * data set (already loaded) and the batch buffers */
    size_t held_nbytes;               /* of those, already allocated (the data set) */
    int dp_size;                      /* data-parallel ranks (0: the world's size) */
    int pipe_stages;                  /* pipeline stages (0: none): every one is planned */
    int tp_size;                      /* tensor-parallel ranks (0 or 1: none) */
} zl_run_preflight;

/* Collective over world. Runs the engine with these options on the meta backend
 * (zl_plan_run: no byte allocated) and refuses, on every rank alike, a run that
 *  - passes the device budget: ZL_ERR_OOM with the message the ledger would give at the
 *    same allocation of the real run;
 *  - needs more host memory than this node has: ZL_ERR_NOMEM, "needs X of host memory
 *    (R ranks x Y), this machine has Z available". Y is the plan's peak (every tag, the
 *    CPU's "cast" stand-ins included: on the CPU every device byte is a host byte) plus
 *    host_nbytes plus a margin of 1/16 of the peak + 64 MiB (measured: the binary, its
 *    libraries and the low-precision GEMMs' packing buffers, which the ledger does not
 *    see, took 17 MiB for the lab model, 2.6% of gpt2-124m fp32, 6.4% of gpt2-124m bf16);
 *    R is the number of ranks on the node, which share its memory. Z is the host's
 *    available memory (base/hostmem.h) plus what the node's ranks already hold
 *    (held_nbytes), or ZL_HOST_MEMORY_AVAILABLE (bytes), an override for tests and for
 *    machines where the kernel's figure is wrong. Unknown host memory skips that check. */
zl_status zl_run_preflight_check(zl_comm *world, const zl_run_preflight *p);

#endif
