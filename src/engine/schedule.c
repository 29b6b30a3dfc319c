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

/* Append one instruction: written while there is room, counted always. */
static void emit(zl_instr *out, int cap, int *n, zl_instr_kind kind, int buffer)
{
    if (*n < cap) out[*n] = (zl_instr){.kind = kind, .buffer = buffer};
    (*n)++;
}

/* The end of every step: the tie, the data-parallel reduction, the update. */
static void emit_boundary(zl_instr *out, int cap, int *n)
{
    emit(out, cap, n, ZL_REDUCE_TIED_GRADS, -1);
    emit(out, cap, n, ZL_REDUCE_GRADS, -1);
    emit(out, cap, n, ZL_OPTIMIZER_STEP, -1);
}

int zl_schedule_data_parallel(int micro_batches, zl_instr *out, int cap)
{
    int n = 0;
    for (int mb = 0; mb < micro_batches; mb++) {
        emit(out, cap, &n, ZL_LOAD_MICRO_BATCH, 0);
        emit(out, cap, &n, ZL_FORWARD_PASS, 0);
        emit(out, cap, &n, ZL_BACKWARD_PASS, 0);
    }
    emit_boundary(out, cap, &n);
    return n;
}

int zl_schedule_gpipe(int micro_batches, zl_instr *out, int cap)
{
    int n = 0;
    for (int mb = 0; mb < micro_batches; mb++) {
        emit(out, cap, &n, ZL_LOAD_MICRO_BATCH, mb);
        emit(out, cap, &n, ZL_FORWARD_PASS, mb);
    }
    for (int mb = 0; mb < micro_batches; mb++) emit(out, cap, &n, ZL_BACKWARD_PASS, mb);
    emit_boundary(out, cap, &n);
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
