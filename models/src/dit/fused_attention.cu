// Fused attention forward, softmax(q k^T * scale) v, for q [BH, N, D] and k, v [BH, M, D]
// (row-major, contiguous, bf16 or f16). One pass over the keys with an online softmax
// (the FlashAttention-2 scheme): scores live in registers, never in device memory.
//
// A block of WARPS warps owns 16 query rows per warp of one (batch, head). Key and value tiles
// of KEYS rows are staged in shared memory (values transposed, so that both products read
// 32-bit fragment pairs without bank conflicts). Products are tensor-core mma.sync.m16n8k16
// with f32 accumulation; needs sm_80 or newer. Compiled to PTX at build time, JIT-compiled by
// the driver for the GPU in use.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace {

constexpr int WARPS = 4;
constexpr int ROWS = 16 * WARPS;
constexpr int KEYS = 64;
// Row padding (in elements) of the shared tiles: shifts successive rows by 4 banks.
constexpr int PAD = 8;
// Elements per 16-byte vector load.
constexpr int VEC = 8;

template <typename T> struct Mma;

template <> struct Mma<__nv_bfloat16> {
  __device__ static void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ static uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

template <> struct Mma<__half> {
  __device__ static void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ static uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Fragment layout of m16n8k16 (g = lane / 4, t = lane % 4):
//   A (16x16): a[0] row g, cols 2t..2t+1; a[1] row g+8; a[2] cols +8; a[3] row g+8, cols +8.
//   B (16x8):  b0 rows 2t..2t+1 of col g; b1 rows 2t+8..2t+9 of col g.
//   C (16x8):  c[0], c[1] row g, cols 2t, 2t+1; c[2], c[3] row g+8.
template <typename T, int D>
__device__ void attention(const T* __restrict__ q, const T* __restrict__ k,
                          const T* __restrict__ v, T* __restrict__ o, int n, int m,
                          float scale_log2) {
  __shared__ __align__(16) T ks[KEYS][D + PAD];
  __shared__ __align__(16) T vt[D][KEYS + PAD];

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int g = lane / 4;
  const int t = lane % 4;
  const size_t q_base = static_cast<size_t>(blockIdx.y) * n * D;
  const size_t kv_base = static_cast<size_t>(blockIdx.y) * m * D;
  const int row0 = blockIdx.x * ROWS + warp * 16 + g;

  uint32_t qa[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = row0 + (i & 1) * 8;
      const int c = kk * 16 + t * 2 + (i >> 1) * 8;
      qa[kk][i] = r < n ? *reinterpret_cast<const uint32_t*>(q + q_base + static_cast<size_t>(r) * D + c)
                        : 0u;
    }
  }

  float acc[D / 8][4];
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.f;
  }
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.f, 0.f};

  for (int key0 = 0; key0 < m; key0 += KEYS) {
    __syncthreads();
    // Consecutive threads take consecutive keys: conflict-free stores into both tiles.
    for (int idx = threadIdx.x; idx < KEYS * D / VEC; idx += WARPS * 32) {
      const int r = idx % KEYS;
      const int c = (idx / KEYS) * VEC;
      uint4 kv = make_uint4(0, 0, 0, 0);
      uint4 vv = make_uint4(0, 0, 0, 0);
      if (key0 + r < m) {
        const size_t at = kv_base + static_cast<size_t>(key0 + r) * D + c;
        kv = *reinterpret_cast<const uint4*>(k + at);
        vv = *reinterpret_cast<const uint4*>(v + at);
      }
      *reinterpret_cast<uint4*>(&ks[r][c]) = kv;
      const T* ve = reinterpret_cast<const T*>(&vv);
#pragma unroll
      for (int j = 0; j < VEC; ++j) vt[c + j][r] = ve[j];
    }
    __syncthreads();

    float s[KEYS / 8][4];
#pragma unroll
    for (int nt = 0; nt < KEYS / 8; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        const T* kr = &ks[nt * 8 + g][kk * 16 + t * 2];
        Mma<T>::run(s[nt], qa[kk], *reinterpret_cast<const uint32_t*>(kr),
                    *reinterpret_cast<const uint32_t*>(kr + 8));
      }
    }

    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < KEYS / 8; ++nt) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int key = key0 + nt * 8 + t * 2 + (i & 1);
        const float x = key < m ? s[nt][i] * scale_log2 : -INFINITY;
        s[nt][i] = x;
        tile_max[i >> 1] = fmaxf(tile_max[i >> 1], x);
      }
    }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      // Every tile holds at least one key below m, so the new maximum is finite.
      const float new_max = fmaxf(row_max[r], quad_max(tile_max[r]));
      alpha[r] = exp2f(row_max[r] - new_max);
      row_max[r] = new_max;
      row_sum[r] *= alpha[r];
    }
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      acc[dt][0] *= alpha[0];
      acc[dt][1] *= alpha[0];
      acc[dt][2] *= alpha[1];
      acc[dt][3] *= alpha[1];
    }
#pragma unroll
    for (int nt = 0; nt < KEYS / 8; ++nt) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float p = exp2f(s[nt][i] - row_max[i >> 1]);
        s[nt][i] = p;
        row_sum[i >> 1] += p;
      }
    }

    // The score accumulators of two neighbouring 8-key tiles are the A fragment of 16 keys.
#pragma unroll
    for (int kt = 0; kt < KEYS / 16; ++kt) {
      const uint32_t pa[4] = {
          Mma<T>::pack(s[2 * kt][0], s[2 * kt][1]), Mma<T>::pack(s[2 * kt][2], s[2 * kt][3]),
          Mma<T>::pack(s[2 * kt + 1][0], s[2 * kt + 1][1]),
          Mma<T>::pack(s[2 * kt + 1][2], s[2 * kt + 1][3])};
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        const T* vr = &vt[dt * 8 + g][kt * 16 + t * 2];
        Mma<T>::run(acc[dt], pa, *reinterpret_cast<const uint32_t*>(vr),
                    *reinterpret_cast<const uint32_t*>(vr + 8));
      }
    }
  }

  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) inv[r] = 1.f / quad_sum(row_sum[r]);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row0 + r * 8;
    if (row < n) {
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        *reinterpret_cast<uint32_t*>(o + q_base + static_cast<size_t>(row) * D + dt * 8 + t * 2) =
            Mma<T>::pack(acc[dt][2 * r] * inv[r], acc[dt][2 * r + 1] * inv[r]);
      }
    }
  }
}

}  // namespace

// Three blocks per SM (12 warps): caps registers at 168, which head dim 128 fits without spills.
#define FUSED_ATTENTION(NAME, T, D)                                                        \
  extern "C" __global__ void __launch_bounds__(WARPS * 32, 3)                                 \
      NAME(const T* q, const T* k, const T* v, T* o, int n, int m, float scale_log2) {     \
    attention<T, D>(q, k, v, o, n, m, scale_log2);                                         \
  }

FUSED_ATTENTION(fused_attention_bf16_d64, __nv_bfloat16, 64)
FUSED_ATTENTION(fused_attention_bf16_d128, __nv_bfloat16, 128)
FUSED_ATTENTION(fused_attention_f16_d64, __half, 64)
FUSED_ATTENTION(fused_attention_f16_d128, __half, 128)
