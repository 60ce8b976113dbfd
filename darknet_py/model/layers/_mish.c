/* darknet's mish on float32 memory, one pass, one exponential per element: layers/mish_kernel.py's kernel.
 *
 * mish(x) = x·tanh(softplus(x)), and tanh(log(1 + e)) = n / (n + 2) with n = e·(e + 2), e = eˣ. torch's CPU
 * F.mish computes exp, log1p and tanh, each to the last bit with SLEEF: on yolov4-csp 512 that was 130-150 ms of a
 * 560 ms forward on 2 cores, a quarter of the network, for 63 M elements. Here eˣ is Cephes' expf (the argument
 * reduced by ln 2 in two parts, a degree-6 polynomial, the power of two written into the exponent bits), in
 * plain C the compiler vectorises: that forward took 436.89 ms instead of 532.49 with F.mish on a 2-core AMD EPYC
 * (benchmarks/results/prepacked.md).
 *
 * Accuracy (tests/test_mish_kernel.py, against float64 over every float32 exponent): within 3e-7 relative of the
 * true value where it is above 1e-30 in size, as F.mish. darknet's own branches are kept: above its softplus
 * threshold (20) the output is x; below -87 (where expf leaves the normal floats) it is 0·x, so -0 there and NaN
 * for -inf, as darknet's x·tanh(expf(x)) gives. NaN stays NaN.
 *
 * Every operation is rounded on its own (setup.py: -ffp-contract=off, no fast-math), so the vectorised clones
 * (AVX-512, AVX2) and the scalar code compute the same IEEE operations and give the same bits on every CPU (the
 * tests compare the vector loop with the scalar one on this CPU).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* one copy per vector width, picked at load time from the CPU's flags (the wheel stays portable) */
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#endif

#define SOFTPLUS_THRESHOLD 20.0f /* darknet's MISH_THRESHOLD: above it softplus(x) = x, so mish(x) = x */
#define LOWEST -87.0f            /* below it eˣ is no longer a normal float */

/* eˣ for x in [LOWEST, SOFTPLUS_THRESHOLD], within 2 ulp */
static inline float exp_reduced(float x) {
    const float log2e = 1.44269504088896341f;
    const float ln2_high = 0.693359375f, ln2_low = -2.12194440e-4f; /* ln 2 in two parts: k·ln2_high is exact */
    const float round_magic = 12582912.0f; /* 1.5·2²³: adding then subtracting it rounds to the nearest integer */
    float k = (x * log2e + round_magic) - round_magic;
    float r = x - k * ln2_high;
    r = r - k * ln2_low;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r;
    p = p + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23; /* 2ᵏ */
    float power;
    memcpy(&power, &bits, sizeof power);
    return p * power;
}

static inline float mish_one(float x) {
    float clamped = x < LOWEST ? LOWEST : (x > SOFTPLUS_THRESHOLD ? SOFTPLUS_THRESHOLD : x);
    float e = exp_reduced(clamped);
    float n = e * (e + 2.0f);
    float y = x * n / (n + 2.0f);
    y = x < LOWEST ? x * 0.0f : y;
    return x > SOFTPLUS_THRESHOLD ? x : y;
}

VECTOR_CLONES static void mish_in_place(float *data, Py_ssize_t count) {
    for (Py_ssize_t i = 0; i < count; i++) data[i] = mish_one(data[i]);
}

VECTOR_CLONES static void mish_into(const float *restrict src, float *restrict dst, Py_ssize_t count) {
    for (Py_ssize_t i = 0; i < count; i++) dst[i] = mish_one(src[i]);
}

static int float_buffer(PyObject *obj, Py_buffer *view, int flags, const char *name) {
    if (PyObject_GetBuffer(obj, view, flags | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != 4 || view->format == NULL || strcmp(view->format, "f") != 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected C-contiguous float32 memory", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(mish_doc,
"mish(src, dst)\n"
"\n"
"darknet's mish of every element of src, written to dst (which may be src itself).\n"
"\n"
"Args:\n"
"    src: C-contiguous float32 memory (a numpy array, any shape).\n"
"    dst: writable C-contiguous float32 memory of as many elements; the same memory as src, or apart from it.\n"
"\n"
"Returns:\n"
"    None. Releases the GIL while it runs.");

static PyObject *mish(PyObject *self, PyObject *args) {
    PyObject *src_obj, *dst_obj;
    if (!PyArg_ParseTuple(args, "OO", &src_obj, &dst_obj)) return NULL;
    Py_buffer src = {0}, dst = {0};
    if (float_buffer(src_obj, &src, PyBUF_SIMPLE, "src") < 0) return NULL;
    if (float_buffer(dst_obj, &dst, PyBUF_WRITABLE, "dst") < 0) {
        PyBuffer_Release(&src);
        return NULL;
    }
    PyObject *result = NULL;
    if (src.len != dst.len) {
        PyErr_Format(PyExc_ValueError, "src holds %zd floats, dst %zd", src.len / 4, dst.len / 4);
    } else {
        const char *a = src.buf, *b = dst.buf;
        if (a != b && a < b + dst.len && b < a + src.len) {
            PyErr_SetString(PyExc_ValueError, "src and dst overlap without being the same memory");
        } else {
            Py_ssize_t count = src.len / 4;
            Py_BEGIN_ALLOW_THREADS
            if (a == b)
                mish_in_place((float *)dst.buf, count);
            else
                mish_into((const float *)src.buf, (float *)dst.buf, count);
            Py_END_ALLOW_THREADS
            Py_INCREF(Py_None);
            result = Py_None;
        }
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return result;
}

static PyMethodDef methods[] = {
    {"mish", mish, METH_VARARGS, mish_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mish", NULL, -1, methods};

PyMODINIT_FUNC PyInit__mish(void) { return PyModule_Create(&module); }
