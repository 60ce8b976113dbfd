/* Greedy per-group NMS of a few boxes on the CPU: darknet_py/pipeline/nms.py's kernel for the dense case.
 *
 * What a trained network leaves after the thresholds is a few dozen boxes. nms.py's dense path builds their
 * overlap matrix and scans it: thirty-odd tensor calls of a few microseconds each, 0.3 ms of detect() right
 * after the network on 2 cores. Here darknet's own loop (do_nms_sort): boxes by score, each one still standing
 * removes the later boxes of its group it overlaps by more than the threshold.
 *
 * The overlap is nms.py's `overlap`, float32 step for step, NaN passing through min, max and clamps as in
 * torch (compiled with -ffp-contract=off, no -ffast-math); DIoU's power is libm's powf, which may differ from
 * torch's in the last bit: a decision can differ only for an overlap within a float32 ulp of the threshold.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float score;
    int64_t index;
} ranked_t;

/* score descending, then index ascending: torch's stable descending argsort (scores hold no NaN: nms.py's check) */
static int by_score(const void *a, const void *b) {
    const ranked_t *x = (const ranked_t *)a, *y = (const ranked_t *)b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* torch.min / torch.max / clamp(min=...) on floats: NaN in, NaN out */
static inline float nan_min(float a, float b) { return (a != a || b != b) ? NAN : (a < b ? a : b); }
static inline float nan_max(float a, float b) { return (a != a || b != b) ? NAN : (a > b ? a : b); }
static inline float clamp_min(float v, float low) { return v < low ? low : v; }

static float overlap(const float *a, const float *b, int diou, float beta) {
    const float tiny = 1e-12f;
    float area_a = clamp_min(a[2] - a[0], 0.f) * clamp_min(a[3] - a[1], 0.f);
    float area_b = clamp_min(b[2] - b[0], 0.f) * clamp_min(b[3] - b[1], 0.f);
    float iw = clamp_min(nan_min(a[2], b[2]) - nan_max(a[0], b[0]), 0.f);
    float ih = clamp_min(nan_min(a[3], b[3]) - nan_max(a[1], b[1]), 0.f);
    float inter = iw * ih;
    float uni = area_a + area_b - inter;
    float iou = (inter > 0 && uni > 0) ? inter / clamp_min(uni, tiny) : 0.f;
    if (!diou) return iou;
    float cw = nan_max(a[2], b[2]) - nan_min(a[0], b[0]);
    float ch = nan_max(a[3], b[3]) - nan_min(a[1], b[1]);
    float c = cw * cw + ch * ch;
    float dx = (a[0] + a[2]) / 2 - (b[0] + b[2]) / 2, dy = (a[1] + a[3]) / 2 - (b[1] + b[3]) / 2;
    float d = dx * dx + dy * dy;
    float penalty = c > 0 ? powf(d / clamp_min(c, tiny), beta) : 0.f;
    return iou - penalty;
}

PyDoc_STRVAR(keep_doc,
"keep(boxes, scores, groups, threshold, diou, beta, out)\n"
"\n"
"Greedy NMS per group: the boxes kept, best first.\n"
"\n"
"Args:\n"
"    boxes: (K, 4) float32 xyxy, C-contiguous; scores: (K,) float32 without NaN; groups: (K,) int64.\n"
"    threshold (float): a box removes later boxes of its group overlapping it by more than this.\n"
"    diou (bool): DIoU (IoU less (d^2/c^2)^beta) instead of IoU; beta (float): its exponent.\n"
"    out: (K,) int64, receives the kept boxes' indices in score order (ties: input order).\n"
"\n"
"Returns:\n"
"    int: how many were kept. Releases the GIL while it runs.");

static PyObject *keep(PyObject *self, PyObject *args) {
    PyObject *boxes_obj, *scores_obj, *groups_obj, *out_obj;
    double threshold_d, beta_d;
    int diou;
    if (!PyArg_ParseTuple(args, "OOOdpdO", &boxes_obj, &scores_obj, &groups_obj, &threshold_d, &diou, &beta_d, &out_obj))
        return NULL;
    Py_buffer boxes = {0}, scores = {0}, groups = {0}, out = {0};
    PyObject *result = NULL;
    ranked_t *ranked = NULL;
    char *removed = NULL;
    if (PyObject_GetBuffer(boxes_obj, &boxes, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
    if (PyObject_GetBuffer(scores_obj, &scores, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
    if (PyObject_GetBuffer(groups_obj, &groups, PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) goto done;
    Py_ssize_t n = scores.len / 4;
    if (boxes.itemsize != 4 || scores.itemsize != 4 || (boxes.format && strcmp(boxes.format, "f") != 0) ||
        (scores.format && strcmp(scores.format, "f") != 0) || boxes.len != 16 * n || groups.itemsize != 8 ||
        groups.len != 8 * n || out.itemsize != 8 || out.len != 8 * n) {
        PyErr_SetString(PyExc_ValueError, "keep: float32 boxes (K, 4) and scores (K,), int64 groups and out (K,) expected");
        goto done;
    }
    ranked = (ranked_t *)malloc(sizeof(ranked_t) * (size_t)(n ? n : 1));
    removed = (char *)calloc((size_t)(n ? n : 1), 1);
    if (!ranked || !removed) {
        PyErr_NoMemory();
        goto done;
    }
    {
        const float *box = (const float *)boxes.buf, *score = (const float *)scores.buf;
        const int64_t *group = (const int64_t *)groups.buf;
        int64_t *kept = (int64_t *)out.buf;
        const float threshold = (float)threshold_d, beta = (float)beta_d;  /* as torch compares and raises */
        Py_ssize_t count = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; ++i) {
            ranked[i].score = score[i];
            ranked[i].index = i;
        }
        qsort(ranked, (size_t)n, sizeof(ranked_t), by_score);
        for (Py_ssize_t i = 0; i < n; ++i) {
            if (removed[i]) continue;
            const int64_t a = ranked[i].index;
            kept[count++] = a;
            for (Py_ssize_t j = i + 1; j < n; ++j) {
                const int64_t b = ranked[j].index;
                if (!removed[j] && group[b] == group[a] && overlap(box + 4 * a, box + 4 * b, diou, beta) > threshold)
                    removed[j] = 1;
            }
        }
        Py_END_ALLOW_THREADS
        result = PyLong_FromSsize_t(count);
    }
done:
    free(ranked);
    free(removed);
    if (boxes.obj) PyBuffer_Release(&boxes);
    if (scores.obj) PyBuffer_Release(&scores);
    if (groups.obj) PyBuffer_Release(&groups);
    if (out.obj) PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"keep", keep, METH_VARARGS, keep_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_greedy_nms", NULL, -1, methods};

PyMODINIT_FUNC PyInit__greedy_nms(void) { return PyModule_Create(&module); }
