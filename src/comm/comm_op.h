/* The calls a communicator makes, and their names. The bottom of the comm room: the
 * communicators (comm.h) record calls into the comms logger (comm_log.h), and both name
 * the calls from here, so neither needs the other to know what an op is called. */
#ifndef ZL_COMM_COMM_OP_H
#define ZL_COMM_COMM_OP_H

typedef enum zl_comm_op {
    ZL_COMM_ALLREDUCE,
    ZL_COMM_REDUCE_SCATTER,
    ZL_COMM_ALLGATHER,
    ZL_COMM_BROADCAST,
    ZL_COMM_REDUCE,
    ZL_COMM_SEND,
    ZL_COMM_RECV,
    ZL_COMM_BARRIER,
    ZL_COMM_NUM_OPS
} zl_comm_op;

/* DeepSpeed's names: "all_reduce", "reduce_scatter_tensor", "all_gather_into_tensor",
 * "broadcast", "reduce", "send", "recv", "barrier". */
const char *zl_comm_op_name(zl_comm_op op);

#endif
