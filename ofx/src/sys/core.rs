//! `ofxCore.h`: the host and plugin structs, entry points, generic actions and properties,
//! status codes and the geometry types.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};

/// Opaque property set; the host owns it, the plugin only passes the handle around.
#[repr(C)]
pub struct OfxPropertySetStruct {
    _private: [u8; 0],
}
pub type OfxPropertySetHandle = *mut OfxPropertySetStruct;

/// Status code returned by every OFX function (`int` in C).
pub type OfxStatus = c_int;

/// Time in frames, `double` in C.
pub type OfxTime = f64;

/// What the host hands the plugin in `setHost`: its own property set and the suite fetcher.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OfxHost {
    pub host: OfxPropertySetHandle,
    pub fetchSuite: Option<
        unsafe extern "C" fn(
            host: OfxPropertySetHandle,
            suiteName: *const c_char,
            suiteVersion: c_int,
        ) -> *const c_void,
    >,
}

/// `mainEntry`: one function receives every action.
pub type OfxPluginEntryPoint = Option<
    unsafe extern "C" fn(
        action: *const c_char,
        handle: *const c_void,
        inArgs: OfxPropertySetHandle,
        outArgs: OfxPropertySetHandle,
    ) -> OfxStatus,
>;

/// What `OfxGetPlugin(n)` returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OfxPlugin {
    pub pluginApi: *const c_char,
    pub apiVersion: c_int,
    pub pluginIdentifier: *const c_char,
    pub pluginVersionMajor: c_uint,
    pub pluginVersionMinor: c_uint,
    pub setHost: Option<unsafe extern "C" fn(host: *mut OfxHost)>,
    pub mainEntry: OfxPluginEntryPoint,
}

/// `OfxGetNumberOfPlugins`, exported by every binary.
pub type OfxGetNumberOfPluginsFn = unsafe extern "C" fn() -> c_int;
/// `OfxGetPlugin`, exported by every binary.
pub type OfxGetPluginFn = unsafe extern "C" fn(nth: c_int) -> *mut OfxPlugin;
/// Optional `OfxSetHost` (1.5); the pointer is only valid until `OfxGetPlugin` is called.
pub type OfxSetHostFn = unsafe extern "C" fn(host: *const OfxHost) -> OfxStatus;

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OfxRangeI {
    pub min: c_int,
    pub max: c_int,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OfxRangeD {
    pub min: f64,
    pub max: f64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OfxPointI {
    pub x: c_int,
    pub y: c_int,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OfxPointD {
    pub x: f64,
    pub y: f64,
}

/// Integer rectangle: (x1, y1) inclusive bottom left, (x2, y2) exclusive top right.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OfxRectI {
    pub x1: c_int,
    pub y1: c_int,
    pub x2: c_int,
    pub y2: c_int,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OfxRectD {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
}

// Generic actions.
pub const kOfxActionLoad: &CStr = c"OfxActionLoad";
pub const kOfxActionDescribe: &CStr = c"OfxActionDescribe";
pub const kOfxActionUnload: &CStr = c"OfxActionUnload";
pub const kOfxActionPurgeCaches: &CStr = c"OfxActionPurgeCaches";
pub const kOfxActionSyncPrivateData: &CStr = c"OfxActionSyncPrivateData";
pub const kOfxActionCreateInstance: &CStr = c"OfxActionCreateInstance";
pub const kOfxActionDestroyInstance: &CStr = c"OfxActionDestroyInstance";
pub const kOfxActionInstanceChanged: &CStr = c"OfxActionInstanceChanged";
pub const kOfxActionBeginInstanceChanged: &CStr = c"OfxActionBeginInstanceChanged";
pub const kOfxActionEndInstanceChanged: &CStr = c"OfxActionEndInstanceChanged";
pub const kOfxActionBeginInstanceEdit: &CStr = c"OfxActionBeginInstanceEdit";
pub const kOfxActionEndInstanceEdit: &CStr = c"OfxActionEndInstanceEdit";

// Generic properties.
pub const kOfxPropAPIVersion: &CStr = c"OfxPropAPIVersion";
pub const kOfxPropTime: &CStr = c"OfxPropTime";
pub const kOfxPropIsInteractive: &CStr = c"OfxPropIsInteractive";
pub const kOfxPluginPropFilePath: &CStr = c"OfxPluginPropFilePath";
pub const kOfxPropInstanceData: &CStr = c"OfxPropInstanceData";
pub const kOfxPropType: &CStr = c"OfxPropType";
pub const kOfxPropName: &CStr = c"OfxPropName";
pub const kOfxPropVersion: &CStr = c"OfxPropVersion";
pub const kOfxPropVersionLabel: &CStr = c"OfxPropVersionLabel";
pub const kOfxPropPluginDescription: &CStr = c"OfxPropPluginDescription";
pub const kOfxPropLabel: &CStr = c"OfxPropLabel";
pub const kOfxPropIcon: &CStr = c"OfxPropIcon";
pub const kOfxPropShortLabel: &CStr = c"OfxPropShortLabel";
pub const kOfxPropLongLabel: &CStr = c"OfxPropLongLabel";
pub const kOfxPropChangeReason: &CStr = c"OfxPropChangeReason";
pub const kOfxPropEffectInstance: &CStr = c"OfxPropEffectInstance";
pub const kOfxPropHostOSHandle: &CStr = c"OfxPropHostOSHandle";

// Values of kOfxPropChangeReason.
pub const kOfxChangeUserEdited: &CStr = c"OfxChangeUserEdited";
pub const kOfxChangePluginEdited: &CStr = c"OfxChangePluginEdited";
pub const kOfxChangeTime: &CStr = c"OfxChangeTime";

// Used for infinite ranges (frame ranges, param ranges).
pub const kOfxFlagInfiniteMax: c_int = c_int::MAX;
pub const kOfxFlagInfiniteMin: c_int = c_int::MIN;

// Pixel depths.
pub const kOfxBitDepthNone: &CStr = c"OfxBitDepthNone";
pub const kOfxBitDepthByte: &CStr = c"OfxBitDepthByte";
pub const kOfxBitDepthShort: &CStr = c"OfxBitDepthShort";
pub const kOfxBitDepthHalf: &CStr = c"OfxBitDepthHalf";
pub const kOfxBitDepthFloat: &CStr = c"OfxBitDepthFloat";

// Status codes.
pub const kOfxStatOK: OfxStatus = 0;
pub const kOfxStatFailed: OfxStatus = 1;
pub const kOfxStatErrFatal: OfxStatus = 2;
pub const kOfxStatErrUnknown: OfxStatus = 3;
pub const kOfxStatErrMissingHostFeature: OfxStatus = 4;
pub const kOfxStatErrUnsupported: OfxStatus = 5;
pub const kOfxStatErrExists: OfxStatus = 6;
pub const kOfxStatErrFormat: OfxStatus = 7;
pub const kOfxStatErrMemory: OfxStatus = 8;
pub const kOfxStatErrBadHandle: OfxStatus = 9;
pub const kOfxStatErrBadIndex: OfxStatus = 10;
pub const kOfxStatErrValue: OfxStatus = 11;
pub const kOfxStatReplyYes: OfxStatus = 12;
pub const kOfxStatReplyNo: OfxStatus = 13;
pub const kOfxStatReplyDefault: OfxStatus = 14;
pub const kOfxStatUnlicensed: OfxStatus = 15;
