//! `ofxParam.h`: the parameter suite, parameter types and properties.
//!
//! `paramGetValue`, `paramGetValueAtTime`, `paramSetValue`, `paramSetValueAtTime`,
//! `paramGetDerivative` and `paramGetIntegral` are C-variadic: the values (or pointers to
//! them) follow as varargs, one per dimension, typed by the parameter type: `int` for
//! Integer/Boolean/Choice/Integer2D/3D, `double` for Double/Double2D/3D/RGB/RGBA, and
//! `char *` for String/StrChoice/Custom. Getters take pointers to those types.

use super::core::{OfxPropertySetHandle, OfxRangeD, OfxStatus, OfxTime};
use std::ffi::{c_char, c_int, c_uchar, c_uint, CStr};

/// Opaque parameter handle.
#[repr(C)]
pub struct OfxParamStruct {
    _private: [u8; 0],
}
pub type OfxParamHandle = *mut OfxParamStruct;

/// Opaque parameter set handle.
#[repr(C)]
pub struct OfxParamSetStruct {
    _private: [u8; 0],
}
pub type OfxParamSetHandle = *mut OfxParamSetStruct;

/// Value of a Bytes parameter (1.5).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OfxBytes {
    pub data: *const c_uchar,
    pub length: usize,
}

/// Custom parameter interpolation callback.
pub type OfxCustomParamInterpFuncV1 = Option<
    unsafe extern "C" fn(
        instance: OfxParamSetHandle,
        inArgs: OfxPropertySetHandle,
        outArgs: OfxPropertySetHandle,
    ) -> OfxStatus,
>;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OfxParameterSuiteV1 {
    pub paramDefine: Option<
        unsafe extern "C" fn(
            paramSet: OfxParamSetHandle,
            paramType: *const c_char,
            name: *const c_char,
            propertySet: *mut OfxPropertySetHandle,
        ) -> OfxStatus,
    >,
    pub paramGetHandle: Option<
        unsafe extern "C" fn(
            paramSet: OfxParamSetHandle,
            name: *const c_char,
            param: *mut OfxParamHandle,
            propertySet: *mut OfxPropertySetHandle,
        ) -> OfxStatus,
    >,
    pub paramSetGetPropertySet: Option<
        unsafe extern "C" fn(
            paramSet: OfxParamSetHandle,
            propHandle: *mut OfxPropertySetHandle,
        ) -> OfxStatus,
    >,
    pub paramGetPropertySet: Option<
        unsafe extern "C" fn(
            param: OfxParamHandle,
            propHandle: *mut OfxPropertySetHandle,
        ) -> OfxStatus,
    >,
    pub paramGetValue: Option<unsafe extern "C" fn(paramHandle: OfxParamHandle, ...) -> OfxStatus>,
    pub paramGetValueAtTime:
        Option<unsafe extern "C" fn(paramHandle: OfxParamHandle, time: OfxTime, ...) -> OfxStatus>,
    pub paramGetDerivative:
        Option<unsafe extern "C" fn(paramHandle: OfxParamHandle, time: OfxTime, ...) -> OfxStatus>,
    pub paramGetIntegral: Option<
        unsafe extern "C" fn(
            paramHandle: OfxParamHandle,
            time1: OfxTime,
            time2: OfxTime,
            ...
        ) -> OfxStatus,
    >,
    pub paramSetValue: Option<unsafe extern "C" fn(paramHandle: OfxParamHandle, ...) -> OfxStatus>,
    pub paramSetValueAtTime:
        Option<unsafe extern "C" fn(paramHandle: OfxParamHandle, time: OfxTime, ...) -> OfxStatus>,
    pub paramGetNumKeys: Option<
        unsafe extern "C" fn(paramHandle: OfxParamHandle, numberOfKeys: *mut c_uint) -> OfxStatus,
    >,
    pub paramGetKeyTime: Option<
        unsafe extern "C" fn(
            paramHandle: OfxParamHandle,
            nthKey: c_uint,
            time: *mut OfxTime,
        ) -> OfxStatus,
    >,
    pub paramGetKeyIndex: Option<
        unsafe extern "C" fn(
            paramHandle: OfxParamHandle,
            time: OfxTime,
            direction: c_int,
            index: *mut c_int,
        ) -> OfxStatus,
    >,
    pub paramDeleteKey:
        Option<unsafe extern "C" fn(paramHandle: OfxParamHandle, time: OfxTime) -> OfxStatus>,
    pub paramDeleteAllKeys: Option<unsafe extern "C" fn(paramHandle: OfxParamHandle) -> OfxStatus>,
    pub paramCopy: Option<
        unsafe extern "C" fn(
            paramTo: OfxParamHandle,
            paramFrom: OfxParamHandle,
            dstOffset: OfxTime,
            frameRange: *const OfxRangeD,
        ) -> OfxStatus,
    >,
    pub paramEditBegin:
        Option<unsafe extern "C" fn(paramSet: OfxParamSetHandle, name: *const c_char) -> OfxStatus>,
    pub paramEditEnd: Option<unsafe extern "C" fn(paramSet: OfxParamSetHandle) -> OfxStatus>,
}

// Suite and object types.
pub const kOfxParameterSuite: &CStr = c"OfxParameterSuite";
pub const kOfxTypeParameter: &CStr = c"OfxTypeParameter";
pub const kOfxTypeParameterInstance: &CStr = c"OfxTypeParameterInstance";

// Parameter types (values of kOfxParamPropType).
pub const kOfxParamTypeInteger: &CStr = c"OfxParamTypeInteger";
pub const kOfxParamTypeDouble: &CStr = c"OfxParamTypeDouble";
pub const kOfxParamTypeBoolean: &CStr = c"OfxParamTypeBoolean";
pub const kOfxParamTypeChoice: &CStr = c"OfxParamTypeChoice";
pub const kOfxParamTypeStrChoice: &CStr = c"OfxParamTypeStrChoice";
pub const kOfxParamTypeRGBA: &CStr = c"OfxParamTypeRGBA";
pub const kOfxParamTypeRGB: &CStr = c"OfxParamTypeRGB";
pub const kOfxParamTypeDouble2D: &CStr = c"OfxParamTypeDouble2D";
pub const kOfxParamTypeInteger2D: &CStr = c"OfxParamTypeInteger2D";
pub const kOfxParamTypeDouble3D: &CStr = c"OfxParamTypeDouble3D";
pub const kOfxParamTypeInteger3D: &CStr = c"OfxParamTypeInteger3D";
pub const kOfxParamTypeString: &CStr = c"OfxParamTypeString";
pub const kOfxParamTypeCustom: &CStr = c"OfxParamTypeCustom";
pub const kOfxParamTypeBytes: &CStr = c"OfxParamTypeBytes";
pub const kOfxParamTypeGroup: &CStr = c"OfxParamTypeGroup";
pub const kOfxParamTypePage: &CStr = c"OfxParamTypePage";
pub const kOfxParamTypePushButton: &CStr = c"OfxParamTypePushButton";

// Host capabilities for parameters.
pub const kOfxParamHostPropSupportsCustomAnimation: &CStr =
    c"OfxParamHostPropSupportsCustomAnimation";
pub const kOfxParamHostPropSupportsStringAnimation: &CStr =
    c"OfxParamHostPropSupportsStringAnimation";
pub const kOfxParamHostPropSupportsBooleanAnimation: &CStr =
    c"OfxParamHostPropSupportsBooleanAnimation";
pub const kOfxParamHostPropSupportsChoiceAnimation: &CStr =
    c"OfxParamHostPropSupportsChoiceAnimation";
pub const kOfxParamHostPropSupportsCustomInteract: &CStr =
    c"OfxParamHostPropSupportsCustomInteract";
pub const kOfxParamHostPropMaxParameters: &CStr = c"OfxParamHostPropMaxParameters";
pub const kOfxParamHostPropMaxPages: &CStr = c"OfxParamHostPropMaxPages";
pub const kOfxParamHostPropPageRowColumnCount: &CStr = c"OfxParamHostPropPageRowColumnCount";

// Page layout placeholders.
pub const kOfxParamPageSkipRow: &CStr = c"OfxParamPageSkipRow";
pub const kOfxParamPageSkipColumn: &CStr = c"OfxParamPageSkipColumn";

// Parameter interacts.
pub const kOfxParamPropInteractV1: &CStr = c"OfxParamPropInteractV1";
pub const kOfxParamPropInteractSize: &CStr = c"OfxParamPropInteractSize";
pub const kOfxParamPropInteractSizeAspect: &CStr = c"OfxParamPropInteractSizeAspect";
pub const kOfxParamPropInteractMinimumSize: &CStr = c"OfxParamPropInteractMinimumSize";
pub const kOfxParamPropInteractPreferedSize: &CStr = c"OfxParamPropInteractPreferedSize";

// Properties common to parameters.
pub const kOfxParamPropType: &CStr = c"OfxParamPropType";
pub const kOfxParamPropAnimates: &CStr = c"OfxParamPropAnimates";
pub const kOfxParamPropCanUndo: &CStr = c"OfxParamPropCanUndo";
pub const kOfxPropParamSetNeedsSyncing: &CStr = c"OfxPropParamSetNeedsSyncing";
pub const kOfxParamPropIsAnimating: &CStr = c"OfxParamPropIsAnimating";
pub const kOfxParamPropPluginMayWrite: &CStr = c"OfxParamPropPluginMayWrite";
pub const kOfxParamPropPersistant: &CStr = c"OfxParamPropPersistant";
pub const kOfxParamPropEvaluateOnChange: &CStr = c"OfxParamPropEvaluateOnChange";
pub const kOfxParamPropSecret: &CStr = c"OfxParamPropSecret";
pub const kOfxParamPropScriptName: &CStr = c"OfxParamPropScriptName";
pub const kOfxParamPropCacheInvalidation: &CStr = c"OfxParamPropCacheInvalidation";

// Values of kOfxParamPropCacheInvalidation.
pub const kOfxParamInvalidateValueChange: &CStr = c"OfxParamInvalidateValueChange";
pub const kOfxParamInvalidateValueChangeToEnd: &CStr = c"OfxParamInvalidateValueChangeToEnd";
pub const kOfxParamInvalidateAll: &CStr = c"OfxParamInvalidateAll";

// Descriptive properties and defaults.
pub const kOfxParamPropHint: &CStr = c"OfxParamPropHint";
pub const kOfxParamPropDefault: &CStr = c"OfxParamPropDefault";

// Double parameter kinds (values of kOfxParamPropDoubleType).
pub const kOfxParamPropDoubleType: &CStr = c"OfxParamPropDoubleType";
pub const kOfxParamDoubleTypePlain: &CStr = c"OfxParamDoubleTypePlain";
pub const kOfxParamDoubleTypeScale: &CStr = c"OfxParamDoubleTypeScale";
pub const kOfxParamDoubleTypeAngle: &CStr = c"OfxParamDoubleTypeAngle";
pub const kOfxParamDoubleTypeTime: &CStr = c"OfxParamDoubleTypeTime";
pub const kOfxParamDoubleTypeAbsoluteTime: &CStr = c"OfxParamDoubleTypeAbsoluteTime";
pub const kOfxParamDoubleTypeX: &CStr = c"OfxParamDoubleTypeX";
pub const kOfxParamDoubleTypeY: &CStr = c"OfxParamDoubleTypeY";
pub const kOfxParamDoubleTypeXAbsolute: &CStr = c"OfxParamDoubleTypeXAbsolute";
pub const kOfxParamDoubleTypeYAbsolute: &CStr = c"OfxParamDoubleTypeYAbsolute";
pub const kOfxParamDoubleTypeXY: &CStr = c"OfxParamDoubleTypeXY";
pub const kOfxParamDoubleTypeXYAbsolute: &CStr = c"OfxParamDoubleTypeXYAbsolute";

// Coordinate systems of spatial defaults.
pub const kOfxParamPropDefaultCoordinateSystem: &CStr = c"OfxParamPropDefaultCoordinateSystem";
pub const kOfxParamCoordinatesCanonical: &CStr = c"OfxParamCoordinatesCanonical";
pub const kOfxParamCoordinatesNormalised: &CStr = c"OfxParamCoordinatesNormalised";

// Host overlay handles. Note: kOfxParamPropUseHostOverlayHandle's string starts with `k`.
pub const kOfxParamPropHasHostOverlayHandle: &CStr = c"OfxParamPropHasHostOverlayHandle";
pub const kOfxParamPropUseHostOverlayHandle: &CStr = c"kOfxParamPropUseHostOverlayHandle";

// Interpolation.
pub const kOfxParamInterpTypeConstantStep: &CStr = c"OfxParamInterpTypeConstantStep";
pub const kOfxParamInterpTypeLinear: &CStr = c"OfxParamInterpTypeLinear";
pub const kOfxParamInterpTypeSmooth: &CStr = c"OfxParamInterpTypeSmooth";
pub const kOfxParamInterpType: &CStr = c"OfxParamInterpType";
pub const kOfxParamPropShowTimeMarker: &CStr = c"OfxParamPropShowTimeMarker";

// Pages, groups and hierarchy.
pub const kOfxPluginPropParamPageOrder: &CStr = c"OfxPluginPropParamPageOrder";
pub const kOfxParamPropPageChild: &CStr = c"OfxParamPropPageChild";
pub const kOfxParamPropParent: &CStr = c"OfxParamPropParent";
pub const kOfxParamPropGroupOpen: &CStr = c"OfxParamPropGroupOpen";

// State flags.
pub const kOfxParamPropEnabled: &CStr = c"OfxParamPropEnabled";
pub const kOfxParamPropDataPtr: &CStr = c"OfxParamPropDataPtr";

// Choice and StrChoice (1.5) parameters.
pub const kOfxParamPropChoiceOption: &CStr = c"OfxParamPropChoiceOption";
pub const kOfxParamPropChoiceOrder: &CStr = c"OfxParamPropChoiceOrder";
pub const kOfxParamPropChoiceEnum: &CStr = c"OfxParamPropChoiceEnum";
pub const kOfxParamHostPropSupportsStrChoiceAnimation: &CStr =
    c"OfxParamHostPropSupportsStrChoiceAnimation";
pub const kOfxParamHostPropSupportsStrChoice: &CStr = c"OfxParamHostPropSupportsStrChoice";

// Numeric ranges: hosts such as Resolve need both the range and the display range.
pub const kOfxParamPropMin: &CStr = c"OfxParamPropMin";
pub const kOfxParamPropMax: &CStr = c"OfxParamPropMax";
pub const kOfxParamPropDisplayMin: &CStr = c"OfxParamPropDisplayMin";
pub const kOfxParamPropDisplayMax: &CStr = c"OfxParamPropDisplayMax";
pub const kOfxParamPropIncrement: &CStr = c"OfxParamPropIncrement";
pub const kOfxParamPropDigits: &CStr = c"OfxParamPropDigits";
pub const kOfxParamPropDimensionLabel: &CStr = c"OfxParamPropDimensionLabel";
pub const kOfxParamPropIsAutoKeying: &CStr = c"OfxParamPropIsAutoKeying";
pub const kOfxParamPropCustomInterpCallbackV1: &CStr = c"OfxParamPropCustomCallbackV1";

// String parameters (values of kOfxParamPropStringMode).
pub const kOfxParamPropStringMode: &CStr = c"OfxParamPropStringMode";
pub const kOfxParamPropStringFilePathExists: &CStr = c"OfxParamPropStringFilePathExists";
pub const kOfxParamStringIsSingleLine: &CStr = c"OfxParamStringIsSingleLine";
pub const kOfxParamStringIsMultiLine: &CStr = c"OfxParamStringIsMultiLine";
pub const kOfxParamStringIsFilePath: &CStr = c"OfxParamStringIsFilePath";
pub const kOfxParamStringIsDirectoryPath: &CStr = c"OfxParamStringIsDirectoryPath";
pub const kOfxParamStringIsLabel: &CStr = c"OfxParamStringIsLabel";
pub const kOfxParamStringIsRichTextFormat: &CStr = c"OfxParamStringIsRichTextFormat";

// Custom parameters.
pub const kOfxParamPropCustomValue: &CStr = c"OfxParamPropCustomValue";
pub const kOfxParamPropInterpolationTime: &CStr = c"OfxParamPropInterpolationTime";
pub const kOfxParamPropInterpolationAmount: &CStr = c"OfxParamPropInterpolationAmount";
