//! Judges a generated clip by what it shows, measured from its pixels: the background has the
//! named colour, the named colours dominate the object pixels, and each object moves, grows,
//! shrinks or bounces as named.

use crate::world::{Colour, Motion, PALETTE};

/// What a prompt asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub background: Colour,
    pub objects: Vec<(Colour, Motion)>,
}

/// A clip's frames `[F, H, W, 3]`, values in [0, 1], row-major.
pub struct Clip<'a> {
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    pub data: &'a [f32],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub background: bool,
    pub colours: bool,
    pub motions: bool,
    /// What was measured, for the log.
    pub notes: String,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.background && self.colours && self.motions
    }
}

/// Pixels further than this from every palette colour (blended edges) are not classified.
const MAX_COLOUR_DISTANCE: f32 = 0.3;
/// An object counts as visible in a frame with at least this many pixels of its colour.
const MIN_VISIBLE_PIXELS: usize = 40;

/// The nearest named colour, if any is close.
pub fn classify(rgb: [f32; 3]) -> Option<Colour> {
    let mut best = None;
    let mut best_d = f32::MAX;
    for colour in PALETTE {
        let p = colour.rgb();
        let d =
            ((rgb[0] - p[0]).powi(2) + (rgb[1] - p[1]).powi(2) + (rgb[2] - p[2]).powi(2)).sqrt();
        if d < best_d {
            best_d = d;
            best = Some(colour);
        }
    }
    best.filter(|_| best_d <= MAX_COLOUR_DISTANCE)
}

fn palette_index(c: Colour) -> usize {
    PALETTE
        .iter()
        .position(|&p| p == c)
        .expect("palette colour")
}

/// Per frame: pixel count and centroid of one colour.
#[derive(Debug, Clone, Copy, Default)]
struct Blob {
    count: usize,
    x: f32,
    y: f32,
}

/// Pixel counts of every palette colour over the clip, and each colour's blob in every frame.
fn colour_blobs(clip: &Clip<'_>) -> ([usize; PALETTE.len()], Vec<[Blob; PALETTE.len()]>) {
    let (f_n, h_n, w_n) = (clip.frames, clip.height, clip.width);
    let mut totals = [0usize; PALETTE.len()];
    // blobs[frame][palette index]
    let mut blobs = vec![[Blob::default(); PALETTE.len()]; f_n];
    for (f, frame) in blobs.iter_mut().enumerate() {
        for y in 0..h_n {
            for x in 0..w_n {
                let i = ((f * h_n + y) * w_n + x) * 3;
                let rgb = [clip.data[i], clip.data[i + 1], clip.data[i + 2]];
                if let Some(c) = classify(rgb) {
                    let k = palette_index(c);
                    totals[k] += 1;
                    let b = &mut frame[k];
                    b.count += 1;
                    b.x += x as f32;
                    b.y += y as f32;
                }
            }
        }
    }
    for frame in blobs.iter_mut() {
        for b in frame.iter_mut() {
            if b.count > 0 {
                b.x /= b.count as f32;
                b.y /= b.count as f32;
            }
        }
    }
    (totals, blobs)
}

/// How far the centroid of `colour`'s pixels moves `(dx, dy)` between the first and the last
/// fifth of the clip (what the judge tests moves by), and in how many frames the colour is
/// visible.
pub fn centroid_shift(clip: &Clip<'_>, colour: Colour) -> (f32, f32, usize) {
    let (_, blobs) = colour_blobs(clip);
    let track: Vec<Blob> = blobs.iter().map(|f| f[palette_index(colour)]).collect();
    let visible = track
        .iter()
        .filter(|b| b.count >= MIN_VISIBLE_PIXELS)
        .count();
    let frames = clip.frames;
    let k = (frames / 5).max(1);
    let (x0, y0, _) = mean_of(&track, 0..k);
    let (x1, y1, _) = mean_of(&track, frames - k..frames);
    (x1 - x0, y1 - y0, visible)
}

pub fn judge(clip: &Clip<'_>, expect: &Expectation) -> Verdict {
    let f_n = clip.frames;
    let (totals, blobs) = colour_blobs(clip);
    let mut notes = Vec::new();
    let (bg_index, _) = totals
        .iter()
        .enumerate()
        .max_by_key(|(_, n)| **n)
        .expect("palette");
    let seen_bg = PALETTE[bg_index];
    let background = seen_bg == expect.background;
    notes.push(format!("background {}", seen_bg.name()));

    // Object pixels: everything classified but the background's colour.
    let object_pixels: usize = totals
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != bg_index)
        .map(|(_, n)| n)
        .sum();
    // Each named colour must be among the most common object colours (the most common one for a
    // single object) and hold a fair share of the object pixels: blended edges take a share of
    // their own (red on blue blends to purple).
    let mut colours = object_pixels > 0;
    let share_needed = if expect.objects.len() == 1 { 0.4 } else { 0.2 };
    let mut ranked: Vec<usize> = (0..PALETTE.len()).filter(|&k| k != bg_index).collect();
    ranked.sort_by_key(|&k| std::cmp::Reverse(totals[k]));
    for &(colour, _) in &expect.objects {
        let k = palette_index(colour);
        // A colour that is the background's is no share of the object pixels (its count holds
        // the whole background: dividing it by them gave shares such as 69632000%).
        let share = if k == bg_index {
            0.0
        } else {
            totals[k] as f32 / object_pixels.max(1) as f32
        };
        let rank = ranked.iter().position(|&r| r == k).unwrap_or(usize::MAX);
        notes.push(if k == bg_index {
            format!("{} is the background colour", colour.name())
        } else {
            format!("{} {:.0}% of object pixels", colour.name(), share * 100.0)
        });
        if colour == seen_bg || share < share_needed || rank >= expect.objects.len() {
            colours = false;
        }
    }

    let mut motions = true;
    for &(colour, motion) in &expect.objects {
        let track: Vec<Blob> = blobs
            .iter()
            .map(|frame| frame[palette_index(colour)])
            .collect();
        let (ok, note) = judge_motion(&track, motion, f_n);
        notes.push(format!("{} {}: {note}", colour.name(), motion.name()));
        motions &= ok;
    }
    Verdict {
        background,
        colours,
        motions,
        notes: notes.join("; "),
    }
}

fn mean_of(track: &[Blob], frames: std::ops::Range<usize>) -> (f32, f32, f32) {
    let n = frames.len() as f32;
    let (mut x, mut y, mut a) = (0.0, 0.0, 0.0);
    for b in &track[frames] {
        x += b.x;
        y += b.y;
        a += b.count as f32;
    }
    (x / n, y / n, a / n)
}

fn judge_motion(track: &[Blob], motion: Motion, frames: usize) -> (bool, String) {
    let visible = track
        .iter()
        .filter(|b| b.count >= MIN_VISIBLE_PIXELS)
        .count();
    if visible * 5 < frames * 4 {
        return (
            false,
            format!("visible in only {visible} of {frames} frames"),
        );
    }
    let k = (frames / 5).max(1);
    let (x0, y0, a0) = mean_of(track, 0..k);
    let (x1, y1, a1) = mean_of(track, frames - k..frames);
    let (dx, dy) = (x1 - x0, y1 - y0);
    let ratio = a1 / a0.max(1.0);
    let mid = frames / 2;
    let (_, ym, _) = mean_of(
        track,
        mid.saturating_sub(k / 2)..(mid + k.div_ceil(2)).min(frames),
    );
    let note = format!(
        "dx {dx:.0} dy {dy:.0} area x{ratio:.2} mid-drop {:.0}",
        ym - (y0 + y1) / 2.0
    );
    let ok = match motion {
        Motion::Left => dx < -40.0 && dy.abs() < dx.abs() / 2.0,
        Motion::Right => dx > 40.0 && dy.abs() < dx.abs() / 2.0,
        Motion::Up => dy < -25.0 && dx.abs() < dy.abs() / 2.0,
        Motion::Down => dy > 25.0 && dx.abs() < dy.abs() / 2.0,
        Motion::Grow => ratio > 2.0,
        Motion::Shrink => ratio < 0.5,
        Motion::Bounce => ym - (y0 + y1) / 2.0 > 20.0 && dx.abs() < 20.0,
    };
    (ok, note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{place_object, Scene, Shape, FRAMES, HEIGHT, WIDTH};
    use rand::SeedableRng;

    /// The scene's clip as frames `[F, H, W, 3]` in [0, 1] (it renders `[3, F, H, W]` in [-1, 1]).
    fn rendered_frames(scene: &Scene) -> Vec<f32> {
        let chw = scene.render_clip();
        let plane = FRAMES * HEIGHT * WIDTH;
        let mut hwc = vec![0f32; 3 * plane];
        for p in 0..plane {
            for c in 0..3 {
                hwc[p * 3 + c] = (chw[c * plane + p] + 1.0) / 2.0;
            }
        }
        hwc
    }

    /// Regression: an object colour that is the background's was reported as a share of the
    /// (near-empty) object pixels, e.g. "black 69632000% of object pixels".
    #[test]
    fn an_object_colour_that_is_the_background_is_reported_as_such() {
        let scene = Scene {
            background: Colour::Yellow,
            objects: vec![],
        };
        let hwc = rendered_frames(&scene);
        let clip = Clip {
            frames: FRAMES,
            height: HEIGHT,
            width: WIDTH,
            data: &hwc,
        };
        let verdict = judge(
            &clip,
            &Expectation {
                background: Colour::Blue,
                objects: vec![(Colour::Yellow, Motion::Down)],
            },
        );
        assert!(!verdict.passed());
        assert!(
            verdict.notes.contains("yellow is the background colour"),
            "{}",
            verdict.notes
        );
        assert!(
            !verdict.notes.contains("% of object pixels"),
            "{}",
            verdict.notes
        );
    }

    /// Rendered ground truth passes; a wrong expectation fails.
    #[test]
    fn ground_truth_clips_pass_and_wrong_expectations_fail() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for (i, &motion) in crate::world::MOTIONS.iter().enumerate() {
            let colour = crate::world::OBJECT_COLOURS[i];
            let background = if colour == Colour::White {
                Colour::Black
            } else {
                Colour::White
            };
            let object = place_object(
                &mut rng,
                colour,
                Shape::Circle,
                motion,
                WIDTH as f32,
                HEIGHT as f32,
                crate::world::Placement::Lane(0.5),
            );
            let scene = Scene {
                background,
                objects: vec![object],
            };
            let hwc = rendered_frames(&scene);
            let clip = Clip {
                frames: FRAMES,
                height: HEIGHT,
                width: WIDTH,
                data: &hwc,
            };
            let right = judge(
                &clip,
                &Expectation {
                    background,
                    objects: vec![(colour, motion)],
                },
            );
            assert!(right.passed(), "{motion:?}: {}", right.notes);
            let (dx, _, visible) = centroid_shift(&clip, colour);
            assert_eq!(visible, FRAMES);
            match motion {
                Motion::Left => assert!(dx < -40.0, "{dx}"),
                Motion::Right => assert!(dx > 40.0, "{dx}"),
                _ => {}
            }
            let wrong_motion = crate::world::MOTIONS[(i + 1) % 7];
            let wrong = judge(
                &clip,
                &Expectation {
                    background,
                    objects: vec![(colour, wrong_motion)],
                },
            );
            assert!(
                !wrong.passed(),
                "{motion:?} judged as {wrong_motion:?}: {}",
                wrong.notes
            );
            let wrong_bg = judge(
                &clip,
                &Expectation {
                    background: Colour::Gray,
                    objects: vec![(colour, motion)],
                },
            );
            assert!(!wrong_bg.passed());
        }
    }
}
