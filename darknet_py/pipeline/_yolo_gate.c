/* The CPU's [yolo] decoding for detect(): darknet_py/pipeline/yolo_gate.py's kernel.
 *
 * darknet reads a box's class probabilities only when its objectness passes the threshold. The tensor
 * decoder (decoders/yolo.py) computes every score of every candidate first, dozens of passes over the
 * head that cost yolov4-tiny 0.7 ms after the network on 2 cores, to keep a few dozen rows. Here one pass
 * over one image's head takes the objectness of each candidate and, for those above the threshold only,
 * writes the box and its class scores: the rows detect() goes on with.
 *
 * The arithmetic is decoders/yolo.py's, in float32, step for step (products and sums rounded on their own:
 * compiled with -ffp-contract=off, no -ffast-math); the logistic is darknet's formula 1/(1 + expf(-x)) and
 * w, h use expf. The exponential is libm's, where torch's vectorised one may differ in the last bits (scores
 * within 8 ulps of the tensor path's, and of darknet's -Ofast build: tests/test_yolo_gate.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float logistic(float x) { return 1.f / (1.f + expf(-x)); }

PyDoc_STRVAR(gate_doc,
"gate(head, anchors, scale_x_y, new_coords, stride_x, stride_y, thresh, box_offset, image, box, boxes, scores, start)\n"
"\n"
"The candidates of one image's [yolo] head whose objectness exceeds thresh, written from row `start` on.\n"
"\n"
"Args:\n"
"    head: (A*(5+C), H, W) float32, C-contiguous: the head's input for one image.\n"
"    anchors: (A, 2) float32 anchor sizes in network pixels.\n"
"    scale_x_y (float), new_coords (int), stride_x, stride_y (float): as YoloSpec and decode give them.\n"
"    thresh (float): the objectness threshold (compared as float32, as torch compares).\n"
"    box_offset (int): the index of this head's first candidate among the image's (earlier heads' count).\n"
"    image (int): the image index written to each row.\n"
"    image_idx, box_idx: int64 (R,) outputs; boxes: float32 (R, 4) xyxy network pixels; scores: float32 (R, C).\n"
"    start (int): the first row to write.\n"
"\n"
"Returns:\n"
"    int: the row after the last one written. Releases the GIL while it runs.");

static int float32_array(Py_buffer *b, int ndim, const char *name) {
    if (b->itemsize != 4 || b->ndim != ndim || (b->format && strcmp(b->format, "f") != 0)) {
        PyErr_Format(PyExc_ValueError, "%s: a %d-dimensional float32 array expected", name, ndim);
        return 0;
    }
    return 1;
}

static PyObject *gate(PyObject *self, PyObject *args) {
    PyObject *head_obj, *anchor_obj, *image_idx_obj, *box_idx_obj, *boxes_obj, *scores_obj;
    double scale, stride_x_d, stride_y_d, thresh_d;
    int new_coords;
    Py_ssize_t box_offset, image, start;
    if (!PyArg_ParseTuple(args, "OOdpdddnnOOOOn", &head_obj, &anchor_obj, &scale, &new_coords, &stride_x_d,
                          &stride_y_d, &thresh_d, &box_offset, &image, &image_idx_obj, &box_idx_obj, &boxes_obj,
                          &scores_obj, &start))
        return NULL;
    Py_buffer head = {0}, anchors = {0}, image_idx = {0}, box_idx = {0}, boxes = {0}, scores = {0};
    PyObject *result = NULL;
    if (PyObject_GetBuffer(head_obj, &head, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
    if (PyObject_GetBuffer(anchor_obj, &anchors, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
    if (PyObject_GetBuffer(image_idx_obj, &image_idx, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) goto done;
    if (PyObject_GetBuffer(box_idx_obj, &box_idx, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) goto done;
    if (PyObject_GetBuffer(boxes_obj, &boxes, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0) goto done;
    if (PyObject_GetBuffer(scores_obj, &scores, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0) goto done;
    if (!float32_array(&head, 3, "head") || !float32_array(&anchors, 2, "anchors") ||
        !float32_array(&boxes, 2, "boxes") || !float32_array(&scores, 2, "scores"))
        goto done;
    Py_ssize_t n_anchors = anchors.shape[0], h = head.shape[1], w = head.shape[2], classes = scores.shape[1];
    Py_ssize_t rows = boxes.shape[0];
    if (anchors.shape[1] != 2 || head.shape[0] != n_anchors * (5 + classes) || boxes.shape[1] != 4 ||
        scores.shape[0] != rows || image_idx.len != rows * 8 || box_idx.len != rows * 8 || image_idx.itemsize != 8 ||
        box_idx.itemsize != 8 || start < 0 || start + n_anchors * h * w > rows) {
        PyErr_SetString(PyExc_ValueError, "gate: head, anchors and outputs do not fit together");
        goto done;
    }
    {
        const float *t = (const float *)head.buf, *anchor = (const float *)anchors.buf;
        int64_t *out_image = (int64_t *)image_idx.buf, *out_box = (int64_t *)box_idx.buf;
        float *out_boxes = (float *)boxes.buf, *out_scores = (float *)scores.buf;
        /* the Python floats as torch applies them to a float32 tensor: rounded to float32 once */
        const float s = (float)scale, shift = (float)(0.5 * (scale - 1)), sx = (float)stride_x_d, sy = (float)stride_y_d;
        const float thresh = (float)thresh_d;
        const Py_ssize_t plane = h * w, values = 5 + classes;
        Py_ssize_t row = start;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t a = 0; a < n_anchors; ++a) {
            const float *v = t + a * values * plane;  /* this anchor's planes: x, y, w, h, objectness, classes */
            const float aw = anchor[2 * a], ah = anchor[2 * a + 1];
            for (Py_ssize_t cell = 0; cell < plane; ++cell) {
                float objectness = new_coords ? v[4 * plane + cell] : logistic(v[4 * plane + cell]);
                if (!(objectness > thresh)) continue;
                float x = v[cell], y = v[plane + cell], tw = v[2 * plane + cell], th = v[3 * plane + cell];
                float fw, fh;
                if (new_coords) {
                    fw = 4 * tw * tw;
                    fh = 4 * th * th;
                } else {
                    x = logistic(x);
                    y = logistic(y);
                    fw = expf(tw);
                    fh = expf(th);
                }
                x = x * s - shift;
                y = y * s - shift;
                const float col = (float)(cell % w), line = (float)(cell / w);
                const float cx = (col + x) * sx, cy = (line + y) * sy, bw = fw * aw, bh = fh * ah;
                float *box = out_boxes + 4 * row;
                box[0] = cx - bw / 2;
                box[1] = cy - bh / 2;
                box[2] = cx + bw / 2;
                box[3] = cy + bh / 2;
                float *score = out_scores + classes * row;
                const float *cls = v + 5 * plane + cell;
                for (Py_ssize_t c = 0; c < classes; ++c) {
                    float p = new_coords ? cls[c * plane] : logistic(cls[c * plane]);
                    score[c] = objectness * p;
                }
                out_image[row] = image;
                out_box[row] = box_offset + a * plane + cell;
                ++row;
            }
        }
        Py_END_ALLOW_THREADS
        result = PyLong_FromSsize_t(row);
    }
done:
    if (head.obj) PyBuffer_Release(&head);
    if (anchors.obj) PyBuffer_Release(&anchors);
    if (image_idx.obj) PyBuffer_Release(&image_idx);
    if (box_idx.obj) PyBuffer_Release(&box_idx);
    if (boxes.obj) PyBuffer_Release(&boxes);
    if (scores.obj) PyBuffer_Release(&scores);
    return result;
}

static PyMethodDef methods[] = {
    {"gate", gate, METH_VARARGS, gate_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_yolo_gate", NULL, -1, methods};

PyMODINIT_FUNC PyInit__yolo_gate(void) { return PyModule_Create(&module); }
