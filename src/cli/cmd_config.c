/* zerolab config: validate a DeepSpeed config without training and print every resolved
 * setting with where its value came from, as DeepSpeed prints its engine configuration at
 * start-up. Without a file, shows the built-in config `zerolab train` uses. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "backends/cpu/cpu_blas.h"
#include "cli/cli.h"
#include "config/config.h"
#include "engine/engine.h"

static void config_usage(FILE *out)
{
    zl_cli_help(out,
            "usage: zerolab config [FILE] [--world-size N] [--json] [fill flags]\n"
            "       zerolab config --reference\n"
            "\n"
            "Validate a DeepSpeed JSON config and print the resolved settings.\n"
            "  FILE                  the config (default: the built-in config of 'zerolab train')\n"
            "  --world-size N        data-parallel ranks to resolve the batch-size triad for\n"
            "                        (default 1)\n"
            "  --json                print only the resolved config, as DeepSpeed JSON that\n"
            "                        reads back to the same settings (warnings go to stderr)\n"
            "  --reference           print every key the reader knows (type, default, whether\n"
            "                        zerolab honours it, meaning) as Markdown: the source of\n"
            "                        docs/config-reference.md\n"
            "%s",
            zl_cli_fill_usage);
}

int zl_cmd_config(int argc, char **argv)
{
    const char *path = NULL;
    long world = 1;
    int show_json = 0;
    zl_config_fill fill = {0};
    for (int i = 1; i < argc; i++) {
        int filled = 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            config_usage(stdout);
            return ZL_EXIT_OK;
        } else if (!strcmp(argv[i], "--reference")) {
            /* The table itself, not a config: nothing else on the line makes sense. */
            if (argc != 2) {
                fprintf(stderr, "zerolab config: --reference takes no file or other option\n");
                return ZL_EXIT_USAGE;
            }
            return zl_config_print_reference(stdout) == ZL_OK ? ZL_EXIT_OK : zl_cli_fail();
        } else if (!strcmp(argv[i], "--json")) {
            show_json = 1;
        } else if (!strcmp(argv[i], "--world-size")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "zerolab config: --world-size expects a positive integer\n");
                return ZL_EXIT_USAGE;
            }
            if (!zl_cli_parse_positive("config", "--world-size", argv[i + 1], INT_MAX, &world))
                return ZL_EXIT_USAGE;
            i++;
        } else if (argv[i][0] == '-' && i + 1 < argc &&
                   (filled = zl_cli_fill_flag("config", argv[i], argv[i + 1], &fill)) != 0) {
            if (filled < 0) return ZL_EXIT_USAGE;
            i++;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "zerolab config: unknown or incomplete option '%s'\n\n", argv[i]);
            config_usage(stderr);
            return ZL_EXIT_USAGE;
        } else if (path) {
            fprintf(stderr, "zerolab config: one config file at a time ('%s' and '%s')\n", path, argv[i]);
            return ZL_EXIT_USAGE;
        } else {
            path = argv[i];
        }
    }

    /* Without a file the flags simply set their values in the built-in config. */
    fill.override_file = !path;
    zl_config cfg;
    zl_status st = path ? zl_config_load_filled(&cfg, path, (int)world, &fill)
                        : zl_config_parse_filled(&cfg, zl_default_config_json, "<built-in config>",
                                                 (int)world, &fill);
    int rc;
    if (st != ZL_OK) {
        rc = zl_cli_fail();
    } else {
        if (show_json) {
            /* stdout is the JSON alone, so it can be piped or saved and read back. */
            for (int i = 0; i < cfg.nwarnings; i++) fprintf(stderr, "warning: %s\n", cfg.warnings[i]);
            if (zl_engine_check_config(&cfg) != ZL_OK)
                fprintf(stderr, "warning: valid DeepSpeed config; zerolab cannot yet run it: %s\n",
                        zl_last_error());
            rc = zl_config_print_json(&cfg, stdout) == ZL_OK ? ZL_EXIT_OK : zl_cli_fail();
        } else {
            zl_config_print(&cfg, stdout);
            /* What the cpu backend would run on this machine (the config does not say). */
            printf("cpu backend here: %s\n", zl_cpu_blas_report());
            /* Valid DeepSpeed is one question, what this engine runs another: a config can
             * be right and still ask for a feature zerolab has not built (the same check
             * train and plan refuse it with). */
            if (zl_engine_check_config(&cfg) != ZL_OK)
                printf("%s: valid DeepSpeed config; zerolab cannot yet run it:\n  %s\n", cfg.name,
                       zl_last_error());
            else
                printf("%s: valid\n", cfg.name);
            rc = ZL_EXIT_OK;
        }
    }
    zl_config_free(&cfg);
    return rc;
}
