/* Schedules as data: see schedule.h. */
#include "engine/schedule.h"

const char *zl_instr_name(zl_instr_kind kind)
{
    switch (kind) {
    case ZL_LOAD_MICRO_BATCH: return "LoadMicroBatch";
    case ZL_FORWARD_PASS: return "ForwardPass";
    case ZL_BACKWARD_PASS: return "BackwardPass";
    case ZL_REDUCE_TIED_GRADS: return "ReduceTiedGrads";
    case ZL_REDUCE_GRADS: return "ReduceGrads";
    case ZL_OPTIMIZER_STEP: return "OptimizerStep";
    }
    return "?";
}

int zl_schedule_data_parallel(int micro_batches, zl_instr *out, int cap)
{
    int n = 0;
#define EMIT(k, b)                                            \
    do {                                                      \
        if (n < cap) out[n] = (zl_instr){.kind = (k), .buffer = (b)}; \
        n++;                                                  \
    } while (0)
    for (int mb = 0; mb < micro_batches; mb++) {
        EMIT(ZL_LOAD_MICRO_BATCH, 0);
        EMIT(ZL_FORWARD_PASS, 0);
        EMIT(ZL_BACKWARD_PASS, 0);
    }
    EMIT(ZL_REDUCE_TIED_GRADS, -1);
    EMIT(ZL_REDUCE_GRADS, -1);
    EMIT(ZL_OPTIMIZER_STEP, -1);
#undef EMIT
    return n;
}

int zl_schedule_gpipe(int micro_batches, zl_instr *out, int cap)
{
    int n = 0;
#define EMIT(k, b)                                                    \
    do {                                                              \
        if (n < cap) out[n] = (zl_instr){.kind = (k), .buffer = (b)}; \
        n++;                                                          \
    } while (0)
    for (int mb = 0; mb < micro_batches; mb++) {
        EMIT(ZL_LOAD_MICRO_BATCH, mb);
        EMIT(ZL_FORWARD_PASS, mb);
    }
    for (int mb = 0; mb < micro_batches; mb++) EMIT(ZL_BACKWARD_PASS, mb);
    EMIT(ZL_REDUCE_TIED_GRADS, -1);
    EMIT(ZL_REDUCE_GRADS, -1);
    EMIT(ZL_OPTIMIZER_STEP, -1);
#undef EMIT
    return n;
}

int zl_schedule_make(zl_schedule_kind kind, int micro_batches, zl_instr *out, int cap)
{
    return kind == ZL_SCHEDULE_GPIPE ? zl_schedule_gpipe(micro_batches, out, cap)
                                     : zl_schedule_data_parallel(micro_batches, out, cap);
}

int zl_schedule_buffers(zl_schedule_kind kind, int micro_batches)
{
    return kind == ZL_SCHEDULE_GPIPE ? micro_batches : 1;
}

void zl_instr_format(const zl_instr *in, char *buf, size_t len)
{
    if (in->buffer >= 0)
        snprintf(buf, len, "%s(buffer_id=%d)", zl_instr_name(in->kind), in->buffer);
    else
        snprintf(buf, len, "%s()", zl_instr_name(in->kind));
}
