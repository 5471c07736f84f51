// The VAE's norm (diffusers' WanRMS_norm): L2-normalises over the channel dimension of a
// contiguous [outer, C, inner] tensor and rescales by sqrt(C) * gamma[c]; optionally followed by
// SiLU. One thread per (outer, inner) position: neighbouring threads read neighbouring
// addresses for every channel. Statistics and the activation in f32, one rounding at the end.

#include <stdint.h>

#include "../ops/half_convert.cuh"

namespace {

template <typename T>
__device__ void channel_norm(const T* x, const T* gamma, T* out, uint64_t outer, uint32_t channels,
                             uint64_t inner, float scale, float eps, int silu) {
  const uint64_t positions = outer * inner;
  for (uint64_t p = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; p < positions;
       p += (uint64_t)blockDim.x * gridDim.x) {
    const uint64_t o = p / inner;
    const uint64_t i = p % inner;
    const T* src = x + o * channels * inner + i;
    T* dst = out + o * channels * inner + i;
    float sum = 0.f;
    for (uint32_t c = 0; c < channels; ++c) {
      const float v = to_f(src[c * inner]);
      sum += v * v;
    }
    const float inv = scale / fmaxf(sqrtf(sum), eps);
    for (uint32_t c = 0; c < channels; ++c) {
      float v = to_f(src[c * inner]) * inv * to_f(gamma[c]);
      if (silu) v = v / (1.f + expf(-v));
      dst[c * inner] = from_f<T>(v);
    }
  }
}

}  // namespace

#define CHANNEL_NORM(SUFFIX, T)                                                               \
  extern "C" __global__ void channel_norm_##SUFFIX(const T* x, const T* gamma, T* out,        \
                                                   uint64_t outer, uint32_t channels,         \
                                                   uint64_t inner, float scale, float eps,    \
                                                   int silu) {                                \
    channel_norm<T>(x, gamma, out, outer, channels, inner, scale, eps, silu);                 \
  }

CHANNEL_NORM(bf16, __nv_bfloat16)
CHANNEL_NORM(f16, __half)
