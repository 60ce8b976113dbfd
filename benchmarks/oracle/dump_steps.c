/* dump_steps CFG WEIGHTS STEPS INPUT.f32 OUT_DIR
 * darknet's forward pass (network_predict, as its video demo calls it frame after frame) on STEPS
 * consecutive inputs: recurrent layers carry their state from one step to the next.
 * INPUT.f32: STEPS network inputs, each C*H*W float32 (planar RGB in [0, 1]) at the cfg's size.
 * OUT_DIR/SSS_NNN.f32: layer NNN's output after step SSS (l.outputs floats); OUT_DIR/index.txt:
 * "index type c h w outputs". WEIGHTS may be "-" for none. Batch norm is fused as load_network_custom
 * does (darknet's detector test and demo).
 * Built by benchmarks/oracle/darknet_steps.py against the reference build, with src/parser.c compiled with
 * -DNDEBUG as darknet's release builds compile it (see there why). */
#include <stdio.h>
#include <stdlib.h>
#include "darknet.h"
char *get_layer_string(LAYER_TYPE a);
int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: dump_steps CFG WEIGHTS STEPS INPUT.f32 OUT_DIR\n"); return 2; }
    network *net = load_network_custom(argv[1], argv[2][0] == '-' ? 0 : argv[2], 0, 1);
    int steps = atoi(argv[3]);
    size_t n = (size_t)net->w * net->h * net->c;
    float *x = (float *)calloc(n * steps, sizeof(float));
    FILE *f = fopen(argv[4], "rb");
    if (steps < 1 || !f || fread(x, sizeof(float), n * steps, f) != n * steps) {
        fprintf(stderr, "need %d x %zu floats in %s\n", steps, n, argv[4]);
        return 2;
    }
    fclose(f);
    char path[4096];
    for (int s = 0; s < steps; ++s) {
        network_predict_ptr(net, x + n * s);
        for (int i = 0; i < net->n; ++i) {
            layer l = net->layers[i];
            snprintf(path, sizeof path, "%s/%03d_%03d.f32", argv[5], s, i);
            FILE *o = fopen(path, "wb");
            if (!o) { fprintf(stderr, "cannot write %s\n", path); return 2; }
            fwrite(l.output, sizeof(float), l.outputs, o);
            fclose(o);
        }
    }
    snprintf(path, sizeof path, "%s/index.txt", argv[5]);
    FILE *idx = fopen(path, "w");
    if (!idx) { fprintf(stderr, "cannot write %s\n", path); return 2; }
    for (int i = 0; i < net->n; ++i) {
        layer l = net->layers[i];
        fprintf(idx, "%d %s %d %d %d %d\n", i, get_layer_string(l.type), l.out_c, l.out_h, l.out_w, l.outputs);
    }
    fclose(idx);
    return 0;
}
