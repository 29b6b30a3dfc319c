/* zerolab ckpt: inspect, convert, reshape and compare checkpoints (ckpt/ckpt_tools.h). */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "ckpt/ckpt_tools.h"

static void ckpt_usage(FILE *out)
{
    zl_cli_help(out,
            "usage: zerolab ckpt COMMAND ...\n"
            "\n"
            "  inspect DIR [--tag T] [--no-verify]\n"
            "      what the checkpoint holds: step, layout it was saved with, precision,\n"
            "      model, files; and every tensor checked against its checksum\n"
            "  to-fp32 DIR OUT.safetensors [--tag T]\n"
            "      DeepSpeed's zero_to_fp32: the fp32 weights of any layout in one\n"
            "      safetensors file (Hugging Face GPT-2 names), one tensor at a time in\n"
            "      memory\n"
            "  reshape DIR OUT --world-size M [--stage S] [--tag T]\n"
            "      the checkpoint rewritten with the optimizer shards M ranks at ZeRO stage S\n"
            "      (default: its own) keep (zerolab itself loads any layout as it is)\n"
            "  compare DIR_A DIR_B [--tag T] [--tag-b T] [--rtol R] [--atol A] [--state]\n"
            "      the fp32 weights (--state: Adam's moments too) within |a - b| <= atol +\n"
            "      rtol * |b| (default: equal); exit 0 if they agree, 1 if not\n"
            "  import-llmc FILE.bin OUT [--tag T]\n"
            "      an llm.c GPT-2 model file (gpt2_124M.bin) as a checkpoint of weights:\n"
            "      `zerolab train --load OUT` starts from them with a fresh optimizer\n"
            "  export-llmc DIR OUT.bin [--tag T] [--version 3|5]\n"
            "      the weights as an llm.c model file: version 3 (fp32) or 5 (bf16; default\n"
            "      for a bf16 checkpoint)\n"
            "\n"
            "DIR is what `zerolab train --save` wrote; the tag is the one its `latest` file\n"
            "names unless --tag says another. See docs/checkpoints.md.\n");
}

typedef struct ckpt_args {
    const char *pos[3];
    int npos;
    const char *tag, *tag_b;
    long world, stage, version;
    double rtol, atol;
    bool state, no_verify;
} ckpt_args;

static bool parse_real(const char *flag, const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0) || v > 1e30) {
        fprintf(stderr, "zerolab ckpt: %s expects a number >= 0, got '%s'\n", flag, s);
        return false;
    }
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, ckpt_args *a)
{
    enum { O_TAG = 1, O_TAG_B, O_WORLD, O_STAGE, O_VERSION, O_RTOL, O_ATOL, O_STATE, O_NOVERIFY,
           O_HELP };
    static const struct option opts[] = {
        {"tag", required_argument, 0, O_TAG},         {"tag-b", required_argument, 0, O_TAG_B},
        {"world-size", required_argument, 0, O_WORLD}, {"stage", required_argument, 0, O_STAGE},
        {"version", required_argument, 0, O_VERSION}, {"rtol", required_argument, 0, O_RTOL},
        {"atol", required_argument, 0, O_ATOL},       {"state", no_argument, 0, O_STATE},
        {"no-verify", no_argument, 0, O_NOVERIFY},    {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->stage = -1;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_TAG: a->tag = optarg; break;
        case O_TAG_B: a->tag_b = optarg; break;
        case O_WORLD:
            if (!zl_cli_parse_positive("ckpt", "--world-size", optarg, 1 << 20, &a->world))
                return ZL_EXIT_USAGE;
            break;
        case O_STAGE:
            if (strlen(optarg) != 1 || optarg[0] < '0' || optarg[0] > '3') {
                fprintf(stderr, "zerolab ckpt: --stage expects 0, 1, 2 or 3, got '%s'\n", optarg);
                return ZL_EXIT_USAGE;
            }
            a->stage = optarg[0] - '0';
            break;
        case O_VERSION:
            if (strcmp(optarg, "3") && strcmp(optarg, "5")) {
                fprintf(stderr, "zerolab ckpt: --version expects 3 (fp32) or 5 (bf16), got '%s'\n",
                        optarg);
                return ZL_EXIT_USAGE;
            }
            a->version = atoi(optarg);
            break;
        case O_RTOL: if (!parse_real("--rtol", optarg, &a->rtol)) return ZL_EXIT_USAGE; break;
        case O_ATOL: if (!parse_real("--atol", optarg, &a->atol)) return ZL_EXIT_USAGE; break;
        case O_STATE: a->state = true; break;
        case O_NOVERIFY: a->no_verify = true; break;
        case O_HELP: ckpt_usage(stdout); return -1;
        default:
            fprintf(stderr, "zerolab ckpt: unknown or incomplete option '%s'\n\n", argv[optind - 1]);
            ckpt_usage(stderr);
            return ZL_EXIT_USAGE;
        }
    }
    for (; optind < argc; optind++) {
        if (a->npos == 3) {
            fprintf(stderr, "zerolab ckpt: unexpected argument '%s'\n", argv[optind]);
            return ZL_EXIT_USAGE;
        }
        a->pos[a->npos++] = argv[optind];
    }
    return ZL_EXIT_OK;
}

static const char *human(double bytes, char *buf, size_t len)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
    return buf;
}

static void print_file(const zl_ckpt_file *f)
{
    const char *json = zl_ckpt_file_path(f), *slash = strrchr(json, '/');
    const json_t *sf = json_object_get(zl_ckpt_file_state(f), "safetensors");
    char size[32];
    printf("    %-52s %10s  %d tensors\n", json_string_value(json_object_get(sf, "file")),
           human((double)json_integer_value(json_object_get(sf, "nbytes")), size, sizeof size),
           zl_ckpt_file_num_tensors(f));
    (void)slash;
}

static int inspect(const ckpt_args *a, zl_ckpt *c)
{
    const json_t *s = zl_ckpt_file_state(zl_ckpt_states(c));
    const json_t *mo = json_object_get(s, "model");
    const json_t *opt = json_object_get(s, "optimizer"), *sc = json_object_get(s, "loss_scaler");
    printf("checkpoint %s\n", zl_ckpt_path(c));
    printf("  tag %s, written by zerolab %s\n", zl_ckpt_tag(c),
           json_string_value(json_object_get(s, "zerolab_version")));
    printf("  step %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT " skipped), %" JSON_INTEGER_FORMAT
           " samples, lr %.4g\n",
           json_integer_value(json_object_get(s, "global_steps")),
           json_integer_value(json_object_get(s, "skipped_steps")),
           json_integer_value(json_object_get(s, "global_samples")),
           json_number_value(json_object_get(opt, "lr")));
    printf("  saved by %d data-parallel rank%s at ZeRO stage %d; %s%s\n", zl_ckpt_dp_world_size(c),
           zl_ckpt_dp_world_size(c) == 1 ? "" : "s", zl_ckpt_zero_stage(c),
           zl_dtype_name(zl_ckpt_dtype(c)),
           zl_ckpt_has_optimizer(c) ? " weights, fp32 master weights and Adam's moments"
                                    : " weights only (no optimizer state)");
    if (json_is_true(json_object_get(sc, "dynamic")))
        printf("  loss scale %g\n", json_number_value(json_object_get(sc, "cur_scale")));
    printf("  model %s: %zu parameters (L=%" JSON_INTEGER_FORMAT " C=%" JSON_INTEGER_FORMAT
           " NH=%" JSON_INTEGER_FORMAT " V=%" JSON_INTEGER_FORMAT ", max_seq_len %" JSON_INTEGER_FORMAT ")\n",
           json_string_value(json_object_get(mo, "name")), zl_ckpt_numel(c),
           json_integer_value(json_object_get(mo, "num_layers")),
           json_integer_value(json_object_get(mo, "channels")),
           json_integer_value(json_object_get(mo, "num_heads")),
           json_integer_value(json_object_get(mo, "vocab_size")),
           json_integer_value(json_object_get(mo, "max_seq_len")));
    const json_t *data = json_object_get(json_object_get(s, "client_state"), "data_sampler");
    if (data)
        printf("  data position %" JSON_INTEGER_FORMAT " tokens (epoch %" JSON_INTEGER_FORMAT ")\n",
               json_integer_value(json_object_get(data, "position_tokens")),
               json_integer_value(json_object_get(data, "epoch")));
    printf("  files:\n");
    print_file(zl_ckpt_states(c));
    for (int r = 0; r < zl_ckpt_num_shards(c); r++) print_file(zl_ckpt_shard(c, r));
    if (a->no_verify) return ZL_EXIT_OK;
    size_t tensors, nbytes;
    char size[32];
    if (zl_ckpt_verify(c, &tensors, &nbytes) != ZL_OK) return zl_cli_fail();
    printf("  checksums: %zu tensors, %s: ok\n", tensors, human((double)nbytes, size, sizeof size));
    return ZL_EXIT_OK;
}

static int need(const ckpt_args *a, int n, const char *what)
{
    if (a->npos == n) return ZL_EXIT_OK;
    fprintf(stderr, "zerolab ckpt %s: expected %s\n  (see zerolab ckpt --help)\n", a->pos[0] ? "" : "",
            what);
    return ZL_EXIT_USAGE;
}

int zl_cmd_ckpt(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        ckpt_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? ZL_EXIT_USAGE : ZL_EXIT_OK;
    }
    const char *cmd = argv[1];
    ckpt_args a;
    int rc = parse_args(argc - 1, argv + 1, &a);
    if (rc < 0) return ZL_EXIT_OK;
    if (rc != ZL_EXIT_OK) return rc;
    zl_ckpt *c = NULL, *b = NULL;
    if (!strcmp(cmd, "import-llmc")) {
        if ((rc = need(&a, 2, "FILE.bin OUT")) != ZL_EXIT_OK) return rc;
        size_t padding = 0;
        if (zl_ckpt_import_llmc(a.pos[0], a.pos[1], a.tag, &padding) != ZL_OK) return zl_cli_fail();
        if (padding)
            fprintf(stderr, "warning: %zu nonzero values in the padding rows of wte were dropped\n",
                    padding);
        printf("imported %s into %s/%s (weights only)\n", a.pos[0], a.pos[1], a.tag ? a.tag : "llmc");
        return ZL_EXIT_OK;
    }
    static const struct { const char *cmd; int args; const char *what; } cmds[] = {
        {"inspect", 1, "DIR"}, {"to-fp32", 2, "DIR OUT.safetensors"}, {"reshape", 2, "DIR OUT"},
        {"compare", 2, "DIR_A DIR_B"}, {"export-llmc", 2, "DIR OUT.bin"}};
    int which = -1;
    for (int i = 0; i < (int)(sizeof cmds / sizeof *cmds); i++)
        if (!strcmp(cmd, cmds[i].cmd)) which = i;
    if (which < 0) {
        fprintf(stderr, "zerolab ckpt: unknown command '%s'\n\n", cmd);
        ckpt_usage(stderr);
        return ZL_EXIT_USAGE;
    }
    if ((rc = need(&a, cmds[which].args, cmds[which].what)) != ZL_EXIT_OK) return rc;
    if (!strcmp(cmd, "reshape") && !a.world) {
        fprintf(stderr, "zerolab ckpt reshape: --world-size M is required\n");
        return ZL_EXIT_USAGE;
    }
    if (zl_ckpt_open(&c, a.pos[0], a.tag, false, false) != ZL_OK) return zl_cli_fail();
    rc = ZL_EXIT_OK;
    if (!strcmp(cmd, "inspect")) {
        rc = inspect(&a, c);
    } else if (!strcmp(cmd, "to-fp32")) {
        size_t peak;
        if (zl_ckpt_to_fp32(c, a.pos[1], &peak) != ZL_OK) rc = zl_cli_fail();
        else printf("wrote %s: %d fp32 tensors, %zu parameters\n", a.pos[1], zl_ckpt_num_params(c),
                    zl_ckpt_numel(c));
    } else if (!strcmp(cmd, "reshape")) {
        int stage = a.stage >= 0 ? (int)a.stage : zl_ckpt_zero_stage(c);
        if (zl_ckpt_reshape(c, a.pos[1], (int)a.world, stage) != ZL_OK) rc = zl_cli_fail();
        else printf("wrote %s/%s for %ld rank%s at ZeRO stage %d\n", a.pos[1], zl_ckpt_tag(c), a.world,
                    a.world == 1 ? "" : "s", stage);
    } else if (!strcmp(cmd, "export-llmc")) {
        if (zl_ckpt_export_llmc(c, a.pos[1], (int)a.version) != ZL_OK) rc = zl_cli_fail();
        else printf("wrote %s\n", a.pos[1]);
    } else { /* compare */
        zl_ckpt_diff d;
        if (zl_ckpt_open(&b, a.pos[1], a.tag_b ? a.tag_b : a.tag, false, false) != ZL_OK ||
            zl_ckpt_compare(c, b, a.state, a.rtol, a.atol, &d) != ZL_OK) {
            rc = zl_cli_fail();
        } else {
            printf("%s %s: max |a - b| = %.6g", d.beyond ? "differ" : "agree",
                   a.state ? "(weights and Adam's moments)" : "(fp32 weights)", d.max_abs);
            if (d.param) printf(" (%s[%zu], |b| = %.6g)", d.param, d.index, d.at_ref);
            printf("; %zu element%s beyond atol %g + rtol %g x |b|\n", d.beyond,
                   d.beyond == 1 ? "" : "s", a.atol, a.rtol);
            rc = d.beyond ? ZL_EXIT_FAIL : ZL_EXIT_OK;
        }
    }
    zl_ckpt_close(b);
    zl_ckpt_close(c);
    return rc;
}
