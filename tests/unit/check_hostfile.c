/* zerolab launch: DeepSpeed's hostfile, --include/--exclude/--num_nodes/--num_gpus (the
 * examples of deepspeed/launcher/runner.py and its docs), and the exact mpiexec vector
 * (src/launch/hostfile.h, launch.h). */
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "launch/hostfile.h"
#include "launch/launch.h"

/* "name:slot,slot name2:..." of a pool, for one-line comparisons. */
static const char *show(const zl_launch_pool *p)
{
    static char buf[512];
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < p->nhosts; i++) {
        at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%s:", i ? " " : "", p->hosts[i].name);
        for (int s = 0; s < p->hosts[i].nslots; s++)
            at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%d", s ? "," : "",
                                   p->hosts[i].slots[s]);
    }
    return buf;
}

static const char *const two_workers = "# the job's machines\n"
                                       "worker-0 slots=4\n"
                                       "\n"
                                       "   worker-1    slots=4   # trailing text is ignored\n";

static zl_launch_pool parse_ok(const char *text)
{
    zl_launch_pool p;
    zl_status st = zl_hostfile_parse(text, "hf", &p);
    ck_assert_msg(st == ZL_OK, "%s", zl_last_error());
    return p;
}

/* The message of a failed parse, which must contain `want`. */
static void parse_fails(const char *text, const char *want)
{
    zl_launch_pool p;
    zl_status st = zl_hostfile_parse(text, "hf", &p);
    ck_assert_int_eq(st, ZL_ERR_FORMAT);
    ck_assert_msg(strstr(zl_last_error(), want), "'%s' lacks '%s'", zl_last_error(), want);
    ck_assert_msg(strstr(zl_last_error(), "hint:"), "no hint: %s", zl_last_error());
    ck_assert_int_eq(p.nhosts, 0);
}

START_TEST(test_hostfile_parses_comments_blanks_slots)
{
    zl_launch_pool p = parse_ok(two_workers);
    ck_assert_str_eq(show(&p), "worker-0:0,1,2,3 worker-1:0,1,2,3");
    ck_assert_int_eq(zl_launch_pool_ranks(&p), 8);
    zl_launch_pool_free(&p);
    p = parse_ok("10.0.0.2 slots=1"); /* no final newline */
    ck_assert_str_eq(show(&p), "10.0.0.2:0");
    zl_launch_pool_free(&p);
}
END_TEST

START_TEST(test_hostfile_refuses_bad_input)
{
    parse_fails("worker-0 slots=2\nworker-0 slots=2\n",
                "Hostfile contains multiple entries for worker-0");
    parse_fails("worker-0 slots=2\nworker-1\n", "hf:2: Hostfile contains a bad entry: worker-1");
    parse_fails("worker-0 slots=four\n", "bad entry");
    parse_fails("worker-0 gpus=4\n", "bad entry");
    parse_fails("slots=4\n", "bad entry");
    parse_fails("worker-0 slots=0\n", "host worker-0 has slots=0");
    parse_fails("", "Hostfile is empty or not formatted correctly");
    parse_fails("# only a comment\n\n", "Hostfile is empty");
}
END_TEST

START_TEST(test_hostfile_missing_is_not_an_error)
{
    zl_launch_pool p;
    bool found = true;
    ck_assert_int_eq(zl_hostfile_read("/nonexistent/zerolab/hostfile", &p, &found), ZL_OK);
    ck_assert(!found);
    ck_assert_int_eq(p.nhosts, 0);
    ck_assert_int_eq(zl_launch_pool_local(3, &p), ZL_OK);
    ck_assert_str_eq(show(&p), "localhost:0,1,2");
    zl_launch_pool_free(&p);
}
END_TEST

/* Filter two_workers; the result's show(), or NULL and the message in *msg. */
static const char *filter(const char *inc, const char *exc, int nodes, int gpus)
{
    zl_launch_pool p = parse_ok(two_workers);
    zl_status st = zl_launch_pool_filter(&p, inc, exc, nodes, gpus, true);
    const char *r = st == ZL_OK ? show(&p) : NULL;
    zl_launch_pool_free(&p);
    return r;
}

static void filter_fails(const char *inc, const char *exc, int nodes, int gpus, const char *want)
{
    ck_assert_ptr_null(filter(inc, exc, nodes, gpus));
    ck_assert_msg(strstr(zl_last_error(), want), "'%s' lacks '%s'", zl_last_error(), want);
    ck_assert_msg(strstr(zl_last_error(), "hint:"), "no hint: %s", zl_last_error());
}

START_TEST(test_include_exclude_as_deepspeed_documents)
{
    /* runner.py's docstring: all of worker-0, slots 0 and 2 of worker-1. */
    ck_assert_str_eq(filter("worker-0@worker-1:0,2", "", -1, -1), "worker-0:0,1,2,3 worker-1:0,2");
    /* "all available resources except slot 0 on worker-1". */
    ck_assert_str_eq(filter("", "worker-1:0", -1, -1), "worker-0:0,1,2,3 worker-1:1,2,3");
    /* Hostfile order, not the filter's; a whole host excluded is dropped. */
    ck_assert_str_eq(filter("worker-1:3,1@worker-0:2", NULL, -1, -1), "worker-0:2 worker-1:3,1");
    ck_assert_str_eq(filter(NULL, "worker-0", -1, -1), "worker-1:0,1,2,3");
    ck_assert_str_eq(filter(NULL, "worker-0:0,1,2,3", -1, -1), "worker-1:0,1,2,3");
    ck_assert_str_eq(filter("worker-1:1,1", NULL, -1, -1), "worker-1:1"); /* duplicates once */
    ck_assert_str_eq(filter(NULL, NULL, -1, -1), "worker-0:0,1,2,3 worker-1:0,1,2,3");
}
END_TEST

START_TEST(test_num_nodes_num_gpus)
{
    ck_assert_str_eq(filter(NULL, NULL, 1, -1), "worker-0:0,1,2,3");
    ck_assert_str_eq(filter(NULL, NULL, 5, -1), "worker-0:0,1,2,3 worker-1:0,1,2,3");
    ck_assert_str_eq(filter(NULL, NULL, -1, 2), "worker-0:0,1 worker-1:0,1");
    ck_assert_str_eq(filter(NULL, NULL, 1, 1), "worker-0:0");
    ck_assert_str_eq(filter(NULL, NULL, 0, 0), "worker-0:0,1,2,3 worker-1:0,1,2,3");
    /* No hostfile: one local host, and no second node to be had. */
    zl_launch_pool p;
    ck_assert_int_eq(zl_launch_pool_local(2, &p), ZL_OK);
    ck_assert_int_eq(zl_launch_pool_filter(&p, NULL, NULL, 2, -1, false), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "Num nodes is >1 but no extra nodes available"));
    ck_assert_int_eq(zl_launch_pool_filter(&p, NULL, NULL, 1, 4, false), ZL_OK);
    ck_assert_str_eq(show(&p), "localhost:0,1,2,3");
    zl_launch_pool_free(&p);
}
END_TEST

START_TEST(test_filters_refuse_bad_input)
{
    filter_fails("worker-0", "worker-1", -1, -1, "include_str and exclude_str are mutually exclusive");
    filter_fails("worker-0", NULL, 1, -1, "Cannot specify num_nodes/gpus with include/exclude");
    filter_fails(NULL, "worker-0", -1, 2, "Cannot specify num_nodes/gpus with include/exclude");
    filter_fails(NULL, "worker-0", 0, -1, "Cannot specify num_nodes/gpus"); /* 0 counts */
    filter_fails("worker-9", NULL, -1, -1, "Hostname 'worker-9' not found in hostfile");
    filter_fails(NULL, "worker-9:0", -1, -1, "Hostname 'worker-9' not found in hostfile");
    filter_fails("worker-1:4", NULL, -1, -1, "No slot '4' specified on host 'worker-1'");
    filter_fails(NULL, "worker-1:0,9", -1, -1, "No slot '9' specified on host 'worker-1'");
    filter_fails("worker-1:x", NULL, -1, -1, "'x' is not a slot id");
    filter_fails("worker-1:", NULL, -1, -1, "is not a slot id");
    filter_fails("worker-0@", NULL, -1, -1, "Hostname '' not found");
    filter_fails(NULL, "worker-0@worker-1", -1, -1, "leaves no slot to run on");
}
END_TEST

START_TEST(test_core_lists)
{
    int *c, n;
    ck_assert_int_eq(zl_launch_cores_parse("1,3-5,7", "--bind_core_list", &c, &n), ZL_OK);
    ck_assert_int_eq(n, 5);
    int want[] = {1, 3, 4, 5, 7};
    ck_assert_mem_eq(c, want, sizeof want);
    char buf[64];
    zl_launch_cores_format(c, n, buf, sizeof buf);
    ck_assert_str_eq(buf, "1,3-5,7");
    free(c);
    const char *bad[] = {"", "1,", "a", "3-1", "1-", "1;2", "-1", "99999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(zl_launch_cores_parse(bad[i], "--bind_core_list", &c, &n), ZL_ERR_INVALID);
        ck_assert_ptr_nonnull(strstr(zl_last_error(), "--bind_core_list"));
    }
    int counts[4], nn;
    ck_assert_int_eq(zl_launch_nodes_parse("a:2,10.0.0.2:3", counts, 4, &nn), ZL_OK);
    ck_assert_int_eq(nn, 2);
    ck_assert_int_eq(counts[0] * 10 + counts[1], 23);
    ck_assert_int_eq(zl_launch_nodes_parse("a:0", counts, 4, &nn), ZL_ERR_INVALID);
    ck_assert_int_eq(zl_launch_nodes_parse("a", counts, 4, &nn), ZL_ERR_INVALID);
}
END_TEST

START_TEST(test_env_file)
{
    char **pairs = NULL;
    int n = 0;
    ck_assert_int_eq(zl_launch_env_parse("# comment\n\nNCCL_DEBUG=INFO\n  A = b c \nX=1=2\n"
                                         "NCCL_DEBUG=WARN\n", "ds_env", &pairs, &n), ZL_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(pairs[0], "NCCL_DEBUG=WARN");
    ck_assert_str_eq(pairs[1], "A=b c");
    ck_assert_str_eq(pairs[2], "X=1=2");
    ck_assert_int_eq(zl_launch_env_parse("OK=1\nexport B\n", "ds_env", &pairs, &n), ZL_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "ds_env:2: 'export B' is not NAME=VALUE"));
    ck_assert_int_eq(zl_launch_env_parse("=1\n", "ds_env", &pairs, &n), ZL_ERR_FORMAT);
    ck_assert_int_eq(zl_launch_env_parse("1A=1\n", "ds_env", &pairs, &n), ZL_ERR_FORMAT);
    for (int i = 0; i < n; i++) free(pairs[i]);
    free(pairs);
}
END_TEST

static char *joined(zl_launch_pool *p, const zl_launch_spec *s)
{
    char **argv;
    zl_status st = zl_launch_argv(p, s, &argv);
    ck_assert_msg(st == ZL_OK, "%s", zl_last_error());
    char *line = zl_launch_quote(argv);
    zl_launch_argv_free(argv);
    return line;
}

START_TEST(test_mpiexec_argv_two_hosts)
{
    zl_launch_pool p = parse_ok("worker-0 slots=2\nworker-1 slots=2\n");
    char *largs[] = {"-bootstrap-exec", "/t/ns exec"};
    char *genv[] = {"NCCL_DEBUG=INFO"};
    char *cmd[] = {"/usr/bin/zerolab", "train", "--steps", "3"};
    zl_launch_spec s = {.mpiexec = "mpiexec", .launcher_args = largs, .n_launcher_args = 2,
                        .master_addr = "worker-0", .master_port = 29500, .genv = genv,
                        .ngenv = 1, .node_cores = 8, .command = cmd, .ncommand = 4};
    char **argv;
    ck_assert_int_eq(zl_launch_argv(&p, &s, &argv), ZL_OK);
    const char *want[] = {
        "mpiexec", "-bootstrap-exec", "/t/ns exec", "-hosts", "worker-0:2,worker-1:2",
        "-genv", "ZL_LAUNCH_NODES", "worker-0:2,worker-1:2", "-genv", "MASTER_ADDR", "worker-0",
        "-genv", "MASTER_PORT", "29500", "-genv", "NCCL_DEBUG", "INFO",
        "-n", "2", "-env", "ZL_LAUNCH_NODE", "0", "-env", "OMP_NUM_THREADS", "4",
        "/usr/bin/zerolab", "train", "--steps", "3", ":",
        "-n", "2", "-env", "ZL_LAUNCH_NODE", "1", "-env", "OMP_NUM_THREADS", "4",
        "/usr/bin/zerolab", "train", "--steps", "3", NULL};
    for (int i = 0;; i++) {
        if (!want[i] || !argv[i]) {
            ck_assert_msg(!want[i] && !argv[i], "argv[%d]: '%s', want '%s'", i,
                          argv[i] ? argv[i] : "(end)", want[i] ? want[i] : "(end)");
            break;
        }
        ck_assert_msg(!strcmp(argv[i], want[i]), "argv[%d]: '%s', want '%s'", i, argv[i], want[i]);
    }
    zl_launch_argv_free(argv);
    /* Uneven hosts: each its own count and threads (7 cores / 3 ranks -> 2; / 1 -> 7). */
    zl_launch_pool_free(&p);
    p = parse_ok("a slots=3\nb slots=1\nc slots=9\n");
    s.n_launcher_args = 0;
    s.ngenv = 0;
    s.node_cores = 7;
    char *line = joined(&p, &s);
    ck_assert_str_eq(line, "mpiexec -hosts a:3,b:1,c:9 -genv ZL_LAUNCH_NODES a:3,b:1,c:9 "
                           "-genv MASTER_ADDR worker-0 -genv MASTER_PORT 29500 "
                           "-n 3 -env ZL_LAUNCH_NODE 0 -env OMP_NUM_THREADS 2 "
                           "/usr/bin/zerolab train --steps 3 : "
                           "-n 1 -env ZL_LAUNCH_NODE 1 -env OMP_NUM_THREADS 7 "
                           "/usr/bin/zerolab train --steps 3 : "
                           "-n 9 -env ZL_LAUNCH_NODE 2 -env OMP_NUM_THREADS 1 "
                           "/usr/bin/zerolab train --steps 3");
    free(line);
    zl_launch_pool_free(&p);
}
END_TEST

START_TEST(test_mpiexec_argv_binding)
{
    zl_launch_pool p = parse_ok("localhost slots=2\n");
    int cores[] = {1, 3, 4, 5, 7}; /* --bind_core_list 1,3-5,7: 5 // 2 = 2 cores a rank */
    char *cmd[] = {"sh", "-c", "echo 'hi'"};
    zl_launch_spec s = {.mpiexec = "mpiexec", .master_addr = "127.0.0.1", .master_port = 29500,
                        .node_cores = 2, .bind = true, .core_list = cores, .ncore_list = 5,
                        .command = cmd, .ncommand = 3};
    char *line = joined(&p, &s);
    ck_assert_str_eq(line, "mpiexec -hosts localhost:2 -genv ZL_LAUNCH_NODES localhost:2 "
                           "-genv MASTER_ADDR 127.0.0.1 -genv MASTER_PORT 29500 "
                           "-n 1 -env ZL_LAUNCH_NODE 0 -env ZL_BIND_CORES 1,3 "
                           "-env OMP_NUM_THREADS 2 sh -c 'echo '\\''hi'\\''' : "
                           "-n 1 -env ZL_LAUNCH_NODE 0 -env ZL_BIND_CORES 4-5 "
                           "-env OMP_NUM_THREADS 2 sh -c 'echo '\\''hi'\\'''");
    free(line);
    s.ncore_list = 1; /* one core for two ranks */
    char **argv;
    ck_assert_int_eq(zl_launch_argv(&p, &s, &argv), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "At least one core needs to be assigned"));
    zl_launch_pool_free(&p);
}
END_TEST

static Suite *hostfile_suite(void)
{
    Suite *s = suite_create("hostfile");
    TCase *tc = tcase_create("hostfile");
    tcase_add_test(tc, test_hostfile_parses_comments_blanks_slots);
    tcase_add_test(tc, test_hostfile_refuses_bad_input);
    tcase_add_test(tc, test_hostfile_missing_is_not_an_error);
    tcase_add_test(tc, test_include_exclude_as_deepspeed_documents);
    tcase_add_test(tc, test_num_nodes_num_gpus);
    tcase_add_test(tc, test_filters_refuse_bad_input);
    tcase_add_test(tc, test_core_lists);
    tcase_add_test(tc, test_env_file);
    tcase_add_test(tc, test_mpiexec_argv_two_hosts);
    tcase_add_test(tc, test_mpiexec_argv_binding);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(hostfile_suite)
