//! Checks every hand-written layout and constant in `ofx_bindings::sys` against the
//! independently generated bindings of the `openfx` 0.6.0 crate (OFX 1.5).
//!
//! - sizes, alignments and every field offset of every struct;
//! - every field's type, compared as text with module paths removed, so that a wrong
//!   argument type or order in a function pointer is caught, not only its offset;
//! - every constant's value, and that no constant declared in `src/sys` goes unchecked.
#![allow(non_upper_case_globals, non_snake_case)]

use std::collections::BTreeSet;
use std::mem::{align_of, offset_of, size_of};

mod theirs {
    pub use openfx::sys::generic::core::*;
    pub use openfx::sys::generic::property::*;
    pub use openfx::sys::image_effect_v1::gpu_render::*;
    pub use openfx::sys::image_effect_v1::image_effect::*;
    pub use openfx::sys::image_effect_v1::memory::*;
    pub use openfx::sys::image_effect_v1::message::*;
    pub use openfx::sys::image_effect_v1::multi_thread::*;
    pub use openfx::sys::image_effect_v1::old::kOfxImageEffectPropInAnalysis;
    pub use openfx::sys::image_effect_v1::param::*;
    pub use openfx::sys::image_effect_v1::progress::*;
}
use ofx_bindings::sys as ours;

/// `a::b::Type<c::D>` -> `Type<D>`, and C type aliases spelled the same on both sides.
fn normalise(type_name: &str) -> String {
    let mut out = String::new();
    let mut ident = String::new();
    let mut chars = type_name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            ident.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            ident.clear(); // drop the path segment
        } else {
            out.push_str(&ident);
            ident.clear();
            out.push(c);
        }
    }
    out.push_str(&ident);
    out
}

fn type_of<S, F>(_field: fn(&S) -> &F) -> String {
    normalise(std::any::type_name::<F>())
}

macro_rules! check_struct {
    ($name:ident { $($field:ident),* $(,)? }) => {{
        assert_eq!(size_of::<ours::$name>(), size_of::<theirs::$name>(), "size of {}", stringify!($name));
        assert_eq!(align_of::<ours::$name>(), align_of::<theirs::$name>(), "align of {}", stringify!($name));
        let mut covered = 0usize;
        $(
            assert_eq!(
                offset_of!(ours::$name, $field),
                offset_of!(theirs::$name, $field),
                "offset of {}.{}", stringify!($name), stringify!($field)
            );
            assert_eq!(
                type_of(|s: &ours::$name| &s.$field),
                type_of(|s: &theirs::$name| &s.$field),
                "type of {}.{}", stringify!($name), stringify!($field)
            );
            covered += size_of_field(|s: &ours::$name| &s.$field);
        )*
        // Every byte is accounted for by a listed field (no field forgotten in this list).
        assert!(covered <= size_of::<ours::$name>());
        assert_eq!(
            covered.next_multiple_of(align_of::<ours::$name>()),
            size_of::<ours::$name>(),
            "fields listed for {} do not cover the struct", stringify!($name)
        );
    }};
}

fn size_of_field<S, F>(_field: fn(&S) -> &F) -> usize {
    size_of::<F>()
}

#[test]
fn struct_layouts_match_openfx_1_5() {
    check_struct!(OfxHost { host, fetchSuite });
    check_struct!(OfxPlugin {
        pluginApi,
        apiVersion,
        pluginIdentifier,
        pluginVersionMajor,
        pluginVersionMinor,
        setHost,
        mainEntry
    });
    check_struct!(OfxRangeI { min, max });
    check_struct!(OfxRangeD { min, max });
    check_struct!(OfxPointI { x, y });
    check_struct!(OfxPointD { x, y });
    check_struct!(OfxRectI { x1, y1, x2, y2 });
    check_struct!(OfxRectD { x1, y1, x2, y2 });
    check_struct!(OfxBytes { data, length });
    check_struct!(OfxPropertySuiteV1 {
        propSetPointer,
        propSetString,
        propSetDouble,
        propSetInt,
        propSetPointerN,
        propSetStringN,
        propSetDoubleN,
        propSetIntN,
        propGetPointer,
        propGetString,
        propGetDouble,
        propGetInt,
        propGetPointerN,
        propGetStringN,
        propGetDoubleN,
        propGetIntN,
        propReset,
        propGetDimension,
    });
    check_struct!(OfxImageEffectSuiteV1 {
        getPropertySet,
        getParamSet,
        clipDefine,
        clipGetHandle,
        clipGetPropertySet,
        clipGetImage,
        clipReleaseImage,
        clipGetRegionOfDefinition,
        abort,
        imageMemoryAlloc,
        imageMemoryFree,
        imageMemoryLock,
        imageMemoryUnlock,
    });
    check_struct!(OfxParameterSuiteV1 {
        paramDefine,
        paramGetHandle,
        paramSetGetPropertySet,
        paramGetPropertySet,
        paramGetValue,
        paramGetValueAtTime,
        paramGetDerivative,
        paramGetIntegral,
        paramSetValue,
        paramSetValueAtTime,
        paramGetNumKeys,
        paramGetKeyTime,
        paramGetKeyIndex,
        paramDeleteKey,
        paramDeleteAllKeys,
        paramCopy,
        paramEditBegin,
        paramEditEnd,
    });
    check_struct!(OfxMemorySuiteV1 {
        memoryAlloc,
        memoryFree
    });
    check_struct!(OfxMultiThreadSuiteV1 {
        multiThread,
        multiThreadNumCPUs,
        multiThreadIndex,
        multiThreadIsSpawnedThread,
        mutexCreate,
        mutexDestroy,
        mutexLock,
        mutexUnLock,
        mutexTryLock,
    });
    check_struct!(OfxMessageSuiteV1 { message });
    check_struct!(OfxMessageSuiteV2 {
        message,
        setPersistentMessage,
        clearPersistentMessage
    });
    check_struct!(OfxProgressSuiteV1 {
        progressStart,
        progressUpdate,
        progressEnd
    });
    check_struct!(OfxProgressSuiteV2 {
        progressStart,
        progressUpdate,
        progressEnd
    });
}

#[test]
fn opaque_handles_and_aliases_match() {
    for (o, t) in [
        (
            type_of(|s: &(ours::OfxPropertySetHandle,)| &s.0),
            type_of(|s: &(theirs::OfxPropertySetHandle,)| &s.0),
        ),
        (
            type_of(|s: &(ours::OfxImageEffectHandle,)| &s.0),
            type_of(|s: &(theirs::OfxImageEffectHandle,)| &s.0),
        ),
        (
            type_of(|s: &(ours::OfxImageClipHandle,)| &s.0),
            type_of(|s: &(theirs::OfxImageClipHandle,)| &s.0),
        ),
        (
            type_of(|s: &(ours::OfxImageMemoryHandle,)| &s.0),
            type_of(|s: &(theirs::OfxImageMemoryHandle,)| &s.0),
        ),
        (
            type_of(|s: &(ours::OfxParamHandle,)| &s.0),
            type_of(|s: &(theirs::OfxParamHandle,)| &s.0),
        ),
        (
            type_of(|s: &(ours::OfxParamSetHandle,)| &s.0),
            type_of(|s: &(theirs::OfxParamSetHandle,)| &s.0),
        ),
        (
            type_of(|s: &(ours::OfxMutexHandle,)| &s.0),
            type_of(|s: &(theirs::OfxMutexHandle,)| &s.0),
        ),
        (
            type_of(|s: &(ours::OfxStatus,)| &s.0),
            type_of(|s: &(theirs::OfxStatus,)| &s.0),
        ),
        (
            type_of(|s: &(ours::OfxTime,)| &s.0),
            type_of(|s: &(theirs::OfxTime,)| &s.0),
        ),
        (
            type_of(|s: &(ours::OfxPluginEntryPoint,)| &s.0),
            type_of(|s: &(theirs::OfxPluginEntryPoint,)| &s.0),
        ),
        (
            type_of(|s: &(ours::OfxThreadFunctionV1,)| &s.0),
            type_of(|s: &(theirs::OfxThreadFunctionV1,)| &s.0),
        ),
        (
            type_of(|s: &(ours::OfxCustomParamInterpFuncV1,)| &s.0),
            type_of(|s: &(theirs::OfxCustomParamInterpFuncV1,)| &s.0),
        ),
    ] {
        assert_eq!(o, t);
    }
    assert_eq!(size_of::<ours::OfxStatus>(), 4);
}

macro_rules! check_constants {
    ($($name:ident),* $(,)?) => {{
        let mut checked = BTreeSet::new();
        $(
            assert_eq!(ours::$name, theirs::$name, "value of {}", stringify!($name));
            checked.insert(stringify!($name));
        )*
        checked
    }};
}

fn declared_constants() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (_file, source) in ours::SOURCES {
        for line in source.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("pub const ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn every_constant_matches_openfx_1_5() {
    let strings = check_constants!(
        kOfxActionLoad,
        kOfxActionDescribe,
        kOfxActionUnload,
        kOfxActionPurgeCaches,
        kOfxActionSyncPrivateData,
        kOfxActionCreateInstance,
        kOfxActionDestroyInstance,
        kOfxActionInstanceChanged,
        kOfxActionBeginInstanceChanged,
        kOfxActionEndInstanceChanged,
        kOfxActionBeginInstanceEdit,
        kOfxActionEndInstanceEdit,
        kOfxPropAPIVersion,
        kOfxPropTime,
        kOfxPropIsInteractive,
        kOfxPluginPropFilePath,
        kOfxPropInstanceData,
        kOfxPropType,
        kOfxPropName,
        kOfxPropVersion,
        kOfxPropVersionLabel,
        kOfxPropPluginDescription,
        kOfxPropLabel,
        kOfxPropIcon,
        kOfxPropShortLabel,
        kOfxPropLongLabel,
        kOfxPropChangeReason,
        kOfxPropEffectInstance,
        kOfxPropHostOSHandle,
        kOfxChangeUserEdited,
        kOfxChangePluginEdited,
        kOfxChangeTime,
        kOfxBitDepthNone,
        kOfxBitDepthByte,
        kOfxBitDepthShort,
        kOfxBitDepthHalf,
        kOfxBitDepthFloat,
        kOfxOpenGLRenderSuite,
        kOfxImageEffectPropOpenGLRenderSupported,
        kOfxOpenGLPropPixelDepth,
        kOfxImageEffectPropOpenGLEnabled,
        kOfxImageEffectPropOpenGLTextureIndex,
        kOfxImageEffectPropOpenGLTextureTarget,
        kOfxImageEffectPropCPURenderSupported,
        kOfxActionOpenGLContextAttached,
        kOfxActionOpenGLContextDetached,
        kOfxImageEffectPropCudaRenderSupported,
        kOfxImageEffectPropCudaEnabled,
        kOfxImageEffectPropCudaStreamSupported,
        kOfxImageEffectPropCudaStream,
        kOfxImageEffectPropMetalRenderSupported,
        kOfxImageEffectPropMetalEnabled,
        kOfxImageEffectPropMetalCommandQueue,
        kOfxImageEffectPropOpenCLRenderSupported,
        kOfxImageEffectPropOpenCLSupported,
        kOfxImageEffectPropOpenCLEnabled,
        kOfxImageEffectPropOpenCLCommandQueue,
        kOfxImageEffectPropOpenCLImage,
        kOfxOpenCLProgramSuite,
        kOfxImageEffectSuite,
        kOfxImageEffectPluginApi,
        kOfxImageComponentNone,
        kOfxImageComponentRGBA,
        kOfxImageComponentRGB,
        kOfxImageComponentAlpha,
        kOfxImageEffectContextGenerator,
        kOfxImageEffectContextFilter,
        kOfxImageEffectContextTransition,
        kOfxImageEffectContextPaint,
        kOfxImageEffectContextGeneral,
        kOfxImageEffectContextRetimer,
        kOfxTypeImageEffectHost,
        kOfxTypeImageEffect,
        kOfxTypeImageEffectInstance,
        kOfxTypeClip,
        kOfxTypeImage,
        kOfxImageEffectActionGetRegionOfDefinition,
        kOfxImageEffectActionGetRegionsOfInterest,
        kOfxImageEffectActionGetTimeDomain,
        kOfxImageEffectActionGetFramesNeeded,
        kOfxImageEffectActionGetClipPreferences,
        kOfxImageEffectActionIsIdentity,
        kOfxImageEffectActionRender,
        kOfxImageEffectActionBeginSequenceRender,
        kOfxImageEffectActionEndSequenceRender,
        kOfxImageEffectActionDescribeInContext,
        kOfxImageEffectPropSupportedContexts,
        kOfxImageEffectPropPluginHandle,
        kOfxImageEffectHostPropIsBackground,
        kOfxImageEffectPluginPropSingleInstance,
        kOfxImageEffectPluginRenderThreadSafety,
        kOfxImageEffectRenderUnsafe,
        kOfxImageEffectRenderInstanceSafe,
        kOfxImageEffectRenderFullySafe,
        kOfxImageEffectPluginPropHostFrameThreading,
        kOfxImageEffectPropSupportsMultipleClipDepths,
        kOfxImageEffectPropSupportsMultipleClipPARs,
        kOfxImageEffectPropClipPreferencesSlaveParam,
        kOfxImageEffectPropSetableFrameRate,
        kOfxImageEffectPropSetableFielding,
        kOfxImageEffectInstancePropSequentialRender,
        kOfxImageEffectPropSequentialRenderStatus,
        kOfxImageEffectHostPropNativeOrigin,
        kOfxHostNativeOriginBottomLeft,
        kOfxHostNativeOriginTopLeft,
        kOfxHostNativeOriginCenter,
        kOfxImageEffectPropInteractiveRenderStatus,
        kOfxImageEffectPluginPropGrouping,
        kOfxImageEffectPluginPropObsolete,
        kOfxImageEffectPropSupportsOverlays,
        kOfxImageEffectPluginPropOverlayInteractV1,
        kOfxImageEffectPluginPropOverlayInteractV2,
        kOfxImageEffectPropSupportsMultiResolution,
        kOfxImageEffectPropSupportsTiles,
        kOfxImageEffectPropTemporalClipAccess,
        kOfxImageEffectPropContext,
        kOfxImageEffectPropPixelDepth,
        kOfxImageEffectPropComponents,
        kOfxImagePropUniqueIdentifier,
        kOfxImageClipPropContinuousSamples,
        kOfxImageClipPropUnmappedPixelDepth,
        kOfxImageClipPropUnmappedComponents,
        kOfxImageEffectPropPreMultiplication,
        kOfxImageOpaque,
        kOfxImagePreMultiplied,
        kOfxImageUnPreMultiplied,
        kOfxImageEffectPropSupportedPixelDepths,
        kOfxImageEffectPropSupportedComponents,
        kOfxImageClipPropOptional,
        kOfxImageClipPropIsMask,
        kOfxImagePropPixelAspectRatio,
        kOfxImageEffectPropFrameRate,
        kOfxImageEffectPropUnmappedFrameRate,
        kOfxImageEffectPropFrameStep,
        kOfxImageEffectPropFrameRange,
        kOfxImageEffectPropUnmappedFrameRange,
        kOfxImageClipPropConnected,
        kOfxImageEffectFrameVarying,
        kOfxImageEffectPropRenderScale,
        kOfxImageEffectPropRenderQualityDraft,
        kOfxImageEffectPropNoSpatialAwareness,
        kOfxImageEffectPropThumbnailRender,
        kOfxImageEffectPropProjectExtent,
        kOfxImageEffectPropProjectSize,
        kOfxImageEffectPropProjectOffset,
        kOfxImageEffectPropProjectPixelAspectRatio,
        kOfxImageEffectInstancePropEffectDuration,
        kOfxImageClipPropFieldOrder,
        kOfxImagePropData,
        kOfxImagePropBounds,
        kOfxImagePropRegionOfDefinition,
        kOfxImagePropRowBytes,
        kOfxImagePropField,
        kOfxImageEffectPluginPropFieldRenderTwiceAlways,
        kOfxImageClipPropFieldExtraction,
        kOfxImageEffectPropFieldToRender,
        kOfxImageEffectPropRegionOfDefinition,
        kOfxImageEffectPropRegionOfInterest,
        kOfxImageEffectPropRenderWindow,
        kOfxImageFieldNone,
        kOfxImageFieldLower,
        kOfxImageFieldUpper,
        kOfxImageFieldBoth,
        kOfxImageFieldSingle,
        kOfxImageFieldDoubled,
        kOfxImageEffectPropBehaviourWhenUnlicensed,
        kOfxUnlicensedContinue,
        kOfxUnlicensedFail,
        kOfxImageEffectPropInAnalysis,
        kOfxImageEffectOutputClipName,
        kOfxImageEffectSimpleSourceClipName,
        kOfxImageEffectTransitionSourceFromClipName,
        kOfxImageEffectTransitionSourceToClipName,
        kOfxImageEffectTransitionParamName,
        kOfxImageEffectRetimerParamName,
        kOfxMemorySuite,
        kOfxMessageSuite,
        kOfxMessageFatal,
        kOfxMessageError,
        kOfxMessageWarning,
        kOfxMessageMessage,
        kOfxMessageLog,
        kOfxMessageQuestion,
        kOfxMultiThreadSuite,
        kOfxParameterSuite,
        kOfxTypeParameter,
        kOfxTypeParameterInstance,
        kOfxParamTypeInteger,
        kOfxParamTypeDouble,
        kOfxParamTypeBoolean,
        kOfxParamTypeChoice,
        kOfxParamTypeStrChoice,
        kOfxParamTypeRGBA,
        kOfxParamTypeRGB,
        kOfxParamTypeDouble2D,
        kOfxParamTypeInteger2D,
        kOfxParamTypeDouble3D,
        kOfxParamTypeInteger3D,
        kOfxParamTypeString,
        kOfxParamTypeCustom,
        kOfxParamTypeBytes,
        kOfxParamTypeGroup,
        kOfxParamTypePage,
        kOfxParamTypePushButton,
        kOfxParamHostPropSupportsCustomAnimation,
        kOfxParamHostPropSupportsStringAnimation,
        kOfxParamHostPropSupportsBooleanAnimation,
        kOfxParamHostPropSupportsChoiceAnimation,
        kOfxParamHostPropSupportsCustomInteract,
        kOfxParamHostPropMaxParameters,
        kOfxParamHostPropMaxPages,
        kOfxParamHostPropPageRowColumnCount,
        kOfxParamPageSkipRow,
        kOfxParamPageSkipColumn,
        kOfxParamPropInteractV1,
        kOfxParamPropInteractSize,
        kOfxParamPropInteractSizeAspect,
        kOfxParamPropInteractMinimumSize,
        kOfxParamPropInteractPreferedSize,
        kOfxParamPropType,
        kOfxParamPropAnimates,
        kOfxParamPropCanUndo,
        kOfxPropParamSetNeedsSyncing,
        kOfxParamPropIsAnimating,
        kOfxParamPropPluginMayWrite,
        kOfxParamPropPersistant,
        kOfxParamPropEvaluateOnChange,
        kOfxParamPropSecret,
        kOfxParamPropScriptName,
        kOfxParamPropCacheInvalidation,
        kOfxParamInvalidateValueChange,
        kOfxParamInvalidateValueChangeToEnd,
        kOfxParamInvalidateAll,
        kOfxParamPropHint,
        kOfxParamPropDefault,
        kOfxParamPropDoubleType,
        kOfxParamDoubleTypePlain,
        kOfxParamDoubleTypeScale,
        kOfxParamDoubleTypeAngle,
        kOfxParamDoubleTypeTime,
        kOfxParamDoubleTypeAbsoluteTime,
        kOfxParamDoubleTypeX,
        kOfxParamDoubleTypeY,
        kOfxParamDoubleTypeXAbsolute,
        kOfxParamDoubleTypeYAbsolute,
        kOfxParamDoubleTypeXY,
        kOfxParamDoubleTypeXYAbsolute,
        kOfxParamPropDefaultCoordinateSystem,
        kOfxParamCoordinatesCanonical,
        kOfxParamCoordinatesNormalised,
        kOfxParamPropHasHostOverlayHandle,
        kOfxParamPropUseHostOverlayHandle,
        kOfxParamInterpTypeConstantStep,
        kOfxParamInterpTypeLinear,
        kOfxParamInterpTypeSmooth,
        kOfxParamInterpType,
        kOfxParamPropShowTimeMarker,
        kOfxPluginPropParamPageOrder,
        kOfxParamPropPageChild,
        kOfxParamPropParent,
        kOfxParamPropGroupOpen,
        kOfxParamPropEnabled,
        kOfxParamPropDataPtr,
        kOfxParamPropChoiceOption,
        kOfxParamPropChoiceOrder,
        kOfxParamPropChoiceEnum,
        kOfxParamHostPropSupportsStrChoiceAnimation,
        kOfxParamHostPropSupportsStrChoice,
        kOfxParamPropMin,
        kOfxParamPropMax,
        kOfxParamPropDisplayMin,
        kOfxParamPropDisplayMax,
        kOfxParamPropIncrement,
        kOfxParamPropDigits,
        kOfxParamPropDimensionLabel,
        kOfxParamPropIsAutoKeying,
        kOfxParamPropCustomInterpCallbackV1,
        kOfxParamPropStringMode,
        kOfxParamPropStringFilePathExists,
        kOfxParamStringIsSingleLine,
        kOfxParamStringIsMultiLine,
        kOfxParamStringIsFilePath,
        kOfxParamStringIsDirectoryPath,
        kOfxParamStringIsLabel,
        kOfxParamStringIsRichTextFormat,
        kOfxParamPropCustomValue,
        kOfxParamPropInterpolationTime,
        kOfxParamPropInterpolationAmount,
        kOfxProgressSuite,
        kOfxPropertySuite,
    );
    let numbers = check_constants!(
        kOfxFlagInfiniteMax,
        kOfxFlagInfiniteMin,
        kOfxStatOK,
        kOfxStatFailed,
        kOfxStatErrFatal,
        kOfxStatErrUnknown,
        kOfxStatErrMissingHostFeature,
        kOfxStatErrUnsupported,
        kOfxStatErrExists,
        kOfxStatErrFormat,
        kOfxStatErrMemory,
        kOfxStatErrBadHandle,
        kOfxStatErrBadIndex,
        kOfxStatErrValue,
        kOfxStatReplyYes,
        kOfxStatReplyNo,
        kOfxStatReplyDefault,
        kOfxStatUnlicensed,
        kOfxStatGPUOutOfMemory,
        kOfxStatGLOutOfMemory,
        kOfxStatGPURenderFailed,
        kOfxStatGLRenderFailed,
        kOfxStatErrImageFormat,
        kOfxImageEffectPluginApiVersion,
    );
    let checked: BTreeSet<String> = strings.union(&numbers).map(|s| s.to_string()).collect();
    let declared = declared_constants();
    let unchecked: Vec<_> = declared.difference(&checked).collect();
    assert!(
        unchecked.is_empty(),
        "constants declared in src/sys but not checked: {unchecked:?}"
    );
    assert!(
        declared.len() > 250,
        "parsed only {} constants",
        declared.len()
    );
}

#[test]
fn values_the_node_depends_on() {
    // Spelled out once more, independently of the `openfx` crate.
    assert_eq!(
        ours::kOfxImageEffectPropSupportsMultipleClipDepths,
        c"OfxImageEffectPropMultipleClipDepths"
    );
    assert_eq!(
        ours::kOfxImageEffectPropProjectPixelAspectRatio,
        c"OfxImageEffectPropPixelAspectRatio"
    );
    assert_eq!(ours::kOfxStatGPUOutOfMemory, 1001);
    assert_eq!(ours::kOfxStatGPURenderFailed, 1002);
    assert_eq!(ours::kOfxStatErrImageFormat, 1000);
    assert_eq!(ours::kOfxStatReplyDefault, 14);
    assert_eq!(ours::kOfxImageEffectPluginApi, c"OfxImageEffectPluginAPI");
    assert_eq!(ours::kOfxImageEffectPluginApiVersion, 1);
    assert_eq!(ours::kOfxImageEffectOutputClipName, c"Output");
}

#[test]
fn field_type_comparison_sees_argument_types() {
    // Guards the checker itself: the normalised text must carry every argument type.
    assert_eq!(
        type_of(|s: &ours::OfxPropertySuiteV1| &s.propSetDouble),
        "Option<unsafe extern \"C\" fn(*mut OfxPropertySetStruct, *const i8, i32, f64) -> i32>"
    );
    assert_eq!(
        type_of(|s: &ours::OfxMessageSuiteV2| &s.setPersistentMessage),
        "Option<unsafe extern \"C\" fn(*mut c_void, *const i8, *const i8, *const i8, ...) -> i32>"
    );
}
