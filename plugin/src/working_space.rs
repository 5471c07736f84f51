//! The host's working space, for the `auto` output colour: what colour the host expects the
//! node's pixels in, and what it hands the node on the `Source` input.
//!
//! 1. A host with OFX 1.5 colour management (`kOfxImageEffectPropColourManagementStyle` other
//!    than none) names the working space on the clip (`kOfxImageClipPropColourspace`). The node
//!    produces it when it can (sRGB texture, linear Rec.709), and otherwise produces linear
//!    Rec.709 and says so on the output clip in `GetClipPreferences`, for the host to convert.
//! 2. Otherwise the host's name decides: Nuke and Natron work in scene-linear (their readers
//!    linearise, their writers encode), so the node hands them linear values. DaVinci Resolve
//!    (without colour management) and unknown hosts work on display-referred video values: the
//!    model's sRGB values as they are.
//!
//! The node tells a colour-managed host the colour of what it produces whatever the choice.

use crate::colour::Colour;
use ofx_bindings::sys::*;
use ofx_bindings::{Clip, ImageEffect, PropertySet, Result};
use std::ffi::CStr;

// OFX 1.5 colour management (ofxColour.h, ofxColourspaceList.h).
pub const STYLE: &CStr = c"OfxImageEffectPropColourManagementStyle";
pub const STYLE_NONE: &str = "OfxImageEffectPropColourManagementNone";
pub const STYLE_BASIC: &str = "OfxImageEffectPropColourManagementBasic";
pub const STYLE_CORE: &str = "OfxImageEffectPropColourManagementCore";
pub const CLIP_COLOURSPACE: &CStr = c"OfxImageClipPropColourspace";
pub const CLIP_PREFERRED_COLOURSPACES: &CStr = c"OfxImageClipPropPreferredColourspaces";

/// Host names (`kOfxPropName`) whose working space is scene-linear.
const LINEAR_HOSTS: &[&str] = &["uk.co.thefoundry.nuke", "fr.inria.Natron"];

/// The colour-management style the host offers, `None` without colour management.
pub fn host_style(effect: &ImageEffect) -> Option<String> {
    effect
        .suites()
        .host_properties()
        .and_then(|p| p.get_string(STYLE, 0))
        .ok()
        .filter(|s| !s.is_empty() && s != STYLE_NONE)
}

/// The colour of a colourspace name, where the node can produce it directly.
pub fn colour_of(colourspace: &str) -> Option<Colour> {
    match colourspace {
        "srgb_tx" | "sRGB - Texture" => Some(Colour::SrgbDisplay),
        "lin_rec709_srgb" | "Linear Rec.709 (sRGB)" | "ofx_linear" | "scene_linear" => {
            Some(Colour::Linear)
        }
        _ => None,
    }
}

/// The colourspace name of `colour` under `style` (basic style: the generic names only).
pub fn colourspace_of(colour: Colour, style: &str) -> &'static str {
    match (colour, style == STYLE_BASIC) {
        (Colour::SrgbDisplay, false) => "srgb_tx",
        (Colour::Linear, false) => "lin_rec709_srgb",
        (Colour::Linear, true) => "ofx_linear",
        // Display-referred SDR video: BT.709-encoded, or sRGB under the basic style.
        (Colour::Rec709 | Colour::SrgbDisplay, _) => "ofx_sdr",
    }
}

/// What the host wants on `clip`: its preferred colourspaces first, then its colourspace.
fn clip_colour(props: &PropertySet) -> Option<Colour> {
    let preferred = props
        .get_strings(CLIP_PREFERRED_COLOURSPACES)
        .unwrap_or_default();
    let current = props.get_string(CLIP_COLOURSPACE, 0).ok();
    preferred
        .iter()
        .map(String::as_str)
        .chain(current.as_deref())
        .find_map(colour_of)
}

/// The colour the `auto` choice gives in this host.
pub fn host_colour(effect: &ImageEffect) -> Colour {
    if host_style(effect).is_some() {
        return effect
            .output_clip()
            .ok()
            .and_then(|clip| clip_colour(&clip.properties()))
            .unwrap_or(Colour::Linear);
    }
    let name = effect
        .suites()
        .host_properties()
        .and_then(|p| p.get_string(kOfxPropName, 0))
        .unwrap_or_default();
    if LINEAR_HOSTS.contains(&name.as_str()) {
        Colour::Linear
    } else {
        Colour::SrgbDisplay
    }
}

/// The colour of the images the host hands over on `clip` when the node's colour is `colour`:
/// the clip's colourspace where the host names one the node knows, else `colour`.
pub fn input_colour(effect: &ImageEffect, clip: &Clip, colour: Colour) -> Colour {
    if host_style(effect).is_none() {
        return colour;
    }
    clip.properties()
        .get_string(CLIP_COLOURSPACE, 0)
        .ok()
        .and_then(|c| colour_of(&c))
        .unwrap_or(colour)
}

/// `GetClipPreferences` under colour management: the output clip says what the node produces,
/// and the node asks for the `Source` input in the same colour.
pub fn set_clip_preferences(
    effect: &ImageEffect,
    out_args: &PropertySet,
    colour: Colour,
) -> Result<()> {
    let Some(style) = host_style(effect) else {
        return Ok(());
    };
    let name = colourspace_of(colour, &style);
    effect
        .output_clip()?
        .properties()
        .set_string(CLIP_COLOURSPACE, 0, name)?;
    // The host may not know the property in outArgs; the output clip's colourspace is enough.
    let _ = out_args.set_string(c"OfxImageClipPropPreferredColourspaces_Source", 0, name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_where_the_node_produces_them() {
        for colour in [Colour::SrgbDisplay, Colour::Linear] {
            assert_eq!(colour_of(colourspace_of(colour, STYLE_CORE)), Some(colour));
        }
        assert_eq!(
            colour_of(colourspace_of(Colour::Linear, STYLE_BASIC)),
            Some(Colour::Linear)
        );
        assert_eq!(colour_of("ACEScg"), None);
    }
}
