//! Enumerations over the string constants a generator reads and writes.

use crate::sys::*;
use std::ffi::CStr;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $value:expr),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The OFX string for this value.
            pub fn as_cstr(self) -> &'static CStr {
                match self { $($name::$variant => $value),+ }
            }
            /// Parses the OFX string; `None` for values this enum does not know.
            pub fn from_cstr(value: &CStr) -> Option<Self> {
                $(if value == $value { return Some($name::$variant); })+
                None
            }
            pub fn from_name(value: &str) -> Option<Self> {
                $(if value.as_bytes() == $value.to_bytes() { return Some($name::$variant); })+
                None
            }
        }
    };
}

string_enum!(
    /// Image effect contexts.
    Context {
        Generator => kOfxImageEffectContextGenerator,
        Filter => kOfxImageEffectContextFilter,
        Transition => kOfxImageEffectContextTransition,
        Paint => kOfxImageEffectContextPaint,
        General => kOfxImageEffectContextGeneral,
        Retimer => kOfxImageEffectContextRetimer,
    }
);

string_enum!(
    /// Pixel depths of clips and images.
    PixelDepth {
        None => kOfxBitDepthNone,
        Byte => kOfxBitDepthByte,
        Short => kOfxBitDepthShort,
        Half => kOfxBitDepthHalf,
        Float => kOfxBitDepthFloat,
    }
);

impl PixelDepth {
    /// Bytes per channel.
    pub fn bytes_per_component(self) -> usize {
        match self {
            PixelDepth::None => 0,
            PixelDepth::Byte => 1,
            PixelDepth::Short | PixelDepth::Half => 2,
            PixelDepth::Float => 4,
        }
    }
}

string_enum!(
    /// Pixel components of clips and images.
    Components {
        None => kOfxImageComponentNone,
        Rgba => kOfxImageComponentRGBA,
        Rgb => kOfxImageComponentRGB,
        Alpha => kOfxImageComponentAlpha,
    }
);

impl Components {
    pub fn count(self) -> usize {
        match self {
            Components::None => 0,
            Components::Rgba => 4,
            Components::Rgb => 3,
            Components::Alpha => 1,
        }
    }
}

string_enum!(
    /// `kOfxImageEffectPluginRenderThreadSafety`.
    RenderThreadSafety {
        Unsafe => kOfxImageEffectRenderUnsafe,
        InstanceSafe => kOfxImageEffectRenderInstanceSafe,
        FullySafe => kOfxImageEffectRenderFullySafe,
    }
);

string_enum!(
    /// `kOfxPropChangeReason` of `InstanceChanged`.
    ChangeReason {
        UserEdited => kOfxChangeUserEdited,
        PluginEdited => kOfxChangePluginEdited,
        Time => kOfxChangeTime,
    }
);

string_enum!(
    /// Message types of the message suites.
    MessageType {
        Fatal => kOfxMessageFatal,
        Error => kOfxMessageError,
        Warning => kOfxMessageWarning,
        Message => kOfxMessageMessage,
        Log => kOfxMessageLog,
        Question => kOfxMessageQuestion,
    }
);
