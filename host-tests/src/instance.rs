//! Effect instances: parameters, InstanceChanged, clip preferences and renders.

use crate::error::{HostError, Result};
use crate::image::{HostBuffer, RenderedImage, RowLayout};
use crate::objects::{ActiveRender, ClipObj, EffectObj, ParamObj, Stored, ValueKind};
use crate::plugin::Plugin;
use crate::props::{c, PropertySet};
use crate::records::{Message, ProgressEvent};
use ofx_bindings::sys::*;
use ofx_bindings::{Context, PixelDepth, RenderThreadSafety};
use std::ffi::{c_void, CStr};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// A parameter value as tests see it.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i32),
    Double(f64),
    Bool(bool),
    String(String),
    Ints(Vec<i32>),
    Doubles(Vec<f64>),
    /// Push buttons, groups and pages.
    None,
}

impl From<i32> for ParamValue {
    fn from(v: i32) -> Self {
        ParamValue::Int(v)
    }
}
impl From<f64> for ParamValue {
    fn from(v: f64) -> Self {
        ParamValue::Double(v)
    }
}
impl From<bool> for ParamValue {
    fn from(v: bool) -> Self {
        ParamValue::Bool(v)
    }
}
impl From<&str> for ParamValue {
    fn from(v: &str) -> Self {
        ParamValue::String(v.into())
    }
}
impl From<String> for ParamValue {
    fn from(v: String) -> Self {
        ParamValue::String(v)
    }
}

/// One render: time, depth, row layout, scale and mode.
#[derive(Debug, Clone, Copy)]
pub struct RenderRequest {
    pub time: f64,
    pub depth: PixelDepth,
    pub layout: RowLayout,
    pub render_scale: f64,
    /// `None`: interactive unless the host profile is a background host.
    pub interactive: Option<bool>,
    /// `kOfxImageEffectPropRenderWindow`; `None` is the whole image (its bounds).
    pub window: Option<OfxRectI>,
}

impl RenderRequest {
    pub fn new(time: f64, depth: PixelDepth) -> Self {
        RenderRequest {
            time,
            depth,
            layout: RowLayout::default(),
            render_scale: 1.0,
            interactive: None,
            window: None,
        }
    }
    pub fn layout(mut self, layout: RowLayout) -> Self {
        self.layout = layout;
        self
    }
    pub fn interactive(mut self, interactive: bool) -> Self {
        self.interactive = Some(interactive);
        self
    }
    pub fn render_scale(mut self, scale: f64) -> Self {
        self.render_scale = scale;
        self
    }
    /// Renders only this window of the image (pixels outside it keep the host's fill).
    pub fn window(mut self, window: OfxRectI) -> Self {
        self.window = Some(window);
        self
    }
}

/// An effect instance. Dropping it sends `DestroyInstance`.
pub struct Instance {
    plugin: Plugin,
    obj: Box<EffectObj>,
    context: Context,
    render_lock: Mutex<()>,
    clip_preferences: Box<PropertySet>,
    destroyed: std::sync::atomic::AtomicBool,
    changes: Mutex<Vec<(String, String)>>,
}

fn gpu_flags(p: &PropertySet) {
    p.define_bool(kOfxImageEffectPropCudaEnabled, false);
    p.define_pointer(kOfxImageEffectPropCudaStream, &[0]);
    p.define_bool(kOfxImageEffectPropMetalEnabled, false);
    p.define_bool(kOfxImageEffectPropOpenCLEnabled, false);
    p.define_bool(kOfxImageEffectPropOpenGLEnabled, false);
}

impl Instance {
    pub(crate) fn create(
        plugin: Plugin,
        context: Context,
        saved: &[(String, ParamValue)],
    ) -> Result<Instance> {
        let desc = plugin.describe_in_context(context)?;
        let state = plugin.inner.state().clone();
        let profile = &state.profile;
        let props = desc
            .properties()
            .clone_as(format!("instance ({context:?})"));
        props.define_string(kOfxPropType, &["OfxTypeImageEffectInstance"]);
        props.define_string(
            kOfxImageEffectPropContext,
            &[context.as_cstr().to_str().unwrap()],
        );
        props.define_pointer(kOfxPropInstanceData, &[0]);
        let (w, h) = profile.project_size;
        props.define_double(kOfxImageEffectPropProjectSize, &[w, h]);
        props.define_double(kOfxImageEffectPropProjectOffset, &[0.0, 0.0]);
        props.define_double(kOfxImageEffectPropProjectExtent, &[w, h]);
        props.define_double(kOfxImageEffectPropProjectPixelAspectRatio, &[1.0]);
        let (a, b) = profile.frame_range;
        props.define_double(kOfxImageEffectInstancePropEffectDuration, &[b - a + 1.0]);
        props.define_double(kOfxImageEffectPropFrameRate, &[profile.frame_rate]);
        props.define_bool(kOfxPropIsInteractive, !profile.is_background);
        let mut obj = EffectObj::new(state.clone(), props, true, Some(context));
        let obj_ptr: *const EffectObj = &*obj;
        for clip in desc.clips() {
            // SAFETY: descriptor clips live as long as `desc`.
            let clip = unsafe { &*clip };
            let connected = clip.name == "Output";
            obj.clips
                .lock()
                .unwrap()
                .push(ClipObj::instance_of(clip, obj_ptr, &state, connected));
        }
        let set_ptr: *const crate::objects::ParamSetObj = &*obj.params;
        for param in desc.params() {
            // SAFETY: descriptor params live as long as `desc`.
            obj.params
                .params
                .lock()
                .unwrap()
                .push(ParamObj::instance_of(unsafe { &*param }, set_ptr));
        }
        obj.params.props = desc.param_set_props().clone_as("parameter set (instance)");
        let instance = Instance {
            plugin,
            obj,
            context,
            render_lock: Mutex::new(()),
            clip_preferences: PropertySet::new("GetClipPreferences outArgs"),
            destroyed: std::sync::atomic::AtomicBool::new(false),
            changes: Mutex::new(Vec::new()),
        };
        // A project's values are there before CreateInstance, as a host loads them.
        for (name, value) in saved {
            let (p, stored) = instance.checked_value(name, value.clone())?;
            p.store(stored);
        }
        if let Err(e) =
            instance
                .plugin
                .inner
                .action(kOfxActionCreateInstance, instance.handle(), None, None)
        {
            // A failed CreateInstance gets no DestroyInstance.
            instance.destroyed.store(true, Ordering::SeqCst);
            return Err(e);
        }
        instance.get_clip_preferences()?;
        instance.dispatch_plugin_changes()?;
        Ok(instance)
    }

    fn handle(&self) -> *const c_void {
        self.obj.handle() as *const c_void
    }
    fn inner(&self) -> &crate::plugin::PluginInner {
        &self.plugin.inner
    }
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }
    pub fn context(&self) -> Context {
        self.context
    }
    pub fn properties(&self) -> &PropertySet {
        &self.obj.props
    }

    /// `GetClipPreferences`; the outArgs stay readable with [`Instance::clip_preferences`].
    pub fn get_clip_preferences(&self) -> Result<()> {
        let out = &self.clip_preferences;
        let profile = &self.obj.host.profile;
        for name in self.obj.clip_names() {
            let clip = self.clip_props(&name).unwrap();
            out.define_string(
                &c(&format!("OfxImageClipPropComponents_{name}")),
                &[&clip.get_string(kOfxImageEffectPropComponents, 0).unwrap()],
            );
            out.define_string(
                &c(&format!("OfxImageClipPropDepth_{name}")),
                &[&clip.get_string(kOfxImageEffectPropPixelDepth, 0).unwrap()],
            );
            out.define_double(&c(&format!("OfxImageClipPropPAR_{name}")), &[1.0]);
            if profile.colour_management.is_some() {
                out.define_string_var(
                    &c(&format!(
                        "{}_{name}",
                        crate::colour_management::CLIP_PREFERRED_COLOURSPACES
                    )),
                    &[],
                );
            }
        }
        out.define_double(kOfxImageEffectPropFrameRate, &[profile.frame_rate]);
        out.define_string(kOfxImageClipPropFieldOrder, &["OfxFieldNone"]);
        out.define_string(
            kOfxImageEffectPropPreMultiplication,
            &["OfxImageAlphaPremultiplied"],
        );
        out.define_bool(kOfxImageClipPropContinuousSamples, false);
        out.define_bool(kOfxImageEffectFrameVarying, false);
        self.inner().action(
            kOfxImageEffectActionGetClipPreferences,
            self.handle(),
            None,
            Some(out),
        )?;
        if profile.colour_management.is_some() {
            // The host delivers inputs in the first colourspace the plugin asked for.
            for name in self.obj.clip_names() {
                let preferred = out
                    .get_strings(&c(&format!(
                        "{}_{name}",
                        crate::colour_management::CLIP_PREFERRED_COLOURSPACES
                    )))
                    .unwrap_or_default();
                if let (Some(first), false) = (preferred.first(), name == "Output") {
                    self.clip_props(&name)
                        .unwrap()
                        .define_string(crate::colour_management::CLIP_COLOURSPACE, &[first]);
                }
            }
        }
        Ok(())
    }

    /// The outArgs of the last `GetClipPreferences` (e.g. `kOfxImageEffectFrameVarying`).
    pub fn clip_preferences(&self) -> &PropertySet {
        &self.clip_preferences
    }

    pub fn clip_props(&self, name: &str) -> Option<&PropertySet> {
        // SAFETY: clips are never removed from an instance; the Box keeps its address.
        self.obj
            .clip(name)
            .map(|c| unsafe { &*(&*(*c).props as *const PropertySet) })
    }

    fn param_obj(&self, name: &str) -> Result<&ParamObj> {
        // SAFETY: parameters are never removed from an instance; the Box keeps its address.
        self.obj
            .params
            .find(name)
            .map(|p| unsafe { &*p })
            .ok_or_else(|| HostError::NoSuchParam(name.into()))
    }

    pub fn param_names(&self) -> Vec<String> {
        self.obj
            .params
            .params
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }

    /// The instance parameter's properties (label, ranges, enabled, ...).
    pub fn param_properties(&self, name: &str) -> Option<&PropertySet> {
        self.param_obj(name).ok().map(|p| &*p.props)
    }

    /// Current value of a parameter.
    pub fn param(&self, name: &str) -> Result<ParamValue> {
        let p = self.param_obj(name)?;
        let stored = p.value.lock().unwrap().clone();
        Ok(match stored {
            Stored::Ints(v) if v.len() == 1 && p.param_type == kOfxParamTypeBoolean => {
                ParamValue::Bool(v[0] != 0)
            }
            Stored::Ints(v) if v.len() == 1 => ParamValue::Int(v[0]),
            Stored::Ints(v) => ParamValue::Ints(v),
            Stored::Doubles(v) if v.len() == 1 => ParamValue::Double(v[0]),
            Stored::Doubles(v) => ParamValue::Doubles(v),
            Stored::Str(s) => ParamValue::String(s.to_string_lossy().into_owned()),
            Stored::None => ParamValue::None,
        })
    }

    /// Connects an image to the input clip `clip` (e.g. a generator's optional `Source`): the
    /// clip then reports itself connected and `clipGetImage` returns this RGBA f32 image at any
    /// time. `rgba` is `width * height * 4` values, rows top-down as image files store them.
    pub fn connect_input(
        &self,
        clip: &str,
        width: usize,
        height: usize,
        rgba: &[f32],
    ) -> Result<()> {
        if clip == "Output" {
            return Err(HostError::Unsupported(
                "the output clip is not an input".into(),
            ));
        }
        if rgba.len() != width * height * 4 {
            return Err(HostError::Unsupported(format!(
                "{} values for a {width}x{height} RGBA image",
                rgba.len()
            )));
        }
        let found = self
            .obj
            .clip(clip)
            .ok_or_else(|| HostError::Unsupported(format!("no clip {clip:?}")))?;
        // OFX images are bottom-up: row 0 of the buffer is the bottom row.
        let pixels: Box<[f32]> = rgba
            .chunks_exact(width * 4)
            .rev()
            .flatten()
            .copied()
            .collect();
        let mut inputs = self.obj.inputs.lock().unwrap();
        inputs.retain(|i| i.clip != clip);
        inputs.push(crate::objects::InputImage {
            clip: clip.into(),
            width,
            height,
            pixels,
        });
        // SAFETY: `found` points into this instance's clip list, alive with the instance.
        unsafe { &*found }
            .props
            .define_bool(kOfxImageClipPropConnected, true);
        Ok(())
    }

    /// Sets a parameter as the user would, then sends `BeginInstanceChanged`,
    /// `InstanceChanged` (`kOfxChangeUserEdited`) and `EndInstanceChanged`.
    pub fn set_param(&self, name: &str, value: impl Into<ParamValue>) -> Result<()> {
        let (p, stored) = self.checked_value(name, value.into())?;
        p.store(stored);
        self.instance_changed(&[name.to_string()], kOfxChangeUserEdited, 1.0)
    }

    /// The persistent parameter values, as a host saves them in a project or script (load
    /// them into a new instance with [`Plugin::create_instance_from`]).
    pub fn saved_values(&self) -> Vec<(String, ParamValue)> {
        self.param_names()
            .into_iter()
            .filter(|name| {
                let p = self.param_obj(name).unwrap();
                p.kind != ValueKind::None
                    && p.props.get_int(kOfxParamPropPersistant, 0).unwrap_or(1) != 0
            })
            .map(|name| {
                let value = self.param(&name).unwrap();
                (name, value)
            })
            .collect()
    }

    /// The parameter and its value to store, checked as `paramSetValue` would.
    fn checked_value(&self, name: &str, value: ParamValue) -> Result<(&ParamObj, Stored)> {
        let p = self.param_obj(name)?;
        let wrong = |what: &str| HostError::ParamValue {
            name: name.into(),
            what: what.into(),
        };
        let stored = match (p.kind, p.dims, value) {
            (ValueKind::Int, 1, ParamValue::Int(v)) => Stored::Ints(vec![v]),
            (ValueKind::Int, 1, ParamValue::Bool(v)) => Stored::Ints(vec![v as i32]),
            (ValueKind::Int, n, ParamValue::Ints(v)) if v.len() == n => Stored::Ints(v),
            (ValueKind::Double, 1, ParamValue::Double(v)) => Stored::Doubles(vec![v]),
            (ValueKind::Double, 1, ParamValue::Int(v)) => Stored::Doubles(vec![v as f64]),
            (ValueKind::Double, n, ParamValue::Doubles(v)) if v.len() == n => Stored::Doubles(v),
            (ValueKind::String, _, ParamValue::String(s)) => Stored::Str(c(&s)),
            (ValueKind::None, _, _) => return Err(wrong("has no value (use push_button)")),
            (_, _, other) => return Err(wrong(&format!("cannot take {other:?}"))),
        };
        if p.param_type == kOfxParamTypeChoice {
            if let Stored::Ints(v) = &stored {
                let options = p.props.dimension(kOfxParamPropChoiceOption).unwrap_or(0) as i32;
                if v[0] < 0 || v[0] >= options {
                    return Err(wrong(&format!("choice {} out of 0..{options}", v[0])));
                }
            }
        }
        Ok((p, stored))
    }

    /// Sets a parameter from text, as the CLI does: numbers, `true`/`false`, choice labels.
    pub fn set_param_from_str(&self, name: &str, text: &str) -> Result<()> {
        let p = self.param_obj(name)?;
        let bad = || HostError::ParamValue {
            name: name.into(),
            what: format!("cannot parse {text:?}"),
        };
        let value = match p.kind {
            ValueKind::Int if p.param_type == kOfxParamTypeBoolean => match text {
                "1" | "true" | "on" | "yes" => ParamValue::Bool(true),
                "0" | "false" | "off" | "no" => ParamValue::Bool(false),
                _ => return Err(bad()),
            },
            ValueKind::Int if p.param_type == kOfxParamTypeChoice => match text.parse::<i32>() {
                Ok(i) => ParamValue::Int(i),
                Err(_) => {
                    let options = p
                        .props
                        .get_strings(kOfxParamPropChoiceOption)
                        .unwrap_or_default();
                    ParamValue::Int(options.iter().position(|o| o == text).ok_or_else(bad)? as i32)
                }
            },
            ValueKind::Int if p.dims == 1 => ParamValue::Int(text.parse().map_err(|_| bad())?),
            ValueKind::Int => ParamValue::Ints(
                text.split(',')
                    .map(|s| s.trim().parse())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|_| bad())?,
            ),
            ValueKind::Double if p.dims == 1 => {
                ParamValue::Double(text.parse().map_err(|_| bad())?)
            }
            ValueKind::Double => ParamValue::Doubles(
                text.split(',')
                    .map(|s| s.trim().parse())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|_| bad())?,
            ),
            ValueKind::String => ParamValue::String(text.into()),
            ValueKind::None => return Err(bad()),
        };
        self.set_param(name, value)
    }

    /// Presses a push button: the plugin reacts in `InstanceChanged`.
    pub fn push_button(&self, name: &str) -> Result<()> {
        let p = self.param_obj(name)?;
        if p.param_type != kOfxParamTypePushButton {
            return Err(HostError::ParamValue {
                name: name.into(),
                what: "is not a push button".into(),
            });
        }
        self.instance_changed(&[name.to_string()], kOfxChangeUserEdited, 1.0)
    }

    fn instance_changed(&self, names: &[String], reason: &CStr, time: f64) -> Result<()> {
        self.send_instance_changed(names, reason, time)?;
        self.dispatch_plugin_changes()
    }

    fn send_instance_changed(&self, names: &[String], reason: &CStr, time: f64) -> Result<()> {
        let reason_str = reason.to_str().unwrap();
        let begin_args = PropertySet::new("Begin/EndInstanceChanged inArgs");
        begin_args.define_string(kOfxPropChangeReason, &[reason_str]);
        self.inner().action(
            kOfxActionBeginInstanceChanged,
            self.handle(),
            Some(&begin_args),
            None,
        )?;
        for name in names {
            self.changes
                .lock()
                .unwrap()
                .push((name.clone(), reason_str.to_string()));
            let args = PropertySet::new("InstanceChanged inArgs");
            args.define_string(kOfxPropType, &["OfxTypeParameter"]);
            args.define_string(kOfxPropName, &[name]);
            args.define_string(kOfxPropChangeReason, &[reason_str]);
            args.define_double(kOfxPropTime, &[time]);
            args.define_double(kOfxImageEffectPropRenderScale, &[1.0, 1.0]);
            self.inner()
                .action(kOfxActionInstanceChanged, self.handle(), Some(&args), None)?;
        }
        self.inner().action(
            kOfxActionEndInstanceChanged,
            self.handle(),
            Some(&begin_args),
            None,
        )?;
        Ok(())
    }

    /// Sends `InstanceChanged(kOfxChangePluginEdited)` for parameters the plugin set, until
    /// none are left (a change may cause another, up to a bound against ping-pong).
    pub fn dispatch_plugin_changes(&self) -> Result<()> {
        for _ in 0..32 {
            let pending = std::mem::take(&mut *self.obj.pending_plugin_changes.lock().unwrap());
            if pending.is_empty() {
                return Ok(());
            }
            self.send_instance_changed(&pending, kOfxChangePluginEdited, 1.0)?;
        }
        Err(HostError::Unsupported(
            "the plugin keeps changing parameters in InstanceChanged".into(),
        ))
    }

    /// Every `InstanceChanged` sent to this instance: (parameter, reason), e.g.
    /// `("generation", "OfxChangePluginEdited")` after the plugin set a value.
    pub fn instance_changes(&self) -> Vec<(String, String)> {
        self.changes.lock().unwrap().clone()
    }

    /// Messages the plugin posted on this instance.
    pub fn messages(&self) -> Vec<Message> {
        self.obj.records.lock().unwrap().messages.clone()
    }
    /// The persistent message currently shown on this instance.
    pub fn persistent_message(&self) -> Option<Message> {
        self.obj.records.lock().unwrap().persistent.clone()
    }
    pub fn progress_events(&self) -> Vec<ProgressEvent> {
        self.obj.records.lock().unwrap().progress.clone()
    }
    /// The most renders that ran `Render` at the same time on this instance.
    pub fn max_concurrent_renders(&self) -> usize {
        self.obj.max_in_render.load(Ordering::SeqCst)
    }
    /// Images fetched by the plugin and not yet released.
    pub fn outstanding_images(&self) -> usize {
        self.obj.images.lock().unwrap().len()
    }

    pub fn purge_caches(&self) -> Result<()> {
        self.inner()
            .action(kOfxActionPurgeCaches, self.handle(), None, None)
            .map(drop)
    }
    pub fn sync_private_data(&self) -> Result<()> {
        self.inner()
            .action(kOfxActionSyncPrivateData, self.handle(), None, None)
            .map(drop)
    }

    /// `GetRegionOfDefinition`; the project extent when the plugin does not trap it.
    pub fn region_of_definition(&self, time: f64, render_scale: f64) -> Result<OfxRectD> {
        let in_args = PropertySet::new("GetRegionOfDefinition inArgs");
        in_args.define_double(kOfxPropTime, &[time]);
        in_args.define_double(
            kOfxImageEffectPropRenderScale,
            &[render_scale, render_scale],
        );
        let out = PropertySet::new("GetRegionOfDefinition outArgs");
        let (w, h) = self.obj.host.profile.project_size;
        out.define_double(kOfxImageEffectPropRegionOfDefinition, &[0.0, 0.0, w, h]);
        self.inner().action(
            kOfxImageEffectActionGetRegionOfDefinition,
            self.handle(),
            Some(&in_args),
            Some(&out),
        )?;
        let r = out
            .get_doubles(kOfxImageEffectPropRegionOfDefinition)
            .unwrap();
        Ok(OfxRectD {
            x1: r[0],
            y1: r[1],
            x2: r[2],
            y2: r[3],
        })
    }

    /// `GetTimeDomain` (General context only); `None` when the plugin lets the host decide.
    pub fn time_domain(&self) -> Result<Option<(f64, f64)>> {
        if self.context != Context::General {
            return Err(HostError::Unsupported(
                "GetTimeDomain is only sent in the General context".into(),
            ));
        }
        let out = PropertySet::new("GetTimeDomain outArgs");
        let (a, b) = self.obj.host.profile.frame_range;
        out.define_double(kOfxImageEffectPropFrameRange, &[a, b]);
        let status = self.inner().action(
            kOfxImageEffectActionGetTimeDomain,
            self.handle(),
            None,
            Some(&out),
        )?;
        if status == kOfxStatReplyDefault {
            return Ok(None);
        }
        let r = out.get_doubles(kOfxImageEffectPropFrameRange).unwrap();
        Ok(Some((r[0], r[1])))
    }

    fn sequence_args(&self, range: (f64, f64), req: &RenderRequest) -> Box<PropertySet> {
        let interactive = req
            .interactive
            .unwrap_or(!self.obj.host.profile.is_background);
        let p = PropertySet::new("sequence render inArgs");
        p.define_double(kOfxImageEffectPropFrameRange, &[range.0, range.1]);
        p.define_double(kOfxImageEffectPropFrameStep, &[1.0]);
        p.define_bool(kOfxPropIsInteractive, interactive);
        p.define_double(
            kOfxImageEffectPropRenderScale,
            &[req.render_scale, req.render_scale],
        );
        self.mode_args(&p, interactive);
        p
    }

    fn mode_args(&self, p: &PropertySet, interactive: bool) {
        if self.obj.host.profile.sequential_render_property {
            p.define_int(
                kOfxImageEffectPropSequentialRenderStatus,
                &[!interactive as i32],
            );
        }
        p.define_bool(kOfxImageEffectPropInteractiveRenderStatus, interactive);
        p.define_bool(kOfxImageEffectPropRenderQualityDraft, false);
        gpu_flags(p);
    }

    fn begin_sequence(&self, range: (f64, f64), req: &RenderRequest) -> Result<()> {
        let args = self.sequence_args(range, req);
        self.inner()
            .action(
                kOfxImageEffectActionBeginSequenceRender,
                self.handle(),
                Some(&args),
                None,
            )
            .map(drop)
    }

    fn end_sequence(&self, range: (f64, f64), req: &RenderRequest) -> Result<()> {
        let args = self.sequence_args(range, req);
        self.inner()
            .action(
                kOfxImageEffectActionEndSequenceRender,
                self.handle(),
                Some(&args),
                None,
            )
            .map(drop)
    }

    /// Renders one frame as an interactive host does: Begin, Render, EndSequenceRender.
    /// `row_padding` bytes follow each row of the host's output buffer.
    pub fn render(
        &self,
        time: f64,
        depth: PixelDepth,
        row_padding: usize,
    ) -> Result<RenderedImage> {
        self.render_with(&RenderRequest::new(time, depth).layout(RowLayout::padded(row_padding)))
    }

    pub fn render_with(&self, req: &RenderRequest) -> Result<RenderedImage> {
        Ok(self.render_sequence(&[req.time], req)?.remove(0))
    }

    /// One Begin/EndSequenceRender around a Render per time, on this thread.
    pub fn render_sequence(
        &self,
        times: &[f64],
        req: &RenderRequest,
    ) -> Result<Vec<RenderedImage>> {
        let range = range_of(times);
        self.begin_sequence(range, req)?;
        let result: Result<Vec<_>> = times
            .iter()
            .map(|&t| self.render_frame(&RenderRequest { time: t, ..*req }))
            .collect();
        let end = self.end_sequence(range, req);
        let images = result?;
        end?;
        Ok(images)
    }

    /// One sequence whose frames are rendered by one thread each, all at once, honouring the
    /// plugin's render thread safety.
    pub fn render_concurrently(
        &self,
        times: &[f64],
        req: &RenderRequest,
    ) -> Result<Vec<RenderedImage>> {
        let range = range_of(times);
        self.begin_sequence(range, req)?;
        let result: Result<Vec<_>> = std::thread::scope(|scope| {
            let handles: Vec<_> = times
                .iter()
                .map(|&t| {
                    scope.spawn(move || self.render_frame(&RenderRequest { time: t, ..*req }))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("render thread panicked"))
                .collect()
        });
        let end = self.end_sequence(range, req);
        let images = result?;
        end?;
        Ok(images)
    }

    fn render_frame(&self, req: &RenderRequest) -> Result<RenderedImage> {
        let profile = &self.obj.host.profile;
        if !profile.depths.contains(&req.depth) {
            return Err(HostError::Unsupported(format!(
                "the host profile {} has no {:?} depth",
                profile.name, req.depth
            )));
        }
        let plugin_depths = self.plugin.supported_pixel_depths();
        if !plugin_depths.is_empty() && !plugin_depths.contains(&req.depth) {
            return Err(HostError::Unsupported(format!(
                "the plugin does not support {:?}",
                req.depth
            )));
        }
        let depth_name = req.depth.as_cstr().to_str().unwrap();
        if let Some(output) = self.clip_props("Output") {
            output
                .set_str(kOfxImageEffectPropPixelDepth, 0, depth_name)
                .unwrap();
            output
                .set_str(kOfxImageClipPropUnmappedPixelDepth, 0, depth_name)
                .unwrap();
        }
        let rod = self.region_of_definition(req.time, req.render_scale)?;
        let s = req.render_scale;
        let bounds = OfxRectI {
            x1: (rod.x1 * s).floor() as i32,
            y1: (rod.y1 * s).floor() as i32,
            x2: (rod.x2 * s).ceil() as i32,
            y2: (rod.y2 * s).ceil() as i32,
        };
        let width = (bounds.x2 - bounds.x1).max(0) as usize;
        let height = (bounds.y2 - bounds.y1).max(0) as usize;
        let mut buffer = HostBuffer::new(width, height, req.depth, req.layout);
        let data = buffer.data_ptr();
        self.obj.renders.lock().unwrap().push(ActiveRender {
            thread: std::thread::current().id(),
            time: req.time,
            data,
            bounds,
            row_bytes: buffer.row_bytes(),
            depth: req.depth.as_cstr(),
            render_scale: s,
        });

        let interactive = req.interactive.unwrap_or(!profile.is_background);
        let args = PropertySet::new("Render inArgs");
        args.define_double(kOfxPropTime, &[req.time]);
        args.define_string(kOfxImageEffectPropFieldToRender, &["OfxFieldNone"]);
        let window = req.window.unwrap_or(bounds);
        args.define_int(
            kOfxImageEffectPropRenderWindow,
            &[window.x1, window.y1, window.x2, window.y2],
        );
        args.define_double(kOfxImageEffectPropRenderScale, &[s, s]);
        args.define_bool(kOfxImageEffectPropThumbnailRender, false);
        args.define_bool(kOfxImageEffectPropNoSpatialAwareness, false);
        self.mode_args(&args, interactive);

        let status = {
            let _plugin_lock;
            let _instance_lock;
            match self.plugin.render_thread_safety() {
                RenderThreadSafety::Unsafe => {
                    _plugin_lock = Some(self.inner().render_lock.lock().unwrap())
                }
                RenderThreadSafety::InstanceSafe => {
                    _instance_lock = Some(self.render_lock.lock().unwrap())
                }
                RenderThreadSafety::FullySafe => {}
            }
            let now = self.obj.in_render.fetch_add(1, Ordering::SeqCst) + 1;
            self.obj.max_in_render.fetch_max(now, Ordering::SeqCst);
            let status = self.inner().action(
                kOfxImageEffectActionRender,
                self.handle(),
                Some(&args),
                None,
            );
            self.obj.in_render.fetch_sub(1, Ordering::SeqCst);
            status
        };

        self.obj.renders.lock().unwrap().retain(|r| r.data != data);
        let leaked = {
            let mut images = self.obj.images.lock().unwrap();
            let before = images.len();
            images.retain(|img| img.data != data);
            before - images.len()
        };
        status?;
        if leaked > 0 {
            return Err(HostError::ImagesNotReleased {
                time: req.time,
                count: leaked,
            });
        }
        buffer
            .check_canaries()
            .map_err(|what| HostError::OutOfBounds {
                time: req.time,
                what,
            })?;
        Ok(RenderedImage::new(req.time, bounds, &buffer))
    }

    /// Sends `DestroyInstance` now (dropping does the same, ignoring errors).
    pub fn destroy(self) -> Result<()> {
        self.destroy_inner()
    }

    /// Fault injection: sends `DestroyInstance` again after the instance was destroyed, as a
    /// faulty host might. Returns the plugin's answer.
    pub fn destroy_again(&self) -> Result<()> {
        self.destroy_inner()?;
        self.inner()
            .action(kOfxActionDestroyInstance, self.handle(), None, None)
            .map(drop)
    }

    fn destroy_inner(&self) -> Result<()> {
        if self.destroyed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.inner()
            .action(kOfxActionDestroyInstance, self.handle(), None, None)
            .map(drop)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.destroy_inner();
    }
}

fn range_of(times: &[f64]) -> (f64, f64) {
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let max = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}
