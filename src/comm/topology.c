#include "comm/topology.h"

#include "base/log.h"

zl_status zl_topology_init(zl_topology *t, int world_size, int pipe_size, int model_size)
{
    if (world_size < 1)
        return zl_errorf(ZL_ERR_CONFIG, "world size must be at least 1, got %d", world_size);
    if (pipe_size < 1)
        return zl_errorf(ZL_ERR_CONFIG, "pipeline parallel size must be at least 1, got %d",
                         pipe_size);
    if (model_size < 1)
        return zl_errorf(ZL_ERR_CONFIG, "model (tensor) parallel size must be at least 1, got %d",
                         model_size);
    /* Compare in 64 bits: pipe * model may overflow an int for absurd inputs. */
    long long pm = (long long)pipe_size * model_size;
    if (world_size % pm != 0)
        return zl_errorf(ZL_ERR_CONFIG,
                         "world size %d is not divisible by pipeline (%d) x model (%d) parallel "
                         "sizes; choose sizes whose product divides the number of ranks",
                         world_size, pipe_size, model_size);
    t->pipe_size = pipe_size;
    t->model_size = model_size;
    t->data_size = (int)(world_size / pm);
    return ZL_OK;
}

int zl_topology_world_size(const zl_topology *t)
{
    return t->pipe_size * t->data_size * t->model_size;
}

zl_coords zl_topology_coords(const zl_topology *t, int rank)
{
    ZL_ASSERT(rank >= 0 && rank < zl_topology_world_size(t));
    zl_coords c;
    c.model = rank % t->model_size;
    c.data = (rank / t->model_size) % t->data_size;
    c.pipe = rank / (t->model_size * t->data_size);
    return c;
}

int zl_topology_rank(const zl_topology *t, zl_coords c)
{
    ZL_ASSERT(c.pipe >= 0 && c.pipe < t->pipe_size);
    ZL_ASSERT(c.data >= 0 && c.data < t->data_size);
    ZL_ASSERT(c.model >= 0 && c.model < t->model_size);
    return (c.pipe * t->data_size + c.data) * t->model_size + c.model;
}

static int *axis_coord(zl_coords *c, zl_axis axis)
{
    switch (axis) {
    case ZL_AXIS_PIPE: return &c->pipe;
    case ZL_AXIS_DATA: return &c->data;
    case ZL_AXIS_MODEL: return &c->model;
    }
    ZL_ASSERT(!"bad axis");
    return NULL;
}

static int axis_size(const zl_topology *t, zl_axis axis)
{
    switch (axis) {
    case ZL_AXIS_PIPE: return t->pipe_size;
    case ZL_AXIS_DATA: return t->data_size;
    case ZL_AXIS_MODEL: return t->model_size;
    }
    ZL_ASSERT(!"bad axis");
    return 0;
}

/* The rank is increasing in every coordinate, so walking one coordinate from 0 up lists
 * the group in increasing rank order, and position i holds coordinate i. */
int zl_topology_group(const zl_topology *t, zl_axis axis, int rank, int *ranks)
{
    zl_coords c = zl_topology_coords(t, rank);
    int n = axis_size(t, axis);
    for (int i = 0; i < n; i++) {
        *axis_coord(&c, axis) = i;
        ranks[i] = zl_topology_rank(t, c);
    }
    return n;
}

int zl_topology_group_color(const zl_topology *t, zl_axis axis, int rank)
{
    zl_coords c = zl_topology_coords(t, rank);
    *axis_coord(&c, axis) = 0;
    return zl_topology_rank(t, c);
}

const char *zl_axis_name(zl_axis axis)
{
    switch (axis) {
    case ZL_AXIS_PIPE: return "pipe";
    case ZL_AXIS_DATA: return "data";
    case ZL_AXIS_MODEL: return "model";
    }
    return "?";
}
