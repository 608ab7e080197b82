/*
 * Example TinyML model: a fixed-weight two-layer perceptron that classifies a vibration
 * reading (4 features) into 3 classes: 0 idle, 1 normal, 2 fault.
 *
 * Built to a freestanding Wasm module (no imports, no libc):
 *   clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export-dynamic \
 *         -Wl,-z,stack-size=8192 \
 *         -Wl,--initial-memory=65536 -Wl,--max-memory=65536 -o classifier.wasm classifier.c
 *
 * Model ABI (the contract the firmware, the simulator and the server's checks share;
 * see docs/model-abi.md):
 *   memory                 exported linear memory
 *   input_buffer() -> i32  address of the float32 input buffer inside memory
 *   input_size()   -> i32  number of float32 features the model reads
 *   infer()        -> i32  runs the model on the buffer, returns the class index
 *   output_score() -> f32  score of the class returned by the last infer()
 *
 * MODEL_BIAS_SHIFT (a compile-time define) shifts the output layer's biases, so tests can
 * build a "retrained" model that differs from this one in a few bytes.
 */

#define N_IN 4
#define N_HIDDEN 8
#define N_OUT 3

#ifndef MODEL_BIAS_SHIFT
#define MODEL_BIAS_SHIFT 0.0f
#endif

#define EXPORT(name) __attribute__((export_name(name)))

static float input[N_IN];
static float last_score;

static const float w1[N_HIDDEN][N_IN] = {
    {0.9f, -0.2f, 0.1f, 0.3f},   {-0.5f, 0.8f, 0.2f, -0.1f}, {0.3f, 0.3f, -0.7f, 0.5f},
    {-0.2f, -0.4f, 0.9f, 0.1f},  {0.6f, 0.1f, 0.4f, -0.8f},  {0.1f, 0.7f, -0.3f, 0.2f},
    {-0.6f, 0.2f, 0.5f, 0.6f},   {0.4f, -0.9f, 0.3f, 0.2f},
};
static const float b1[N_HIDDEN] = {0.1f, -0.1f, 0.0f, 0.2f, -0.2f, 0.05f, 0.0f, -0.05f};
static const float w2[N_OUT][N_HIDDEN] = {
    {-0.8f, -0.6f, 0.2f, -0.7f, 0.1f, -0.5f, -0.3f, 0.2f},
    {0.5f, 0.7f, 0.3f, -0.2f, 0.4f, 0.6f, -0.1f, -0.4f},
    {0.3f, -0.2f, -0.4f, 0.9f, -0.3f, -0.1f, 0.8f, 0.5f},
};
static const float b2[N_OUT] = {0.5f + MODEL_BIAS_SHIFT, 0.0f, -0.3f - MODEL_BIAS_SHIFT};

EXPORT("input_buffer") float *input_buffer(void) { return input; }

EXPORT("input_size") int input_size(void) { return N_IN; }

EXPORT("output_score") float output_score(void) { return last_score; }

EXPORT("infer") int infer(void) {
    float hidden[N_HIDDEN];
    for (int h = 0; h < N_HIDDEN; h++) {
        float acc = b1[h];
        for (int i = 0; i < N_IN; i++) acc += w1[h][i] * input[i];
        hidden[h] = acc > 0.0f ? acc : 0.0f; /* ReLU */
    }
    int best = 0;
    float best_score = 0.0f;
    for (int o = 0; o < N_OUT; o++) {
        float acc = b2[o];
        for (int h = 0; h < N_HIDDEN; h++) acc += w2[o][h] * hidden[h];
        if (o == 0 || acc > best_score) {
            best = o;
            best_score = acc;
        }
    }
    last_score = best_score;
    return best;
}
