/* zerolab plan: what a training run would hold and how long its steps would take on a
 * cluster, from the engine itself on the meta backend (src/plan), in about a second for
 * any size: per rank the card's memory, the host memory (ZeRO-Offload) and NVMe, each
 * against its share of the node. --search tries ZeRO stages, offload choices and
 * micro-batch sizes under the same global batch and ranks those that fit by simulated
 * throughput. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/cli.h"
#include "config/config.h"
#include "model/gpt_config.h"
#include "plan/plan.h"
#include "run/run.h"
#include "sim/cost.h"
#include "sim/presets.h"

typedef struct plan_args {
    const char *config_path, *model, *cluster, *trace;
    long seq_len;
    long checkpoint; /* --checkpoint-activations[=k]: layers per segment; 0: the config's */
    long pipeline_stages; /* --pipeline-stages; 0: the config's */
    long tensor_parallel; /* --tensor-parallel; 0: the config's */
    bool sequence_parallel; /* --sequence-parallel */
    bool gpipe; /* --pipeline-schedule gpipe */
    bool json, search;
} plan_args;

static void plan_usage(FILE *out)
{
    zl_cli_help(out,
            "usage: zerolab plan --model NAME|FILE --cluster SPEC [options]\n"
            "\n"
            "  --model NAME|FILE  model JSON (ours or a Hugging Face GPT-2 config.json) or\n"
            "                     a preset: %s\n"
            "  --cluster SPEC     GPUs: DEVICE, GPUSxDEVICE or NODESxGPUSxDEVICE, optionally\n"
            "                     ,nvlink ,pcie ,ib100 ,ib200 ,ib400 (e.g. 2x8xa100-80gb)\n"
            "                     devices: %s\n"
            "  --config FILE      DeepSpeed JSON config (default: the built-in one)\n"
            "  --seq-len T        tokens per sequence (default: the model's max_seq_len)\n"
            "  --checkpoint-activations[=K]\n"
            "                     activation checkpointing: keep each segment of K layers'\n"
            "                     input (default 1) and recompute it in backward\n"
            "  --pipeline-stages S  cut the layers into S pipeline stages (the config's\n"
            "                     pipeline.partition), the GPUs / S replicas data-parallel:\n"
            "                     every stage is planned, the largest shown, and the step\n"
            "                     simulated across the stages (the bubble)\n"
            "  --tensor-parallel T  split each block and the vocabulary over T GPUs\n"
            "                     (Megatron-LM's layers; tensor_parallel.autotp_size)\n"
            "  --sequence-parallel  with --tensor-parallel: the stream split by tokens too\n"
            "  --pipeline-schedule 1f1b|gpipe  the stages' schedule (default 1f1b)\n"
            "  --search           try ZeRO stages 0-3, offload of the optimizer to the host\n"
            "                     (stages 1-3) and of the parameters (stage 3), activation\n"
            "                     checkpointing off and on, and micro-batch sizes at the same\n"
            "                     global batch; rank those that fit by simulated tokens/s\n"
            "  --trace FILE       Chrome trace (Perfetto) of rank 0's simulated step\n"
            "  --json             machine-readable output\n",
            zl_gpt_config_preset_names(), zl_device_preset_names());
}

static int parse_args(int argc, char **argv, plan_args *a)
{
    enum { O_CONFIG = 1, O_MODEL, O_CLUSTER, O_SEQ, O_SEARCH, O_TRACE, O_JSON, O_HELP, O_CKPT, O_PIPE, O_TP, O_SP, O_SCHED };
    static const struct option opts[] = {
        {"config", required_argument, 0, O_CONFIG}, {"model", required_argument, 0, O_MODEL},
        {"cluster", required_argument, 0, O_CLUSTER}, {"seq-len", required_argument, 0, O_SEQ},
        {"search", no_argument, 0, O_SEARCH},       {"trace", required_argument, 0, O_TRACE},
        {"json", no_argument, 0, O_JSON},           {"help", no_argument, 0, O_HELP},
        {"checkpoint-activations", optional_argument, 0, O_CKPT},
        {"pipeline-stages", required_argument, 0, O_PIPE},
        {"tensor-parallel", required_argument, 0, O_TP},
        {"sequence-parallel", no_argument, 0, O_SP},
        {"pipeline-schedule", required_argument, 0, O_SCHED},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_CONFIG: a->config_path = optarg; break;
        case O_MODEL: a->model = optarg; break;
        case O_CLUSTER: a->cluster = optarg; break;
        case O_TRACE: a->trace = optarg; break;
        case O_SEARCH: a->search = true; break;
        case O_JSON: a->json = true; break;
        case O_CKPT:
            a->checkpoint = 1;
            if (optarg && !zl_cli_parse_positive("plan", "--checkpoint-activations", optarg, 1 << 20,
                                                 &a->checkpoint))
                return ZL_EXIT_USAGE;
            break;
        case O_SP: a->sequence_parallel = true; break;
        case O_SCHED:
            if (!zl_cli_parse_pipeline_schedule("plan", optarg, &a->gpipe)) return ZL_EXIT_USAGE;
            break;
        case O_TP:
            if (!zl_cli_parse_positive("plan", "--tensor-parallel", optarg, 1 << 16, &a->tensor_parallel))
                return ZL_EXIT_USAGE;
            break;
        case O_PIPE:
            if (!zl_cli_parse_positive("plan", "--pipeline-stages", optarg, ZL_PLAN_MAX_STAGES,
                                       &a->pipeline_stages))
                return ZL_EXIT_USAGE;
            break;
        case O_SEQ:
            if (!zl_cli_parse_positive("plan", "--seq-len", optarg, INT_MAX, &a->seq_len)) return ZL_EXIT_USAGE;
            break;
        case O_HELP: plan_usage(stdout); return -1;
        default:
            fprintf(stderr, "zerolab plan: unknown or incomplete option '%s'\n\n", argv[optind - 1]);
            plan_usage(stderr);
            return ZL_EXIT_USAGE;
        }
    }
    if (optind < argc || !a->model || !a->cluster) {
        fprintf(stderr, optind < argc ? "zerolab plan: unexpected argument '%s'\n\n"
                                      : "zerolab plan: --model and --cluster are required%s\n\n",
                optind < argc ? argv[optind] : "");
        plan_usage(stderr);
        return ZL_EXIT_USAGE;
    }
    return ZL_EXIT_OK;
}

/* ---- memory by category --------------------------------------------------------------- */

typedef struct categories {
    size_t params, grads, optimizer, master, activations, buffers, total;
    size_t model_states; /* param + grad + master + adam.*: ZeRO's model states alone */
    size_t with_buffers; /* and the working buffers: gathered parameters, buckets, others */
} categories;

static categories categorize(const zl_ledger *l)
{
    categories c = {0};
    for (int i = 0; i < l->num_tags; i++) {
        const zl_ledger_entry *e = &l->entries[i];
        const char *t = e->tag;
        size_t b = e->peak_nbytes;
        if (!strcmp(t, l->exempt)) continue;
        if (!strcmp(t, "param") || !strcmp(t, "gather")) c.params += b;
        else if (!strcmp(t, "grad")) c.grads += b;
        else if (!strncmp(t, "adam", 4)) c.optimizer += b;
        else if (!strcmp(t, "master")) c.master += b;
        else if (!strncmp(t, "act.", 4) || !strcmp(t, "act_ckpt") || !strcmp(t, "input"))
            c.activations += b;
        else c.buffers += b; /* reduction buckets, anything else */
    }
    c.model_states = zl_plan_model_states_peak(l);
    c.with_buffers = c.model_states + (c.params - zl_ledger_peak(l, "param")) + c.buffers;
    c.total = l->budgeted_peak_nbytes;
    return c;
}

/* The host's share of a rank (ZeRO-Offload's state and its staging buffers), peaks. */
typedef struct host_categories {
    size_t params, grads, optimizer, master, other, total;
} host_categories;

static host_categories categorize_host(const zl_ledger *l)
{
    host_categories c = {0};
    for (int i = 0; i < l->num_tags; i++) {
        const char *t = l->entries[i].tag;
        size_t b = l->entries[i].peak_nbytes;
        if (!strcmp(t, "param") || !strcmp(t, "offload.param")) c.params += b;
        else if (!strcmp(t, "grad") || !strcmp(t, "offload.grad")) c.grads += b;
        else if (!strncmp(t, "adam", 4)) c.optimizer += b;
        else if (!strcmp(t, "master")) c.master += b;
        else c.other += b;
    }
    c.total = l->peak_nbytes;
    return c;
}

/* What a setup offloads, in DeepSpeed's words ("none", "optimizer cpu", "optimizer nvme,
 * param nvme", ...). */
static const char *offload_name(const zl_engine_options *o)
{
    static char name[48];
    const char *opt = !o->offload_optimizer ? NULL : o->offload_nvme ? "nvme" : "cpu";
    const char *par = o->offload_param_nvme ? "nvme" : o->offload_param ? "cpu" : NULL;
    if (!opt && !par) return "none";
    snprintf(name, sizeof name, "%s%s%s%s%s", opt ? "optimizer " : "", opt ? opt : "",
             opt && par ? ", " : "", par ? "param " : "", par ? par : "");
    return name;
}

/* The tag whose hint fits the largest category of the full requirement. */
static const char *largest_need(const categories *c)
{
    struct { size_t n; const char *tag; } k[] = {
        {c->optimizer + c->master, "adam.m"}, {c->grads, "grad"}, {c->params, "param"},
        {c->activations, "act."}, {c->buffers, "bucket"},
    };
    size_t best = 0;
    for (size_t i = 1; i < sizeof k / sizeof k[0]; i++)
        if (k[i].n > k[best].n) best = i;
    return k[best].tag;
}

/* The ledger whose figures a plan shows: the full requirement when the run did not fit
 * (planned again without a limit), else the run's own. */
static const zl_ledger *shown(const zl_plan_result *r) { return zl_plan_device_ledger(r); }

static double gib(size_t b) { return (double)b / (double)(1ull << 30); }

/* s as a JSON string, quotes included: ", \ and control characters escaped. */
static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\r': fputs("\\r", out); break;
        default:
            if (*p < 0x20 || *p == 0x7f) fprintf(out, "\\u%04x", *p);
            else fputc(*p, out);
        }
    }
    fputc('"', out);
}

/* ---- one plan ---------------------------------------------------------------------------- */

typedef struct setup {
    zl_plan_request req;
    zl_cluster cluster;
    const char *precision;
} setup;

/* The rank's share of its node's host memory, in words: "96.00 (the DGX-2's 1536.00 GiB
 * / 16 GPUs per node)". */
static void host_share(const setup *s, char *buf, size_t n)
{
    const zl_cluster *c = &s->cluster;
    snprintf(buf, n, "%.2f (the %s's %.2f GiB / %d GPU%s per node)", gib(s->req.host_memory),
             c->node->display, gib(c->host_memory), c->gpus_per_node,
             c->gpus_per_node > 1 ? "s" : "");
}

/* What would make the host side fit. */
static void host_hint(const setup *s, char *buf, size_t n)
{
    const zl_cluster *c = &s->cluster;
    if (s->req.options.offload_optimizer)
        snprintf(buf, n, "ZeRO-Offload keeps the optimizer's partitions (fp32 master, gradient, "
                 "Adam's moments) in host memory, and a node's GPUs share it: spread the ranks "
                 "over more nodes (e.g. --cluster %dx%dx%s: each node then holds 1/%d of the "
                 "state), keep the optimizer on the GPUs (offload_optimizer \"none\") if they "
                 "hold it, or use a node with more host memory", 2 * c->nodes, c->gpus_per_node,
                 c->device->name, 2 * c->nodes);
    else
        snprintf(buf, n, "use a node with more host memory or fewer GPUs per node");
}

static void print_human(const plan_args *a, const setup *s, const zl_plan_result *r, const char *oom)
{
    const zl_engine_options *o = &s->req.options;
    const zl_device_preset *d = s->cluster.device;
    int W = zl_cluster_size(&s->cluster), dp = s->req.world_size;
    printf("zerolab plan: %s (%.2fB params) on %s = %d x %s, ZeRO stage %d, %s, offload %s\n",
           s->req.model.name, (double)r->params / 1e9, a->cluster, W, d->display, o->zero_stage,
           s->precision, offload_name(o));
    printf("  batch %d = micro-batch %d x accumulation %d x data-parallel %d, sequence %d\n",
           o->micro_batch_size * o->gradient_accumulation_steps * dp, o->micro_batch_size,
           o->gradient_accumulation_steps, dp, o->seq_len);
    if (r->pipe_stages > 1) {
        printf("  pipeline: %d stages x %d data-parallel, %s; device peak per stage (GiB):",
               r->pipe_stages, dp, o->schedule == ZL_SCHEDULE_GPIPE ? "GPipe" : "DeepSpeed's 1F1B");
        for (int st = 0; st < r->pipe_stages; st++) printf(" %.2f", gib(r->stage_peak_nbytes[st]));
        printf("\n");
    }
    categories c = categorize(shown(r));
    char which[64] = "";
    if (r->pipe_stages > 1)
        snprintf(which, sizeof which, ", stage %d, the %s", r->pipe_worst_stage,
                 r->device_fits ? "largest" : "first that does not fit");
    printf("memory per GPU (peak, GiB%s%s):\n", r->has_need ? ", the full requirement" : "", which);
    printf("  parameters %9.2f   gradients %9.2f   optimizer %9.2f   master %9.2f\n",
           gib(c.params), gib(c.grads), gib(c.optimizer), gib(c.master));
    printf("  activations %8.2f   buffers %11.2f   total %13.2f of %.2f: %s\n", gib(c.activations),
           gib(c.buffers), gib(c.total), gib(d->memory), r->device_fits ? "fits" : "DOES NOT FIT");
    printf("  model states %.2f alone (parameters, gradients, optimizer, master), %.2f with "
           "working buffers\n", gib(c.model_states), gib(c.with_buffers));
    /* The host side: what ZeRO-Offload put there, against the rank's share of the node. */
    host_categories h = categorize_host(zl_plan_host_ledger(r));
    char share[160];
    host_share(s, share, sizeof share);
    printf("host memory per rank (peak, GiB%s):\n",
           h.total && o->offload_pin_memory ? ", pinned" : "");
    printf("  parameters %9.2f   gradients %9.2f   optimizer %9.2f   master %9.2f\n",
           gib(h.params), gib(h.grads), gib(h.optimizer), gib(h.master));
    printf("  other %14.2f   total %13.2f of %s: %s\n", gib(h.other), gib(h.total), share,
           r->host_fits ? "fits" : "DOES NOT FIT");
    /* DeepSpeed's estimators count host memory per node: the figure to hold beside them */
    if (h.total && s->cluster.gpus_per_node > 1)
        printf("  per node %.2f GiB for its %d ranks (zerolab estimate's \"per CPU\" counts a "
               "node)\n", gib(h.total * (size_t)s->cluster.gpus_per_node),
               s->cluster.gpus_per_node);
    const zl_ledger *nv = zl_plan_nvme_ledger(r);
    if (nv->peak_nbytes)
        printf("NVMe per rank (peak, GiB): total %.2f of %.2f (the %s's drives / %d GPUs per "
               "node): %s\n", gib(nv->peak_nbytes), gib(s->req.nvme_capacity),
               s->cluster.node->display, s->cluster.gpus_per_node,
               r->nvme_fits ? "fits" : "DOES NOT FIT");
    if (oom) {
        if (r->has_need && !r->device_fits) {
            char hint[512];
            zl_ledger_hint(&r->need, largest_need(&c), hint, sizeof hint);
            printf("needs %.2f GiB per GPU, %.2f GiB more than the card's %.2f GiB (%s)\n"
                   "  hint: %s\n", gib(c.total),
                   gib(c.total > d->memory ? c.total - d->memory : 0), gib(d->memory), d->display,
                   hint);
            /* ZeRO-Offload moves the optimizer's state off the card (stages 1-3) */
            if (!o->offload_optimizer && c.optimizer + c.master > 0)
                printf("  or offload the optimizer: \"offload_optimizer\": {\"device\": \"cpu\"}"
                       "%s moves its %.2f GiB (master weights and Adam's moments) to host "
                       "memory, %.2f GiB per rank here\n",
                       o->zero_stage >= 1 ? "" : " with ZeRO stage 1-3",
                       gib(c.optimizer + c.master), gib(s->req.host_memory));
        }
        if (!r->host_fits) {
            char hint[512];
            host_hint(s, hint, sizeof hint);
            const zl_cluster *cl = &s->cluster;
            printf("host memory: needs %.2f GiB per rank (%zu bytes), %.2f GiB more than the "
                   "%.2f GiB (%zu bytes) it has: the %s's %.2f GiB of host memory shared by %d "
                   "GPU%s\n  hint: %s\n", gib(h.total), h.total,
                   gib(h.total - s->req.host_memory), gib(s->req.host_memory), s->req.host_memory,
                   cl->node->display, gib(cl->host_memory), cl->gpus_per_node,
                   cl->gpus_per_node > 1 ? "s" : "", hint);
        }
        if (r->has_need) printf("the run under that budget stops at:\n");
        printf("%s\n", oom);
        return;
    }
    /* The compute's wait for host copies, only when there was any (offload, staging). */
    char copy_part[64] = "";
    double copy = r->exposed_copy_seconds > 0 ? r->exposed_copy_seconds : 0;
    if (copy > 0) snprintf(copy_part, sizeof copy_part, " + exposed host copy %.3f s", copy);
    if (r->pipe_stages > 1) {
        /* The step across the stages: the busiest stage's own step, and the rest waiting */
        double own = r->compute_seconds + r->exposed_comm_seconds;
        printf("step (simulated): %.3f s = the busiest stage's work %.3f s (its passes, "
               "reductions and update) + its sends and receives %.3f s + waiting for the other "
               "stages %.3f s\n", r->step_seconds, r->compute_seconds, r->exposed_comm_seconds,
               r->step_seconds > own ? r->step_seconds - own : 0.0);
    } else
    printf("step (simulated): %.3f s = compute %.3f s + exposed communication %.3f s%s "
           "(communication %.3f s, %.0f%% hidden)\n",
           r->step_seconds, r->step_seconds - r->exposed_comm_seconds - copy,
           r->exposed_comm_seconds, copy_part, r->comm_seconds,
           r->comm_seconds > 0 && r->exposed_comm_seconds < r->comm_seconds
               ? 100.0 * (1 - r->exposed_comm_seconds / r->comm_seconds)
               : r->comm_seconds > 0 ? 0.0 : 100.0);
    if (r->pipe_stages > 1)
        printf("pipeline bubble: %.1f%% of the time to the last backward idle, averaged over "
               "the stages ((S-1)/(M+S-1) = %.1f%% for uniform stages)\n",
               100 * r->bubble_fraction,
               100.0 * (r->pipe_stages - 1) / (o->gradient_accumulation_steps + r->pipe_stages - 1));
    printf("throughput: %.0f tokens/s, MFU %.1f%% (model FLOPs / %s's %s peak)\n",
           r->tokens_per_second, 100 * r->mfu, d->display, s->precision);
    if (o->checkpoint_interval > 0 && r->model_flops > 0)
        printf("activation checkpointing every %d layer%s: hardware FLOPs %.3g = %.2f x model "
               "FLOPs %.3g per GPU and step (each segment's forward runs again in backward)\n",
               o->checkpoint_interval, o->checkpoint_interval > 1 ? "s" : "", r->hardware_flops,
               r->hardware_flops / r->model_flops, r->model_flops);
    if (a->trace)
        printf("trace: %s, %zu spans (%zu back-to-back runs of the same kernel merged into "
               "them%s)\n", a->trace, r->trace_spans, r->trace_merged,
               r->trace_dropped ? "; spans past the cap dropped, see the trace's labels" : "");
    printf("(planned in %.3f s)\n", r->seconds);
}

/* One plan as a JSON object (no trailing comma or newline). */
static void print_json(FILE *out, const setup *s, const zl_plan_result *r, const char *oom)
{
    const zl_engine_options *o = &s->req.options;
    categories c = categorize(shown(r));
    host_categories h = categorize_host(zl_plan_host_ledger(r));
    fprintf(out, "{\"model\": ");
    json_string(out, s->req.model.name);
    fprintf(out, ", \"params\": %zu, \"gpus\": %d, \"device\": ", r->params,
            zl_cluster_size(&s->cluster));
    json_string(out, s->cluster.device->name);
    fprintf(out, ", \"node\": ");
    json_string(out, s->cluster.node->name);
    fprintf(out, ", \"zero_stage\": %d, \"precision\": \"%s\", \"micro_batch\": %d, "
            "\"gradient_accumulation_steps\": %d, \"seq_len\": %d, "
            "\"offload_optimizer\": \"%s\", \"offload_param\": \"%s\", \"pin_memory\": %s, \"activation_checkpoint_interval\": %d, "
            "\"memory_bytes\": {\"params\": %zu, \"grads\": %zu, \"optimizer\": %zu, \"master\": %zu, "
            "\"activations\": %zu, \"buffers\": %zu, \"total\": %zu, \"device\": %zu, "
            "\"model_states\": %zu, \"model_states_with_buffers\": %zu}, "
            "\"host_memory_bytes\": {\"params\": %zu, \"grads\": %zu, \"optimizer\": %zu, "
            "\"master\": %zu, \"other\": %zu, \"total\": %zu, \"available\": %zu, \"node\": %zu}, "
            "\"nvme_bytes\": {\"total\": %zu, \"available\": %zu}, "
            "\"device_fits\": %s, \"host_fits\": %s, \"nvme_fits\": %s, "
            "\"fits\": %s, \"reason\": ",
            o->zero_stage, s->precision, o->micro_batch_size, o->gradient_accumulation_steps,
            o->seq_len, !o->offload_optimizer ? "none" : o->offload_nvme ? "nvme" : "cpu",
            o->offload_param_nvme ? "nvme" : o->offload_param ? "cpu" : "none",
            o->offload_pin_memory ? "true" : "false", o->checkpoint_interval, c.params, c.grads, c.optimizer, c.master,
            c.activations, c.buffers, c.total, s->cluster.device->memory, c.model_states,
            c.with_buffers, h.params, h.grads, h.optimizer, h.master, h.other, h.total,
            s->req.host_memory, s->cluster.host_memory, zl_plan_nvme_ledger(r)->peak_nbytes,
            s->req.nvme_capacity, r->device_fits ? "true" : "false",
            r->host_fits ? "true" : "false", r->nvme_fits ? "true" : "false",
            oom ? "false" : "true");
    if (oom) json_string(out, oom);
    else fputs("null", out);
    fprintf(out, ", \"step_seconds\": %.6g, \"compute_seconds\": %.6g, \"comm_seconds\": %.6g, "
            "\"exposed_comm_seconds\": %.6g, \"tokens_per_second\": %.6g, \"mfu\": %.4f",
            r->step_seconds, r->compute_seconds, r->comm_seconds, r->exposed_comm_seconds,
            r->tokens_per_second, r->mfu);
    int stages = r->pipe_stages > 1 ? r->pipe_stages : 1;
    fprintf(out, ", \"pipeline_stages\": %d, \"data_parallel\": %d, \"bubble_fraction\": %.4f, "
            "\"stage_peak_bytes\": [", stages, s->req.world_size, r->bubble_fraction);
    for (int st = 0; st < stages; st++)
        fprintf(out, "%s%zu", st ? ", " : "",
                r->pipe_stages > 1 ? r->stage_peak_nbytes[st] : shown(r)->peak_nbytes);
    fprintf(out, "]}");
}

/* ---- search ------------------------------------------------------------------------------ */

/* The search itself is the library's (src/plan/plan_search.c: zl_plan_search); the CLI
 * prints it. With --json each setup's object is written as it is planned (the full result
 * is gone afterwards), kept by the order tried. */
typedef struct json_sink {
    const setup *s;
    char **json; /* [order]: the setup's object */
    int n, cap;
} json_sink;

static zl_status keep_json(void *ctx, const zl_plan_request *req, const zl_plan_result *r,
                           const zl_plan_candidate *c)
{
    json_sink *k = ctx;
    if (c->order >= k->cap) {
        int cap = k->cap ? 2 * k->cap : 256;
        while (cap <= c->order) cap *= 2;
        char **j = realloc(k->json, (size_t)cap * sizeof *j);
        if (!j) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
        memset(j + k->cap, 0, (size_t)(cap - k->cap) * sizeof *j);
        k->json = j;
        k->cap = cap;
    }
    setup t = *k->s;
    t.req = *req;
    size_t len = 0;
    FILE *f = open_memstream(&k->json[c->order], &len);
    if (!f) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    print_json(f, &t, r, c->fits ? NULL : r->reason);
    if (fclose(f) != 0) return zl_errorf(ZL_ERR_NOMEM, "out of host memory");
    if (c->order >= k->n) k->n = c->order + 1;
    return ZL_OK;
}

static int search(const plan_args *a, setup *s)
{
    int W = zl_cluster_size(&s->cluster);
    json_sink sink = {s, NULL, 0, 0};
    zl_plan_search_result res;
    if (zl_plan_search(&s->req, NULL, a->json ? keep_json : NULL, &sink, &res) != ZL_OK) {
        for (int i = 0; i < sink.n; i++) free(sink.json[i]);
        free(sink.json);
        return zl_cli_fail();
    }
    int n = res.num_candidates, refused = res.num_refused;
    const zl_plan_candidate *cands = res.candidates;
    if (a->json) {
        printf("[\n");
        for (int i = 0; i < n; i++) printf("  %s%s\n", sink.json[cands[i].order], i == n - 1 ? "" : ",");
        printf("]\n");
    } else {
        printf("zerolab plan --search: %s on %s (%d GPUs), %s, global batch %d x %d tokens\n",
               s->req.model.name, a->cluster, W, s->precision, res.global_batch,
               s->req.options.seq_len);
        printf("  %3s %4s %-5s %-13s %5s %5s %9s %9s %9s %9s %11s %6s %5s\n", "tp", "pp", "stage",
               "offload", "micro", "accum", "GiB/GPU", "host GiB", "step s", "exposed s",
               "tokens/s", "MFU", "ckpt");
        int fitting = 0;
        for (int i = 0; i < n; i++) {
            const zl_plan_candidate *c = &cands[i];
            if (!c->fits) continue;
            fitting++;
            printf("  %3d %4d %-5d %-13s %5d %5d %9.2f %9.2f %9.3f %9.3f %11.0f %5.1f%% %5d\n",
                   c->tp, c->pp, c->stage,
                   c->offload_param ? "optim+param"
                   : c->offload_optimizer ? "optimizer cpu" : "none", c->micro, c->gas,
                   gib(c->device_peak), gib(c->host_peak), c->step_seconds,
                   c->exposed_seconds, c->tokens_per_second, 100 * c->mfu, c->checkpoint);
        }
        int host_short = 0;
        for (int i = 0; i < n; i++) host_short += !cands[i].fits && !cands[i].host_fits;
        printf("  %d of %d setups fit in %.2f GiB per GPU and %.2f GiB of host memory per "
               "rank; the fastest first\n", fitting, n, gib(s->cluster.device->memory),
               gib(s->req.host_memory));
        if (host_short)
            printf("  %d setup%s did not fit the host memory\n", host_short,
                   host_short > 1 ? "s" : "");
        if (refused)
            printf("  %d setup%s the engine refuses (an offload choice) skipped\n", refused,
                   refused > 1 ? "s" : "");
    }
    for (int i = 0; i < sink.n; i++) free(sink.json[i]);
    free(sink.json);
    zl_plan_search_free(&res);
    return ZL_EXIT_OK;
}

/* ---- the command ------------------------------------------------------------------------- */

int zl_cmd_plan(int argc, char **argv)
{
    plan_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? ZL_EXIT_OK : rc;
    setup s;
    memset(&s, 0, sizeof s);
    if (zl_cluster_parse(a.cluster, &s.cluster) != ZL_OK) return zl_cli_fail();
    int W = zl_cluster_size(&s.cluster);
    /* The config, the feature check, the model and the engine's options as train reads
     * them (src/run): both refuse the same configs with the same messages. */
    zl_run_options ro;
    zl_run_options_init(&ro);
    ro.config_path = a.config_path;
    if (!a.config_path) {
        ro.config_text = zl_default_config_json;
        ro.config_name = "<built-in config>";
    }
    ro.model = a.model;
    ro.seq_len = a.seq_len ? (int)a.seq_len : ZL_RUN_SEQ_LEN_MODEL;
    ro.seed = 1;
    ro.pipeline_stages = (int)a.pipeline_stages;
    ro.tensor_parallel = (int)a.tensor_parallel;
    ro.sequence_parallel = a.sequence_parallel;
    ro.pipeline_gpipe = a.gpipe;
    zl_run run;
    if (zl_run_configure(&run, &ro, W) != ZL_OK) return zl_cli_fail();
    s.req.model = run.model;
    s.req.options = run.options;
    if (a.checkpoint > 0) s.req.options.checkpoint_interval = (int)a.checkpoint;
    s.precision = run.config->fp16.enabled ? "fp16" : run.config->bf16.enabled ? "bf16" : "fp32";
    int pipe = run.pipe_size, dp = run.dp_size, tpn = run.tp_size;
    zl_run_free(&run);

    const zl_device_preset *d = s.cluster.device;
    s.req.world_size = dp; /* the data-parallel ranks; each replica's stages: pipe_stages */
    s.req.pipe_stages = pipe;
    s.req.pipe_stage = -1;
    s.req.tp_size = tpn;
    s.req.device_memory = d->memory;
    s.req.host_memory = zl_cluster_host_memory_per_rank(&s.cluster);
    s.req.nvme_capacity = zl_cluster_nvme_capacity_per_rank(&s.cluster);
    s.req.device_name = d->display;
    s.req.gpu = strcmp(d->name, "laptop-cpu") != 0; /* a GPU holds no CPU stand-ins */
    s.req.cluster = &s.cluster;
    if (a.search) return search(&a, &s);

    FILE *trace = NULL;
    if (a.trace && zl_run_check_writable(a.trace, "--trace") != ZL_OK) return zl_cli_fail();
    if (a.trace && !(trace = fopen(a.trace, "w"))) {
        zl_errorf(ZL_ERR_IO, "cannot write the trace to '%s': %s", a.trace, strerror(errno));
        return zl_cli_fail();
    }
    s.req.trace = trace;
    zl_plan_result r;
    zl_status st = zl_plan_run(&s.req, &r);
    if (trace && fclose(trace) != 0 && st == ZL_OK) st = zl_errorf(ZL_ERR_IO, "cannot write '%s'", a.trace);
    if (st != ZL_OK && st != ZL_ERR_OOM) return zl_cli_fail();
    const char *oom = st == ZL_ERR_OOM ? r.reason : NULL;
    if (a.json) {
        print_json(stdout, &s, &r, oom);
        printf("\n");
    } else
        print_human(&a, &s, &r, oom);
    return ZL_EXIT_OK;
}
