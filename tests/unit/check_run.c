/* src/run: a run assembled from a config, a model and data (run.h), on one rank. */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_util.h"
#include "backends/cuda/cuda.h"
#include "run/run.h"

static const char *small = "{\"train_micro_batch_size_per_gpu\": 4, \"gradient_accumulation_steps\": 2,"
                           " \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 3e-3}}}";

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void options(zl_run_options *o, const char *json)
{
    zl_run_options_init(o);
    o->config_text = json;
    o->config_name = "<test>";
    o->model = "lab";
    o->seq_len = 32;
    o->steps = 5;
}

/* Steps train: the loss goes down, each step consumes gas micro-batches, and the engine
 * got the config's batch and the run's sequence length. */
START_TEST(test_run_trains)
{
    zl_run_options o;
    options(&o, small);
    zl_run run;
    ck_assert_int_eq(zl_run_init(&run, &o), ZL_OK);
    ck_assert_int_eq(run.failed_at, ZL_RUN_OK);
    ck_assert_int_eq(run.options.micro_batch_size, 4);
    ck_assert_int_eq(run.options.gradient_accumulation_steps, 2);
    ck_assert_int_eq(run.options.seq_len, 32);
    ck_assert_int_eq(run.steps, 5);
    ck_assert_str_eq(run.backend, "cpu");
    ck_assert_ptr_null(run.card);
    ck_assert_int_eq(run.comm->size, 1);
    /* The rank's host device: pinned host memory beside the accelerator, unlimited by
     * default, what the engine got as options.host. */
    ck_assert_ptr_eq(run.options.host, &run.host);
    ck_assert_int_eq(run.host.kind, ZL_DEVICE_HOST);
    ck_assert_int_eq(run.host.ledger.placement, ZL_PLACE_HOST);
    ck_assert_str_eq(run.host.ledger.device_name, "rank 0 host");
    ck_assert_uint_eq(run.host.ledger.budget_nbytes, 0);
    ck_assert_str_eq(run.host.ops->name, run.device.ops->name); /* the accelerator's backend */
    float first = 0, loss = 0;
    for (int s = 0; s < 20; s++) {
        double t0 = wall_now();
        ck_assert_int_eq(zl_run_step(&run, &loss), ZL_OK);
        double wall = wall_now() - t0;
        ck_assert(isfinite(loss));
        if (s == 0) first = loss;
        /* The wall-clock breakdown is of this step: every phase ran, and together they
         * fit inside the call (the loader and the agreement are outside them). */
        ck_assert(run.wall_forward_s > 0 && run.wall_backward_s > 0 && run.wall_step_s > 0);
        ck_assert_msg(run.wall_forward_s + run.wall_backward_s + run.wall_step_s <= wall,
                      "phases %g + %g + %g s > the step's %g s", run.wall_forward_s,
                      run.wall_backward_s, run.wall_step_s, wall);
    }
    ck_assert_int_eq(run.step, 20);
    ck_assert_int_eq(zl_engine_global_steps(run.engine), 20);
    ck_assert_int_eq(zl_engine_micro_steps(run.engine), 40);
    ck_assert_uint_eq(zl_loader_position(&run.loader), 40 * 4 * 32);
    ck_assert_msg(loss < first - 0.3f, "loss %f -> %f", first, loss);
    ck_assert(zl_run_step_flops(&run) > 0);
    zl_run_free(&run);
    zl_run_free(&run); /* twice: safe */
}
END_TEST

/* A feature zerolab does not run is refused at set-up, by name, with nothing left held. */
START_TEST(test_run_refuses_unbuilt)
{
    zl_run_options o;
    options(&o, "{\"train_micro_batch_size_per_gpu\": 4, \"zero_optimization\": {\"stage\": 2},"
                " \"bf16\": {\"enabled\": true, \"bf16_master_weights_and_grads\": true}}");
    zl_run run;
    ck_assert_int_ne(zl_run_init(&run, &o), ZL_OK);
    ck_assert_int_eq(run.failed_at, ZL_RUN_SETUP);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "bf16_master_weights_and_grads"));
    ck_assert_ptr_null(run.engine);
    ck_assert_ptr_null(run.config);
    zl_run_free(&run);
}
END_TEST

/* No config, an unknown model, a sequence past the model's: set-up failures that name what. */
START_TEST(test_run_bad_input)
{
    zl_run_options o;
    zl_run run;
    options(&o, NULL);
    ck_assert_int_eq(zl_run_init(&run, &o), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "config"));
    options(&o, small);
    o.model = "no-such-model";
    ck_assert_int_ne(zl_run_init(&run, &o), ZL_OK);
    ck_assert_int_eq(run.failed_at, ZL_RUN_SETUP);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "no-such-model"));
    options(&o, small);
    o.seq_len = 100000;
    ck_assert_int_eq(zl_run_init(&run, &o), ZL_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "max_seq_len"));
    options(&o, small);
    o.trace = "/tmp/zl-run-trace.json"; /* without a card */
    ck_assert_int_eq(zl_run_init(&run, &o), ZL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "--trace needs a simulated device"));
    zl_run_free(&run);
}
END_TEST

/* Past its budget the run is refused by the plan, before the engine allocates a byte. */
START_TEST(test_run_preflight)
{
    zl_run_options o;
    options(&o, small);
    o.device_memory = 64 << 10;
    zl_run run;
    ck_assert_int_eq(zl_run_init(&run, &o), ZL_ERR_OOM);
    ck_assert_int_eq(run.failed_at, ZL_RUN_PREFLIGHT);
    ck_assert_ptr_null(run.engine);
    /* Without the preflight, the engine's own allocation fails the same way. */
    o.no_preflight = true;
    ck_assert_int_eq(zl_run_init(&run, &o), ZL_ERR_OOM);
    ck_assert_int_eq(run.failed_at, ZL_RUN_ENGINE);
    zl_run_free(&run);
}
END_TEST

/* A simulated card: its memory is the budget, a clock runs, the trace holds one step. */
START_TEST(test_run_card_and_trace)
{
    zl_run_options o;
    options(&o, small);
    o.device = "v100-16gb";
    o.trace = "/tmp/zl-run-check-trace.json";
    o.host_memory = 1 << 30;
    zl_run run;
    ck_assert_int_eq(zl_run_init(&run, &o), ZL_OK);
    ck_assert_ptr_nonnull(run.card);
    ck_assert_uint_eq(run.device_memory, run.card->memory);
    /* the host device: its own budget, the one asked for, not the card's */
    ck_assert_uint_eq(run.host.ledger.budget_nbytes, 1 << 30);
    ck_assert_str_eq(run.host.ledger.device_name, "rank 0 host");
    ck_assert_ptr_eq(run.options.host, &run.host);
    float loss;
    ck_assert_int_eq(zl_run_step(&run, &loss), ZL_OK);
    ck_assert_int_eq(zl_run_step(&run, &loss), ZL_OK);
    ck_assert(zl_timeline_now(&run.sim.timeline) > zl_timeline_now(&run.step_mark));
    ck_assert(zl_timeline_now(&run.step_mark) > 0); /* the second step started after the first */
    ck_assert_int_eq(zl_run_write_trace(&run, o.trace), ZL_OK);
    FILE *f = fopen(o.trace, "r");
    ck_assert_ptr_nonnull(f);
    char head[64] = "";
    ck_assert(fgets(head, sizeof head, f) != NULL);
    fclose(f);
    remove(o.trace);
    ck_assert_ptr_nonnull(strchr(head, '{'));
    zl_run_free(&run);
}
END_TEST

/* cuda's real trace: recorded spans (seconds since the step began, in issue order) land on
 * the compute stream where they ran, gaps kept, names as given; the records' dropped ops
 * are the timeline's, and the Chrome writer writes them as it writes simulated ones. */
START_TEST(test_run_real_trace_spans)
{
    const zl_cuda_span spans[] = {
        {"embedding", 0.0, 1e-5},
        {"gemm", 2e-5, 5e-5},   /* a gap before it: the host was late */
        {"gemm", 5e-5, 7e-5},   /* back to back, same name: one span, two kernels */
        {"layernorm", 8e-5, 8e-5}, /* shorter than the events' resolution */
    };
    zl_timeline tl;
    zl_timeline_init(&tl, true);
    zl__run_trace_spans(&tl, spans, 4, 7);
    ck_assert_uint_eq(tl.num_spans, 3);
    ck_assert_uint_eq(tl.merged_spans, 1);
    ck_assert_uint_eq(tl.dropped_spans, 7);
    const char *names[] = {"embedding", "gemm", "layernorm"};
    const double starts[] = {0.0, 2e-5, 8e-5}, ends[] = {1e-5, 7e-5, 8e-5};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(tl.spans[i].stream, ZL_STREAM_COMPUTE);
        ck_assert_str_eq(tl.spans[i].name, names[i]);
        ck_assert_double_eq_tol(tl.spans[i].start, starts[i], 1e-12);
        ck_assert_double_eq_tol(tl.spans[i].end, ends[i], 1e-12);
    }
    ck_assert_uint_eq(tl.spans[1].count, 2);
    ck_assert_double_eq_tol(tl.busy[ZL_STREAM_COMPUTE], 6e-5, 1e-12); /* the gap is idle */
    char *json = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&json, &len);
    ck_assert_int_eq(zl_timeline_write_trace(&tl, f, 0, true, true), ZL_OK);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(json, "\"name\": \"gemm\", \"cat\": \"compute\", \"ph\": \"X\", "
                                       "\"pid\": 0, \"tid\": 0, \"ts\": 20.000, \"dur\": 50.000, "
                                       "\"args\": {\"kernels\": 2}"));
    ck_assert_ptr_nonnull(strstr(json, "7 spans past the cap"));
    free(json);
    zl_timeline_free(&tl);
}
END_TEST

/* A set interrupt flag stops the step with ZL_ERR_INTERRUPTED, as this rank's own. */
START_TEST(test_run_interrupt)
{
    static volatile sig_atomic_t flag;
    zl_run_options o;
    options(&o, small);
    o.interrupt = &flag;
    zl_run run;
    ck_assert_int_eq(zl_run_init(&run, &o), ZL_OK);
    float loss;
    flag = 0;
    ck_assert_int_eq(zl_run_step(&run, &loss), ZL_OK);
    flag = SIGTERM;
    ck_assert_int_eq(zl_run_step(&run, &loss), ZL_ERR_INTERRUPTED);
    ck_assert(run.failed_here);
    /* stopped at the step's first LoadMicroBatch: nothing of it ran */
    ck_assert_int_eq(zl_engine_micro_steps(run.engine), 2);
    ck_assert_int_eq(zl_engine_global_steps(run.engine), 1);
    zl_run_free(&run);
}
END_TEST

/* The first stage alone (what zerolab plan uses): config, check, model and options at
 * any world size, without a communicator, device or data. */
START_TEST(test_run_configure)
{
    zl_run_options o;
    options(&o, small);
    o.seq_len = ZL_RUN_SEQ_LEN_MODEL;
    o.model = "gpt2-124m";
    zl_run run;
    ck_assert_int_eq(zl_run_configure(&run, &o, 64), ZL_OK);
    ck_assert_int_eq(run.options.seq_len, run.model.max_seq_len);
    ck_assert_int_eq(run.model.vocab_size, 50257);
    ck_assert_int_eq(run.config->train_batch_size, 4 * 2 * 64); /* resolved for 64 ranks */
    ck_assert_ptr_null(run.engine);
    ck_assert_ptr_null(run.comm);
    zl_run_free(&run);
    /* Pipeline stages: the batch is resolved for the data-parallel ranks (8 / 2), and
     * stages that do not divide the world are refused by name. */
    options(&o, "{\"train_micro_batch_size_per_gpu\": 4, \"pipeline\": {\"stages\": 2}}");
    ck_assert_int_eq(zl_run_configure(&run, &o, 8), ZL_OK);
    ck_assert_int_eq(run.pipe_size, 2);
    ck_assert_int_eq(run.dp_size, 4);
    ck_assert_int_eq(run.config->train_batch_size, 4 * 4);
    zl_run_free(&run);
    o.pipeline_stages = 3;
    ck_assert_int_ne(zl_run_configure(&run, &o, 8), ZL_OK);
    ck_assert_int_eq(run.failed_at, ZL_RUN_SETUP);
    ck_assert_ptr_nonnull(strstr(zl_last_error(), "--pipeline-stages 3 does not divide the 8 ranks"));
    ck_assert_ptr_null(run.config);
}
END_TEST

static Suite *run_suite(void)
{
    Suite *s = suite_create("run");
    TCase *tc = tcase_create("run");
    tcase_add_test(tc, test_run_trains);
    tcase_add_test(tc, test_run_refuses_unbuilt);
    tcase_add_test(tc, test_run_bad_input);
    tcase_add_test(tc, test_run_preflight);
    tcase_add_test(tc, test_run_card_and_trace);
    tcase_add_test(tc, test_run_real_trace_spans);
    tcase_add_test(tc, test_run_interrupt);
    tcase_add_test(tc, test_run_configure);
    suite_add_tcase(s, tc);
    return s;
}

ZL_TEST_MAIN(run_suite)
