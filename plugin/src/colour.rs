//! Output colour: the model's frames are display-referred sRGB; the node hands them out as they
//! are, linearised (the sRGB EOTF, IEC 61966-2-1), or linearised and re-encoded with the
//! BT.709 OETF (Rec. ITU-R BT.709-6). Lookup tables over the 65536 16-bit input codes make the
//! conversion a table read per channel. [`Colour::to_display`] is the inverse, for the `Source`
//! input (an image in the same colour as the output, made display sRGB for the model).

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Colour {
    /// The model's output as is.
    SrgbDisplay,
    /// sRGB EOTF decoded: scene-linear-ish values for compositing.
    Linear,
    /// BT.709 OETF applied to the linearised values.
    Rec709,
}

pub fn srgb_to_linear(v: f32) -> f32 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

pub fn linear_to_rec709(l: f32) -> f32 {
    if l < 0.018 {
        4.5 * l
    } else {
        1.099 * l.powf(0.45) - 0.099
    }
}

/// The sRGB OETF: the inverse of [`srgb_to_linear`].
pub fn linear_to_srgb(l: f32) -> f32 {
    if l <= 0.0031308 {
        12.92 * l
    } else {
        1.055 * l.powf(1.0 / 2.4) - 0.055
    }
}

/// The inverse of [`linear_to_rec709`].
pub fn rec709_to_linear(v: f32) -> f32 {
    if v < 4.5 * 0.018 {
        v / 4.5
    } else {
        ((v + 0.099) / 1.099).powf(1.0 / 0.45)
    }
}

impl Colour {
    /// A value of this colour (in [0, 1]) as display sRGB, the model's own colour.
    pub fn to_display(self, v: f32) -> f32 {
        let v = v.clamp(0.0, 1.0);
        match self {
            Colour::SrgbDisplay => v,
            Colour::Linear => linear_to_srgb(v),
            Colour::Rec709 => linear_to_srgb(rec709_to_linear(v)),
        }
    }

    /// The output value of a 16-bit code in [0, 1].
    pub fn convert(self, code: u16) -> f32 {
        let v = code as f32 / 65535.0;
        match self {
            Colour::SrgbDisplay => v,
            Colour::Linear => srgb_to_linear(v),
            Colour::Rec709 => linear_to_rec709(srgb_to_linear(v)),
        }
    }

    fn index(self) -> usize {
        match self {
            Colour::SrgbDisplay => 0,
            Colour::Linear => 1,
            Colour::Rec709 => 2,
        }
    }
}

/// Per-colour tables from a 16-bit code to each output depth.
pub struct Tables {
    pub float: Vec<f32>,
    pub short: Vec<u16>,
    pub byte: Vec<u8>,
}

/// The tables of `colour`, built on first use.
pub fn tables(colour: Colour) -> &'static Tables {
    static TABLES: [OnceLock<Tables>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    TABLES[colour.index()].get_or_init(|| {
        let float: Vec<f32> = (0..=u16::MAX).map(|c| colour.convert(c)).collect();
        let short = float
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 65535.0).round() as u16)
            .collect();
        let byte = float
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        Tables { float, short, byte }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_identity_and_curves_are_monotonic() {
        assert_eq!(Colour::SrgbDisplay.convert(0), 0.0);
        assert_eq!(Colour::SrgbDisplay.convert(65535), 1.0);
        assert_eq!(Colour::SrgbDisplay.convert(32768), 32768.0 / 65535.0);
        for colour in [Colour::Linear, Colour::Rec709] {
            assert_eq!(colour.convert(0), 0.0);
            assert!((colour.convert(65535) - 1.0).abs() < 1e-5);
            let t = tables(colour);
            assert!(
                t.float.windows(2).all(|w| w[0] <= w[1]),
                "{colour:?} is monotonic"
            );
        }
        // Mid grey: sRGB 0.5 is linear 0.214; BT.709 encodes that as 0.450.
        assert!((srgb_to_linear(0.5) - 0.21404).abs() < 1e-4);
        assert!((linear_to_rec709(srgb_to_linear(0.5)) - 0.4502).abs() < 1e-3);
    }

    #[test]
    fn to_display_inverts_convert() {
        for colour in [Colour::SrgbDisplay, Colour::Linear, Colour::Rec709] {
            for code in (0..=u16::MAX).step_by(97) {
                let back = colour.to_display(colour.convert(code));
                assert!(
                    (back - code as f32 / 65535.0).abs() < 2e-5,
                    "{colour:?} code {code}: {back}"
                );
            }
        }
        // Out-of-range values (scene-linear highlights, negative noise) are clamped first.
        assert!((Colour::Linear.to_display(4.0) - 1.0).abs() < 1e-6);
        assert_eq!(Colour::Linear.to_display(-0.5), 0.0);
    }
}
