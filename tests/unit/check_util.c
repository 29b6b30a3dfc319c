#include "check_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/rng.h"

int zl_test_close(const char *label, const float *got, const float *want, size_t n, double rtol,
                  double atol)
{
    double max_abs = 0, max_rel = 0;
    size_t first_bad = n, nbad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i], d = fabs(g - w);
        int bad = isnan(g) || isnan(w) || d > atol + rtol * fabs(w);
        if (isfinite(d) && d > max_abs) max_abs = d;
        if (isfinite(d) && fabs(w) > 0 && d / fabs(w) > max_rel) max_rel = d / fabs(w);
        if (bad) {
            if (first_bad == n) first_bad = i;
            nbad++;
        }
    }
    if (nbad == 0) return 1;
    fprintf(stderr, "%s: %zu of %zu elements differ (rtol %.1e, atol %.1e); max abs %.3e, max rel %.3e\n",
            label, nbad, n, rtol, atol, max_abs, max_rel);
    for (size_t i = first_bad, shown = 0; i < n && shown < 5; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (isnan(got[i]) || isnan(want[i]) || d > atol + rtol * fabs(want[i])) {
            fprintf(stderr, "  [%zu] got %.9g want %.9g\n", i, got[i], want[i]);
            shown++;
        }
    }
    return 0;
}

void zl_test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * zl_rng_uniform(seed, 0x7e57, i);
}

int zl_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nfailed = srunner_ntests_failed(sr);
    int nrun = srunner_ntests_run(sr);
    srunner_free(sr);
    if (nrun == 0) return 77; /* compared nothing: a skip, never a pass */
    return nfailed == 0 ? 0 : 1;
}

const char *zl_test_data(const char *name)
{
    static char path[4096];
    const char *dir = getenv("ZL_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/fixtures", name);
    return path;
}
