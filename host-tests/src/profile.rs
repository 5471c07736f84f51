//! Host profiles: what a host advertises and which suites it hands out, imitating real hosts.

use ofx_bindings::{Context, PixelDepth};

/// Which message suites the host provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageSupport {
    None,
    V1,
    V2,
    /// V2 whose `setPersistentMessage` is NULL (Resolve 14).
    V2NullPersistent,
}

/// Which progress suites the host provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressSupport {
    None,
    V1,
    /// V1 and V2.
    V2,
}

/// The colour a host works in: what it expects from a generator and hands to an effect's
/// inputs, and what its file writers encode from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkingSpace {
    /// Scene-linear (Nuke, Natron): readers linearise, 8-bit writers apply the sRGB curve.
    SceneLinear,
    /// Display-referred video values (Resolve's Rec.709 timelines): written as they are.
    Display,
}

impl WorkingSpace {
    /// What the host's 8-bit file writer stores for a value `v` of its working space.
    pub fn written_8bit(self, v: f32) -> u8 {
        let v = v.clamp(0.0, 1.0);
        let encoded = match self {
            WorkingSpace::Display => v,
            WorkingSpace::SceneLinear if v <= 0.0031308 => 12.92 * v,
            WorkingSpace::SceneLinear => 1.055 * v.powf(1.0 / 2.4) - 0.055,
        };
        (encoded * 255.0).round() as u8
    }

    /// A value of the working space as its host's 8-bit readers would produce it from the
    /// display byte `b` (the inverse of [`WorkingSpace::written_8bit`]).
    pub fn read_8bit(self, b: u8) -> f32 {
        let v = b as f32 / 255.0;
        match self {
            WorkingSpace::Display => v,
            WorkingSpace::SceneLinear if v <= 0.04045 => v / 12.92,
            WorkingSpace::SceneLinear => ((v + 0.055) / 1.055).powf(2.4),
        }
    }
}

/// OFX 1.5 colour management the host offers (`kOfxImageEffectPropColourManagementStyle`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColourManagement {
    /// e.g. `OfxImageEffectPropColourManagementCore`.
    pub style: String,
    /// The colourspace the host sets on every clip, e.g. `ACEScg`.
    pub working: String,
}

#[derive(Debug, Clone)]
pub struct HostProfile {
    /// `kOfxPropName`, e.g. `uk.co.thefoundry.nuke`.
    pub name: String,
    pub label: String,
    pub version: [i32; 3],
    pub contexts: Vec<Context>,
    pub depths: Vec<PixelDepth>,
    pub multiple_clip_depths: bool,
    pub messages: MessageSupport,
    pub progress: ProgressSupport,
    pub multithread_suite: bool,
    pub memory_suite: bool,
    /// Whether the host knows `kOfxImageEffectInstancePropSequentialRender` and reports
    /// `kOfxImageEffectPropSequentialRenderStatus` (Resolve does not).
    pub sequential_render_property: bool,
    /// `kOfxImageEffectHostPropIsBackground`: a render farm / command line host.
    pub is_background: bool,
    /// Project size in pixels (also the default generator region of definition).
    pub project_size: (f64, f64),
    pub frame_rate: f64,
    /// Frames of the project, for `kOfxImageEffectInstancePropEffectDuration` and clip ranges.
    pub frame_range: (f64, f64),
    pub working_space: WorkingSpace,
    /// `None`: no OFX colour management (the colour-management properties are unknown).
    pub colour_management: Option<ColourManagement>,
}

impl HostProfile {
    /// A host that supports everything this test host implements.
    pub fn generic() -> Self {
        HostProfile {
            name: "org.example.ofx-test-host".into(),
            label: "OFX test host".into(),
            version: [1, 0, 0],
            contexts: vec![Context::Generator, Context::General, Context::Filter],
            depths: vec![PixelDepth::Byte, PixelDepth::Short, PixelDepth::Float],
            multiple_clip_depths: true,
            messages: MessageSupport::V2,
            progress: ProgressSupport::V2,
            multithread_suite: true,
            memory_suite: true,
            sequential_render_property: true,
            is_background: false,
            project_size: (64.0, 48.0),
            frame_rate: 24.0,
            frame_range: (1.0, 100.0),
            working_space: WorkingSpace::Display,
            colour_management: None,
        }
    }

    /// Nuke: General (and Filter) contexts only, Float only, a scene-linear working space.
    pub fn nuke() -> Self {
        HostProfile {
            working_space: WorkingSpace::SceneLinear,
            name: "uk.co.thefoundry.nuke".into(),
            label: "Nuke".into(),
            version: [15, 0, 0],
            contexts: vec![Context::Filter, Context::General],
            depths: vec![PixelDepth::Float],
            multiple_clip_depths: false,
            ..HostProfile::generic()
        }
    }

    /// DaVinci Resolve: Generator among others, Float/Short/Byte, message V2 with a NULL
    /// `setPersistentMessage`, no sequential render property; a display-referred (Rec.709
    /// video) working space without OFX colour management.
    pub fn resolve() -> Self {
        HostProfile {
            name: "DaVinciResolve".into(),
            label: "DaVinci Resolve".into(),
            version: [19, 0, 0],
            contexts: vec![
                Context::Filter,
                Context::General,
                Context::Transition,
                Context::Generator,
            ],
            depths: vec![PixelDepth::Float, PixelDepth::Short, PixelDepth::Byte],
            multiple_clip_depths: false,
            messages: MessageSupport::V2NullPersistent,
            sequential_render_property: false,
            ..HostProfile::generic()
        }
    }

    /// Natron: every context and suite, a scene-linear working space.
    pub fn natron() -> Self {
        HostProfile {
            working_space: WorkingSpace::SceneLinear,
            name: "fr.inria.Natron".into(),
            label: "Natron".into(),
            version: [2, 5, 0],
            contexts: vec![
                Context::Generator,
                Context::Filter,
                Context::General,
                Context::Transition,
            ],
            depths: vec![PixelDepth::Float, PixelDepth::Short, PixelDepth::Byte],
            multiple_clip_depths: true,
            ..HostProfile::generic()
        }
    }

    /// OFX 1.5 colour management of `style` (e.g. `OfxImageEffectPropColourManagementCore`)
    /// with `working` (e.g. `ACEScg`) on every clip.
    pub fn colour_managed(mut self, style: &str, working: &str) -> Self {
        self.colour_management = Some(ColourManagement {
            style: style.into(),
            working: working.into(),
        });
        self
    }
    pub fn without_progress_suite(mut self) -> Self {
        self.progress = ProgressSupport::None;
        self
    }
    pub fn without_message_v2(mut self) -> Self {
        if self.messages != MessageSupport::None {
            self.messages = MessageSupport::V1;
        }
        self
    }
    pub fn without_message_suite(mut self) -> Self {
        self.messages = MessageSupport::None;
        self
    }
    pub fn without_multithread_suite(mut self) -> Self {
        self.multithread_suite = false;
        self
    }
    pub fn background(mut self, background: bool) -> Self {
        self.is_background = background;
        self
    }
    pub fn project_size(mut self, width: f64, height: f64) -> Self {
        self.project_size = (width, height);
        self
    }
}
