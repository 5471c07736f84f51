use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

/// Random weights of whatever shape a layer asks for: the real-size architecture without a
/// download, for benchmarks. Weights are `N(0, 1/fan_in)`, 1-D tensors (biases, norm scales)
/// are ones scaled small, so activations stay finite through many layers.
#[derive(Debug, Clone, Copy)]
pub struct RandomWeights;

impl RandomWeights {
    pub fn var_builder(dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(RandomWeights), dtype, device.clone())
    }
}

impl SimpleBackend for RandomWeights {
    fn get(
        &self,
        shape: Shape,
        _name: &str,
        _init: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let dims = shape.dims();
        let t = if dims.len() <= 1 {
            (Tensor::ones(shape, DType::F32, dev)? * 0.1)?
        } else {
            let fan_in: usize = dims[1..].iter().product();
            Tensor::randn(0f32, (1.0 / fan_in.max(1) as f64).sqrt() as f32, shape, dev)?
        };
        t.to_dtype(dtype)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("random weights have no shape for `{name}`")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}
