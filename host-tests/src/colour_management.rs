//! OFX 1.5 colour-management property names (ofxColour.h), for hosts whose profile has
//! [`crate::ColourManagement`].

/// Host and plugin descriptors: the style offered.
pub const STYLE: &std::ffi::CStr = c"OfxImageEffectPropColourManagementStyle";
pub const STYLE_NONE: &str = "OfxImageEffectPropColourManagementNone";
/// Clip instances: the colourspace of the clip's images (the plugin may set it on its output).
pub const CLIP_COLOURSPACE: &std::ffi::CStr = c"OfxImageClipPropColourspace";
/// Clip instances, and `GetClipPreferences` outArgs with a `_<clip>` suffix.
pub const CLIP_PREFERRED_COLOURSPACES: &str = "OfxImageClipPropPreferredColourspaces";
