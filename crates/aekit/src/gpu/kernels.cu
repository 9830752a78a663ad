// aekit's element-wise GPU kernels, compiled at run time by NVRTC.
// Matrices are row-major f32; every kernel takes its sizes and loops with a
// grid stride, so any launch shape is correct.
//
// Activations by code: 0 sigmoid, 1 relu, 2 tanh, 3 identity, 4 elu.
// Corruptions by code: 0 none, 1 mask:P, 2 gauss:S, 3 saltpepper:P.

typedef unsigned long long u64;
typedef unsigned int u32;

#define GRID_LOOP(k, n) \
    for (long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x; k < (n); \
         k += (long long)gridDim.x * blockDim.x)

// SplitMix64's finaliser: the counter-based stream behind every corruption.
__device__ __forceinline__ u64 mix64(u64 z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// A uniform draw in [0, 1) from the top 24 bits.
__device__ __forceinline__ float u01(u32 r) { return (float)(r >> 8) * (1.0f / 16777216.0f); }

// Input `x` at stream position `ctr` of stream `seed`, corrupted.
__device__ __forceinline__ float corrupt(float x, int kind, float level, u64 seed, u64 ctr) {
    if (kind == 0) return x;
    u64 r = mix64(seed ^ mix64(ctr));
    u32 lo = (u32)r, hi = (u32)(r >> 32);
    if (kind == 1) return u01(lo) < level ? 0.0f : x;
    if (kind == 2) {
        float u1 = (float)((lo >> 8) + 1) * (1.0f / 16777216.0f);
        float n = sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u01(hi));
        return x + level * n;
    }
    if (u01(lo) < level) return (hi & 1u) ? 1.0f : 0.0f;
    return x;
}

__device__ __forceinline__ float act_f(float v, int act) {
    switch (act) {
        case 0: return 1.0f / (1.0f + expf(-v));
        case 1: return fmaxf(v, 0.0f);
        case 2: return tanhf(v);
        case 3: return v;
        default: return v > 0.0f ? v : expm1f(v);
    }
}

// The derivative from the unit's output y.
__device__ __forceinline__ float act_d(float y, int act) {
    switch (act) {
        case 0: return y * (1.0f - y);
        case 1: return y > 0.0f ? 1.0f : 0.0f;
        case 2: return 1.0f - y * y;
        case 3: return 1.0f;
        default: return y > 0.0f ? 1.0f : y + 1.0f;
    }
}

// Adds a block's values into *acc (one atomic per block). Every thread of
// the block must call it.
__device__ void block_add(double v, double* acc) {
    __shared__ double part[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) part[w] = v;
    __syncthreads();
    if (w == 0) {
        v = lane < (int)((blockDim.x + 31) / 32) ? part[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) atomicAdd(acc, v);
    }
    __syncthreads();
}

// input[r, :] = corrupt(data[order[r], :]), target[r, :] = data[order[r], :];
// the stream position of element k of this batch is ctr0 + k.
extern "C" __global__ void gather_corrupt(float* input, float* target, const float* data, const int* order,
                                          int rows, int dim, int kind, float level, u64 seed, u64 ctr0) {
    long long n = (long long)rows * dim;
    GRID_LOOP(k, n) {
        int r = (int)(k / dim);
        int j = (int)(k - (long long)r * dim);
        float x = data[(long long)order[r] * dim + j];
        target[k] = x;
        input[k] = corrupt(x, kind, level, seed, ctr0 + (u64)k);
    }
}

// labels_out[r] = labels[order[r]].
extern "C" __global__ void gather_labels(int* labels_out, const int* labels, const int* order, int rows) {
    GRID_LOOP(k, rows) { labels_out[k] = labels[order[k]]; }
}

// y = act(y + b) over rows of `cols`.
extern "C" __global__ void bias_act(float* y, const float* b, int rows, int cols, int act) {
    long long n = (long long)rows * cols;
    GRID_LOOP(k, n) { y[k] = act_f(y[k] + b[k % cols], act); }
}

// d *= act'(y).
extern "C" __global__ void act_back(float* d, const float* y, long long n, int act) {
    GRID_LOOP(k, n) { d[k] *= act_d(y[k], act); }
}

// Cross-entropy of sigmoid(a) against t in [0, 1], from logits:
// loss += Σ softplus(a) − t·a; da = scale·(σ(a) − t) when da is given.
extern "C" __global__ void head_xent(const float* a, const float* t, float* da, long long n, float scale,
                                     int want_grad, double* acc) {
    double s = 0.0;
    GRID_LOOP(k, n) {
        float v = a[k], x = t[k];
        s += (double)(fmaxf(v, 0.0f) - x * v + log1pf(expf(-fabsf(v))));
        if (want_grad) da[k] = scale * (1.0f / (1.0f + expf(-v)) - x);
    }
    block_add(s, acc);
}

// Squared error of z = act(a): loss += ½·Σ(z − t)²; da = scale·(z − t)·act'(z).
extern "C" __global__ void head_squared(const float* a, const float* t, float* da, long long n, int act,
                                        float scale, int want_grad, double* acc) {
    double s = 0.0;
    GRID_LOOP(k, n) {
        float z = act_f(a[k], act), d = z - t[k];
        s += 0.5 * (double)d * (double)d;
        if (want_grad) da[k] = scale * d * act_d(z, act);
    }
    block_add(s, acc);
}

// Softmax cross-entropy over `classes` logits per row; d = scale·(p − onehot).
extern "C" __global__ void head_softmax(const float* z, const int* labels, float* d, int rows, int classes,
                                        float scale, int want_grad, double* acc) {
    double s = 0.0;
    GRID_LOOP(r, rows) {
        const float* zr = z + r * classes;
        float m = zr[0];
        for (int c = 1; c < classes; c++) m = fmaxf(m, zr[c]);
        float sum = 0.0f;
        for (int c = 0; c < classes; c++) sum += expf(zr[c] - m);
        int y = labels[r];
        s += (double)(logf(sum) - (zr[y] - m));
        if (want_grad) {
            for (int c = 0; c < classes; c++) {
                float p = expf(zr[c] - m) / sum;
                d[r * classes + c] = scale * (p - (c == y ? 1.0f : 0.0f));
            }
        }
    }
    block_add(s, acc);
}

// Adds the rows whose largest logit is not at their label (the first
// largest, as the CPU's argmax) into *acc.
extern "C" __global__ void count_errors(const float* z, const int* labels, int rows, int classes, double* acc) {
    double s = 0.0;
    GRID_LOOP(r, rows) {
        const float* zr = z + r * classes;
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (zr[c] > zr[best]) best = c;
        s += best != labels[r] ? 1.0 : 0.0;
    }
    block_add(s, acc);
}

// db[j] = Σ_r d[r, j].
extern "C" __global__ void col_sum(const float* d, float* db, int rows, int cols) {
    GRID_LOOP(j, cols) {
        float s = 0.0f;
        for (int r = 0; r < rows; r++) s += d[(long long)r * cols + j];
        db[j] = s;
    }
}

// SGD with classical momentum on g + decay⊙p: v ← μv − η·g′; p ← p + v
// (p ← p − η·g′ when μ = 0).
extern "C" __global__ void sgd_step(float* p, const float* g, float* v, const float* decay, long long n, float lr,
                                    float mu) {
    GRID_LOOP(k, n) {
        float gg = g[k] + decay[k] * p[k];
        if (mu == 0.0f) {
            p[k] -= lr * gg;
        } else {
            float vk = mu * v[k] - lr * gg;
            v[k] = vk;
            p[k] += vk;
        }
    }
}

// Adam in PyTorch's form on g + decay⊙p; bc1 = 1 − β₁ᵗ, bc2 = 1 − β₂ᵗ.
extern "C" __global__ void adam_step(float* p, const float* g, float* m, float* v, const float* decay, long long n,
                                     float lr, float b1, float b2, float eps, float bc1, float bc2) {
    GRID_LOOP(k, n) {
        float gg = g[k] + decay[k] * p[k];
        float mk = b1 * m[k] + (1.0f - b1) * gg;
        float vk = b2 * v[k] + (1.0f - b2) * gg * gg;
        m[k] = mk;
        v[k] = vk;
        p[k] -= lr * (mk / bc1) / (sqrtf(vk / bc2) + eps);
    }
}

// ---------------------------------------------------------------------------
// Convolutional layers over NCHW batches, as im2col and one GEMM per batch.
// The batch's col matrix is [c·k·k, n·oh·ow] (row (ci·k + ky)·k + kx, column
// i·oh·ow + oy·ow + ox), so a layer's product covers every image at once;
// CNHW is the [c, n·plane] layout the product reads and writes.

// col from x [n, c, h, w] for a conv of kernel k, stride s, padding p.
extern "C" __global__ void im2col_b(float* col, const float* x, int n, int c, int h, int w, int k, int s, int p,
                                    int oh, int ow) {
    long long P = (long long)oh * ow, cols = n * P, total = (long long)c * k * k * cols;
    GRID_LOOP(e, total) {
        long long row = e / cols, cc = e - row * cols;
        int i = (int)(cc / P), q = (int)(cc - (long long)i * P);
        int oy = q / ow, ox = q - oy * ow;
        int ci = (int)(row / (k * k)), r = (int)(row - (long long)ci * k * k);
        int ky = r / k, kx = r - ky * k;
        int y = oy * s - p + ky, xx = ox * s - p + kx;
        col[e] = (y >= 0 && y < h && xx >= 0 && xx < w) ? x[(((long long)i * c + ci) * h + y) * w + xx] : 0.0f;
    }
}

// x [n, c, h, w] = the sum over col of every entry read from each pixel
// (the adjoint of im2col_b), one thread per pixel: no atomics, a fixed order.
extern "C" __global__ void col2im_b(float* x, const float* col, int n, int c, int h, int w, int k, int s, int p,
                                    int oh, int ow) {
    long long P = (long long)oh * ow, cols = n * P, total = (long long)n * c * h * w;
    GRID_LOOP(e, total) {
        int xx = (int)(e % w);
        long long t = e / w;
        int y = (int)(t % h);
        t /= h;
        int ci = (int)(t % c), i = (int)(t / c);
        float acc = 0.0f;
        for (int ky = 0; ky < k; ky++) {
            int ty = y + p - ky;
            if (ty < 0 || ty % s) continue;
            int oy = ty / s;
            if (oy >= oh) continue;
            for (int kx = 0; kx < k; kx++) {
                int tx = xx + p - kx;
                if (tx < 0 || tx % s) continue;
                int ox = tx / s;
                if (ox >= ow) continue;
                long long row = ((long long)ci * k + ky) * k + kx;
                acc += col[row * cols + (long long)i * P + oy * ow + ox];
            }
        }
        x[e] = acc;
    }
}

// dst [c, n·P] from src [n, c, P].
extern "C" __global__ void nchw_to_cnhw(float* dst, const float* src, int n, int c, int P) {
    long long total = (long long)n * c * P;
    GRID_LOOP(e, total) {
        int q = (int)(e % P);
        long long t = e / P;
        int ci = (int)(t % c), i = (int)(t / c);
        dst[((long long)ci * n + i) * P + q] = src[e];
    }
}

// dst [n, c, P] from src [c, n·P], plus bias[c] when bias is not null.
extern "C" __global__ void cnhw_to_nchw(float* dst, const float* src, const float* bias, int n, int c, int P) {
    long long total = (long long)n * c * P;
    GRID_LOOP(e, total) {
        int q = (int)(e % P);
        long long t = e / P;
        int ci = (int)(t % c), i = (int)(t / c);
        dst[e] = src[((long long)ci * n + i) * P + q] + (bias ? bias[ci] : 0.0f);
    }
}

// y [n, c, P] += bias[c].
extern "C" __global__ void add_channel_bias(float* y, const float* bias, int n, int c, int P) {
    long long total = (long long)n * c * P;
    GRID_LOOP(e, total) { y[e] += bias[(e / P) % c]; }
}

// db[ci] = Σ over images and positions of dy [n, c, P]; one block per channel.
extern "C" __global__ void channel_sum(float* db, const float* dy, int n, int c, int P) {
    __shared__ float part[32];
    for (int ci = blockIdx.x; ci < c; ci += gridDim.x) {
        float v = 0.0f;
        for (long long e = threadIdx.x; e < (long long)n * P; e += blockDim.x) {
            long long i = e / P, q = e - i * P;
            v += dy[(i * c + ci) * P + q];
        }
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        int lane = threadIdx.x & 31, wp = threadIdx.x >> 5;
        if (lane == 0) part[wp] = v;
        __syncthreads();
        if (threadIdx.x == 0) {
            float t = 0.0f;
            for (int q = 0; q < (int)((blockDim.x + 31) / 32); q++) t += part[q];
            db[ci] = t;
        }
        __syncthreads();
    }
}

// Max pooling (kernel = stride = s, floor) of x [planes, h, w]; idx is the
// flat index of the max within its plane (the first in scan order on a tie).
extern "C" __global__ void maxpool_fwd(float* y, int* idx, const float* x, int planes, int h, int w, int s) {
    int oh = h / s, ow = w / s;
    long long total = (long long)planes * oh * ow;
    GRID_LOOP(e, total) {
        int ox = (int)(e % ow);
        long long t = e / ow;
        int oy = (int)(t % oh);
        long long pl = t / oh;
        const float* xp = x + pl * h * w;
        int best = oy * s * w + ox * s;
        float bv = xp[best];
        for (int dy = 0; dy < s; dy++)
            for (int dx = 0; dx < s; dx++) {
                int at = (oy * s + dy) * w + ox * s + dx;
                if (xp[at] > bv) {
                    bv = xp[at];
                    best = at;
                }
            }
        y[e] = bv;
        idx[e] = best;
    }
}

// dx [planes, h, w] (cleared first) gets dy at the forward's indices; the
// windows do not overlap, so no two outputs write one input.
extern "C" __global__ void maxpool_bwd(float* dx, const float* dy, const int* idx, long long outs, int per_plane,
                                       int plane_in) {
    GRID_LOOP(e, outs) { dx[(e / per_plane) * plane_in + idx[e]] = dy[e]; }
}

// Max unpooling: y [planes, H, W] (cleared first) gets x at the indices.
extern "C" __global__ void unpool_fwd(float* y, const float* x, const int* idx, long long ins, int per_plane,
                                      int plane_out) {
    GRID_LOOP(e, ins) { y[(e / per_plane) * plane_out + idx[e]] = x[e]; }
}

// dx = dy at the indices.
extern "C" __global__ void unpool_bwd(float* dx, const float* dy, const int* idx, long long ins, int per_plane,
                                      int plane_out) {
    GRID_LOOP(e, ins) { dx[e] = dy[(e / per_plane) * plane_out + idx[e]]; }
}

// Nearest upsampling by s of x [planes, h, w].
extern "C" __global__ void upsample_fwd(float* y, const float* x, int planes, int h, int w, int s) {
    int H = h * s, W = w * s;
    long long total = (long long)planes * H * W;
    GRID_LOOP(e, total) {
        int X = (int)(e % W);
        long long t = e / W;
        int Y = (int)(t % H);
        long long pl = t / H;
        y[e] = x[(pl * h + Y / s) * w + X / s];
    }
}

// dx [planes, h, w] = the sum of dy over each pixel's s×s block.
extern "C" __global__ void upsample_bwd(float* dx, const float* dy, int planes, int h, int w, int s) {
    int W = w * s;
    long long total = (long long)planes * h * w;
    GRID_LOOP(e, total) {
        int xx = (int)(e % w);
        long long t = e / w;
        int y = (int)(t % h);
        long long pl = t / h;
        float acc = 0.0f;
        for (int a = 0; a < s; a++)
            for (int b2 = 0; b2 < s; b2++) acc += dy[(pl * h * s + y * s + a) * W + xx * s + b2];
        dx[e] = acc;
    }
}

// y = act(x).
extern "C" __global__ void act_fwd(float* y, const float* x, long long n, int act) {
    GRID_LOOP(k, n) { y[k] = act_f(x[k], act); }
}

// dx = dy · act'(y).
extern "C" __global__ void act_bwd(float* dx, const float* dy, const float* y, long long n, int act) {
    GRID_LOOP(k, n) { dx[k] = dy[k] * act_d(y[k], act); }
}

// ---------------------------------------------------------------------------
// Exact per-example SGD on the tied sigmoid autoencoder in one persistent
// kernel. W is [nv, nh] (row i: visible unit i). Each block owns a run of
// rows of W, kept in shared memory for the whole epoch, and its entries of
// c; every block keeps its own identical copy of b. Per example t:
//   1. P = Σ_i x̃_i·W_i over the block's rows, added into accP[t % 3];
//   2. grid barrier; h = σ(accP + b) (every block, the same values);
//      a_i = W_i·h + c_i, δa_i, c_i −= η·δa_i for the block's rows;
//      Q = Σ_i δa_i·W_i added into accQ[t % 3];
//   3. grid barrier; δh = Q ⊙ h ⊙ (1 − h); b −= η·δh;
//      W_i ← s·W_i − η·(δa_i·h + x̃_i·δh), s = 1 − ηλ.
// Block 0 clears the buffers of t + 2 while t runs (three in rotation).
// The barrier needs every block resident: the kernel is launched
// cooperatively with at most one block per multiprocessor.

__device__ __forceinline__ void grid_barrier(u32* bar, u32 nblocks, u32* gen) {
    __syncthreads();
    if (threadIdx.x == 0) {
        u32 g = *gen;
        __threadfence();
        u32 arrived = atomicAdd(&bar[0], 1u);
        if (arrived == nblocks - 1) {
            atomicExch(&bar[0], 0u);
            __threadfence();
            atomicAdd(&bar[1], 1u);
        } else {
            while (((volatile u32*)bar)[1] == g) {
            }
        }
        __threadfence();
        *gen = g + 1;
    }
    __syncthreads();
}

extern "C" __global__ void tied_sgd_epoch(float* W, float* b, float* c, const float* data, const int* order, int n,
                                          int nv, int nh, int rpb, float lr, float decay, int loss_kind, int kind,
                                          float level, u64 seed, u64 ctr0, float* accP, float* accQ, u32* bar,
                                          double* loss_out) {
    extern __shared__ float sm[];
    float* Ws = sm;             // [rpb, nh]
    float* h = Ws + rpb * nh;   // [nh]
    float* bl = h + nh;         // [nh]
    float* xs = bl + nh;        // [rpb] corrupted inputs of the block's rows
    float* xt = xs + rpb;       // [rpb] clean inputs
    float* da = xt + rpb;       // [rpb]
    float* cs = da + rpb;       // [rpb]
    float* red = cs + rpb;      // [32 * rpb] per-warp partial sums
    __shared__ u32 gen;
    __shared__ int any_in;
    const int tid = threadIdx.x, bd = blockDim.x;
    const int r0 = blockIdx.x * rpb;
    const int rows = max(0, min(nv - r0, rpb));
    const int nwarps = (bd + 31) / 32;
    const float s = 1.0f - lr * decay;
    if (tid == 0) gen = ((volatile u32*)bar)[1];
    for (int k = tid; k < rpb * nh; k += bd) {
        int i = k / nh;
        Ws[k] = i < rows ? W[(long long)(r0 + i) * nh + (k - i * nh)] : 0.0f;
    }
    for (int j = tid; j < nh; j += bd) bl[j] = b[j];
    for (int i = tid; i < rpb; i += bd) cs[i] = i < rows ? c[r0 + i] : 0.0f;
    double loss = 0.0;
    __syncthreads();
    for (int t = 0; t < n; t++) {
        const int buf = t % 3, clear = (t + 2) % 3;
        float* P = accP + (long long)buf * nh;
        float* Q = accQ + (long long)buf * nh;
        const long long e = order[t];
        if (tid == 0) any_in = 0;
        __syncthreads();
        for (int i = tid; i < rows; i += bd) {
            float x = data[e * nv + r0 + i];
            xt[i] = x;
            float xc = corrupt(x, kind, level, seed, ctr0 + (u64)t * nv + r0 + i);
            xs[i] = xc;
            if (xc != 0.0f) any_in = 1;
        }
        if (blockIdx.x == 0)
            for (int j = tid; j < nh; j += bd) accP[(long long)clear * nh + j] = 0.0f;
        __syncthreads();
        if (any_in) {
            for (int j = tid; j < nh; j += bd) {
                float p = 0.0f;
                for (int i = 0; i < rows; i++) p += xs[i] * Ws[i * nh + j];
                atomicAdd(&P[j], p);
            }
        }
        grid_barrier(bar, gridDim.x, &gen);
        if (blockIdx.x == 0)
            for (int j = tid; j < nh; j += bd) accQ[(long long)clear * nh + j] = 0.0f;
        for (int j = tid; j < nh; j += bd) h[j] = 1.0f / (1.0f + expf(-(__ldcg(&P[j]) + bl[j])));
        __syncthreads();
        // a_i = W_i·h for the block's rows: per-thread partials, then per warp, then per block.
        for (int i = 0; i < rows; i++) {
            float p = 0.0f;
            for (int j = tid; j < nh; j += bd) p += Ws[i * nh + j] * h[j];
            for (int o = 16; o > 0; o >>= 1) p += __shfl_down_sync(0xffffffffu, p, o);
            if ((tid & 31) == 0) red[i * 32 + (tid >> 5)] = p;
        }
        __syncthreads();
        for (int i = tid; i < rows; i += bd) {
            float a = cs[i];
            for (int w = 0; w < nwarps; w++) a += red[i * 32 + w];
            float x = xt[i], d;
            if (loss_kind == 0) {
                loss += (double)(fmaxf(a, 0.0f) - x * a + log1pf(expf(-fabsf(a))));
                d = 1.0f / (1.0f + expf(-a)) - x;
            } else {
                float z = 1.0f / (1.0f + expf(-a)), r = z - x;
                loss += 0.5 * (double)r * (double)r;
                d = r * z * (1.0f - z);
            }
            da[i] = d;
            cs[i] -= lr * d;
        }
        __syncthreads();
        for (int j = tid; j < nh; j += bd) {
            float q = 0.0f;
            for (int i = 0; i < rows; i++) q += da[i] * Ws[i * nh + j];
            atomicAdd(&Q[j], q);
        }
        grid_barrier(bar, gridDim.x, &gen);
        for (int j = tid; j < nh; j += bd) {
            float hj = h[j];
            float dh = __ldcg(&Q[j]) * hj * (1.0f - hj);
            bl[j] -= lr * dh;
            for (int i = 0; i < rows; i++) {
                float w = Ws[i * nh + j];
                Ws[i * nh + j] = s * w - lr * (da[i] * hj + xs[i] * dh);
            }
        }
        __syncthreads();
    }
    for (int k = tid; k < rows * nh; k += bd) {
        int i = k / nh;
        W[(long long)(r0 + i) * nh + (k - i * nh)] = Ws[k];
    }
    for (int i = tid; i < rows; i += bd) c[r0 + i] = cs[i];
    if (blockIdx.x == 0)
        for (int j = tid; j < nh; j += bd) b[j] = bl[j];
    // Each block's loss (its rows over the epoch), summed on the host.
    __shared__ double lpart[32];
    double v = loss;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if ((tid & 31) == 0) lpart[tid >> 5] = v;
    __syncthreads();
    if (tid == 0) {
        double tot = 0.0;
        for (int w = 0; w < nwarps; w++) tot += lpart[w];
        loss_out[blockIdx.x] = tot;
    }
}

// The sparse autoencoder's penalty from r = ρ̂ (the batch-mean activations,
// h of them): acc[0] += Σ KL(ρ‖r_j), acc[1] += Σ r_j, and
// sp[j] = scale·(−ρ/r_j + (1−ρ)/(1−r_j)), the term its gradient adds to δ₂.
extern "C" __global__ void sparse_kl(const float* r, float* sp, int h, float rho, float scale, double* acc) {
    double kl = 0.0, sum = 0.0;
    GRID_LOOP(j, h) {
        double q = (double)r[j], p = (double)rho;
        kl += p * log(p / q) + (1.0 - p) * log((1.0 - p) / (1.0 - q));
        sum += q;
        sp[j] = scale * (-rho / r[j] + (1.0f - rho) / (1.0f - r[j]));
    }
    block_add(kl, acc);
    block_add(sum, acc + 1);
}

// δ₂ = (δ₂ + sp[j])·a(1 − a) over rows of h (sigmoid hidden units).
extern "C" __global__ void sparse_delta(float* d, const float* a, const float* sp, int rows, int h) {
    long long n = (long long)rows * h;
    GRID_LOOP(k, n) {
        float y = a[k];
        d[k] = (d[k] + sp[k % h]) * y * (1.0f - y);
    }
}

// Weight decay: acc += Σ w², and g += λ·w when want_grad.
extern "C" __global__ void decay_sq(float* g, const float* w, long long n, float lambda, int want_grad,
                                    double* acc) {
    double s = 0.0;
    GRID_LOOP(k, n) {
        float v = w[k];
        s += (double)v * (double)v;
        if (want_grad) g[k] += lambda * v;
    }
    block_add(s, acc);
}
