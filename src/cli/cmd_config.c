/* zerolab config: validate a DeepSpeed config without training and print every resolved
 * setting with where its value came from, as DeepSpeed prints its engine configuration at
 * start-up. Without a file, shows the built-in config `zerolab train` uses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/config.h"

static void config_usage(FILE *out)
{
    zl_cli_help(out,
            "usage: zerolab config [FILE] [--world-size N]\n"
            "\n"
            "Validate a DeepSpeed JSON config and print the resolved settings.\n"
            "  FILE            the config (default: the built-in config of 'zerolab train')\n"
            "  --world-size N  data-parallel ranks to resolve the batch-size triad for\n"
            "                  (default 1)\n"
            "  --json          also print the built-in config's JSON text (no FILE only)\n");
}

int zl_cmd_config(int argc, char **argv)
{
    const char *path = NULL;
    long world = 1;
    int show_json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            config_usage(stdout);
            return ZL_EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            show_json = 1;
        } else if (!strcmp(argv[i], "--world-size")) {
            char *end;
            if (i + 1 >= argc || (world = strtol(argv[i + 1], &end, 10)) <= 0 || *end) {
                fprintf(stderr, "zerolab config: --world-size expects a positive integer\n");
                return ZL_EXIT_USAGE;
            }
            i++;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "zerolab config: unknown option '%s'\n\n", argv[i]);
            config_usage(stderr);
            return ZL_EXIT_USAGE;
        } else if (path) {
            fprintf(stderr, "zerolab config: one config file at a time ('%s' and '%s')\n", path, argv[i]);
            return ZL_EXIT_USAGE;
        } else {
            path = argv[i];
        }
    }

    zl_config cfg;
    zl_status st = path ? zl_config_load(&cfg, path, (int)world)
                        : zl_config_parse(&cfg, zl_default_config_json, "<built-in config>", (int)world);
    int rc;
    if (st != ZL_OK) {
        rc = zl_cli_fail();
    } else {
        if (!path && show_json) printf("%s\n", zl_default_config_json);
        zl_config_print(&cfg, stdout);
        printf("%s: valid\n", cfg.name);
        rc = ZL_EXIT_OK;
    }
    zl_config_free(&cfg);
    return rc;
}
