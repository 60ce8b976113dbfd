/* darknet's resize_image on the CPU in one pass over the output: darknet_py/pipeline/darknet_resize.py's kernel.
 *
 * The numpy/torch path makes darknet's floats with a dozen passes over megabytes of float planes; after the
 * network (cold caches) that costs 4 ms a 720p frame, of which the arithmetic is a fraction. Here each output
 * row computes the (at most two) horizontally resized source rows it reads, for all channels, into two small
 * row buffers (reused when the next output row reads the same source row), then its vertical mix: the
 * source is read once and the output written once.
 *
 * The arithmetic is darknet's, step for step, in float32:
 *   part[k][y][c] = w0x[c]·q[src[y][i0x[c]][k]] + w1x[c]·q[src[y][i1x[c]][k]]   (q: v/255, darknet's quotients)
 *   out[k][r][c]  = w0y[r]·part[k][i0y[r]][c] + w1y[r]·part[k][i1y[r]][c]
 * with the positions, weights and edge rules computed by darknet_resize.axis() (one definition for every path).
 * Each product and each sum is rounded on its own: the file must be compiled without floating-point
 * contraction (setup.py: -ffp-contract=off; no -ffast-math), or fused multiply-adds would change the last bit.
 *
 * The horizontal pass of a contiguous 3-channel image runs 8 columns at a time with AVX2 where the CPU has it
 * (checked at run time; the same products and sums as vectors, v/255 as a float division, which gives for
 * every byte the float of darknet's double quotient): dog.jpg to 416x416 in 0.25 ms instead of 0.79 on a
 * 2-core AMD EPYC. Elsewhere the scalar loop below does it all.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const int32_t *i0, *i1;
    const float *w0, *w1;
    Py_ssize_t n;
} axis_t;

/* One horizontally resized source row, all channels, columns [from, w): row_out[k * w + c]. */
static void horizontal(const uint8_t *row, Py_ssize_t pixel_stride, Py_ssize_t channel_stride, int channels,
                       int swap, const axis_t *x, const float *quotient, float *row_out, Py_ssize_t from) {
    if (channels == 3) {  /* the usual case: a pixel's three bytes read together */
        const uint8_t *p0 = row + (swap ? 2 : 0) * channel_stride, *p1 = row + channel_stride;
        const uint8_t *p2 = row + (swap ? 0 : 2) * channel_stride;
        float *d0 = row_out, *d1 = row_out + x->n, *d2 = row_out + 2 * x->n;
        for (Py_ssize_t c = from; c < x->n; ++c) {
            Py_ssize_t a = x->i0[c] * pixel_stride, b = x->i1[c] * pixel_stride;
            float wa = x->w0[c], wb = x->w1[c];
            float a0 = wa * quotient[p0[a]], b0 = wb * quotient[p0[b]];
            float a1 = wa * quotient[p1[a]], b1 = wb * quotient[p1[b]];
            float a2 = wa * quotient[p2[a]], b2 = wb * quotient[p2[b]];
            d0[c] = a0 + b0;
            d1[c] = a1 + b1;
            d2[c] = a2 + b2;
        }
        return;
    }
    for (int k = 0; k < channels; ++k) {
        const uint8_t *plane = row + (Py_ssize_t)(swap ? channels - 1 - k : k) * channel_stride;
        float *dst = row_out + (Py_ssize_t)k * x->n;
        for (Py_ssize_t c = from; c < x->n; ++c) {
            float a = x->w0[c] * quotient[plane[x->i0[c] * pixel_stride]];
            float b = x->w1[c] * quotient[plane[x->i1[c] * pixel_stride]];
            dst[c] = a + b;
        }
    }
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define VECTOR_PATH 1

/* 8 columns' pixels as 32-bit words: the pixel's three bytes and the first of the next one (which exists: see
 * vector_columns). Plain loads, not a gather instruction: faster here, and not slowed by gather mitigations. */
__attribute__((target("avx2"))) static inline __m256i pixels8(const uint8_t *row, const int32_t *offset) {
    int32_t word[8];
    for (int i = 0; i < 8; ++i) memcpy(&word[i], row + offset[i], 4);
    return _mm256_loadu_si256((const __m256i *)word);
}

/* horizontal() of a contiguous 3-channel row for columns [0, n - n % 8); offsets: each column's two pixels'
 * byte offsets (3·i0, then 3·i1). Returns the first column left to the scalar loop. */
__attribute__((target("avx2"))) static Py_ssize_t horizontal_avx2(const uint8_t *row, const int32_t *offsets,
                                                                  const axis_t *x, Py_ssize_t n, int swap,
                                                                  float *row_out) {
    const __m256i byte = _mm256_set1_epi32(0xFF);
    const __m256 divisor = _mm256_set1_ps(255.0f);
    float *plane[3] = {row_out + (swap ? 2 : 0) * x->n, row_out + x->n, row_out + (swap ? 0 : 2) * x->n};
    Py_ssize_t c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256i a = pixels8(row, offsets + c), b = pixels8(row, offsets + x->n + c);
        __m256 wa = _mm256_loadu_ps(x->w0 + c), wb = _mm256_loadu_ps(x->w1 + c);
        for (int k = 0; k < 3; ++k) {  /* source channel k: byte k of each word */
            __m256 qa = _mm256_div_ps(_mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(a, 8 * k), byte)), divisor);
            __m256 qb = _mm256_div_ps(_mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(b, 8 * k), byte)), divisor);
            _mm256_storeu_ps(plane[k] + c, _mm256_add_ps(_mm256_mul_ps(wa, qa), _mm256_mul_ps(wb, qb)));
        }
    }
    return c;
}
#endif

/* How many leading columns the vector path may take (0: none): a contiguous 3-channel source on a CPU with
 * AVX2, and only columns whose second pixel has another after it, so the 32-bit reads stay inside the row.
 * Fills offsets (2·w int32) for them. */
static Py_ssize_t vector_columns(const Py_buffer *src, int channels, const axis_t *x, int32_t *offsets) {
    Py_ssize_t n = 0;
#ifdef VECTOR_PATH
    if (channels != 3 || src->strides[1] != 3 || src->strides[2] != 1 || !__builtin_cpu_supports("avx2")) return 0;
    while (n < x->n && x->i1[n] + 1 < src->shape[1]) {  /* i1 never decreases: a prefix */
        offsets[n] = 3 * x->i0[n];
        offsets[x->n + n] = 3 * x->i1[n];
        ++n;
    }
#else
    (void)src, (void)channels, (void)x, (void)offsets;
#endif
    return n;
}

static int get_axis(Py_buffer *i0, Py_buffer *i1, Py_buffer *w0, Py_buffer *w1, axis_t *out) {
    Py_ssize_t n = i0->len / (Py_ssize_t)sizeof(int32_t);
    if (i1->len != i0->len || w0->len != n * (Py_ssize_t)sizeof(float) || w1->len != w0->len) {
        PyErr_SetString(PyExc_ValueError, "axis arrays: int32 i0, i1 and float32 w0, w1 of one length expected");
        return -1;
    }
    out->i0 = (const int32_t *)i0->buf;
    out->i1 = (const int32_t *)i1->buf;
    out->w0 = (const float *)w0->buf;
    out->w1 = (const float *)w1->buf;
    out->n = n;
    return 0;
}

static int in_range(const axis_t *a, Py_ssize_t limit) {
    for (Py_ssize_t i = 0; i < a->n; ++i)
        if (a->i0[i] < 0 || a->i0[i] >= limit || a->i1[i] < 0 || a->i1[i] >= limit) return 0;
    return 1;
}

PyDoc_STRVAR(resize_doc,
"resize(src, out, x_i0, x_i1, x_w0, x_w1, y_i0, y_i1, y_w0, y_w1, quotients, swap, row_begin, row_end)\n"
"\n"
"darknet's resize_image of output rows [row_begin, row_end) of a uint8 image into float32 planes.\n"
"\n"
"Args:\n"
"    src: (H, W) or (H, W, C) uint8 buffer, any strides.\n"
"    out: (C, h, w) float32 writable buffer, any strides (a view into a letterbox is fine).\n"
"    x_i0, x_i1, x_w0, x_w1: the horizontal axis (int32, int32, float32, float32; length w).\n"
"    y_i0, y_i1, y_w0, y_w1: the vertical axis (length h).\n"
"    quotients: 256 float32, v/255 for every byte.\n"
"    swap (int): read source channel C-1-k for output plane k (BGR to RGB).\n"
"    row_begin, row_end (int): the output rows to write.\n"
"\n"
"Releases the GIL while it runs.");

static PyObject *resize(PyObject *self, PyObject *args) {
    PyObject *src_obj, *out_obj;
    Py_buffer xb[4], yb[4], qb;
    int swap;
    Py_ssize_t row_begin, row_end;
    if (!PyArg_ParseTuple(args, "OOy*y*y*y*y*y*y*y*y*pnn", &src_obj, &out_obj, &xb[0], &xb[1], &xb[2], &xb[3],
                          &yb[0], &yb[1], &yb[2], &yb[3], &qb, &swap, &row_begin, &row_end))
        return NULL;
    Py_buffer src = {0}, out = {0};
    PyObject *result = NULL;
    float *rows = NULL;
    axis_t x, y;
    if (get_axis(&xb[0], &xb[1], &xb[2], &xb[3], &x) < 0 || get_axis(&yb[0], &yb[1], &yb[2], &yb[3], &y) < 0)
        goto done;
    if (qb.len != 256 * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "quotients: 256 float32 expected");
        goto done;
    }
    if (PyObject_GetBuffer(src_obj, &src, PyBUF_STRIDED_RO | PyBUF_FORMAT) < 0) goto done;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_STRIDED | PyBUF_FORMAT) < 0) goto done;
    if (src.itemsize != 1 || (src.ndim != 2 && src.ndim != 3)) {
        PyErr_SetString(PyExc_ValueError, "src: an (H, W) or (H, W, C) uint8 array expected");
        goto done;
    }
    if (out.itemsize != 4 || out.ndim != 3 || (out.format && strcmp(out.format, "f") != 0)) {
        PyErr_SetString(PyExc_ValueError, "out: a (C, h, w) float32 array expected");
        goto done;
    }
    int channels = src.ndim == 3 ? (int)src.shape[2] : 1;
    Py_ssize_t channel_stride = src.ndim == 3 ? src.strides[2] : 0;
    if (out.shape[0] != channels || out.shape[1] != y.n || out.shape[2] != x.n) {
        PyErr_Format(PyExc_ValueError, "out: (%d, %zd, %zd) expected, got (%zd, %zd, %zd)", channels, y.n, x.n,
                     out.shape[0], out.shape[1], out.shape[2]);
        goto done;
    }
    if (out.strides[0] % 4 || out.strides[1] % 4 || out.strides[2] % 4) {
        PyErr_SetString(PyExc_ValueError, "out: strides must be whole float32 elements");
        goto done;
    }
    if (!in_range(&x, src.shape[1]) || !in_range(&y, src.shape[0]) || row_begin < 0 || row_end > y.n) {
        PyErr_SetString(PyExc_ValueError, "resize plan does not fit the source or output");
        goto done;
    }
    rows = (float *)malloc(sizeof(float) * 2 * (size_t)channels * (size_t)x.n + sizeof(int32_t) * 2 * (size_t)x.n);
    if (!rows) {
        PyErr_NoMemory();
        goto done;
    }
    {
        const float *quotient = (const float *)qb.buf;
        const uint8_t *base = (const uint8_t *)src.buf;
        char *out_base = (char *)out.buf;
        Py_ssize_t plane = (Py_ssize_t)channels * x.n;
        float *slot[2] = {rows, rows + plane};
        Py_ssize_t held[2] = {-1, -1};  /* the source row each slot holds */
        Py_ssize_t os0 = out.strides[0] / 4, os1 = out.strides[1] / 4, os2 = out.strides[2] / 4;
        int32_t *offsets = (int32_t *)(rows + 2 * plane);
        Py_ssize_t vector = vector_columns(&src, channels, &x, offsets);
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = row_begin; r < row_end; ++r) {
            Py_ssize_t want[2] = {y.i0[r], y.i1[r]};
            const float *part[2];
            for (int s = 0; s < 2; ++s) {
                int at = held[0] == want[s] ? 0 : held[1] == want[s] ? 1 : -1;
                if (at < 0) {  /* fill the slot that does not hold this output row's other source row */
                    at = held[0] == want[1 - s] ? 1 : 0;
                    const uint8_t *row = base + want[s] * src.strides[0];
                    Py_ssize_t from = 0;
#ifdef VECTOR_PATH
                    if (vector) from = horizontal_avx2(row, offsets, &x, vector, swap, slot[at]);
#endif
                    horizontal(row, src.strides[1], channel_stride, channels, swap, &x, quotient, slot[at], from);
                    held[at] = want[s];
                }
                part[s] = slot[at];
            }
            float w0 = y.w0[r], w1 = y.w1[r];
            for (int k = 0; k < channels; ++k) {
                const float *top = part[0] + (Py_ssize_t)k * x.n, *bottom = part[1] + (Py_ssize_t)k * x.n;
                float *dst = (float *)out_base + k * os0 + r * os1;
                if (os2 == 1) {
                    for (Py_ssize_t c = 0; c < x.n; ++c) {
                        float a = w0 * top[c];
                        float b = w1 * bottom[c];
                        dst[c] = a + b;
                    }
                } else {
                    for (Py_ssize_t c = 0; c < x.n; ++c) {
                        float a = w0 * top[c];
                        float b = w1 * bottom[c];
                        dst[c * os2] = a + b;
                    }
                }
            }
        }
        Py_END_ALLOW_THREADS
    }
    result = Py_None;
    Py_INCREF(result);
done:
    free(rows);
    if (src.obj) PyBuffer_Release(&src);
    if (out.obj) PyBuffer_Release(&out);
    for (int i = 0; i < 4; ++i) {
        PyBuffer_Release(&xb[i]);
        PyBuffer_Release(&yb[i]);
    }
    PyBuffer_Release(&qb);
    return result;
}

static PyMethodDef methods[] = {
    {"resize", resize, METH_VARARGS, resize_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_darknet_resize",
    "darknet's resize_image in C (see darknet_py/pipeline/darknet_resize.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__darknet_resize(void) { return PyModule_Create(&module); }
