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
        }
    }

    /// Nuke: General (and Filter) contexts only, Float only.
    pub fn nuke() -> Self {
        HostProfile {
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
    /// `setPersistentMessage`, no sequential render property.
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

    /// Natron: every context and suite.
    pub fn natron() -> Self {
        HostProfile {
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
