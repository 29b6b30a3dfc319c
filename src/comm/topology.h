/* The 3-D process grid: pipe x data x model, model innermost, as DeepSpeed's
 * PipeModelDataParallelTopology and Megatron lay it out.
 *
 *   rank = (pipe * data_size + data) * model_size + model
 *
 * So the ranks of one tensor-parallel group are neighbours (on one node, where the links
 * are fastest), and a data-parallel group strides by model_size. Pure functions: testable
 * without MPI, and usable by `zerolab plan` for worlds that do not exist. */
#ifndef ZL_COMM_TOPOLOGY_H
#define ZL_COMM_TOPOLOGY_H

#include "base/status.h"

typedef enum zl_axis { ZL_AXIS_PIPE, ZL_AXIS_DATA, ZL_AXIS_MODEL } zl_axis;

typedef struct zl_topology {
    int pipe_size, data_size, model_size;
} zl_topology;

typedef struct zl_coords {
    int pipe, data, model;
} zl_coords;

/* A topology for `world_size` ranks with the given pipeline and tensor sizes; the data
 * size is what remains. ZL_ERR_CONFIG if they do not divide the world (the message names
 * the numbers). */
zl_status zl_topology_init(zl_topology *t, int world_size, int pipe_size, int model_size);

int zl_topology_world_size(const zl_topology *t);
zl_coords zl_topology_coords(const zl_topology *t, int rank);
int zl_topology_rank(const zl_topology *t, zl_coords c);

/* The ranks of `rank`'s group along `axis`, in increasing order, into ranks[] (room for
 * the axis size); returns the group size. The position of `rank` in it is its coordinate
 * on that axis. */
int zl_topology_group(const zl_topology *t, zl_axis axis, int rank, int *ranks);

/* A color that is equal for exactly the ranks of one group along `axis` (for
 * MPI_Comm_split): the rank with that axis' coordinate set to 0. */
int zl_topology_group_color(const zl_topology *t, zl_axis axis, int rank);

const char *zl_axis_name(zl_axis axis); /* "pipe", "data", "model" */

#endif
