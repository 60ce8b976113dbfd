/* Hooks for darknet's `detector calc_anchors` (LD_PRELOAD), so that the oracle test can compare with it exactly:
 * - time(): FIXED_TIME, so that calc_anchors' srand(time(0)) takes a seed the test chooses;
 * - qsort(): calc_anchors sorts its k-means centres (an array of float* pairs) once; with DUMP_CENTERS set, their
 *   bits are printed first (%a, one "center W H" line each), in the order k-means left them.
 * Built by benchmarks/oracle/darknet_commands.py calc_anchors with the system's cc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

time_t time(time_t *t) {
    const char *text = getenv("FIXED_TIME");
    time_t value = text ? (time_t)strtoull(text, 0, 10) : 0;
    if (t) *t = value;
    return value;
}

void qsort(void *base, size_t n, size_t size, int (*compare)(const void *, const void *)) {
    static void (*real)(void *, size_t, size_t, int (*)(const void *, const void *));
    if (!real) real = (void (*)(void *, size_t, size_t, int (*)(const void *, const void *)))dlsym(RTLD_NEXT, "qsort");
    if (getenv("DUMP_CENTERS") && size == sizeof(float *)) {
        float **rows = (float **)base;
        for (size_t i = 0; i < n; ++i) fprintf(stderr, "center %a %a\n", rows[i][0], rows[i][1]);
    }
    real(base, n, size, compare);
}
