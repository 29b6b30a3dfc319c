/* The 3-D process grid (pipe x data x model, model innermost): pure functions, no MPI. */
#include <string.h>

#include "check_util.h"
#include "comm/topology.h"

typedef struct shape {
    int pipe, data, model;
} shape;

static const shape shapes[] = {
    {1, 1, 1}, {1, 4, 1}, {1, 1, 4}, {4, 2, 1}, {2, 3, 2}, {3, 1, 5}, {2, 2, 2}, {2, 4, 3},
};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

static zl_topology make(shape s)
{
    zl_topology t;
    ck_assert_int_eq(zl_topology_init(&t, s.pipe * s.data * s.model, s.pipe, s.model), ZL_OK);
    return t;
}

static int coord_on(zl_coords c, zl_axis a)
{
    return a == ZL_AXIS_PIPE ? c.pipe : a == ZL_AXIS_DATA ? c.data : c.model;
}

/* Ranks are numbered by nested loops, pipe outermost and model innermost: an independent
 * statement of the layout, checked against coords() and rank(). */
START_TEST(test_topology_coords_rank_round_trip)
{
    for (int k = 0; k < NSHAPES; k++) {
        shape s = shapes[k];
        zl_topology t = make(s);
        ck_assert_int_eq(t.data_size, s.data);
        ck_assert_int_eq(zl_topology_world_size(&t), s.pipe * s.data * s.model);
        int r = 0;
        for (int p = 0; p < s.pipe; p++)
            for (int d = 0; d < s.data; d++)
                for (int m = 0; m < s.model; m++, r++) {
                    zl_coords c = zl_topology_coords(&t, r);
                    ck_assert_msg(c.pipe == p && c.data == d && c.model == m,
                                  "shape %dx%dx%d rank %d: coords (%d,%d,%d), want (%d,%d,%d)",
                                  s.pipe, s.data, s.model, r, c.pipe, c.data, c.model, p, d, m);
                    zl_coords want = {p, d, m};
                    ck_assert_int_eq(zl_topology_rank(&t, want), r);
                }
    }
}
END_TEST

/* pipe 2 x data 2 x model 2, worked out by hand from the layout:
 *   rank:   0 1 2 3 4 5 6 7
 *   pipe:   0 0 0 0 1 1 1 1
 *   data:   0 0 1 1 0 0 1 1
 *   model:  0 1 0 1 0 1 0 1 */
START_TEST(test_topology_model_innermost_groups)
{
    zl_topology t = make((shape){2, 2, 2});
    int g[8];
    ck_assert_int_eq(zl_topology_group(&t, ZL_AXIS_MODEL, 0, g), 2);
    ck_assert(g[0] == 0 && g[1] == 1); /* tensor-parallel neighbours */
    ck_assert_int_eq(zl_topology_group(&t, ZL_AXIS_DATA, 0, g), 2);
    ck_assert(g[0] == 0 && g[1] == 2);
    ck_assert_int_eq(zl_topology_group(&t, ZL_AXIS_PIPE, 0, g), 2);
    ck_assert(g[0] == 0 && g[1] == 4);
    ck_assert_int_eq(zl_topology_group(&t, ZL_AXIS_MODEL, 5, g), 2);
    ck_assert(g[0] == 4 && g[1] == 5);
    ck_assert_int_eq(zl_topology_group(&t, ZL_AXIS_DATA, 5, g), 2);
    ck_assert(g[0] == 5 && g[1] == 7);
    ck_assert_int_eq(zl_topology_group(&t, ZL_AXIS_PIPE, 5, g), 2);
    ck_assert(g[0] == 1 && g[1] == 5);
    ck_assert_int_eq(zl_topology_group_color(&t, ZL_AXIS_DATA, 7), 5);
    ck_assert_int_eq(zl_topology_group_color(&t, ZL_AXIS_MODEL, 7), 6);
    ck_assert_int_eq(zl_topology_group_color(&t, ZL_AXIS_PIPE, 7), 3);

    /* In any shape, ranks 0..model-1 are the first model group. */
    for (int k = 0; k < NSHAPES; k++) {
        zl_topology u = make(shapes[k]);
        int h[16];
        int n = zl_topology_group(&u, ZL_AXIS_MODEL, 0, h);
        ck_assert_int_eq(n, shapes[k].model);
        for (int i = 0; i < n; i++) ck_assert_int_eq(h[i], i);
    }
}
END_TEST

/* Along every axis the groups partition the world; a rank sits in its group at the
 * position of its coordinate; members differ only on that axis; and two ranks have the
 * same color exactly when they are in the same group. */
START_TEST(test_topology_groups_partition_and_colors)
{
    static const zl_axis axes[] = {ZL_AXIS_PIPE, ZL_AXIS_DATA, ZL_AXIS_MODEL};
    for (int k = 0; k < NSHAPES; k++) {
        shape s = shapes[k];
        zl_topology t = make(s);
        int W = zl_topology_world_size(&t);
        for (int a = 0; a < 3; a++) {
            zl_axis ax = axes[a];
            int want_n = ax == ZL_AXIS_PIPE ? s.pipe : ax == ZL_AXIS_DATA ? s.data : s.model;
            int seen[64] = {0};
            for (int r = 0; r < W; r++) {
                int g[64];
                int n = zl_topology_group(&t, ax, r, g);
                ck_assert_int_eq(n, want_n);
                zl_coords cr = zl_topology_coords(&t, r);
                ck_assert_int_eq(g[coord_on(cr, ax)], r);
                for (int i = 0; i < n; i++) {
                    if (i > 0) ck_assert_int_lt(g[i - 1], g[i]); /* increasing */
                    zl_coords ci = zl_topology_coords(&t, g[i]);
                    ck_assert_int_eq(coord_on(ci, ax), i);
                    for (int b = 0; b < 3; b++)
                        if (b != a) ck_assert_int_eq(coord_on(ci, axes[b]), coord_on(cr, axes[b]));
                }
                if (g[0] == r) /* count each group once, by its first member */
                    for (int i = 0; i < n; i++) seen[g[i]]++;
                ck_assert_int_eq(zl_topology_group_color(&t, ax, r), g[0]);
            }
            for (int r = 0; r < W; r++) ck_assert_int_eq(seen[r], 1);
            for (int r = 0; r < W; r++)
                for (int q = 0; q < W; q++) {
                    int g[64], n = zl_topology_group(&t, ax, r, g), same = 0;
                    for (int i = 0; i < n; i++) same |= g[i] == q;
                    ck_assert_int_eq(zl_topology_group_color(&t, ax, r) ==
                                         zl_topology_group_color(&t, ax, q),
                                     same);
                }
        }
    }
}
END_TEST

START_TEST(test_topology_errors_name_the_numbers)
{
    zl_topology t = {0, 0, 0};
    ck_assert_int_eq(zl_topology_init(&t, 6, 4, 1), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(),
                                 "world size 6 is not divisible by pipeline (4) x model (1) "
                                 "parallel sizes"));
    ck_assert_int_eq(zl_topology_init(&t, 8, 2, 3), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "world size 8 is not divisible by pipeline (2) x model (3)"));
    ck_assert_int_eq(zl_topology_init(&t, 8, 0, 1), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "pipeline parallel size must be at least 1, got 0"));
    ck_assert_int_eq(zl_topology_init(&t, 8, 1, -2), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "got -2"));
    ck_assert_int_eq(zl_topology_init(&t, 0, 1, 1), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "world size must be at least 1, got 0"));
    ck_assert_int_eq(t.pipe_size, 0); /* untouched on failure */
    /* Sizes whose product divides the world leave the rest to data parallelism. */
    ck_assert_int_eq(zl_topology_init(&t, 12, 2, 3), ZL_OK);
    ck_assert(t.pipe_size == 2 && t.data_size == 2 && t.model_size == 3);
    ck_assert_int_eq(zl_topology_init(&t, 5, 1, 1), ZL_OK);
    ck_assert_int_eq(t.data_size, 5);
}
END_TEST

START_TEST(test_topology_axis_names)
{
    ck_assert_str_eq(zl_axis_name(ZL_AXIS_PIPE), "pipe");
    ck_assert_str_eq(zl_axis_name(ZL_AXIS_DATA), "data");
    ck_assert_str_eq(zl_axis_name(ZL_AXIS_MODEL), "model");
}
END_TEST

static Suite *topology_suite(void)
{
    Suite *s = suite_create("topology");
    TCase *tc = tcase_create("topology");
    tcase_add_test(tc, test_topology_coords_rank_round_trip);
    tcase_add_test(tc, test_topology_model_innermost_groups);
    tcase_add_test(tc, test_topology_groups_partition_and_colors);
    tcase_add_test(tc, test_topology_errors_name_the_numbers);
    tcase_add_test(tc, test_topology_axis_names);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(topology_suite)
