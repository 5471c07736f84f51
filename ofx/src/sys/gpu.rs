//! `ofxGPURender.h`: GPU render properties and status codes (OpenGL, CUDA, Metal, OpenCL).
//! Only the names are bound: the node renders on CPU images first.

use super::core::OfxStatus;
use std::ffi::CStr;

pub const kOfxStatGPUOutOfMemory: OfxStatus = 1001;
pub const kOfxStatGLOutOfMemory: OfxStatus = 1001;
pub const kOfxStatGPURenderFailed: OfxStatus = 1002;
pub const kOfxStatGLRenderFailed: OfxStatus = 1002;

pub const kOfxOpenGLRenderSuite: &CStr = c"OfxImageEffectOpenGLRenderSuite";
pub const kOfxImageEffectPropOpenGLRenderSupported: &CStr =
    c"OfxImageEffectPropOpenGLRenderSupported";
pub const kOfxOpenGLPropPixelDepth: &CStr = c"OfxOpenGLPropPixelDepth";
pub const kOfxImageEffectPropOpenGLEnabled: &CStr = c"OfxImageEffectPropOpenGLEnabled";
pub const kOfxImageEffectPropOpenGLTextureIndex: &CStr = c"OfxImageEffectPropOpenGLTextureIndex";
pub const kOfxImageEffectPropOpenGLTextureTarget: &CStr = c"OfxImageEffectPropOpenGLTextureTarget";
/// 1.5.1: "false" means the plugin has no CPU path.
pub const kOfxImageEffectPropCPURenderSupported: &CStr = c"OfxImageEffectPropCPURenderSupported";
pub const kOfxActionOpenGLContextAttached: &CStr = c"OfxActionOpenGLContextAttached";
/// Note: the string carries a leading `k`, as in the header.
pub const kOfxActionOpenGLContextDetached: &CStr = c"kOfxActionOpenGLContextDetached";
pub const kOfxImageEffectPropCudaRenderSupported: &CStr = c"OfxImageEffectPropCudaRenderSupported";
pub const kOfxImageEffectPropCudaEnabled: &CStr = c"OfxImageEffectPropCudaEnabled";
pub const kOfxImageEffectPropCudaStreamSupported: &CStr = c"OfxImageEffectPropCudaStreamSupported";
pub const kOfxImageEffectPropCudaStream: &CStr = c"OfxImageEffectPropCudaStream";
pub const kOfxImageEffectPropMetalRenderSupported: &CStr =
    c"OfxImageEffectPropMetalRenderSupported";
pub const kOfxImageEffectPropMetalEnabled: &CStr = c"OfxImageEffectPropMetalEnabled";
pub const kOfxImageEffectPropMetalCommandQueue: &CStr = c"OfxImageEffectPropMetalCommandQueue";
pub const kOfxImageEffectPropOpenCLRenderSupported: &CStr =
    c"OfxImageEffectPropOpenCLRenderSupported";
pub const kOfxImageEffectPropOpenCLSupported: &CStr = c"OfxImageEffectPropOpenCLSupported";
pub const kOfxImageEffectPropOpenCLEnabled: &CStr = c"OfxImageEffectPropOpenCLEnabled";
pub const kOfxImageEffectPropOpenCLCommandQueue: &CStr = c"OfxImageEffectPropOpenCLCommandQueue";
pub const kOfxImageEffectPropOpenCLImage: &CStr = c"OfxImageEffectPropOpenCLImage";
pub const kOfxOpenCLProgramSuite: &CStr = c"OfxOpenCLProgramSuite";
