/* zerolab estimate: DeepSpeed's estimate_zero2/zero3_model_states_mem_needs_all_cold
 * (sim/estimate.h), from parameter counts or from a model, printed as DeepSpeed prints them. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/gpt_config.h"
#include "model/model.h"
#include "sim/estimate.h"

static void estimate_usage(FILE *out)
{
    zl_cli_help(out,
            "usage: zerolab estimate (--params N [--largest-layer-params N]\n"
            "                         | --model NAME|FILE)\n"
            "                        [--stage 2|3] [--gpus-per-node G] [--nodes N]\n"
            "                        [--additional-buffer-factor F] [--legacy-zero2]\n"
            "\n"
            "DeepSpeed's estimate_zero2_model_states_mem_needs_all_cold and\n"
            "estimate_zero3_model_states_mem_needs_all_cold: memory per CPU and per GPU for\n"
            "the parameters, gradients and optimizer states, with and without offload, as\n"
            "DeepSpeed prints it (GB = 2^30 bytes). Activations and buffers are not included.\n"
            "\n"
            "  --params N                  total parameters: 2851000000, 2851e6, 2.851e9,\n"
            "                              2851M, 2.851B (suffixes K, M, B or G, T)\n"
            "  --largest-layer-params N    parameters of the largest layer (ZeRO-3)\n"
            "  --model NAME|FILE           count a model instead (model JSON or a preset);\n"
            "                              the largest layer is its largest module (e.g.\n"
            "                              wte), as DeepSpeed's *_all_live counts it;\n"
            "                              presets: %s\n"
            "  --stage 2|3                 one estimator (default: ZeRO-2, then ZeRO-3 when\n"
            "                              the largest layer is known)\n"
            "  --gpus-per-node G           default 1\n"
            "  --nodes N                   default 1\n"
            "  --additional-buffer-factor F  CPU memory safety factor, default 1.5\n"
            "  --legacy-zero2              ZeRO-2 GPU memory without offload by DeepSpeed's\n"
            "                              formula before PR #5099 (4P + 16P/GPUs, its docs'\n"
            "                              15.93GB)\n",
            zl_gpt_config_preset_names());
}

/* A parameter count for `flag`; prints the message and returns false if bad. */
static bool parse_count(const char *flag, const char *text, int64_t *out)
{
    if (zl_estimate_parse_count(text, out) != ZL_OK) {
        fprintf(stderr, "zerolab estimate: %s: %s\n", flag, zl_last_error());
        return false;
    }
    if (*out < 1) {
        fprintf(stderr, "zerolab estimate: %s: expected at least 1 parameter, got '%s'\n", flag, text);
        return false;
    }
    return true;
}

/* --stage: 2 or 3, strictly */
static bool parse_stage(const char *text, int *out)
{
    if ((text[0] != '2' && text[0] != '3') || text[1]) {
        fprintf(stderr, "zerolab estimate: --stage expects 2 or 3 (DeepSpeed estimates ZeRO-2 and "
                        "ZeRO-3), got '%s'\n", text);
        return false;
    }
    *out = text[0] - '0';
    return true;
}

/* Total parameters and the largest module's own, from the model's parameter table (no
 * parameter memory is allocated). */
static zl_status count_model(const char *spec, int64_t *total, int64_t *largest)
{
    zl_gpt_config cfg;
    zl_model m;
    zl_status st = zl_gpt_config_resolve(spec, &cfg);
    if (st == ZL_OK) st = zl_model_create(&m, &cfg, NULL);
    if (st != ZL_OK) return st;
    zl_estimate_tensor *t = calloc((size_t)m.num_params, sizeof *t);
    if (!t) {
        zl_model_destroy(&m);
        return zl_errorf(ZL_ERR_NOMEM, "out of host memory counting model '%s'", spec);
    }
    for (int i = 0; i < m.num_params; i++) t[i] = (zl_estimate_tensor){m.params[i].name, (int64_t)m.params[i].numel};
    zl_estimate_count_params(t, (size_t)m.num_params, total, largest);
    free(t);
    zl_model_destroy(&m);
    return ZL_OK;
}

int zl_cmd_estimate(int argc, char **argv)
{
    enum { O_PARAMS = 1, O_LARGEST, O_MODEL, O_STAGE, O_GPUS, O_NODES, O_ABF, O_LEGACY, O_HELP };
    static const struct option opts[] = {
        {"params", required_argument, 0, O_PARAMS},
        {"largest-layer-params", required_argument, 0, O_LARGEST},
        {"model", required_argument, 0, O_MODEL},
        {"stage", required_argument, 0, O_STAGE},
        {"gpus-per-node", required_argument, 0, O_GPUS},
        {"nodes", required_argument, 0, O_NODES},
        {"additional-buffer-factor", required_argument, 0, O_ABF},
        {"legacy-zero2", no_argument, 0, O_LEGACY},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    zl_estimate_request req;
    zl_estimate_request_init(&req);
    int64_t params = 0, largest = 0;
    int stage = 0; /* 0: ZeRO-2, then ZeRO-3 if the largest layer is known */
    const char *model = NULL;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_PARAMS: ok = parse_count("--params", optarg, &params); break;
        case O_LARGEST: ok = parse_count("--largest-layer-params", optarg, &largest); break;
        case O_MODEL: model = optarg; break;
        case O_STAGE: ok = parse_stage(optarg, &stage); break;
        case O_GPUS:
        case O_NODES: {
            long v;
            ok = zl_cli_parse_positive("estimate", c == O_GPUS ? "--gpus-per-node" : "--nodes", optarg,
                                       1 << 20, &v);
            if (ok) *(c == O_GPUS ? &req.gpus_per_node : &req.nodes) = (int)v;
            break;
        }
        case O_ABF: {
            char *end;
            double f = strtod(optarg, &end);
            if (end == optarg || *end || !isfinite(f) || !(f > 0)) {
                fprintf(stderr, "zerolab estimate: --additional-buffer-factor expects a positive number "
                                "(DeepSpeed's default is 1.5), got '%s'\n", optarg);
                ok = false;
            }
            req.additional_buffer_factor = f;
            break;
        }
        case O_LEGACY: req.zero2_legacy = true; break;
        case 'h':
        case O_HELP: estimate_usage(stdout); return ZL_EXIT_OK;
        default:
            fprintf(stderr, "zerolab estimate: unknown or incomplete option '%s'\n\n", argv[optind - 1]);
            estimate_usage(stderr);
            return ZL_EXIT_USAGE;
        }
        if (!ok) return ZL_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "zerolab estimate: unexpected argument '%s' (counts go after --params)\n", argv[optind]);
        return ZL_EXIT_USAGE;
    }
    if (!model && !params) {
        fprintf(stderr, "zerolab estimate: give --params or --model: the total parameter count "
                        "(e.g. --params 2851M) or a model to count (e.g. --model gpt2-124m)\n");
        return ZL_EXIT_USAGE;
    }
    if (model && params) {
        fprintf(stderr, "zerolab estimate: give --params or --model, not both (--model counts the "
                        "parameters itself)\n");
        return ZL_EXIT_USAGE;
    }
    if (model) {
        int64_t model_largest;
        if (count_model(model, &params, &model_largest) != ZL_OK) return zl_cli_fail();
        if (!largest) largest = model_largest; /* an explicit --largest-layer-params wins */
    }
    if (stage == 3 && !largest) {
        fprintf(stderr, "zerolab estimate: --stage 3 needs --largest-layer-params N (the parameters "
                        "of the largest layer), or --model\n");
        return ZL_EXIT_USAGE;
    }
    if (largest > params) {
        fprintf(stderr, "zerolab estimate: --largest-layer-params %lld is more than the total "
                        "parameters (%lld)\n", (long long)largest, (long long)params);
        return ZL_EXIT_USAGE;
    }
    if (req.zero2_legacy && stage == 3) {
        fprintf(stderr, "zerolab estimate: --legacy-zero2 applies to ZeRO-2 only (drop it or use --stage 2)\n");
        return ZL_EXIT_USAGE;
    }
    req.total_params = params;
    req.largest_layer_params = largest;

    for (int s = 2; s <= 3; s++) {
        if ((stage && s != stage) || (!stage && s == 3 && !largest)) continue;
        req.stage = s;
        if (!stage && s == 3) printf("\n");
        zl_status st = zl_estimate_print(&req, stdout);
        if (st == ZL_ERR_INVALID) {
            fprintf(stderr, "zerolab estimate: %s\n", zl_last_error());
            return ZL_EXIT_USAGE;
        }
        if (st != ZL_OK) return zl_cli_fail();
    }
    return ZL_EXIT_OK;
}
