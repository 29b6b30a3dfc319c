/* The names of the communicator's calls (comm_op.h). */
#include "comm/comm_op.h"

const char *zl_comm_op_name(zl_comm_op op)
{
    /* The names DeepSpeed's comms logger prints for the same calls: ours move flat
     * tensors, which DeepSpeed does with all_gather_into_tensor / reduce_scatter_tensor. */
    switch (op) {
    case ZL_COMM_ALLREDUCE: return "all_reduce";
    case ZL_COMM_REDUCE_SCATTER: return "reduce_scatter_tensor";
    case ZL_COMM_ALLGATHER: return "all_gather_into_tensor";
    case ZL_COMM_BROADCAST: return "broadcast";
    case ZL_COMM_REDUCE: return "reduce";
    case ZL_COMM_SEND: return "send";
    case ZL_COMM_RECV: return "recv";
    case ZL_COMM_BARRIER: return "barrier";
    case ZL_COMM_NUM_OPS: break;
    }
    return "?";
}
