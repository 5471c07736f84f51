//! Describing an effect: the effect descriptor, clip descriptors and parameter descriptors.
//!
//! Each setter asks the host for exactly one property, so what the host is asked stays
//! visible; the builders only add what hosts are known to need (a display range next to
//! every range, for Resolve).

use crate::effect::ImageEffect;
use crate::error::{OfxError, Result};
use crate::param::ParamSet;
use crate::property::PropertySet;
use crate::sys::*;
use crate::types::{Components, Context, PixelDepth, RenderThreadSafety};

/// The effect descriptor of `Describe` / `DescribeInContext`.
#[derive(Clone, Copy, Debug)]
pub struct EffectDescriptor {
    effect: ImageEffect,
    props: PropertySet,
}

impl EffectDescriptor {
    pub fn new(effect: ImageEffect) -> Result<Self> {
        Ok(EffectDescriptor {
            effect,
            props: effect.properties()?,
        })
    }
    pub fn effect(&self) -> ImageEffect {
        self.effect
    }
    pub fn properties(&self) -> PropertySet {
        self.props
    }
    pub fn set_label(&self, label: &str) -> Result<()> {
        self.props.set_string(kOfxPropLabel, 0, label)
    }
    pub fn set_short_label(&self, label: &str) -> Result<()> {
        self.props.set_string(kOfxPropShortLabel, 0, label)
    }
    pub fn set_long_label(&self, label: &str) -> Result<()> {
        self.props.set_string(kOfxPropLongLabel, 0, label)
    }
    pub fn set_description(&self, text: &str) -> Result<()> {
        self.props.set_string(kOfxPropPluginDescription, 0, text)
    }
    pub fn set_grouping(&self, grouping: &str) -> Result<()> {
        self.props
            .set_string(kOfxImageEffectPluginPropGrouping, 0, grouping)
    }
    pub fn set_supported_contexts(&self, contexts: &[Context]) -> Result<()> {
        let v: Vec<_> = contexts.iter().map(|c| c.as_cstr()).collect();
        self.props
            .set_cstrs(kOfxImageEffectPropSupportedContexts, &v)
    }
    pub fn set_supported_pixel_depths(&self, depths: &[PixelDepth]) -> Result<()> {
        let v: Vec<_> = depths.iter().map(|d| d.as_cstr()).collect();
        self.props
            .set_cstrs(kOfxImageEffectPropSupportedPixelDepths, &v)
    }
    pub fn set_render_thread_safety(&self, safety: RenderThreadSafety) -> Result<()> {
        self.props
            .set_cstr(kOfxImageEffectPluginRenderThreadSafety, 0, safety.as_cstr())
    }
    /// `kOfxImageEffectPluginPropHostFrameThreading`: false when the plugin does its own SMP.
    pub fn set_host_frame_threading(&self, host_threads: bool) -> Result<()> {
        self.props
            .set_bool(kOfxImageEffectPluginPropHostFrameThreading, 0, host_threads)
    }
    pub fn set_single_instance(&self, single: bool) -> Result<()> {
        self.props
            .set_bool(kOfxImageEffectPluginPropSingleInstance, 0, single)
    }
    pub fn set_supports_tiles(&self, tiles: bool) -> Result<()> {
        self.props
            .set_bool(kOfxImageEffectPropSupportsTiles, 0, tiles)
    }
    pub fn set_supports_multi_resolution(&self, multi: bool) -> Result<()> {
        self.props
            .set_bool(kOfxImageEffectPropSupportsMultiResolution, 0, multi)
    }
    pub fn set_supports_multiple_clip_depths(&self, multi: bool) -> Result<()> {
        self.props
            .set_bool(kOfxImageEffectPropSupportsMultipleClipDepths, 0, multi)
    }
    pub fn set_temporal_clip_access(&self, temporal: bool) -> Result<()> {
        self.props
            .set_bool(kOfxImageEffectPropTemporalClipAccess, 0, temporal)
    }
    /// `kOfxImageEffectInstancePropSequentialRender`: 0, 1 (must) or 2 (better). Some hosts
    /// (Nuke on descriptors, Resolve) lack it, so an unknown property is not an error.
    pub fn set_sequential_render(&self, mode: i32) -> Result<()> {
        PropertySet::ignore_unknown(self.props.set_int(
            kOfxImageEffectInstancePropSequentialRender,
            0,
            mode,
        ))
    }
    /// `kOfxImageEffectPropCPURenderSupported` (1.5.1); ignored by hosts that predate it.
    pub fn set_cpu_render_supported(&self, supported: bool) -> Result<()> {
        let value = if supported { c"true" } else { c"false" };
        PropertySet::ignore_unknown(self.props.set_cstr(
            kOfxImageEffectPropCPURenderSupported,
            0,
            value,
        ))
    }

    /// `clipDefine`, then the clip's properties.
    pub fn define_clip(&self, clip: &ClipDescriptor) -> Result<PropertySet> {
        let props = self.effect.define_clip_raw(&clip.name)?;
        let comps: Vec<_> = clip.components.iter().map(|c| c.as_cstr()).collect();
        props.set_cstrs(kOfxImageEffectPropSupportedComponents, &comps)?;
        props.set_bool(kOfxImageClipPropOptional, 0, clip.optional)?;
        props.set_bool(kOfxImageEffectPropSupportsTiles, 0, clip.supports_tiles)?;
        props.set_bool(
            kOfxImageEffectPropTemporalClipAccess,
            0,
            clip.temporal_access,
        )?;
        if let Some(label) = &clip.label {
            props.set_string(kOfxPropLabel, 0, label)?;
        }
        Ok(props)
    }

    pub fn param_set(&self) -> Result<ParamSet> {
        self.effect.param_set()
    }
}

/// The outArgs of `GetClipPreferences`.
#[derive(Clone, Copy, Debug)]
pub struct ClipPreferences(pub PropertySet);

impl ClipPreferences {
    /// `kOfxImageEffectFrameVarying`: a generator whose frames differ over time even with
    /// fixed parameters must say so, or hosts (Natron's cache) show stale frames.
    pub fn set_frame_varying(&self, varying: bool) -> Result<()> {
        self.0.set_bool(kOfxImageEffectFrameVarying, 0, varying)
    }
    pub fn set_premultiplication(&self, premultiplied: bool) -> Result<()> {
        let v = if premultiplied {
            kOfxImagePreMultiplied
        } else {
            kOfxImageOpaque
        };
        self.0.set_cstr(kOfxImageEffectPropPreMultiplication, 0, v)
    }
    /// `OfxImageClipPropDepth_<clip>`; a Generator cannot change its output's depth, so
    /// this is for inputs of the General context.
    pub fn set_clip_depth(&self, clip: &str, depth: PixelDepth) -> Result<()> {
        let name = crate::c_string(&format!("OfxImageClipPropDepth_{clip}"));
        self.0.set_cstr(&name, 0, depth.as_cstr())
    }
    pub fn set_clip_components(&self, clip: &str, components: Components) -> Result<()> {
        let name = crate::c_string(&format!("OfxImageClipPropComponents_{clip}"));
        self.0.set_cstr(&name, 0, components.as_cstr())
    }
}

/// A clip to define. The Generator context mandates only `Output`; any input must be optional.
#[derive(Debug, Clone)]
pub struct ClipDescriptor {
    pub name: String,
    pub label: Option<String>,
    pub components: Vec<Components>,
    pub optional: bool,
    pub supports_tiles: bool,
    pub temporal_access: bool,
}

impl ClipDescriptor {
    /// The `Output` clip: RGBA, no tiles.
    pub fn output() -> Self {
        ClipDescriptor::new("Output")
    }
    pub fn new(name: &str) -> Self {
        ClipDescriptor {
            name: name.to_owned(),
            label: None,
            components: vec![Components::Rgba],
            optional: false,
            supports_tiles: false,
            temporal_access: false,
        }
    }
    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }
    pub fn label(mut self, label: &str) -> Self {
        self.label = Some(label.to_owned());
        self
    }
    pub fn components(mut self, components: &[Components]) -> Self {
        self.components = components.to_vec();
        self
    }
}

/// `kOfxParamPropStringMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMode {
    SingleLine,
    MultiLine,
    FilePath,
    DirectoryPath,
    Label,
    RichText,
}

impl StringMode {
    pub fn as_cstr(self) -> &'static std::ffi::CStr {
        match self {
            StringMode::SingleLine => kOfxParamStringIsSingleLine,
            StringMode::MultiLine => kOfxParamStringIsMultiLine,
            StringMode::FilePath => kOfxParamStringIsFilePath,
            StringMode::DirectoryPath => kOfxParamStringIsDirectoryPath,
            StringMode::Label => kOfxParamStringIsLabel,
            StringMode::RichText => kOfxParamStringIsRichTextFormat,
        }
    }
}

/// What kind of parameter, with its type-specific settings.
#[derive(Debug, Clone)]
pub enum ParamKind {
    Int {
        default: i32,
        range: (i32, i32),
        display_range: Option<(i32, i32)>,
    },
    Double {
        default: f64,
        range: (f64, f64),
        display_range: Option<(f64, f64)>,
        increment: Option<f64>,
        digits: Option<i32>,
    },
    Boolean {
        default: bool,
    },
    Choice {
        options: Vec<String>,
        default: usize,
    },
    String {
        default: String,
        mode: StringMode,
    },
    PushButton,
    Group {
        open: bool,
    },
    Page {
        children: Vec<String>,
    },
}

/// A parameter to define: `ParamDescriptor::int("seed").label("Seed").range(0, 1000).define(&set)`.
#[derive(Debug, Clone)]
pub struct ParamDescriptor {
    pub name: String,
    pub kind: ParamKind,
    pub label: Option<String>,
    pub hint: Option<String>,
    pub parent: Option<String>,
    pub animates: Option<bool>,
    pub evaluate_on_change: Option<bool>,
    pub persistent: Option<bool>,
    pub secret: bool,
    pub enabled: bool,
}

impl ParamDescriptor {
    fn new(name: &str, kind: ParamKind) -> Self {
        ParamDescriptor {
            name: name.to_owned(),
            kind,
            label: None,
            hint: None,
            parent: None,
            animates: None,
            evaluate_on_change: None,
            persistent: None,
            secret: false,
            enabled: true,
        }
    }
    /// Unbounded int (range `kOfxFlagInfiniteMin..kOfxFlagInfiniteMax`) defaulting to 0.
    pub fn int(name: &str) -> Self {
        ParamDescriptor::new(
            name,
            ParamKind::Int {
                default: 0,
                range: (i32::MIN, i32::MAX),
                display_range: None,
            },
        )
    }
    pub fn double(name: &str) -> Self {
        ParamDescriptor::new(
            name,
            ParamKind::Double {
                default: 0.0,
                range: (-f64::MAX, f64::MAX),
                display_range: None,
                increment: None,
                digits: None,
            },
        )
    }
    pub fn boolean(name: &str) -> Self {
        ParamDescriptor::new(name, ParamKind::Boolean { default: false })
    }
    pub fn choice(name: &str, options: &[&str]) -> Self {
        ParamDescriptor::new(
            name,
            ParamKind::Choice {
                options: options.iter().map(|s| s.to_string()).collect(),
                default: 0,
            },
        )
    }
    pub fn string(name: &str, mode: StringMode) -> Self {
        ParamDescriptor::new(
            name,
            ParamKind::String {
                default: String::new(),
                mode,
            },
        )
    }
    pub fn push_button(name: &str) -> Self {
        ParamDescriptor::new(name, ParamKind::PushButton)
    }
    pub fn group(name: &str) -> Self {
        ParamDescriptor::new(name, ParamKind::Group { open: true })
    }
    pub fn page(name: &str, children: &[&str]) -> Self {
        ParamDescriptor::new(
            name,
            ParamKind::Page {
                children: children.iter().map(|s| s.to_string()).collect(),
            },
        )
    }

    pub fn label(mut self, label: &str) -> Self {
        self.label = Some(label.to_owned());
        self
    }
    pub fn hint(mut self, hint: &str) -> Self {
        self.hint = Some(hint.to_owned());
        self
    }
    pub fn parent(mut self, group: &str) -> Self {
        self.parent = Some(group.to_owned());
        self
    }
    pub fn animates(mut self, animates: bool) -> Self {
        self.animates = Some(animates);
        self
    }
    pub fn evaluate_on_change(mut self, evaluate: bool) -> Self {
        self.evaluate_on_change = Some(evaluate);
        self
    }
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = Some(persistent);
        self
    }
    pub fn secret(mut self, secret: bool) -> Self {
        self.secret = secret;
        self
    }
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Default value: int/choice index/boolean (0 or 1) for int-valued kinds, ignored otherwise.
    pub fn default_int(mut self, value: i32) -> Self {
        match &mut self.kind {
            ParamKind::Int { default, .. } => *default = value,
            ParamKind::Boolean { default } => *default = value != 0,
            ParamKind::Choice { default, .. } => *default = value.max(0) as usize,
            _ => {}
        }
        self
    }
    pub fn default_double(mut self, value: f64) -> Self {
        if let ParamKind::Double { default, .. } = &mut self.kind {
            *default = value;
        }
        self
    }
    pub fn default_string(mut self, value: &str) -> Self {
        if let ParamKind::String { default, .. } = &mut self.kind {
            *default = value.to_owned();
        }
        self
    }
    /// Hard range of an int parameter; also the display range unless one is given.
    pub fn range_int(mut self, min: i32, max: i32) -> Self {
        if let ParamKind::Int { range, .. } = &mut self.kind {
            *range = (min, max);
        }
        self
    }
    pub fn display_range_int(mut self, min: i32, max: i32) -> Self {
        if let ParamKind::Int { display_range, .. } = &mut self.kind {
            *display_range = Some((min, max));
        }
        self
    }
    /// Hard range of a double parameter; also the display range unless one is given.
    pub fn range_double(mut self, min: f64, max: f64) -> Self {
        if let ParamKind::Double { range, .. } = &mut self.kind {
            *range = (min, max);
        }
        self
    }
    pub fn display_range_double(mut self, min: f64, max: f64) -> Self {
        if let ParamKind::Double { display_range, .. } = &mut self.kind {
            *display_range = Some((min, max));
        }
        self
    }
    pub fn increment(mut self, step: f64) -> Self {
        if let ParamKind::Double { increment, .. } = &mut self.kind {
            *increment = Some(step);
        }
        self
    }
    pub fn digits(mut self, n: i32) -> Self {
        if let ParamKind::Double { digits, .. } = &mut self.kind {
            *digits = Some(n);
        }
        self
    }

    fn param_type(&self) -> &'static std::ffi::CStr {
        match self.kind {
            ParamKind::Int { .. } => kOfxParamTypeInteger,
            ParamKind::Double { .. } => kOfxParamTypeDouble,
            ParamKind::Boolean { .. } => kOfxParamTypeBoolean,
            ParamKind::Choice { .. } => kOfxParamTypeChoice,
            ParamKind::String { .. } => kOfxParamTypeString,
            ParamKind::PushButton => kOfxParamTypePushButton,
            ParamKind::Group { .. } => kOfxParamTypeGroup,
            ParamKind::Page { .. } => kOfxParamTypePage,
        }
    }

    /// `paramDefine`, then every property. Numeric parameters always get a display range
    /// (the range when none is given): Resolve shows (-1,1) or (0,0) otherwise.
    pub fn define(&self, set: &ParamSet) -> Result<PropertySet> {
        if self.name.is_empty() || self.name.contains('-') {
            // Nuke rejects '-' in knob names ("illegal character").
            return Err(OfxError::new(
                kOfxStatErrValue,
                format!("invalid parameter name {:?}", self.name),
            ));
        }
        let p = set.define_raw(self.param_type(), &self.name)?;
        p.set_string(
            kOfxPropLabel,
            0,
            self.label.as_deref().unwrap_or(&self.name),
        )?;
        if let Some(hint) = &self.hint {
            p.set_string(kOfxParamPropHint, 0, hint)?;
        }
        if let Some(parent) = &self.parent {
            p.set_string(kOfxParamPropParent, 0, parent)?;
        }
        let valued = !matches!(
            self.kind,
            ParamKind::PushButton | ParamKind::Group { .. } | ParamKind::Page { .. }
        );
        if valued {
            if let Some(a) = self.animates {
                p.set_bool(kOfxParamPropAnimates, 0, a)?;
            }
            if let Some(e) = self.evaluate_on_change {
                p.set_bool(kOfxParamPropEvaluateOnChange, 0, e)?;
            }
            if let Some(persistent) = self.persistent {
                p.set_bool(kOfxParamPropPersistant, 0, persistent)?;
            }
        }
        if !matches!(self.kind, ParamKind::Page { .. }) {
            if self.secret {
                p.set_bool(kOfxParamPropSecret, 0, true)?;
            }
            if !self.enabled {
                p.set_bool(kOfxParamPropEnabled, 0, false)?;
            }
        }
        match &self.kind {
            ParamKind::Int {
                default,
                range,
                display_range,
            } => {
                let display = display_range.unwrap_or(*range);
                p.set_int(kOfxParamPropDefault, 0, *default)?;
                p.set_int(kOfxParamPropMin, 0, range.0)?;
                p.set_int(kOfxParamPropMax, 0, range.1)?;
                p.set_int(kOfxParamPropDisplayMin, 0, display.0)?;
                p.set_int(kOfxParamPropDisplayMax, 0, display.1)?;
            }
            ParamKind::Double {
                default,
                range,
                display_range,
                increment,
                digits,
            } => {
                let display = display_range.unwrap_or(*range);
                p.set_double(kOfxParamPropDefault, 0, *default)?;
                p.set_double(kOfxParamPropMin, 0, range.0)?;
                p.set_double(kOfxParamPropMax, 0, range.1)?;
                p.set_double(kOfxParamPropDisplayMin, 0, display.0)?;
                p.set_double(kOfxParamPropDisplayMax, 0, display.1)?;
                if let Some(step) = increment {
                    p.set_double(kOfxParamPropIncrement, 0, *step)?;
                }
                if let Some(n) = digits {
                    p.set_int(kOfxParamPropDigits, 0, *n)?;
                }
            }
            ParamKind::Boolean { default } => p.set_bool(kOfxParamPropDefault, 0, *default)?,
            ParamKind::Choice { options, default } => {
                for (i, option) in options.iter().enumerate() {
                    p.set_string(kOfxParamPropChoiceOption, i, option)?;
                }
                p.set_int(kOfxParamPropDefault, 0, *default as i32)?;
            }
            ParamKind::String { default, mode } => {
                p.set_cstr(kOfxParamPropStringMode, 0, mode.as_cstr())?;
                p.set_string(kOfxParamPropDefault, 0, default)?;
            }
            ParamKind::PushButton => {}
            ParamKind::Group { open } => {
                PropertySet::ignore_unknown(p.set_bool(kOfxParamPropGroupOpen, 0, *open))?;
            }
            ParamKind::Page { children } => {
                for (i, child) in children.iter().enumerate() {
                    p.set_string(kOfxParamPropPageChild, i, child)?;
                }
            }
        }
        Ok(p)
    }
}
