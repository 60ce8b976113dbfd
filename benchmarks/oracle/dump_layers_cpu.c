/* dump_layers as the `darknet` program itself runs a network on a CPU build.
 * darknet's main() sets gpu_index = -1 first (src/darknet.c); dump_layers.c does not, and with
 * gpu_index = 0 calculate_binary_weights inverts the bits of xnor weights (binary_align_weights,
 * meant for the GPU kernels), so xnor layers would compute the negated convolution.
 * Built by benchmarks/oracle/darknet_reference.py with dump_layers.c's main renamed to dump_layers_main. */
extern int gpu_index;
int dump_layers_main(int argc, char **argv);

int main(int argc, char **argv) {
    gpu_index = -1;
    return dump_layers_main(argc, argv);
}
