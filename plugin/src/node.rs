//! One node instance: which clip it shows, the job producing it, and what render does.
//!
//! A clip is identified by the settings that shape it ([`clip_key`]: every parameter except
//! `first_frame`, `colour` and `cache`, which only change how it is shown or stored). The state
//! is shared by the main thread and any number of render threads; the lock is never held while
//! waiting for frames or while setting parameters (hosts may re-enter the plugin from
//! `paramSetValue`).

use crate::colour::Colour;
use crate::frame_memory::{self, HeldClip};
use crate::params::{
    Settings, GENERATION, GUIDANCE, HEIGHT, RESOLUTION, RESOLUTIONS, SHIFT, STEPS, WIDTH,
};
use crate::pixels;
use crate::remote::{self, ClipJob};
use crate::services::{self, ServiceChoice, NO_MODEL_MESSAGE};
use crate::status;
use ofx_bindings::progress::Progress;
use ofx_bindings::sys::*;
use ofx_bindings::{ImageEffect, MessageType, OfxError, PropertySet, Reply, Result};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use t2v_bridge::{
    Error, Frame, GenerationParams, JobProgress, ModelSpec, PreviewCadence, ProgressObserver,
    Request, Service,
};
use t2v_support::lock;

/// Shown while the demo model stands in for real weights.
const DEMO_NOTE: &str =
    "Demo model (tiny, shapes only, 256x160): set Model Path to a Wan2.2 TI2V-5B folder for real clips.";

/// The clip-shaping part of the settings.
pub fn clip_key(s: &Settings) -> Settings {
    Settings {
        first_frame: 0,
        colour: None,
        cache: true,
        // An execution choice: the same clip under any budget (the service's key tells tiled
        // decodes apart).
        memory: Default::default(),
        ..s.clone()
    }
}

/// How often a waiting thread looks at the host's abort flag and the progress bar, besides
/// every progress change of the job (each denoising step, each decoded frame).
const POLL: Duration = Duration::from_millis(20);

struct ActiveJob {
    key: Settings,
    handle: Arc<ClipJob>,
    /// The local service (none for the remote device).
    service: Option<Arc<Service>>,
    tag: String,
    /// A clip being read from the disk cache: interactive renders wait for it too.
    from_cache: bool,
}

#[derive(Default)]
struct State {
    job: Option<ActiveJob>,
    /// The finished clip, under the process's frame memory budget (see [`frame_memory`]).
    clip: Option<(Settings, Arc<HeldClip>)>,
    error: Option<(Settings, Error)>,
    cancelled: Option<Settings>,
    /// Settings whose clip was not in the disk cache when an interactive render looked.
    cache_miss: Option<Settings>,
    /// An outcome that the main thread has not yet announced (status, re-render).
    unannounced: bool,
}

/// Per-instance data (`kOfxPropInstanceData`).
#[derive(Default)]
pub struct Node {
    state: Mutex<State>,
    /// The host's working space, read once at CreateInstance (before the node writes its own
    /// colourspace on the output clip): what `auto` gives.
    host_colour: std::sync::OnceLock<Colour>,
}

/// The status code for a failure: out of GPU memory gets its own.
pub fn error_status(e: &Error) -> OfxStatus {
    let m = e.message.to_ascii_lowercase();
    if m.contains("out of memory") || m.contains("out_of_memory") {
        kOfxStatGPUOutOfMemory
    } else {
        kOfxStatFailed
    }
}

fn ofx_error(e: &Error) -> OfxError {
    OfxError::new(error_status(e), e.message.clone())
}

/// The prompt, shortened, to name a job in logs.
fn tag(prompt: &str) -> String {
    let p: String = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    if p.chars().count() > 60 {
        format!("\"{}…\"", p.chars().take(60).collect::<String>())
    } else {
        format!("\"{p}\"")
    }
}

/// The generation parameters of `settings`.
fn params(settings: &Settings) -> std::result::Result<GenerationParams, Error> {
    let params = GenerationParams {
        prompt: settings.full_prompt()?,
        // Empty means Wan2.2's default negative prompt, except for the demo model, whose own
        // (usually empty) negative prompt is already in the settings.
        negative_prompt: (settings.uses_demo || !settings.negative.trim().is_empty())
            .then(|| settings.negative.clone()),
        width: settings.width,
        height: settings.height,
        frames: settings.frames,
        steps: settings.steps,
        guidance: settings.guidance,
        shift: settings.shift,
        sampler: settings.sampler,
        seed: settings.seed,
        step_cache: settings.step_cache,
        step_cache_method: settings.step_cache_method,
    };
    params.validate()?;
    Ok(params)
}

/// The model folder, the service and the request for `settings`.
fn prepare(settings: &Settings) -> std::result::Result<(Request, Arc<Service>), Error> {
    let params = params(settings)?;
    let model = match settings.model.trim() {
        "" => services::default_model_path().ok_or_else(|| Error::bad_input(NO_MODEL_MESSAGE))?,
        path => PathBuf::from(path),
    };
    if !model.is_dir() {
        return Err(Error::bad_input(format!(
            "Model Path {} is not a folder: set it to a Wan2.2 TI2V-5B folder",
            model.display()
        )));
    }
    let service = services::service(ServiceChoice {
        device: settings.device,
        disk_cache: settings.cache,
    })?;
    // The precision is left to the service (`Precision::Auto`), as `t2v` leaves it: the same
    // settings make the same clip, cached once for both.
    let upscale = settings.upscale_request(&model)?;
    let mut request = Request::new(ModelSpec::folder(model), params);
    request.model.loras = settings.loras()?;
    request.upscale = upscale;
    request.memory = settings.memory;
    request.decoder = match settings.style_decoder {
        Some(preference) => {
            let decoder = t2v_bridge::preferred_decoder(preference, &request.model);
            if decoder != preference {
                crate::log!(
                    "style {:?}: the model has no tiny decoder (tiny_decoder/ in its folder), so the full decoder decodes",
                    settings.style
                );
            }
            decoder
        }
        None => settings.decoder,
    };
    Ok((request, service))
}

/// What a render shows.
enum Show {
    Frame(Frame),
    Placeholder(Option<f32>),
    Wait(Arc<ClipJob>),
    Fail(Error),
}

impl State {
    /// Moves a finished job's outcome into the clip or the error. Returns a line for the
    /// host's log (the service's counters) when a clip arrived.
    fn settle(&mut self) -> Option<String> {
        let outcome = self.job.as_ref()?.handle.wait_timeout(Duration::ZERO)?;
        let job = self.job.take().expect("checked above");
        self.unannounced = true;
        match outcome {
            Ok(clip) => {
                self.clip = Some((job.key, frame_memory::hold(clip.clone(), &job.tag)));
                self.cache_miss = None;
                let Some(service) = &job.service else {
                    return Some(format!(
                        "clip {} ready ({} frames, {}; remote)",
                        job.tag,
                        clip.frames.len(),
                        if clip.from_cache {
                            "from the cache"
                        } else {
                            "from the worker pool"
                        },
                    ));
                };
                let s = service.stats();
                Some(format!(
                    "clip {} ready ({} frames, {}); service: model_loads={} generations={} cache_hits={} jobs_merged={} jobs_submitted={}",
                    job.tag,
                    clip.frames.len(),
                    if clip.from_cache { "from the cache" } else { "generated" },
                    s.model_loads,
                    s.generations,
                    s.cache_hits,
                    s.jobs_merged,
                    s.jobs_submitted
                ))
            }
            Err(e) if e.is_cancelled() => {
                self.cancelled = Some(job.key);
                None
            }
            Err(e) => {
                crate::log!("clip {} failed: {}", job.tag, e.message);
                self.error = Some((job.key, e));
                None
            }
        }
    }

    /// Starts (or joins) the job for `key`; with `previews`, the job makes live previews for
    /// interactive renders (farm renders never ask for them).
    fn submit(
        &mut self,
        effect: &ImageEffect,
        settings: &Settings,
        key: &Settings,
        from_cache: bool,
        previews: bool,
        colour: Colour,
    ) -> std::result::Result<Arc<ClipJob>, Error> {
        let tag = tag(&settings.prompt);
        let image = crate::source::first_frame(effect, settings.first_frame as f64, colour);
        if settings.remote {
            // LoRAs and upscalers are files here, and a worker never opens a client's path.
            if !settings.loras()?.is_empty() || settings.upscale.is_some() {
                return Err(Error::bad_input(
                    "the remote device takes neither LoRAs nor an upscale (they are files on \
                     this machine, and a worker never opens a path sent to it): clear LoRAs and \
                     set Upscale to off, or render on this machine",
                ));
            }
            let request = remote::request(settings, params(settings)?, image);
            let handle = Arc::new(remote::submit(settings, &request)?);
            crate::log!(
                "job {tag}: sent to the worker pool (model {}, {}x{}, {} frames, {} steps)",
                request.model_id,
                settings.width,
                settings.height,
                settings.frames,
                settings.steps
            );
            return Ok(self.start(key, handle, None, tag, from_cache));
        }
        let (mut request, service) = prepare(settings)?;
        request.preview = previews.then_some(PreviewCadence::Auto);
        request.image = image;
        let (log_tag, steps) = (tag.clone(), settings.steps);
        // Runs on the worker thread: only our own log, never a host call.
        let observer: ProgressObserver = Arc::new(move |p: &JobProgress| {
            if p.stage.is_final() {
                crate::log!(
                    "job {log_tag}: {} after {}/{steps} steps, {} frames decoded",
                    p.stage,
                    p.steps_done,
                    p.frames_done
                );
            }
        });
        // The plan is decided from the headers before anything loads; log it whole.
        match service.plan(&request) {
            Ok(plan) => {
                for line in plan.text.lines() {
                    crate::log!("job {tag}: memory {}: {line}", settings.memory);
                }
            }
            Err(e) => crate::log!("job {tag}: memory {}: {}", settings.memory, e.message),
        }
        let handle = Arc::new(ClipJob::Local(
            service.submit_observed(request, Some(observer))?,
        ));
        crate::log!(
            "job {tag}: submitted ({}x{}, {} frames, {} steps, seed {})",
            settings.width,
            settings.height,
            settings.frames,
            settings.steps,
            settings.seed
        );
        Ok(self.start(key, handle, Some(service), tag, from_cache))
    }

    fn start(
        &mut self,
        key: &Settings,
        handle: Arc<ClipJob>,
        service: Option<Arc<Service>>,
        tag: String,
        from_cache: bool,
    ) -> Arc<ClipJob> {
        self.error = None;
        self.cancelled = None;
        self.job = Some(ActiveJob {
            key: key.clone(),
            handle: handle.clone(),
            service,
            tag,
            from_cache,
        });
        handle
    }

    fn cancel(&mut self, key: Option<&Settings>) -> Option<ActiveJob> {
        if key.is_some_and(|k| self.job.as_ref().is_some_and(|j| &j.key != k)) {
            return None;
        }
        let job = self.job.take()?;
        job.handle.cancel();
        self.cancelled = Some(job.key.clone());
        self.unannounced = true;
        Some(job)
    }

    /// The status line and persistent message for the current settings, with a note when the
    /// demo model stands in for real weights.
    fn describe(&self, settings: &Settings) -> (String, Option<(MessageType, String)>) {
        let (line, message) = self.describe_clip(settings);
        if !settings.uses_demo || line.starts_with("Error") {
            return (line, message);
        }
        let prompt = settings
            .full_prompt()
            .unwrap_or_else(|_| settings.prompt.clone());
        let unknown = t2v_demo::unknown_words(&prompt);
        let note = if unknown.is_empty() {
            DEMO_NOTE.to_string()
        } else {
            format!(
                "{DEMO_NOTE} It doesn't know: {}. It understands {}.",
                unknown.join(", "),
                t2v_demo::shipped::capabilities()
            )
        };
        let message = match message {
            Some((kind, text)) => Some((kind, format!("{text}\n{note}"))),
            None if !unknown.is_empty() => Some((MessageType::Warning, note.clone())),
            None => None,
        };
        (format!("{line} | {note}"), message)
    }

    fn describe_clip(&self, settings: &Settings) -> (String, Option<(MessageType, String)>) {
        let key = clip_key(settings);
        if let Some(job) = self.job.as_ref().filter(|j| j.key == key) {
            let text = generating_text(&job.handle);
            return (text.clone(), Some((MessageType::Message, text)));
        }
        if let Some((_, clip)) = self.clip.as_ref().filter(|(k, _)| *k == key) {
            let from = if clip.is_released() {
                " (released from memory: read again on the next render)"
            } else if clip.from_cache {
                " (from the cache)"
            } else {
                ""
            };
            return (
                format!(
                    "Ready: {} frames, {}x{}{from}{}",
                    clip.frames,
                    settings.clip_size().0,
                    settings.clip_size().1,
                    device_note(settings)
                ),
                None,
            );
        }
        if let Some((_, e)) = self.error.as_ref().filter(|(k, _)| *k == key) {
            return (
                format!("Error: {}", e.message),
                Some((MessageType::Error, e.message.clone())),
            );
        }
        if settings.model.trim().is_empty() && services::default_model_path().is_none() {
            return (NO_MODEL_MESSAGE.to_string(), None);
        }
        if self.cancelled.as_ref() == Some(&key) {
            return ("Cancelled: press Generate to start again".into(), None);
        }
        (
            format!("Press Generate to make the clip{}", device_note(settings)),
            None,
        )
    }
}

/// The status of a running job: "Generating: preview, step k of N (...)" while interactive
/// renders show a preview, else "Generating: <progress>".
fn generating_text(handle: &ClipJob) -> String {
    let p = handle.progress();
    match handle.preview() {
        Some(preview) => format!(
            "Generating: preview, step {} of {} ({p})",
            preview.step, preview.steps
        ),
        None => format!("Generating: {p}"),
    }
}

/// " (on the CPU: why)" when the node could have used a GPU but computes on the CPU.
fn device_note(settings: &Settings) -> String {
    match crate::engine::cpu_reason() {
        Some(why) if settings.device != t2v_bridge::DeviceChoice::Cpu => {
            format!(" (on the CPU: {why})")
        }
        _ => String::new(),
    }
}

impl Node {
    /// Main thread: settles a finished job and, if something happened since the last time,
    /// updates the status, the persistent message, and bumps `generation` so that the host
    /// renders again. Hosts with a progress suite get here at the end of Generate; the others
    /// on their next main-thread action (see docs/node.md).
    pub fn announce(&self, effect: &ImageEffect, force: bool) -> Result<()> {
        let set = effect.param_set()?;
        let settings = Settings::read(&set, None)?;
        let (line, changed, (text, message)) = {
            let mut state = lock(&self.state);
            let line = state.settle();
            let changed = std::mem::take(&mut state.unannounced);
            (line, changed, state.describe(&settings))
        };
        if let Some(line) = line {
            status::log_message(effect, "t2v.stats", &line);
        }
        status::set_status(effect, &text);
        if changed || force {
            match message {
                Some((kind, text)) => status::show(effect, kind, &text),
                None => status::clear(effect),
            }
        }
        if changed {
            let counter = set.param(GENERATION)?;
            counter.set_int(counter.get_int(None)?.wrapping_add(1).max(0))?;
        }
        Ok(())
    }

    /// CreateInstance: reads the host's working space, sets the parameters' state up.
    pub fn set_up(&self, effect: &ImageEffect) -> Result<()> {
        self.host_colour
            .get_or_init(|| crate::working_space::host_colour(effect));
        crate::params::show_style_name(&effect.param_set()?)?;
        self.update_sampling_params(effect, false)?;
        self.update_size_params(effect)
    }

    /// The colour of the node's output (and of its `Source` input) for `choice`.
    pub fn colour(&self, choice: Option<Colour>) -> Colour {
        choice.unwrap_or_else(|| *self.host_colour.get().unwrap_or(&Colour::SrgbDisplay))
    }

    /// Main thread: disables Steps, Guidance and Shift while the sampler (`dmd`) or the model
    /// folder brings its own, and logs the values used instead; enables them again otherwise.
    pub fn update_sampling_params(&self, effect: &ImageEffect, log: bool) -> Result<()> {
        let set = effect.param_set()?;
        let fixed = crate::params::fixed_sampling(&set)?;
        for name in [STEPS, GUIDANCE, SHIFT] {
            set.param(name)?.set_enabled(fixed.is_none())?;
        }
        if let (Some(s), true) = (fixed, log) {
            crate::log!(
                "sampler {}: {} steps, guidance {} ({}), shift {}; Steps, Guidance and Shift are not used",
                s.sampler,
                s.steps,
                s.guidance,
                if s.guidance > 1.0 { "on" } else { "off" },
                s.shift
            );
        }
        Ok(())
    }

    /// Main thread: enables `width`/`height` only for the custom resolution.
    pub fn update_size_params(&self, effect: &ImageEffect) -> Result<()> {
        let set = effect.param_set()?;
        let custom = RESOLUTIONS
            .get(set.param(RESOLUTION)?.get_int(None)?.max(0) as usize)
            .is_some_and(|(_, s)| s.is_none());
        set.param(WIDTH)?.set_enabled(custom)?;
        set.param(HEIGHT)?.set_enabled(custom)?;
        Ok(())
    }

    /// The Generate button (main thread, `InstanceChanged`).
    pub fn generate(&self, effect: &ImageEffect) -> Result<()> {
        let set = effect.param_set()?;
        let settings = Settings::read(&set, None)?;
        let key = clip_key(&settings);
        let submitted = {
            let mut state = lock(&self.state);
            state.settle();
            state.cache_miss = None;
            match state.job.as_ref().filter(|j| j.key == key) {
                Some(job) => Ok(job.handle.clone()),
                None => state.submit(
                    effect,
                    &settings,
                    &key,
                    false,
                    !host_is_background(effect),
                    self.colour(settings.colour),
                ),
            }
        };
        let handle = match submitted {
            Ok(handle) => handle,
            Err(e) => {
                crate::log!("generate refused: {}", e.message);
                {
                    let mut state = lock(&self.state);
                    state.error = Some((key, e));
                    state.unannounced = true;
                }
                return self.announce(effect, true);
            }
        };
        status::set_status(effect, "Generating: queued");
        status::show(effect, MessageType::Message, "Generating: queued");
        // The sanctioned "analysis" pattern: a modal progress bar from InstanceChanged, whose
        // Cancel stops the job. The worker keeps generating; this thread only watches.
        let Ok(progress) = Progress::start(effect, "Text to Video: generating", "t2v.generate")
        else {
            // No progress suite: return now; renders show the placeholder with its bar and
            // the next main-thread action announces the clip.
            crate::log!("no progress suite: generating in the background");
            return Ok(());
        };
        let mut shown = -1.0f32;
        loop {
            handle.wait_for_change(POLL * 5);
            let p = handle.progress();
            if !progress.update(p.fraction as f64).unwrap_or(true) {
                crate::log!(
                    "generate cancelled from the progress bar at step {}",
                    p.steps_done
                );
                lock(&self.state).cancel(Some(&key));
                break;
            }
            if p.fraction - shown >= 0.05 {
                shown = p.fraction;
                let text = generating_text(&handle);
                status::show(effect, MessageType::Message, &text);
                status::set_status(effect, &text);
            }
            if handle.is_finished() {
                break;
            }
        }
        drop(progress);
        self.announce(effect, true)
    }

    /// The Cancel button.
    pub fn cancel(&self, effect: &ImageEffect) -> Result<()> {
        if let Some(job) = lock(&self.state).cancel(None) {
            crate::log!("job {}: cancelled by the user", job.tag);
        }
        self.announce(effect, true)
    }

    /// Drops this instance's interest in its job (DestroyInstance).
    pub fn release(&self) {
        lock(&self.state).job.take();
    }

    /// The Render action.
    pub fn render(&self, effect: &ImageEffect, in_args: &PropertySet) -> Result<Reply> {
        let time = in_args.get_double(kOfxPropTime, 0)?;
        let window = in_args.get_rect_i(kOfxImageEffectPropRenderWindow)?;
        let scale = in_args
            .get_double(kOfxImageEffectPropRenderScale, 0)
            .unwrap_or(1.0);
        let scale = if scale > 0.0 && scale.is_finite() {
            scale
        } else {
            1.0
        };
        let background = !in_args
            .get_bool(kOfxImageEffectPropInteractiveRenderStatus, 0)
            .unwrap_or(true)
            || host_is_background(effect);
        let set = effect.param_set()?;
        let settings = Settings::read(&set, Some(time))?;
        let key = clip_key(&settings);
        let index = settings.frame_index(time);
        let mut image = effect.output_clip()?.image(time, None)?;
        let size = (settings.width.max(1), settings.height.max(1));

        let (show, line) = {
            let mut state = lock(&self.state);
            let line = state.settle();
            let show = self.choose(&mut state, effect, &settings, &key, index, background);
            (show, line)
        };
        if let Some(line) = line {
            status::log_message(effect, "t2v.stats", &line);
        }
        let frame = match show {
            Show::Frame(frame) => frame,
            Show::Placeholder(progress) => {
                pixels::write_placeholder(&mut image, window, size, scale, progress)?;
                return Ok(Reply::Ok);
            }
            Show::Fail(e) => {
                if background {
                    status::show(effect, MessageType::Error, &e.message);
                }
                return Err(ofx_error(&e));
            }
            Show::Wait(handle) => {
                self.wait_for_frame(effect, &key, &handle, index, background, time)?
            }
        };
        pixels::write_frame(
            &mut image,
            window,
            &frame,
            scale,
            self.colour(settings.colour),
        )?;
        Ok(Reply::Ok)
    }

    /// Decides what a render shows, starting a job where one is needed (under the lock, so
    /// that concurrent renders start it once).
    fn choose(
        &self,
        state: &mut State,
        effect: &ImageEffect,
        settings: &Settings,
        key: &Settings,
        index: usize,
        background: bool,
    ) -> Show {
        let held = state
            .clip
            .as_ref()
            .filter(|(k, _)| k == key)
            .map(|(_, h)| h);
        if let Some(clip) = held.and_then(|h| h.get()) {
            return Show::Frame(clip.frames[index.min(clip.frames.len() - 1)].clone());
        }
        let released = held.is_some();
        if let Some((_, e)) = state.error.as_ref().filter(|(k, _)| k == key) {
            return Show::Fail(e.clone());
        }
        if let Some(job) = state.job.as_ref().filter(|j| &j.key == key) {
            if background || job.from_cache {
                return match job.handle.frame(index) {
                    Some(frame) => Show::Frame(frame),
                    None => Show::Wait(job.handle.clone()),
                };
            }
            // Interactive: the decoded frame, else the latest preview of it, else the bar.
            return match job.handle.latest_frame(index) {
                Some(streamed) => Show::Frame(streamed.frame),
                None => Show::Placeholder(Some(job.handle.progress().fraction)),
            };
        }
        if released {
            // Released under the memory budget: read it again (or generate it again), and
            // wait for it even in an interactive render, as for a clip in the disk cache.
            crate::log!(
                "render at frame {index}: the clip was released from memory; reading it again"
            );
        } else if !background {
            // Interactive: never generate, but a clip in the disk cache is shown at once
            // (reading it needs no model).
            if !settings.cache || state.cache_miss.as_ref() == Some(key) {
                return Show::Placeholder(None);
            }
            let cached = if settings.remote {
                remote::is_cached(settings, params(settings).ok()).then_some(())
            } else {
                prepare(settings).ok().and_then(|(request, service)| {
                    let cache_key = service.key_for(&request).ok()?;
                    service
                        .cache()
                        .is_some_and(|c| c.contains(&cache_key))
                        .then_some(())
                })
            };
            if cached.is_none() {
                state.cache_miss = Some(key.clone());
                return Show::Placeholder(None);
            }
        }
        match state.submit(
            effect,
            settings,
            key,
            !background || released,
            !background,
            self.colour(settings.colour),
        ) {
            Ok(handle) => Show::Wait(handle),
            Err(e) => {
                crate::log!("render at frame {index}: {}", e.message);
                state.error = Some((key.clone(), e.clone()));
                state.unannounced = true;
                Show::Fail(e)
            }
        }
    }

    /// Waits for frame `index`, reporting progress and polling the host's abort flag. A
    /// background render that is aborted cancels the job (the worker stops within one step).
    fn wait_for_frame(
        &self,
        effect: &ImageEffect,
        key: &Settings,
        handle: &ClipJob,
        index: usize,
        background: bool,
        time: f64,
    ) -> Result<Frame> {
        let progress = Progress::start(effect, "Text to Video: generating", "t2v.render").ok();
        loop {
            if let Some(frame) = handle.wait_frame(index, POLL) {
                return Ok(frame);
            }
            let user_cancel = progress
                .as_ref()
                .is_some_and(|p| !p.update(handle.progress().fraction as f64).unwrap_or(true));
            if effect.abort_requested() || user_cancel {
                let p = handle.progress();
                let why = if user_cancel {
                    "cancelled from the progress bar"
                } else {
                    "aborted by the host"
                };
                if background {
                    if let Some(job) = lock(&self.state).cancel(Some(key)) {
                        crate::log!(
                            "job {}: render of frame {time} {why} at step {}/{}; job cancelled",
                            job.tag,
                            p.steps_done,
                            key.steps
                        );
                    }
                }
                let _ = ofx_bindings::message::message(
                    Some(effect),
                    MessageType::Log,
                    "t2v.abort",
                    &format!("render {why} at step {}/{}", p.steps_done, key.steps),
                );
                return Err(OfxError::failed(format!("render {why}")));
            }
            if handle.is_finished() {
                let mut state = lock(&self.state);
                state.settle();
                if let Some(clip) = state
                    .clip
                    .as_ref()
                    .filter(|(k, _)| k == key)
                    .and_then(|(_, held)| held.get())
                {
                    return Ok(clip.frames[index.min(clip.frames.len() - 1)].clone());
                }
                let e = state
                    .error
                    .as_ref()
                    .filter(|(k, _)| k == key)
                    .map(|(_, e)| e.clone())
                    .unwrap_or_else(Error::cancelled);
                drop(state);
                if background && !e.is_cancelled() {
                    status::show(effect, MessageType::Error, &e.message);
                }
                return Err(ofx_error(&e));
            }
        }
    }
}

/// `kOfxImageEffectHostPropIsBackground`: a render farm / command-line host.
pub fn host_is_background(effect: &ImageEffect) -> bool {
    effect
        .suites()
        .host_properties()
        .and_then(|p| p.get_bool(kOfxImageEffectHostPropIsBackground, 0))
        .unwrap_or(false)
}
