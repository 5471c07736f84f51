//! Effect (descriptor or instance) and clip handles.

use crate::c_string;
use crate::error::{OfxError, Result};
use crate::image::Image;
use crate::param::ParamSet;
use crate::property::PropertySet;
use crate::suites::{self, Suites};
use crate::sys::*;
use crate::types::{Components, Context, PixelDepth};
use std::any::Any;
use std::ffi::c_void;
use std::ptr::{self, NonNull};
use std::sync::Arc;

/// An effect handle: the descriptor in `Describe`/`DescribeInContext`, an instance otherwise.
#[derive(Clone, Copy)]
pub struct ImageEffect {
    handle: NonNull<OfxImageEffectStruct>,
    suites: Suites,
}

// SAFETY: opaque token passed back to the host only; OFX allows suite calls from any thread.
unsafe impl Send for ImageEffect {}
unsafe impl Sync for ImageEffect {}

impl std::fmt::Debug for ImageEffect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageEffect({:p})", self.handle)
    }
}

macro_rules! effect_fn {
    ($suites:expr, $f:ident) => {
        $suites.image_effect()?.$f.ok_or_else(|| {
            OfxError::missing(concat!("the image effect suite has no ", stringify!($f)))
        })?
    };
}

/// What `kOfxPropInstanceData` points to: a shared value tagged so that a foreign pointer
/// is recognised instead of being misread.
struct InstanceDataBox {
    tag: u64,
    value: Arc<dyn Any + Send + Sync>,
}
const INSTANCE_DATA_TAG: u64 = 0x4f46_5844_4154_4131; // "OFXDATA1"

impl ImageEffect {
    /// `None` for a NULL handle.
    pub fn new(handle: OfxImageEffectHandle, suites: Suites) -> Option<Self> {
        NonNull::new(handle).map(|handle| ImageEffect { handle, suites })
    }

    pub fn from_handle(handle: OfxImageEffectHandle) -> Result<Self> {
        ImageEffect::new(handle, suites::get()?)
            .ok_or_else(|| OfxError::bad_handle("NULL effect handle"))
    }

    pub fn handle(&self) -> OfxImageEffectHandle {
        self.handle.as_ptr()
    }

    pub fn suites(&self) -> &Suites {
        &self.suites
    }

    pub fn properties(&self) -> Result<PropertySet> {
        let f = effect_fn!(self.suites, getPropertySet);
        let mut props: OfxPropertySetHandle = ptr::null_mut();
        // SAFETY: valid effect token and a live out slot.
        let status = unsafe { f(self.handle(), &mut props) };
        OfxError::check(status, || "getPropertySet".into())?;
        PropertySet::new(props, self.suites.property()?)
            .ok_or_else(|| OfxError::bad_handle("getPropertySet gave NULL"))
    }

    pub fn param_set(&self) -> Result<ParamSet> {
        let f = effect_fn!(self.suites, getParamSet);
        let mut set: OfxParamSetHandle = ptr::null_mut();
        // SAFETY: valid effect token and a live out slot.
        let status = unsafe { f(self.handle(), &mut set) };
        OfxError::check(status, || "getParamSet".into())?;
        ParamSet::new(set, self.suites).ok_or_else(|| OfxError::bad_handle("getParamSet gave NULL"))
    }

    /// `clipDefine` (in `DescribeInContext`): the clip descriptor's properties.
    pub fn define_clip_raw(&self, name: &str) -> Result<PropertySet> {
        let f = effect_fn!(self.suites, clipDefine);
        let name_c = c_string(name);
        let mut props: OfxPropertySetHandle = ptr::null_mut();
        // SAFETY: valid token, NUL-terminated name alive for the call, live out slot.
        let status = unsafe { f(self.handle(), name_c.as_ptr(), &mut props) };
        OfxError::check(status, || format!("clipDefine({name})"))?;
        PropertySet::new(props, self.suites.property()?)
            .ok_or_else(|| OfxError::bad_handle("clipDefine gave NULL"))
    }

    /// `clipGetHandle` on an instance.
    pub fn clip(&self, name: &str) -> Result<Clip> {
        let f = effect_fn!(self.suites, clipGetHandle);
        let name_c = c_string(name);
        let mut clip: OfxImageClipHandle = ptr::null_mut();
        let mut props: OfxPropertySetHandle = ptr::null_mut();
        // SAFETY: valid token, NUL-terminated name, live out slots.
        let status = unsafe { f(self.handle(), name_c.as_ptr(), &mut clip, &mut props) };
        OfxError::check(status, || format!("clipGetHandle({name})"))?;
        let handle =
            NonNull::new(clip).ok_or_else(|| OfxError::bad_handle("clipGetHandle gave NULL"))?;
        let props = PropertySet::new(props, self.suites.property()?)
            .ok_or_else(|| OfxError::bad_handle("clipGetHandle gave NULL properties"))?;
        Ok(Clip {
            handle,
            props,
            suites: self.suites,
        })
    }

    /// The `Output` clip.
    pub fn output_clip(&self) -> Result<Clip> {
        self.clip("Output")
    }

    /// `abort()`: true when the host wants the current render stopped. False when the
    /// host lacks the function.
    pub fn abort_requested(&self) -> bool {
        let Ok(suite) = self.suites.image_effect() else {
            return false;
        };
        let Some(f) = suite.abort else { return false };
        // SAFETY: valid effect token.
        unsafe { f(self.handle()) != 0 }
    }

    /// `kOfxImageEffectPropContext` of an instance.
    pub fn context(&self) -> Result<Context> {
        let value = self
            .properties()?
            .get_string(kOfxImageEffectPropContext, 0)?;
        Context::from_name(&value)
            .ok_or_else(|| OfxError::new(kOfxStatErrValue, format!("unknown context {value}")))
    }

    /// Attaches per-instance data (replacing and dropping any previous one). Call in
    /// `CreateInstance`; drop it with [`ImageEffect::drop_instance_data`] in `DestroyInstance`.
    pub fn set_instance_data<T: Any + Send + Sync>(&self, value: T) -> Result<()> {
        self.drop_instance_data()?;
        let boxed = Box::new(InstanceDataBox {
            tag: INSTANCE_DATA_TAG,
            value: Arc::new(value),
        });
        let raw = Box::into_raw(boxed);
        if let Err(e) = self
            .properties()?
            .set_pointer(kOfxPropInstanceData, 0, raw as *mut c_void)
        {
            // SAFETY: `raw` came from Box::into_raw above and was not stored by the host.
            drop(unsafe { Box::from_raw(raw) });
            return Err(e);
        }
        Ok(())
    }

    /// A shared reference to the instance data, if it is a `T`.
    pub fn instance_data<T: Any + Send + Sync>(&self) -> Result<Arc<T>> {
        let raw =
            self.properties()?.get_pointer(kOfxPropInstanceData, 0)? as *const InstanceDataBox;
        // SAFETY: the only writer of kOfxPropInstanceData is set_instance_data, which stores a
        // live Box<InstanceDataBox>; the host never runs DestroyInstance concurrently with
        // other actions of the instance (ofxThreadSafety.rst), so the box is alive here. The
        // tag guards against a pointer some other code stored.
        let data = unsafe { raw.as_ref() }.ok_or_else(|| OfxError::failed("no instance data"))?;
        if data.tag != INSTANCE_DATA_TAG {
            return Err(OfxError::failed(
                "kOfxPropInstanceData was not set by this crate",
            ));
        }
        Arc::clone(&data.value)
            .downcast::<T>()
            .map_err(|_| OfxError::failed("instance data has another type"))
    }

    /// Frees the instance data and sets the property back to NULL.
    pub fn drop_instance_data(&self) -> Result<()> {
        let props = self.properties()?;
        let raw = props.get_pointer(kOfxPropInstanceData, 0)? as *mut InstanceDataBox;
        if raw.is_null() {
            return Ok(());
        }
        props.set_pointer(kOfxPropInstanceData, 0, ptr::null_mut())?;
        // SAFETY: non-NULL pointers in this property come from set_instance_data's
        // Box::into_raw; the tag is checked before taking ownership back.
        if unsafe { (*raw).tag } == INSTANCE_DATA_TAG {
            // SAFETY: see above; the property no longer refers to it, so it is freed once.
            drop(unsafe { Box::from_raw(raw) });
        }
        Ok(())
    }
}

/// A clip of an effect instance.
#[derive(Clone, Copy)]
pub struct Clip {
    handle: NonNull<OfxImageClipStruct>,
    props: PropertySet,
    suites: Suites,
}

// SAFETY: opaque token passed back to the host only.
unsafe impl Send for Clip {}
unsafe impl Sync for Clip {}

impl Clip {
    pub fn handle(&self) -> OfxImageClipHandle {
        self.handle.as_ptr()
    }
    pub fn properties(&self) -> PropertySet {
        self.props
    }
    pub fn pixel_depth(&self) -> Result<PixelDepth> {
        let v = self.props.get_string(kOfxImageEffectPropPixelDepth, 0)?;
        PixelDepth::from_name(&v)
            .ok_or_else(|| OfxError::new(kOfxStatErrValue, format!("unknown depth {v}")))
    }
    pub fn components(&self) -> Result<Components> {
        let v = self.props.get_string(kOfxImageEffectPropComponents, 0)?;
        Components::from_name(&v)
            .ok_or_else(|| OfxError::new(kOfxStatErrValue, format!("unknown components {v}")))
    }
    pub fn frame_rate(&self) -> Result<f64> {
        self.props.get_double(kOfxImageEffectPropFrameRate, 0)
    }
    pub fn is_connected(&self) -> Result<bool> {
        self.props.get_bool(kOfxImageClipPropConnected, 0)
    }

    pub fn region_of_definition(&self, time: OfxTime) -> Result<OfxRectD> {
        let f = effect_fn!(self.suites, clipGetRegionOfDefinition);
        let mut rect = OfxRectD::default();
        // SAFETY: valid clip token and a live out struct of the C layout.
        let status = unsafe { f(self.handle(), time, &mut rect) };
        OfxError::check(status, || format!("clipGetRegionOfDefinition({time})"))?;
        Ok(rect)
    }

    /// `clipGetImage`; the image is released (`clipReleaseImage`) when dropped.
    pub fn image(&self, time: OfxTime, region: Option<OfxRectD>) -> Result<Image> {
        let f = effect_fn!(self.suites, clipGetImage);
        let release = self.suites.image_effect()?.clipReleaseImage;
        let mut image: OfxPropertySetHandle = ptr::null_mut();
        let region_ptr = region
            .as_ref()
            .map_or(ptr::null(), |r| r as *const OfxRectD);
        // SAFETY: valid clip token; region is NULL or points to a live OfxRectD; live out slot.
        let status = unsafe { f(self.handle(), time, region_ptr, &mut image) };
        OfxError::check(status, || format!("clipGetImage({time})"))?;
        let props = PropertySet::new(image, self.suites.property()?)
            .ok_or_else(|| OfxError::bad_handle("clipGetImage gave NULL"))?;
        Image::from_properties(props, release)
    }
}
