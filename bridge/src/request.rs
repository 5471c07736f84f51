//! What a submitter asks the service for: which model, at which precision, and the generation
//! parameters with their optional inputs (first frame, starting latents). All plain data: a
//! request can be saved, compared and sent over a network.

use crate::device::Precision;
use crate::error::{Error, Result};
use crate::fast_decode::Decoder;
use crate::params::GenerationParams;
use crate::preview::PreviewCadence;
use crate::upscale::Upscale;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Component files that replace the model folder's (any supported layout).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Overrides {
    pub transformer: Option<PathBuf>,
    pub vae: Option<PathBuf>,
    pub text_encoder: Option<PathBuf>,
    pub tokenizer: Option<PathBuf>,
    /// The tiny decoder for `Decoder::Fast` and previews, instead of the one in the model's
    /// VAE folder (see [`crate::fast_decode::find_tiny_decoder`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fast_decoder: Option<PathBuf>,
}

impl Overrides {
    pub fn to_models(&self) -> t2v_models::checkpoint::Overrides {
        t2v_models::checkpoint::Overrides {
            transformer: self.transformer.clone(),
            vae: self.vae.clone(),
            text_encoder: self.text_encoder.clone(),
            tokenizer: self.tokenizer.clone(),
        }
    }
}

pub use t2v_models::lora::LoraSpec;

/// Where the model's files are. Changing it (or the precision) makes the worker reload; changing
/// only the LoRAs reloads the transformer and text encoder they change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSpec {
    /// A diffusers folder or a folder of original / ComfyUI single files; `None` when every
    /// component is given in `overrides`.
    pub path: Option<PathBuf>,
    pub overrides: Overrides,
    /// LoRA files with their strengths, merged into the weights in this order.
    pub loras: Vec<LoraSpec>,
}

impl ModelSpec {
    pub fn folder(path: impl Into<PathBuf>) -> Self {
        ModelSpec {
            path: Some(path.into()),
            overrides: Overrides::default(),
            loras: Vec::new(),
        }
    }
}

/// An 8-bit RGB picture, row by row from the top (the first frame of image-to-video).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ImageData")]
pub struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

#[derive(Deserialize)]
struct ImageData {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl TryFrom<ImageData> for Image {
    type Error = Error;
    fn try_from(d: ImageData) -> Result<Image> {
        Image::from_rgb8(d.width, d.height, d.rgb)
    }
}

impl Image {
    /// `rgb` holds `width * height * 3` interleaved samples.
    pub fn from_rgb8(width: u32, height: u32, rgb: Vec<u8>) -> Result<Image> {
        if width == 0 || height == 0 || rgb.len() as u64 != width as u64 * height as u64 * 3 {
            return Err(Error::bad_input(format!(
                "a {width}x{height} RGB image needs {} bytes of pixels, got {}",
                width as u64 * height as u64 * 3,
                rgb.len()
            )));
        }
        Ok(Image { width, height, rgb })
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn rgb8(&self) -> &[u8] {
        &self.rgb
    }

    /// For the pipeline and the image hash of the clip key.
    pub fn to_dynamic(&self) -> image::DynamicImage {
        image::RgbImage::from_raw(self.width, self.height, self.rgb.clone())
            .map(image::DynamicImage::ImageRgb8)
            .expect("the buffer size is checked on construction")
    }
}

impl From<&image::DynamicImage> for Image {
    fn from(image: &image::DynamicImage) -> Image {
        let rgb = image.to_rgb8();
        Image {
            width: rgb.width(),
            height: rgb.height(),
            rgb: rgb.into_raw(),
        }
    }
}

/// An f32 array of any shape, row-major (starting latents `[1, 48, F', H/16, W/16]`, or a
/// finished clip's final latents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LatentsData")]
pub struct Latents {
    shape: Vec<usize>,
    data: Vec<f32>,
}

#[derive(Deserialize)]
struct LatentsData {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl TryFrom<LatentsData> for Latents {
    type Error = Error;
    fn try_from(d: LatentsData) -> Result<Latents> {
        Latents::new(d.shape, d.data)
    }
}

impl Latents {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Latents> {
        let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if elements != Some(data.len()) {
            return Err(Error::bad_input(format!(
                "latents of shape {shape:?} need {} values, got {}",
                elements.map_or("too many".to_string(), |n| n.to_string()),
                data.len()
            )));
        }
        Ok(Latents { shape, data })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Any tensor, converted to f32 on the CPU.
    pub fn from_tensor(t: &Tensor) -> Result<Latents> {
        let data = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        Latents::new(t.dims().to_vec(), data)
    }

    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            self.data.clone(),
            self.shape.as_slice(),
            device,
        )?)
    }
}

/// One clip to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub model: ModelSpec,
    pub params: GenerationParams,
    /// Compute precision of the transformer; `Auto` (the default) lets the service decide
    /// from its device.
    #[serde(default)]
    pub precision: Precision,
    /// First frame, for image-to-video.
    #[serde(default)]
    pub image: Option<Image>,
    /// Starting latents `[1, 48, F', H/16, W/16]` used instead of seeded noise.
    #[serde(default)]
    pub init_latents: Option<Latents>,
    /// Upscale the decoded frames with a Real-ESRGAN network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upscale: Option<Upscale>,
    /// The device memory the generation may use (`auto`: the device's free memory); see
    /// [`crate::memory`].
    #[serde(default)]
    pub memory: crate::memory::MemoryBudget,
    /// Previews while denoising (see [`crate::preview`]); `None`, the default, makes none.
    /// Not part of the clip: it changes neither the key nor the frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<PreviewCadence>,
    /// Which decoder makes the frames; part of the clip.
    #[serde(default, skip_serializing_if = "is_full")]
    pub decoder: Decoder,
}

fn is_full(d: &Decoder) -> bool {
    *d == Decoder::Full
}

impl Request {
    pub fn new(model: ModelSpec, params: GenerationParams) -> Self {
        Request {
            model,
            params,
            precision: Precision::Auto,
            image: None,
            init_latents: None,
            upscale: None,
            memory: Default::default(),
            preview: None,
            decoder: Decoder::Full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
    }

    #[test]
    fn a_full_request_round_trips_through_json() {
        let mut r = Request::new(
            ModelSpec {
                path: Some("/models/wan".into()),
                overrides: Overrides {
                    vae: Some("/x/vae.safetensors".into()),
                    ..Default::default()
                },
                loras: vec![LoraSpec {
                    path: "/loras/style.safetensors".into(),
                    strength: 0.75,
                }],
            },
            GenerationParams {
                prompt: "a cat".into(),
                ..Default::default()
            },
        );
        r.precision = Precision::Bf16;
        r.image = Some(Image::from_rgb8(2, 1, vec![0, 1, 2, 253, 254, 255]).unwrap());
        r.init_latents = Some(Latents::new(vec![1, 2, 1], vec![0.1, -3.5e-8]).unwrap());
        assert_eq!(round_trip(&r), r);
        // The precision, inputs and upscale may be left out.
        let minimal = r#"{"model":{"path":"/m"},"params":{"prompt":"a cat"}}"#;
        let back: Request = serde_json::from_str(minimal).unwrap();
        assert_eq!(back.precision, Precision::Auto);
        assert_eq!(back.image, None);
        assert_eq!(back.upscale, None);
        r.upscale = Some(Upscale::new(crate::UpscaleTarget::To720p, "/x/realesr.pth"));
        assert_eq!(round_trip(&r), r);
    }

    #[test]
    fn inconsistent_images_and_latents_are_refused() {
        assert!(Image::from_rgb8(2, 2, vec![0; 11]).is_err());
        assert!(Image::from_rgb8(0, 2, vec![]).is_err());
        assert!(serde_json::from_str::<Image>(r#"{"width":1,"height":1,"rgb":[1,2]}"#).is_err());
        assert!(Latents::new(vec![2, 3], vec![0.0; 5]).is_err());
        assert!(Latents::new(vec![usize::MAX, 3], vec![]).is_err());
        let e = serde_json::from_str::<Latents>(r#"{"shape":[2],"data":[1.0]}"#).unwrap_err();
        assert!(e.to_string().contains("need 2 values"), "{e}");
    }

    #[test]
    fn latents_and_tensors_convert_both_ways() {
        let t = Tensor::arange(0f32, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 2, 3))
            .unwrap();
        let l = Latents::from_tensor(&t).unwrap();
        assert_eq!(l.shape(), &[1, 2, 3]);
        let back = l.to_tensor(&Device::Cpu).unwrap();
        assert_eq!(back.dims(), t.dims());
        assert_eq!(
            back.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        );
    }
}
