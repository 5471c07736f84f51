//! Host images: data pointer, bounds, row bytes (possibly negative), depth and components.

use crate::error::{OfxError, Result};
use crate::property::PropertySet;
use crate::sys::*;
use crate::types::{Components, PixelDepth};

/// A channel type that can be viewed in a row: `u8` (Byte), `u16` (Short), `f32` (Float).
pub trait Pixel: Copy + 'static {
    const DEPTH: PixelDepth;
}
impl Pixel for u8 {
    const DEPTH: PixelDepth = PixelDepth::Byte;
}
impl Pixel for u16 {
    const DEPTH: PixelDepth = PixelDepth::Short;
}
impl Pixel for f32 {
    const DEPTH: PixelDepth = PixelDepth::Float;
}

type ReleaseFn = unsafe extern "C" fn(OfxPropertySetHandle) -> OfxStatus;

/// An image fetched with `clipGetImage`, released on drop.
///
/// Row `y` (bounds.y1 <= y < bounds.y2) starts at `data + (y - y1) * row_bytes`; OFX allows
/// negative row bytes, with `data` at the start of the bottom row.
pub struct Image {
    props: PropertySet,
    release: Option<ReleaseFn>,
    data: *mut u8,
    bounds: OfxRectI,
    row_bytes: isize,
    depth: PixelDepth,
    components: Components,
}

// SAFETY: the pixel memory belongs to this image until it is released; access goes through
// &self / &mut self, so Rust's aliasing rules hold across threads.
unsafe impl Send for Image {}

impl Image {
    pub(crate) fn from_properties(props: PropertySet, release: Option<ReleaseFn>) -> Result<Image> {
        let mut image = Image {
            props,
            release,
            data: std::ptr::null_mut(),
            bounds: OfxRectI::default(),
            row_bytes: 0,
            depth: PixelDepth::None,
            components: Components::None,
        };
        // Fill in after construction so that an error still releases the image (Drop).
        image.data = props.get_pointer(kOfxImagePropData, 0)? as *mut u8;
        image.bounds = props.get_rect_i(kOfxImagePropBounds)?;
        image.row_bytes = props.get_int(kOfxImagePropRowBytes, 0)? as isize;
        let depth = props.get_string(kOfxImageEffectPropPixelDepth, 0)?;
        image.depth = PixelDepth::from_name(&depth).ok_or_else(|| {
            OfxError::new(
                kOfxStatErrImageFormat,
                format!("unknown pixel depth {depth}"),
            )
        })?;
        let components = props.get_string(kOfxImageEffectPropComponents, 0)?;
        image.components = Components::from_name(&components).ok_or_else(|| {
            OfxError::new(
                kOfxStatErrImageFormat,
                format!("unknown components {components}"),
            )
        })?;
        image.validate()?;
        Ok(image)
    }

    fn validate(&self) -> Result<()> {
        let b = self.bounds;
        if b.x2 < b.x1 || b.y2 < b.y1 {
            return Err(OfxError::new(
                kOfxStatErrValue,
                format!("inverted image bounds {b:?}"),
            ));
        }
        if self.width() > 0 && self.height() > 0 {
            if self.data.is_null() {
                return Err(OfxError::new(kOfxStatErrValue, "image data is NULL"));
            }
            if self.row_bytes.unsigned_abs() < self.row_len_bytes() {
                return Err(OfxError::new(
                    kOfxStatErrValue,
                    format!(
                        "row bytes {} smaller than a row of {} bytes",
                        self.row_bytes,
                        self.row_len_bytes()
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn properties(&self) -> PropertySet {
        self.props
    }
    pub fn bounds(&self) -> OfxRectI {
        self.bounds
    }
    pub fn width(&self) -> usize {
        (self.bounds.x2 - self.bounds.x1).max(0) as usize
    }
    pub fn height(&self) -> usize {
        (self.bounds.y2 - self.bounds.y1).max(0) as usize
    }
    pub fn row_bytes(&self) -> isize {
        self.row_bytes
    }
    pub fn pixel_depth(&self) -> PixelDepth {
        self.depth
    }
    pub fn components(&self) -> Components {
        self.components
    }
    pub fn data_ptr(&self) -> *mut u8 {
        self.data
    }
    pub fn bytes_per_pixel(&self) -> usize {
        self.depth.bytes_per_component() * self.components.count()
    }
    fn row_len_bytes(&self) -> usize {
        self.width() * self.bytes_per_pixel()
    }

    /// Pointer to the first byte of row `y`, or `None` outside the bounds.
    fn row_ptr(&self, y: i32) -> Option<*mut u8> {
        if y < self.bounds.y1 || y >= self.bounds.y2 || self.width() == 0 {
            return None;
        }
        let offset = (y - self.bounds.y1) as isize * self.row_bytes;
        // wrapping_offset: computing the address is safe; validity is argued at dereference.
        Some(self.data.wrapping_offset(offset))
    }

    fn check_type<T: Pixel>(&self) -> Result<()> {
        if T::DEPTH != self.depth {
            return Err(OfxError::new(
                kOfxStatErrImageFormat,
                format!("image is {:?}, not {:?}", self.depth, T::DEPTH),
            ));
        }
        let align = std::mem::align_of::<T>();
        if !(self.data as usize).is_multiple_of(align)
            || !self.row_bytes.unsigned_abs().is_multiple_of(align)
        {
            return Err(OfxError::new(
                kOfxStatErrImageFormat,
                "image rows are not aligned for their depth",
            ));
        }
        Ok(())
    }

    /// Row `y` as raw bytes (`width * bytes_per_pixel` long).
    pub fn row_bytes_slice(&self, y: i32) -> Option<&[u8]> {
        let p = self.row_ptr(y)?;
        // SAFETY: the host guarantees `data` addresses `height` rows of |row_bytes| bytes
        // (kOfxImagePropRowBytes contract), validate() checked |row_bytes| >= row length, and
        // y is inside the bounds; the memory is borrowed as long as `self`.
        Some(unsafe { std::slice::from_raw_parts(p, self.row_len_bytes()) })
    }

    /// Row `y` as channel values (`width * components` long).
    pub fn row<T: Pixel>(&self, y: i32) -> Result<&[T]> {
        self.check_type::<T>()?;
        let p = self
            .row_ptr(y)
            .ok_or_else(|| OfxError::new(kOfxStatErrBadIndex, format!("row {y} out of bounds")))?;
        // SAFETY: as in row_bytes_slice; check_type verified depth and alignment for T.
        Ok(unsafe {
            std::slice::from_raw_parts(p as *const T, self.width() * self.components.count())
        })
    }

    /// Row `y` as mutable channel values.
    pub fn row_mut<T: Pixel>(&mut self, y: i32) -> Result<&mut [T]> {
        self.check_type::<T>()?;
        let p = self
            .row_ptr(y)
            .ok_or_else(|| OfxError::new(kOfxStatErrBadIndex, format!("row {y} out of bounds")))?;
        // SAFETY: as in row; &mut self makes this the only live view of the row.
        Ok(unsafe {
            std::slice::from_raw_parts_mut(p as *mut T, self.width() * self.components.count())
        })
    }

    /// Every row as a disjoint mutable slice, bottom row first, with its `y`. Rows never
    /// overlap (|row_bytes| >= row length), so they can be filled from several threads.
    pub fn rows_mut<T: Pixel>(&mut self) -> Result<Vec<(i32, &mut [T])>> {
        self.check_type::<T>()?;
        let len = self.width() * self.components.count();
        let mut rows = Vec::with_capacity(self.height());
        for y in self.bounds.y1..self.bounds.y2 {
            let Some(p) = self.row_ptr(y) else { break };
            // SAFETY: as in row_mut; distinct rows are disjoint byte ranges because
            // |row_bytes| >= row length, so the slices never alias; all borrow &mut self.
            rows.push((y, unsafe {
                std::slice::from_raw_parts_mut(p as *mut T, len)
            }));
        }
        Ok(rows)
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the handle came from clipGetImage and is released exactly once, here.
            unsafe { release(self.props.handle()) };
        }
    }
}
