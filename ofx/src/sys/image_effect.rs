//! `ofxImageEffect.h`: the image effect API: suite, actions, contexts, properties.

use super::core::{OfxPropertySetHandle, OfxRectD, OfxStatus, OfxTime};
use super::param::OfxParamSetHandle;
use std::ffi::{c_char, c_int, c_void, CStr};

/// Opaque effect handle (descriptor or instance).
#[repr(C)]
pub struct OfxImageEffectStruct {
    _private: [u8; 0],
}
pub type OfxImageEffectHandle = *mut OfxImageEffectStruct;

/// Opaque clip handle.
#[repr(C)]
pub struct OfxImageClipStruct {
    _private: [u8; 0],
}
pub type OfxImageClipHandle = *mut OfxImageClipStruct;

/// Opaque image memory handle.
#[repr(C)]
pub struct OfxImageMemoryStruct {
    _private: [u8; 0],
}
pub type OfxImageMemoryHandle = *mut OfxImageMemoryStruct;

pub const kOfxImageEffectSuite: &CStr = c"OfxImageEffectSuite";

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OfxImageEffectSuiteV1 {
    pub getPropertySet: Option<
        unsafe extern "C" fn(
            imageEffect: OfxImageEffectHandle,
            propHandle: *mut OfxPropertySetHandle,
        ) -> OfxStatus,
    >,
    pub getParamSet: Option<
        unsafe extern "C" fn(
            imageEffect: OfxImageEffectHandle,
            paramSet: *mut OfxParamSetHandle,
        ) -> OfxStatus,
    >,
    pub clipDefine: Option<
        unsafe extern "C" fn(
            imageEffect: OfxImageEffectHandle,
            name: *const c_char,
            propertySet: *mut OfxPropertySetHandle,
        ) -> OfxStatus,
    >,
    pub clipGetHandle: Option<
        unsafe extern "C" fn(
            imageEffect: OfxImageEffectHandle,
            name: *const c_char,
            clip: *mut OfxImageClipHandle,
            propertySet: *mut OfxPropertySetHandle,
        ) -> OfxStatus,
    >,
    pub clipGetPropertySet: Option<
        unsafe extern "C" fn(
            clip: OfxImageClipHandle,
            propHandle: *mut OfxPropertySetHandle,
        ) -> OfxStatus,
    >,
    pub clipGetImage: Option<
        unsafe extern "C" fn(
            clip: OfxImageClipHandle,
            time: OfxTime,
            region: *const OfxRectD,
            imageHandle: *mut OfxPropertySetHandle,
        ) -> OfxStatus,
    >,
    pub clipReleaseImage:
        Option<unsafe extern "C" fn(imageHandle: OfxPropertySetHandle) -> OfxStatus>,
    pub clipGetRegionOfDefinition: Option<
        unsafe extern "C" fn(
            clip: OfxImageClipHandle,
            time: OfxTime,
            bounds: *mut OfxRectD,
        ) -> OfxStatus,
    >,
    pub abort: Option<unsafe extern "C" fn(imageEffect: OfxImageEffectHandle) -> c_int>,
    pub imageMemoryAlloc: Option<
        unsafe extern "C" fn(
            instanceHandle: OfxImageEffectHandle,
            nBytes: usize,
            memoryHandle: *mut OfxImageMemoryHandle,
        ) -> OfxStatus,
    >,
    pub imageMemoryFree:
        Option<unsafe extern "C" fn(memoryHandle: OfxImageMemoryHandle) -> OfxStatus>,
    pub imageMemoryLock: Option<
        unsafe extern "C" fn(
            memoryHandle: OfxImageMemoryHandle,
            returnedPtr: *mut *mut c_void,
        ) -> OfxStatus,
    >,
    pub imageMemoryUnlock:
        Option<unsafe extern "C" fn(memoryHandle: OfxImageMemoryHandle) -> OfxStatus>,
}

/// Returned by an action when the image format is not supported.
pub const kOfxStatErrImageFormat: OfxStatus = 1000;

pub const kOfxImageEffectPluginApi: &CStr = c"OfxImageEffectPluginAPI";
pub const kOfxImageEffectPluginApiVersion: u32 = 1;

// Components.
pub const kOfxImageComponentNone: &CStr = c"OfxImageComponentNone";
pub const kOfxImageComponentRGBA: &CStr = c"OfxImageComponentRGBA";
pub const kOfxImageComponentRGB: &CStr = c"OfxImageComponentRGB";
pub const kOfxImageComponentAlpha: &CStr = c"OfxImageComponentAlpha";

// Contexts.
pub const kOfxImageEffectContextGenerator: &CStr = c"OfxImageEffectContextGenerator";
pub const kOfxImageEffectContextFilter: &CStr = c"OfxImageEffectContextFilter";
pub const kOfxImageEffectContextTransition: &CStr = c"OfxImageEffectContextTransition";
pub const kOfxImageEffectContextPaint: &CStr = c"OfxImageEffectContextPaint";
pub const kOfxImageEffectContextGeneral: &CStr = c"OfxImageEffectContextGeneral";
pub const kOfxImageEffectContextRetimer: &CStr = c"OfxImageEffectContextRetimer";

// Values of kOfxPropType.
pub const kOfxTypeImageEffectHost: &CStr = c"OfxTypeImageEffectHost";
pub const kOfxTypeImageEffect: &CStr = c"OfxTypeImageEffect";
pub const kOfxTypeImageEffectInstance: &CStr = c"OfxTypeImageEffectInstance";
pub const kOfxTypeClip: &CStr = c"OfxTypeClip";
pub const kOfxTypeImage: &CStr = c"OfxTypeImage";

// Image effect actions.
pub const kOfxImageEffectActionGetRegionOfDefinition: &CStr =
    c"OfxImageEffectActionGetRegionOfDefinition";
pub const kOfxImageEffectActionGetRegionsOfInterest: &CStr =
    c"OfxImageEffectActionGetRegionsOfInterest";
pub const kOfxImageEffectActionGetTimeDomain: &CStr = c"OfxImageEffectActionGetTimeDomain";
pub const kOfxImageEffectActionGetFramesNeeded: &CStr = c"OfxImageEffectActionGetFramesNeeded";
pub const kOfxImageEffectActionGetClipPreferences: &CStr =
    c"OfxImageEffectActionGetClipPreferences";
pub const kOfxImageEffectActionIsIdentity: &CStr = c"OfxImageEffectActionIsIdentity";
pub const kOfxImageEffectActionRender: &CStr = c"OfxImageEffectActionRender";
pub const kOfxImageEffectActionBeginSequenceRender: &CStr =
    c"OfxImageEffectActionBeginSequenceRender";
pub const kOfxImageEffectActionEndSequenceRender: &CStr = c"OfxImageEffectActionEndSequenceRender";
pub const kOfxImageEffectActionDescribeInContext: &CStr = c"OfxImageEffectActionDescribeInContext";

// Host, descriptor and instance properties.
pub const kOfxImageEffectPropSupportedContexts: &CStr = c"OfxImageEffectPropSupportedContexts";
pub const kOfxImageEffectPropPluginHandle: &CStr = c"OfxImageEffectPropPluginHandle";
pub const kOfxImageEffectHostPropIsBackground: &CStr = c"OfxImageEffectHostPropIsBackground";
pub const kOfxImageEffectPluginPropSingleInstance: &CStr =
    c"OfxImageEffectPluginPropSingleInstance";
pub const kOfxImageEffectPluginRenderThreadSafety: &CStr =
    c"OfxImageEffectPluginRenderThreadSafety";
pub const kOfxImageEffectRenderUnsafe: &CStr = c"OfxImageEffectRenderUnsafe";
pub const kOfxImageEffectRenderInstanceSafe: &CStr = c"OfxImageEffectRenderInstanceSafe";
pub const kOfxImageEffectRenderFullySafe: &CStr = c"OfxImageEffectRenderFullySafe";
pub const kOfxImageEffectPluginPropHostFrameThreading: &CStr =
    c"OfxImageEffectPluginPropHostFrameThreading";
/// Note: the macro name and its string differ.
pub const kOfxImageEffectPropSupportsMultipleClipDepths: &CStr =
    c"OfxImageEffectPropMultipleClipDepths";
pub const kOfxImageEffectPropSupportsMultipleClipPARs: &CStr =
    c"OfxImageEffectPropSupportsMultipleClipPARs";
pub const kOfxImageEffectPropClipPreferencesSlaveParam: &CStr =
    c"OfxImageEffectPropClipPreferencesSlaveParam";
pub const kOfxImageEffectPropSetableFrameRate: &CStr = c"OfxImageEffectPropSetableFrameRate";
pub const kOfxImageEffectPropSetableFielding: &CStr = c"OfxImageEffectPropSetableFielding";
pub const kOfxImageEffectInstancePropSequentialRender: &CStr =
    c"OfxImageEffectInstancePropSequentialRender";
pub const kOfxImageEffectPropSequentialRenderStatus: &CStr =
    c"OfxImageEffectPropSequentialRenderStatus";
pub const kOfxImageEffectHostPropNativeOrigin: &CStr = c"OfxImageEffectHostPropNativeOrigin";
/// Note: these three values carry a leading `k` in their strings, as in the header.
pub const kOfxHostNativeOriginBottomLeft: &CStr = c"kOfxImageEffectHostPropNativeOriginBottomLeft";
pub const kOfxHostNativeOriginTopLeft: &CStr = c"kOfxImageEffectHostPropNativeOriginTopLeft";
pub const kOfxHostNativeOriginCenter: &CStr = c"kOfxImageEffectHostPropNativeOriginCenter";
pub const kOfxImageEffectPropInteractiveRenderStatus: &CStr =
    c"OfxImageEffectPropInteractiveRenderStatus";
pub const kOfxImageEffectPluginPropGrouping: &CStr = c"OfxImageEffectPluginPropGrouping";
pub const kOfxImageEffectPluginPropObsolete: &CStr = c"OfxImageEffectPluginPropObsolete";
pub const kOfxImageEffectPropSupportsOverlays: &CStr = c"OfxImageEffectPropSupportsOverlays";
pub const kOfxImageEffectPluginPropOverlayInteractV1: &CStr =
    c"OfxImageEffectPluginPropOverlayInteractV1";
pub const kOfxImageEffectPluginPropOverlayInteractV2: &CStr =
    c"OfxImageEffectPluginPropOverlayInteractV2";
pub const kOfxImageEffectPropSupportsMultiResolution: &CStr =
    c"OfxImageEffectPropSupportsMultiResolution";
pub const kOfxImageEffectPropSupportsTiles: &CStr = c"OfxImageEffectPropSupportsTiles";
pub const kOfxImageEffectPropTemporalClipAccess: &CStr = c"OfxImageEffectPropTemporalClipAccess";
pub const kOfxImageEffectPropContext: &CStr = c"OfxImageEffectPropContext";
pub const kOfxImageEffectPropPixelDepth: &CStr = c"OfxImageEffectPropPixelDepth";
pub const kOfxImageEffectPropComponents: &CStr = c"OfxImageEffectPropComponents";
pub const kOfxImagePropUniqueIdentifier: &CStr = c"OfxImagePropUniqueIdentifier";
pub const kOfxImageClipPropContinuousSamples: &CStr = c"OfxImageClipPropContinuousSamples";
pub const kOfxImageClipPropUnmappedPixelDepth: &CStr = c"OfxImageClipPropUnmappedPixelDepth";
pub const kOfxImageClipPropUnmappedComponents: &CStr = c"OfxImageClipPropUnmappedComponents";
pub const kOfxImageEffectPropPreMultiplication: &CStr = c"OfxImageEffectPropPreMultiplication";
pub const kOfxImageOpaque: &CStr = c"OfxImageOpaque";
pub const kOfxImagePreMultiplied: &CStr = c"OfxImageAlphaPremultiplied";
pub const kOfxImageUnPreMultiplied: &CStr = c"OfxImageAlphaUnPremultiplied";
pub const kOfxImageEffectPropSupportedPixelDepths: &CStr =
    c"OfxImageEffectPropSupportedPixelDepths";
pub const kOfxImageEffectPropSupportedComponents: &CStr = c"OfxImageEffectPropSupportedComponents";
pub const kOfxImageClipPropOptional: &CStr = c"OfxImageClipPropOptional";
pub const kOfxImageClipPropIsMask: &CStr = c"OfxImageClipPropIsMask";
pub const kOfxImagePropPixelAspectRatio: &CStr = c"OfxImagePropPixelAspectRatio";
pub const kOfxImageEffectPropFrameRate: &CStr = c"OfxImageEffectPropFrameRate";
pub const kOfxImageEffectPropUnmappedFrameRate: &CStr = c"OfxImageEffectPropUnmappedFrameRate";
pub const kOfxImageEffectPropFrameStep: &CStr = c"OfxImageEffectPropFrameStep";
pub const kOfxImageEffectPropFrameRange: &CStr = c"OfxImageEffectPropFrameRange";
pub const kOfxImageEffectPropUnmappedFrameRange: &CStr = c"OfxImageEffectPropUnmappedFrameRange";
pub const kOfxImageClipPropConnected: &CStr = c"OfxImageClipPropConnected";
pub const kOfxImageEffectFrameVarying: &CStr = c"OfxImageEffectFrameVarying";
pub const kOfxImageEffectPropRenderScale: &CStr = c"OfxImageEffectPropRenderScale";
pub const kOfxImageEffectPropRenderQualityDraft: &CStr = c"OfxImageEffectPropRenderQualityDraft";
pub const kOfxImageEffectPropNoSpatialAwareness: &CStr = c"OfxImageEffectPropNoSpatialAwareness";
pub const kOfxImageEffectPropThumbnailRender: &CStr = c"OfxImageEffectPropThumbnailRender";
pub const kOfxImageEffectPropProjectExtent: &CStr = c"OfxImageEffectPropProjectExtent";
pub const kOfxImageEffectPropProjectSize: &CStr = c"OfxImageEffectPropProjectSize";
pub const kOfxImageEffectPropProjectOffset: &CStr = c"OfxImageEffectPropProjectOffset";
/// Note: the macro name and its string differ.
pub const kOfxImageEffectPropProjectPixelAspectRatio: &CStr = c"OfxImageEffectPropPixelAspectRatio";
pub const kOfxImageEffectInstancePropEffectDuration: &CStr =
    c"OfxImageEffectInstancePropEffectDuration";
pub const kOfxImageClipPropFieldOrder: &CStr = c"OfxImageClipPropFieldOrder";
pub const kOfxImagePropData: &CStr = c"OfxImagePropData";
pub const kOfxImagePropBounds: &CStr = c"OfxImagePropBounds";
pub const kOfxImagePropRegionOfDefinition: &CStr = c"OfxImagePropRegionOfDefinition";
pub const kOfxImagePropRowBytes: &CStr = c"OfxImagePropRowBytes";
pub const kOfxImagePropField: &CStr = c"OfxImagePropField";
pub const kOfxImageEffectPluginPropFieldRenderTwiceAlways: &CStr =
    c"OfxImageEffectPluginPropFieldRenderTwiceAlways";
pub const kOfxImageClipPropFieldExtraction: &CStr = c"OfxImageClipPropFieldExtraction";
pub const kOfxImageEffectPropFieldToRender: &CStr = c"OfxImageEffectPropFieldToRender";
pub const kOfxImageEffectPropRegionOfDefinition: &CStr = c"OfxImageEffectPropRegionOfDefinition";
pub const kOfxImageEffectPropRegionOfInterest: &CStr = c"OfxImageEffectPropRegionOfInterest";
pub const kOfxImageEffectPropRenderWindow: &CStr = c"OfxImageEffectPropRenderWindow";
pub const kOfxImageFieldNone: &CStr = c"OfxFieldNone";
pub const kOfxImageFieldLower: &CStr = c"OfxFieldLower";
pub const kOfxImageFieldUpper: &CStr = c"OfxFieldUpper";
pub const kOfxImageFieldBoth: &CStr = c"OfxFieldBoth";
pub const kOfxImageFieldSingle: &CStr = c"OfxFieldSingle";
pub const kOfxImageFieldDoubled: &CStr = c"OfxFieldDoubled";
pub const kOfxImageEffectPropBehaviourWhenUnlicensed: &CStr =
    c"OfxImageEffectPropBehaviourWhenUnlicensed";
pub const kOfxUnlicensedContinue: &CStr = c"OfxUnlicensedContinue";
pub const kOfxUnlicensedFail: &CStr = c"OfxUnlicensedFail";
/// Deprecated since 1.4 but still sent by older hosts.
pub const kOfxImageEffectPropInAnalysis: &CStr = c"OfxImageEffectPropInAnalysis";

// Clip names fixed by the contexts.
pub const kOfxImageEffectOutputClipName: &CStr = c"Output";
pub const kOfxImageEffectSimpleSourceClipName: &CStr = c"Source";
pub const kOfxImageEffectTransitionSourceFromClipName: &CStr = c"SourceFrom";
pub const kOfxImageEffectTransitionSourceToClipName: &CStr = c"SourceTo";
pub const kOfxImageEffectTransitionParamName: &CStr = c"Transition";
pub const kOfxImageEffectRetimerParamName: &CStr = c"SourceTime";
