/* darknet's k-means of box sizes (src/matrix.c do_kmeans, for calc_anchors): darknet_py/model/anchors.py's kernel.
 *
 * A round assigns every box to its closest centre by 1 - IoU and moves every centre to its boxes' mean: n × k
 * distances, a few numpy calls of temporaries each in anchors.py, ~80 ms a round for 200,000 boxes on 2 cores;
 * sets of a million boxes take hundreds of rounds. Here darknet's own loops, box by box.
 *
 * The arithmetic is anchors.py's, float32 step for step (compiled with -ffp-contract=off, no -ffast-math): the
 * distance as matrix.c's dist(), the first of equally close centres, sums added in box order, and the mean as
 * darknet's -Ofast build computes it: the sum times the reciprocal of the count.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* matrix.c dist(): 1 - IoU of two sizes centred on one point */
static inline float distance(const float *x, const float *y) {
    float mw = (x[0] < y[0]) ? x[0] : y[0];
    float mh = (x[1] < y[1]) ? x[1] : y[1];
    float inter = mw * mh;
    float x_area = x[0] * x[1];
    float y_area = y[0] * y[1];
    float sum = x_area + y_area;
    float un = sum - inter;
    float iou = inter / un;
    return 1.f - iou;
}

/* kmeans_expectation: each box to its closest centre (the first of equals); whether none changed */
static int assign(const float *sizes, Py_ssize_t n, const float *centers, Py_ssize_t k, int64_t *assignments) {
    int converged = 1;
    for (Py_ssize_t i = 0; i < n; ++i) {
        const float *box = sizes + 2 * i;
        int64_t best = 0;
        float best_distance = distance(box, centers);
        for (Py_ssize_t j = 1; j < k; ++j) {
            float d = distance(box, centers + 2 * j);
            if (d < best_distance) {
                best_distance = d;
                best = j;
            }
        }
        if (best != assignments[i]) converged = 0;
        assignments[i] = best;
    }
    return converged;
}

/* kmeans_maximization: each centre the mean of its boxes; a component that comes out 0 keeps its old value */
static void update(const float *sizes, Py_ssize_t n, float *centers, Py_ssize_t k, const int64_t *assignments,
                   float *sums, int64_t *counts) {
    memset(sums, 0, sizeof(float) * 2 * (size_t)k);
    memset(counts, 0, sizeof(int64_t) * (size_t)k);
    for (Py_ssize_t i = 0; i < n; ++i) {
        int64_t a = assignments[i];
        ++counts[a];
        sums[2 * a] += sizes[2 * i];
        sums[2 * a + 1] += sizes[2 * i + 1];
    }
    for (Py_ssize_t j = 0; j < k; ++j) {
        float reciprocal = 1.f / (float)(counts[j] ? counts[j] : 1);
        for (int c = 0; c < 2; ++c) {
            float mean = counts[j] ? sums[2 * j + c] * reciprocal : sums[2 * j + c];
            if (mean != 0) centers[2 * j + c] = mean;
        }
    }
}

PyDoc_STRVAR(rounds_doc,
"rounds(sizes, centers, assignments, max_rounds)\n"
"\n"
"darknet's do_kmeans from its first centres: for k = 1 an update first, then rounds of assignment and update\n"
"until no box changes its centre, at most max_rounds.\n"
"\n"
"Args:\n"
"    sizes: (n, 2) float32, C-contiguous; centers: (k, 2) float32, updated in place;\n"
"    assignments: (n,) int64, zeros on the way in, each box's centre on the way out.\n"
"    max_rounds (int): darknet's 1000.\n"
"\n"
"Returns:\n"
"    int: the rounds (darknet's `iterations`). Releases the GIL while it runs.");

static PyObject *rounds(PyObject *self, PyObject *args) {
    PyObject *sizes_obj, *centers_obj, *assignments_obj;
    Py_ssize_t max_rounds;
    if (!PyArg_ParseTuple(args, "OOOn", &sizes_obj, &centers_obj, &assignments_obj, &max_rounds)) return NULL;
    Py_buffer sizes = {0}, centers = {0}, assignments = {0};
    PyObject *result = NULL;
    float *sums = NULL;
    int64_t *counts = NULL;
    if (PyObject_GetBuffer(sizes_obj, &sizes, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
    if (PyObject_GetBuffer(centers_obj, &centers, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) goto done;
    if (PyObject_GetBuffer(assignments_obj, &assignments, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) goto done;
    Py_ssize_t n = sizes.len / 8, k = centers.len / 8;
    if (sizes.itemsize != 4 || centers.itemsize != 4 || (sizes.format && strcmp(sizes.format, "f") != 0) ||
        (centers.format && strcmp(centers.format, "f") != 0) || sizes.len != 8 * n || centers.len != 8 * k || k < 1 ||
        assignments.itemsize != 8 || assignments.len != 8 * n) {
        PyErr_SetString(PyExc_ValueError, "rounds: float32 sizes (n, 2) and centers (k, 2), int64 assignments (n,)");
        goto done;
    }
    sums = (float *)malloc(sizeof(float) * 2 * (size_t)k);
    counts = (int64_t *)malloc(sizeof(int64_t) * (size_t)k);
    if (!sums || !counts) {
        PyErr_NoMemory();
        goto done;
    }
    {
        const float *size = (const float *)sizes.buf;
        float *center = (float *)centers.buf;
        int64_t *assigned = (int64_t *)assignments.buf;
        Py_ssize_t round = 0;
        Py_BEGIN_ALLOW_THREADS
        if (k == 1) update(size, n, center, k, assigned, sums, counts);
        while (round < max_rounds && !assign(size, n, center, k, assigned)) {
            update(size, n, center, k, assigned, sums, counts);
            ++round;
        }
        Py_END_ALLOW_THREADS
        result = PyLong_FromSsize_t(round);
    }
done:
    free(sums);
    free(counts);
    if (sizes.obj) PyBuffer_Release(&sizes);
    if (centers.obj) PyBuffer_Release(&centers);
    if (assignments.obj) PyBuffer_Release(&assignments);
    return result;
}

static PyMethodDef methods[] = {
    {"rounds", rounds, METH_VARARGS, rounds_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kmeans", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kmeans(void) { return PyModule_Create(&module); }
