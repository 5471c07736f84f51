// Row-broadcast element-wise kernels for [rows, cols] contiguous tensors (cols = last dim): the
// bias add of a linear layer, the transformer's modulation and its gated residual add. candle's
// generic broadcast kernels compute a strided index per element and run far below memory speed.
// Math in f32, results rounded once to the storage type, as the reference does.

#include <stdint.h>

#include "half_convert.cuh"

namespace {

// x + bias[col]
template <typename T>
__device__ void bias_add(const T* x, const T* bias, T* out, uint64_t n, uint32_t cols) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n;
       i += (uint64_t)blockDim.x * gridDim.x) {
    out[i] = from_f<T>(to_f(x[i]) + to_f(bias[i % cols]));
  }
}

// x * (1 + scale[col]) + shift[col], x, scale and shift in f32
template <typename T>
__device__ void modulate(const float* x, const float* scale, const float* shift, T* out,
                         uint64_t n, uint32_t cols) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n;
       i += (uint64_t)blockDim.x * gridDim.x) {
    const uint32_t c = i % cols;
    out[i] = from_f<T>(x[i] * (1.f + scale[c]) + shift[c]);
  }
}

// x + y * gate[col], gate in f32
template <typename T>
__device__ void gated_residual(const T* x, const T* y, const float* gate, T* out, uint64_t n,
                               uint32_t cols) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n;
       i += (uint64_t)blockDim.x * gridDim.x) {
    out[i] = from_f<T>(to_f(x[i]) + to_f(y[i]) * gate[i % cols]);
  }
}

// Layer norm without affine parameters over each row (f32 statistics, two passes), then
// * (1 + scale[col]) + shift[col]. One block per row; `n` (all elements) keeps the signature
// of the other row kernels.
template <typename T>
__device__ void layer_norm_modulate(const T* x, const float* scale, const float* shift, T* out,
                                    uint64_t n, uint32_t cols, float eps) {
  __shared__ float partial[32];
  const T* row = x + (uint64_t)blockIdx.x * cols;
  T* dst = out + (uint64_t)blockIdx.x * cols;
  auto block_sum = [&](float v) {
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
    __syncthreads();
    float total = 0.f;
    for (unsigned w = 0; w < blockDim.x / 32; ++w) total += partial[w];
    return total;
  };
  float sum = 0.f;
  for (uint32_t c = threadIdx.x; c < cols; c += blockDim.x) sum += to_f(row[c]);
  const float mean = block_sum(sum) / cols;
  float sq = 0.f;
  for (uint32_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = to_f(row[c]) - mean;
    sq += d * d;
  }
  const float inv = rsqrtf(block_sum(sq) / cols + eps);
  for (uint32_t c = threadIdx.x; c < cols; c += blockDim.x) {
    dst[c] = from_f<T>((to_f(row[c]) - mean) * inv * (1.f + scale[c]) + shift[c]);
  }
}

}  // namespace

#define ROWWISE(SUFFIX, T)                                                                    \
  extern "C" __global__ void bias_add_##SUFFIX(const T* x, const T* bias, T* out, uint64_t n, \
                                               uint32_t cols) {                               \
    bias_add<T>(x, bias, out, n, cols);                                                       \
  }                                                                                           \
  extern "C" __global__ void modulate_##SUFFIX(const float* x, const float* scale,            \
                                               const float* shift, T* out, uint64_t n,        \
                                               uint32_t cols) {                               \
    modulate<T>(x, scale, shift, out, n, cols);                                               \
  }                                                                                           \
  extern "C" __global__ void gated_residual_##SUFFIX(const T* x, const T* y, const float* gate, \
                                                     T* out, uint64_t n, uint32_t cols) {     \
    gated_residual<T>(x, y, gate, out, n, cols);                                              \
  }                                                                                           \
  extern "C" __global__ void layer_norm_modulate_##SUFFIX(const T* x, const float* scale,     \
                                                          const float* shift, T* out,         \
                                                          uint64_t n, uint32_t cols,          \
                                                          float eps) {                        \
    layer_norm_modulate<T>(x, scale, shift, out, n, cols, eps);                               \
  }

ROWWISE(bf16, __nv_bfloat16)
ROWWISE(f16, __half)
