//! The synthetic world the demo model learns: plain backgrounds of named colours with one or two
//! shapes of named colours that move left, right, up or down, grow, shrink or bounce.
//!
//! Everything is a pure function of its inputs (and of a seeded generator), so the training set,
//! the held-out split and the evaluation prompts are the same on every machine.

use rand::Rng;

/// The clip size the demo model is trained for and generates.
pub const WIDTH: usize = 256;
pub const HEIGHT: usize = 160;
pub const FRAMES: usize = 17;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Colour {
    Red,
    Orange,
    Yellow,
    Green,
    Blue,
    Purple,
    White,
    Black,
    Gray,
}

/// Every named colour, in a fixed order (the judge classifies pixels against these).
pub const PALETTE: [Colour; 9] = [
    Colour::Red,
    Colour::Orange,
    Colour::Yellow,
    Colour::Green,
    Colour::Blue,
    Colour::Purple,
    Colour::White,
    Colour::Black,
    Colour::Gray,
];

pub const OBJECT_COLOURS: [Colour; 8] = [
    Colour::Red,
    Colour::Orange,
    Colour::Yellow,
    Colour::Green,
    Colour::Blue,
    Colour::Purple,
    Colour::White,
    Colour::Black,
];

/// The backgrounds of the transformer's world. Two, not more: every background changes every
/// latent cell of a clip, and the transformer learns motion from the caption only as fast as it
/// learns what objects look like against each background (one background: ~1000 steps; three:
/// ~3000; six: not within the trainer's time; docs/demo-model.md, "Fourth session").
pub const BACKGROUND_COLOURS: [Colour; 2] = [Colour::White, Colour::Black];

/// The backgrounds of the VAE's training clips: every plain colour it might have to encode, more
/// than the transformer's world (a codec is no worse for knowing more).
pub const VAE_BACKGROUNDS: [Colour; 6] = [
    Colour::White,
    Colour::Black,
    Colour::Gray,
    Colour::Blue,
    Colour::Green,
    Colour::Yellow,
];

impl Colour {
    /// sRGB in [0, 1].
    pub fn rgb(self) -> [f32; 3] {
        let [r, g, b]: [u8; 3] = match self {
            Colour::Red => [210, 35, 35],
            Colour::Orange => [245, 135, 20],
            Colour::Yellow => [240, 215, 40],
            Colour::Green => [35, 155, 60],
            Colour::Blue => [35, 85, 215],
            Colour::Purple => [135, 50, 175],
            Colour::White => [240, 240, 240],
            Colour::Black => [20, 20, 20],
            Colour::Gray => [125, 125, 125],
        };
        [r as f32 / 255.0, g as f32 / 255.0, b as f32 / 255.0]
    }

    /// The words a caption may use for this colour; the first is the canonical one.
    pub fn words(self) -> &'static [&'static str] {
        match self {
            Colour::Red => &["red"],
            Colour::Orange => &["orange"],
            Colour::Yellow => &["yellow"],
            Colour::Green => &["green"],
            Colour::Blue => &["blue"],
            Colour::Purple => &["purple"],
            Colour::White => &["white"],
            Colour::Black => &["black"],
            Colour::Gray => &["gray", "grey"],
        }
    }

    pub fn name(self) -> &'static str {
        self.words()[0]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    Circle,
    Square,
    Triangle,
    Star,
}

pub const SHAPES: [Shape; 4] = [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Star];

impl Shape {
    pub fn words(self) -> &'static [&'static str] {
        match self {
            Shape::Circle => &["circle", "ball", "disc"],
            Shape::Square => &["square", "box", "block"],
            Shape::Triangle => &["triangle"],
            Shape::Star => &["star"],
        }
    }

    pub fn name(self) -> &'static str {
        self.words()[0]
    }

    /// Whether the point `(u, v)`, in units of the object's size and relative to its centre (v
    /// downwards), is inside the shape.
    pub fn contains(self, u: f32, v: f32) -> bool {
        match self {
            Shape::Circle => u * u + v * v <= 1.0,
            Shape::Square => u.abs() <= 0.88 && v.abs() <= 0.88,
            Shape::Triangle => {
                // Equilateral, pointing up, circumradius 1.25, centred on its centroid.
                let r = 1.25f32;
                let apex_y = -r;
                let base_y = 0.5 * r;
                let half_base = r * 3f32.sqrt() / 2.0;
                if v > base_y || v < apex_y {
                    return false;
                }
                let half_width = half_base * (v - apex_y) / (base_y - apex_y);
                u.abs() <= half_width
            }
            Shape::Star => {
                let outer = 1.3f32;
                let inner = 0.55f32;
                let points: Vec<(f32, f32)> = (0..10)
                    .map(|i| {
                        let angle =
                            -std::f32::consts::FRAC_PI_2 + i as f32 * std::f32::consts::PI / 5.0;
                        let r = if i % 2 == 0 { outer } else { inner };
                        (r * angle.cos(), r * angle.sin())
                    })
                    .collect();
                point_in_polygon(u, v, &points)
            }
        }
    }
}

fn point_in_polygon(x: f32, y: f32, points: &[(f32, f32)]) -> bool {
    let mut inside = false;
    let mut j = points.len() - 1;
    for i in 0..points.len() {
        let (xi, yi) = points[i];
        let (xj, yj) = points[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Motion {
    Left,
    Right,
    Up,
    Down,
    Grow,
    Shrink,
    Bounce,
}

pub const MOTIONS: [Motion; 7] = [
    Motion::Left,
    Motion::Right,
    Motion::Up,
    Motion::Down,
    Motion::Grow,
    Motion::Shrink,
    Motion::Bounce,
];

impl Motion {
    pub fn name(self) -> &'static str {
        match self {
            Motion::Left => "left",
            Motion::Right => "right",
            Motion::Up => "up",
            Motion::Down => "down",
            Motion::Grow => "grow",
            Motion::Shrink => "shrink",
            Motion::Bounce => "bounce",
        }
    }

    /// Present-tense phrases ("a red circle moves left").
    fn verb_phrases(self) -> &'static [&'static str] {
        match self {
            Motion::Left => &[
                "moves left",
                "moves to the left",
                "slides left",
                "slides to the left",
                "drifts left",
                "goes left",
            ],
            Motion::Right => &[
                "moves right",
                "moves to the right",
                "slides right",
                "slides to the right",
                "drifts right",
                "goes right",
            ],
            Motion::Up => &[
                "moves up",
                "moves upward",
                "rises",
                "floats up",
                "goes up",
                "slides up",
            ],
            Motion::Down => &[
                "moves down",
                "moves downward",
                "falls",
                "sinks",
                "goes down",
                "slides down",
            ],
            Motion::Grow => &[
                "grows",
                "gets bigger",
                "grows larger",
                "expands",
                "grows bigger",
            ],
            Motion::Shrink => &[
                "shrinks",
                "gets smaller",
                "shrinks down",
                "becomes smaller",
                "gets tiny",
            ],
            Motion::Bounce => &["bounces", "bounces on the floor", "hops", "bounces once"],
        }
    }

    /// Participle phrases ("a red circle moving left").
    fn ing_phrases(self) -> &'static [&'static str] {
        match self {
            Motion::Left => &[
                "moving left",
                "moving to the left",
                "sliding left",
                "drifting left",
            ],
            Motion::Right => &[
                "moving right",
                "moving to the right",
                "sliding right",
                "drifting right",
            ],
            Motion::Up => &["moving up", "moving upward", "rising", "floating up"],
            Motion::Down => &["moving down", "moving downward", "falling", "sinking"],
            Motion::Grow => &["growing", "getting bigger", "expanding", "growing larger"],
            Motion::Shrink => &["shrinking", "getting smaller", "becoming smaller"],
            Motion::Bounce => &["bouncing", "hopping", "bouncing on the floor"],
        }
    }
}

/// One object of a scene and its trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub colour: Colour,
    pub shape: Shape,
    pub motion: Motion,
    /// Size (about the radius) in pixels at scale 1.
    pub size: f32,
    /// Centre at the start of the clip.
    pub start: (f32, f32),
    /// Distance travelled (pixels) for the moves, the drop height for a bounce.
    pub travel: f32,
}

impl Object {
    /// Centre and scale at time `t` in [0, 1].
    pub fn at(&self, t: f32) -> ((f32, f32), f32) {
        let (x, y) = self.start;
        match self.motion {
            Motion::Left => ((x - self.travel * t, y), 1.0),
            Motion::Right => ((x + self.travel * t, y), 1.0),
            Motion::Up => ((x, y - self.travel * t), 1.0),
            Motion::Down => ((x, y + self.travel * t), 1.0),
            Motion::Grow => ((x, y), GROW_FROM + (GROW_TO - GROW_FROM) * t),
            Motion::Shrink => ((x, y), GROW_TO + (GROW_FROM - GROW_TO) * t),
            // Starts high, hits the floor half-way, and is back up at the end.
            Motion::Bounce => {
                let height = self.travel * (std::f32::consts::PI * t).cos().abs();
                ((x, y - height), 1.0)
            }
        }
    }
}

const GROW_FROM: f32 = 0.5;
const GROW_TO: f32 = 1.45;
/// How far a shape's pixels may reach beyond its size (the star's points, the triangle's corners).
const REACH: f32 = 1.3;
/// How far (a fraction of the frame) an object's path may lie from its lane.
const LANE_JITTER: f32 = 0.08;

#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub background: Colour,
    pub objects: Vec<Object>,
}

/// A colour, shape and motion together: the unit of the held-out split.
pub type Triple = (Colour, Shape, Motion);

/// Combinations never shown in training, to test whether the model composes what it learnt.
/// Every colour, shape and motion appears in many other combinations.
pub const HELD_OUT: [Triple; 12] = [
    (Colour::Red, Shape::Triangle, Motion::Right),
    (Colour::Blue, Shape::Circle, Motion::Grow),
    (Colour::Yellow, Shape::Square, Motion::Down),
    (Colour::Green, Shape::Star, Motion::Left),
    (Colour::Purple, Shape::Circle, Motion::Up),
    (Colour::Orange, Shape::Triangle, Motion::Shrink),
    (Colour::White, Shape::Star, Motion::Bounce),
    (Colour::Black, Shape::Square, Motion::Right),
    (Colour::Red, Shape::Circle, Motion::Bounce),
    (Colour::Blue, Shape::Square, Motion::Up),
    (Colour::Green, Shape::Triangle, Motion::Grow),
    (Colour::Purple, Shape::Star, Motion::Down),
];

pub fn is_held_out(colour: Colour, shape: Shape, motion: Motion) -> bool {
    HELD_OUT.contains(&(colour, shape, motion))
}

/// Which combinations a sampled scene may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Everything but the held-out triples.
    Train,
    /// Only held-out triples (one object).
    HeldOut,
}

fn pick<T: Copy, R: Rng>(rng: &mut R, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

/// Where objects go across their paths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    /// Anywhere in the frame, sizes 17-25 px, on any of [`VAE_BACKGROUNDS`]: the VAE's training
    /// clips (it has to encode and decode an object wherever the transformer puts one).
    Anywhere,
    /// Near lanes (see [`place_object`]), sizes 20-27 px: the transformer's training clips and
    /// the evaluation prompts.
    Lanes,
}

/// Where [`place_object`] puts one object across its path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Placement {
    Anywhere,
    /// Within 8% of the frame of this fraction of it.
    Lane(f32),
}

impl Layout {
    pub fn backgrounds(self) -> &'static [Colour] {
        match self {
            Layout::Anywhere => &VAE_BACKGROUNDS,
            Layout::Lanes => &BACKGROUND_COLOURS,
        }
    }

    /// The placement of object `index` of a scene of `count`: one object in the middle lane,
    /// two in lanes a third of the way in from either side.
    pub fn placement(self, index: usize, count: usize) -> Placement {
        match self {
            Layout::Anywhere => Placement::Anywhere,
            Layout::Lanes if count < 2 => Placement::Lane(0.5),
            Layout::Lanes => Placement::Lane((1.0 + index as f32) / (1.0 + count as f32)),
        }
    }
}

/// A position across an object's path, in `margin..extent - margin`.
fn across<R: Rng>(rng: &mut R, placement: Placement, extent: f32, margin: f32) -> f32 {
    let hi = (extent - margin).max(margin + 1.0);
    match placement {
        Placement::Anywhere => rng.random_range(margin..hi),
        Placement::Lane(lane) => {
            let jitter = rng.random_range(-LANE_JITTER..LANE_JITTER);
            ((lane + jitter) * extent).clamp(margin, hi)
        }
    }
}

/// Places one object with its motion so that it stays inside the frame. A lane (0 to 1) is
/// where across its path the object travels: the height of a sideways move, the column of an
/// up/down move or a bounce, and for growing and shrinking the height of its centre (its column
/// then is the middle one).
///
/// The transformer's clips keep close to their lanes: with positions drawn anywhere in the
/// frame, the clips a motion word describes are spread so widely that the best guess of a clip
/// from its caption (what the transformer learns first, at high noise) is a faint smear, and the
/// motion word earns little. Around a lane, "moves right" is a clear path from left to right.
pub fn place_object<R: Rng>(
    rng: &mut R,
    colour: Colour,
    shape: Shape,
    motion: Motion,
    width: f32,
    height: f32,
    placement: Placement,
) -> Object {
    let size = match placement {
        Placement::Anywhere => rng.random_range(17.0..25.0f32),
        Placement::Lane(_) => rng.random_range(20.0..27.0f32),
    };
    let margin = size * REACH + 2.0;
    let (start, travel) = match motion {
        Motion::Left | Motion::Right => {
            let travel = rng.random_range(0.45..0.6f32) * width;
            let lo = margin;
            let hi = (width - margin - travel).max(lo + 1.0);
            let x_low = rng.random_range(lo..hi);
            let x = if motion == Motion::Right {
                x_low
            } else {
                x_low + travel
            };
            ((x, across(rng, placement, height, margin)), travel)
        }
        Motion::Up | Motion::Down => {
            let travel = rng.random_range(0.35..0.45f32) * height;
            let lo = margin;
            let hi = (height - margin - travel).max(lo + 1.0);
            let y_low = rng.random_range(lo..hi);
            let y = if motion == Motion::Down {
                y_low
            } else {
                y_low + travel
            };
            ((across(rng, placement, width, margin), y), travel)
        }
        Motion::Grow | Motion::Shrink => {
            let m = size * GROW_TO * REACH * 0.85 + 2.0;
            let column = match placement {
                Placement::Anywhere => Placement::Anywhere,
                Placement::Lane(_) => Placement::Lane(0.5),
            };
            let x = across(rng, column, width, m);
            ((x, across(rng, placement, height, m)), 0.0)
        }
        Motion::Bounce => {
            let travel = rng.random_range(0.33..0.42f32) * height;
            let floor = rng.random_range(
                (height - margin - 12.0).max(margin)..(height - margin).max(margin + 1.0),
            );
            ((across(rng, placement, width, margin), floor), travel)
        }
    };
    Object {
        colour,
        shape,
        motion,
        size,
        start,
        travel,
    }
}

impl Scene {
    /// Whether any of the scene's objects moves with `motion`.
    pub fn has_motion(&self, motion: Motion) -> bool {
        self.objects.iter().any(|o| o.motion == motion)
    }

    /// A random scene of `split` in a `width` x `height` frame: one object, or two (with
    /// probability `two_objects`) of different colours, placed by `layout`.
    pub fn sample<R: Rng>(
        rng: &mut R,
        split: Split,
        two_objects: f32,
        layout: Layout,
        width: usize,
        height: usize,
    ) -> Scene {
        let (w, h) = (width as f32, height as f32);
        let count = if split == Split::Train && rng.random::<f32>() < two_objects {
            2
        } else {
            1
        };
        let background = pick(rng, layout.backgrounds());
        let mut objects: Vec<Object> = Vec::with_capacity(count);
        while objects.len() < count {
            let (colour, shape, motion) = match split {
                Split::Train => (
                    pick(rng, &OBJECT_COLOURS),
                    pick(rng, &SHAPES),
                    pick(rng, &MOTIONS),
                ),
                Split::HeldOut => pick(rng, &HELD_OUT),
            };
            let clash = colour == background
                || objects.iter().any(|o| o.colour == colour)
                || (split == Split::Train && is_held_out(colour, shape, motion));
            if clash {
                continue;
            }
            let placement = layout.placement(objects.len(), count);
            objects.push(place_object(rng, colour, shape, motion, w, h, placement));
        }
        Scene {
            background,
            objects,
        }
    }

    /// Member `member` of a family of training scenes that share the background, the objects'
    /// colours and shapes (drawn from `family`) and differ in their motions: the first object of
    /// member `k` has motion `MOTIONS[k % 7]` (the next one where that would be a held-out
    /// triple), the others a motion of their own; positions and sizes come from `clip`.
    ///
    /// With independently drawn scenes, a thousand clips hold most colour + shape + background
    /// combinations once, so those words identify a clip, and with it its motion: the
    /// transformer learnt to reproduce each clip from them and ignored the motion word. In a
    /// family only the motion word tells its members apart.
    pub fn family_member<R: Rng>(
        family: &mut R,
        clip: &mut R,
        member: usize,
        two_objects: f32,
        width: usize,
        height: usize,
    ) -> Scene {
        let base = Scene::sample(
            family,
            Split::Train,
            two_objects,
            Layout::Lanes,
            width,
            height,
        );
        let (w, h) = (width as f32, height as f32);
        let objects = base
            .objects
            .iter()
            .enumerate()
            .map(|(k, o)| {
                let placement = Layout::Lanes.placement(k, base.objects.len());
                let first = if k == 0 {
                    member
                } else {
                    clip.random_range(0..MOTIONS.len())
                };
                let motion = (0..MOTIONS.len())
                    .map(|j| MOTIONS[(first + j) % MOTIONS.len()])
                    .find(|&m| !is_held_out(o.colour, o.shape, m))
                    .expect("a colour and shape has at most one held-out motion");
                place_object(clip, o.colour, o.shape, motion, w, h, placement)
            })
            .collect();
        Scene {
            background: base.background,
            objects,
        }
    }

    /// Renders frames `first..first+frames` of a clip of `clip_frames` frames, cropped to the
    /// window `(x0, y0, width, height)`: `[3, frames, height, width]` values in [-1, 1], channel
    /// major, as the VAE takes them.
    pub fn render(
        &self,
        clip_frames: usize,
        first: usize,
        frames: usize,
        window: (usize, usize, usize, usize),
    ) -> Vec<f32> {
        self.render_scaled(clip_frames, first, frames, window, 1)
    }

    /// [`Scene::render`] at `zoom` times the resolution: the window `(x0, y0, width, height)` is
    /// in pixels of the zoomed picture (the demo size times `zoom`), for the upscaler's
    /// high-resolution targets.
    pub fn render_scaled(
        &self,
        clip_frames: usize,
        first: usize,
        frames: usize,
        window: (usize, usize, usize, usize),
        zoom: usize,
    ) -> Vec<f32> {
        let (x0, y0, width, height) = window;
        let zoom = zoom as f32;
        let plane = frames * height * width;
        let mut out = vec![0f32; 3 * plane];
        let bg = self.background.rgb();
        // 3x3 supersampling for smooth edges.
        const SUB: [f32; 3] = [-1.0 / 3.0, 0.0, 1.0 / 3.0];
        for f in 0..frames {
            let t = if clip_frames > 1 {
                (first + f) as f32 / (clip_frames - 1) as f32
            } else {
                0.0
            };
            let states: Vec<((f32, f32), f32)> = self.objects.iter().map(|o| o.at(t)).collect();
            for y in 0..height {
                for x in 0..width {
                    let mut rgb = [0f32; 3];
                    for sy in SUB {
                        for sx in SUB {
                            let px = ((x0 + x) as f32 + 0.5 + sx) / zoom;
                            let py = ((y0 + y) as f32 + 0.5 + sy) / zoom;
                            let mut colour = bg;
                            for (o, &((cx, cy), scale)) in self.objects.iter().zip(&states) {
                                let s = o.size * scale;
                                if o.shape.contains((px - cx) / s, (py - cy) / s) {
                                    colour = o.colour.rgb();
                                }
                            }
                            for c in 0..3 {
                                rgb[c] += colour[c];
                            }
                        }
                    }
                    let i = (f * height + y) * width + x;
                    for (c, v) in rgb.iter().enumerate() {
                        out[c * plane + i] = v / 9.0 * 2.0 - 1.0;
                    }
                }
            }
        }
        out
    }

    /// Which pixels of a [`Scene::render`] output show an object (or its blended edge): those
    /// that differ from the background colour. `pixels` is `[3, n]` channel major.
    pub fn object_mask(&self, pixels: &[f32]) -> Vec<bool> {
        let bg = self.background.rgb().map(|v| v * 2.0 - 1.0);
        let plane = pixels.len() / 3;
        (0..plane)
            .map(|i| (0..3).any(|c| (pixels[c * plane + i] - bg[c]).abs() > 0.02))
            .collect()
    }

    /// The whole clip at the demo size.
    pub fn render_clip(&self) -> Vec<f32> {
        self.render(FRAMES, 0, FRAMES, (0, 0, WIDTH, HEIGHT))
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// "a red circle" / "the red circle".
fn noun_phrase<R: Rng>(rng: &mut R, object: &Object) -> String {
    let colour = pick(rng, object.colour.words());
    let shape = pick(rng, object.shape.words());
    if rng.random::<f32>() < 0.15 {
        format!("the {colour} {shape}")
    } else {
        format!("{} {colour} {shape}", article(colour))
    }
}

fn background_phrase<R: Rng>(rng: &mut R, colour: Colour) -> String {
    let name = pick(rng, colour.words());
    let noun = pick(rng, &["background", "background", "backdrop"]);
    if rng.random::<f32>() < 0.2 {
        format!("a plain {name} {noun}")
    } else {
        format!("{} {name} {noun}", article(name))
    }
}

/// A plain-English caption of the scene, in one of several wordings.
pub fn caption<R: Rng>(rng: &mut R, scene: &Scene) -> String {
    let bg = background_phrase(rng, scene.background);
    let text = match scene.objects.as_slice() {
        [o] => {
            let np = noun_phrase(rng, o);
            let verb = pick(rng, o.motion.verb_phrases());
            let ing = pick(rng, o.motion.ing_phrases());
            match rng.random_range(0..7) {
                0 => format!("{np} {verb} on {bg}."),
                1 => format!("{np} {verb} against {bg}."),
                2 => format!("on {bg}, {np} {verb}."),
                3 => format!("{np} {ing} on {bg}"),
                4 => format!("{bg} with {np} {ing}."),
                5 => format!("{np} on {bg} {verb}."),
                _ => format!("{np} {verb}, {bg}"),
            }
        }
        [a, b] => {
            let (na, nb) = (noun_phrase(rng, a), noun_phrase(rng, b));
            let (va, vb) = (
                pick(rng, a.motion.verb_phrases()),
                pick(rng, b.motion.verb_phrases()),
            );
            match rng.random_range(0..3) {
                0 => format!("{na} {va} and {nb} {vb} on {bg}."),
                1 => format!("on {bg}, {na} {va} while {nb} {vb}."),
                _ => format!("{na} {va} and {nb} {vb}, {bg}"),
            }
        }
        _ => format!("{bg}."),
    };
    capitalise_first(&text)
}

/// A narrow slice of the world for diagnostic runs (`--preset left-right`): one object of one
/// colour and shape on one background, a few motions, and a few fixed caption wordings per
/// motion. Small enough that a transformer that can learn motion from a word at all should
/// learn it here quickly.
#[derive(Debug, Clone, PartialEq)]
pub struct Subset {
    pub colour: Colour,
    pub shape: Shape,
    pub background: Colour,
    pub motions: Vec<Motion>,
}

impl Subset {
    /// A red circle on a blue background that moves left or right.
    pub fn left_right() -> Subset {
        Subset {
            colour: Colour::Red,
            shape: Shape::Circle,
            background: Colour::Blue,
            motions: vec![Motion::Left, Motion::Right],
        }
    }

    /// A scene of the subset; the motion cycles with `index`, so any even number of scenes is
    /// balanced between the motions.
    pub fn scene<R: Rng>(&self, rng: &mut R, index: usize, width: usize, height: usize) -> Scene {
        let motion = self.motions[index % self.motions.len()];
        Scene {
            background: self.background,
            objects: vec![place_object(
                rng,
                self.colour,
                self.shape,
                motion,
                width as f32,
                height as f32,
                Placement::Lane(0.5),
            )],
        }
    }

    /// One of four wordings of the scene's caption (two verb phrases, two sentence orders), in
    /// the canonical words of the colours and the shape.
    pub fn caption<R: Rng>(&self, rng: &mut R, scene: &Scene) -> String {
        let object = &scene.objects[0];
        let verbs = object.motion.verb_phrases();
        // "moves left" / "slides to the left" (the first and the fourth phrase of each move).
        let verb = verbs[if rng.random::<bool>() {
            0
        } else {
            3.min(verbs.len() - 1)
        }];
        let np = format!("a {} {}", object.colour.name(), object.shape.name());
        let bg = format!("a {} background", scene.background.name());
        capitalise_first(&if rng.random::<bool>() {
            format!("{np} {verb} on {bg}.")
        } else {
            format!("on {bg}, {np} {verb}.")
        })
    }
}

/// A slice of the full training set picked by filtering its scenes (so its clips are already
/// encoded): the transformer stage's curriculum trains on it first. Scenes with at most
/// `max_objects` objects on one of `backgrounds`, every object of one of `colours`; shapes and
/// motions are not restricted, so that what varies between the slice's clips is mostly motion.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub backgrounds: Vec<Colour>,
    pub colours: Vec<Colour>,
    pub max_objects: usize,
    pub motions: Vec<Motion>,
}

/// A constructor of a named slice.
type SliceOf = fn() -> Slice;

impl Slice {
    /// The curriculum's default: one object on a black background, in one of four colours, with
    /// every shape and every motion (78 of the full preset's 1000 clips).
    pub fn motion_first() -> Slice {
        Slice {
            backgrounds: vec![Colour::Black],
            colours: vec![Colour::Red, Colour::Yellow, Colour::Blue, Colour::White],
            max_objects: 1,
            motions: MOTIONS.to_vec(),
        }
    }

    /// A diagnostic: one object of any colour and shape on any background, moving left or right
    /// (against `Subset::left_right`, one look with the same two motions).
    pub fn left_right_any_look() -> Slice {
        Slice {
            backgrounds: BACKGROUND_COLOURS.to_vec(),
            colours: OBJECT_COLOURS.to_vec(),
            max_objects: 1,
            motions: vec![Motion::Left, Motion::Right],
        }
    }

    /// Diagnostics: every colour, shape and motion of one object on black; one red object of any
    /// shape and motion on any background.
    pub fn one_background() -> Slice {
        Slice {
            backgrounds: vec![Colour::Black],
            colours: OBJECT_COLOURS.to_vec(),
            max_objects: 1,
            motions: MOTIONS.to_vec(),
        }
    }

    pub fn one_colour() -> Slice {
        Slice {
            backgrounds: BACKGROUND_COLOURS.to_vec(),
            colours: vec![Colour::Red],
            max_objects: 1,
            motions: MOTIONS.to_vec(),
        }
    }

    /// The slices `--slice` names.
    pub const NAMED: [(&'static str, SliceOf); 4] = [
        ("motion-first", Slice::motion_first),
        ("left-right-any-look", Slice::left_right_any_look),
        ("one-background", Slice::one_background),
        ("one-colour", Slice::one_colour),
    ];

    pub fn names() -> impl Iterator<Item = &'static str> {
        Slice::NAMED.iter().map(|(name, _)| *name)
    }

    pub fn by_name(name: &str) -> Option<Slice> {
        Slice::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, slice)| slice())
    }

    pub fn contains(&self, scene: &Scene) -> bool {
        scene.objects.len() <= self.max_objects
            && self.backgrounds.contains(&scene.background)
            && scene
                .objects
                .iter()
                .all(|o| self.colours.contains(&o.colour) && self.motions.contains(&o.motion))
    }

    /// Indices of the scenes in the slice.
    pub fn indices(&self, scenes: &[Scene]) -> Vec<usize> {
        (0..scenes.len())
            .filter(|&i| self.contains(&scenes[i]))
            .collect()
    }
}

pub use t2v_demo::vocabulary::capitalise_first;

/// A one-line description of what the demo model can draw, for warnings and help texts (the
/// export writes it into `demo.json`).
pub fn capabilities() -> String {
    let names = |v: Vec<&str>| v.join(", ");
    format!(
        "shapes ({}) in {} moving left, right, up or down, growing, shrinking or bouncing ({}), on {} backgrounds",
        names(SHAPES.iter().map(|s| s.name()).collect()),
        names(OBJECT_COLOURS.iter().map(|c| c.name()).collect()),
        names(MOTIONS.iter().map(|m| m.name()).collect()),
        names(BACKGROUND_COLOURS.iter().map(|c| c.name()).collect()),
    )
}

/// Every word any caption can contain (lower case, without punctuation).
pub fn caption_words() -> Vec<&'static str> {
    let mut words: Vec<&'static str> = vec![
        "a",
        "an",
        "the",
        "on",
        "against",
        "with",
        "and",
        "while",
        "background",
        "backdrop",
        "plain",
    ];
    for colour in PALETTE {
        words.extend(colour.words());
    }
    for shape in SHAPES {
        words.extend(shape.words());
    }
    for motion in MOTIONS {
        for phrase in motion.verb_phrases().iter().chain(motion.ing_phrases()) {
            words.extend(phrase.split(' '));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    words.retain(|w| seen.insert(*w));
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn train_scenes_avoid_held_out_triples_and_stay_in_frame() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..500 {
            let scene = Scene::sample(&mut rng, Split::Train, 0.3, Layout::Lanes, WIDTH, HEIGHT);
            for o in &scene.objects {
                assert!(!is_held_out(o.colour, o.shape, o.motion));
                assert_ne!(o.colour, scene.background);
                for i in 0..FRAMES {
                    let ((x, y), s) = o.at(i as f32 / (FRAMES - 1) as f32);
                    let r = o.size * s;
                    assert!(
                        x - r >= 0.0
                            && x + r <= WIDTH as f32
                            && y - r >= 0.0
                            && y + r <= HEIGHT as f32,
                        "{o:?}"
                    );
                }
            }
        }
    }

    /// Both layouts keep objects inside the frame; lanes keep a single object's path near the
    /// middle row or column, on the world's backgrounds; the VAE's layout uses all its
    /// backgrounds.
    #[test]
    fn layouts_place_objects_in_lanes_or_anywhere() {
        let mut lanes = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut anywhere = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut vae_backgrounds = std::collections::BTreeSet::new();
        for _ in 0..400 {
            let scene = Scene::sample(&mut lanes, Split::Train, 0.0, Layout::Lanes, WIDTH, HEIGHT);
            let free = Scene::sample(
                &mut anywhere,
                Split::Train,
                0.0,
                Layout::Anywhere,
                WIDTH,
                HEIGHT,
            );
            assert!(BACKGROUND_COLOURS.contains(&scene.background));
            vae_backgrounds.insert(free.background.name());
            for o in scene.objects.iter().chain(&free.objects) {
                for i in 0..FRAMES {
                    let ((x, y), s) = o.at(i as f32 / (FRAMES - 1) as f32);
                    let r = o.size * s;
                    assert!(r <= x && x + r <= WIDTH as f32, "{o:?}");
                    assert!(r <= y && y + r <= HEIGHT as f32, "{o:?}");
                }
            }
            let o = &scene.objects[0];
            let (x, y) = o.start;
            let near =
                |v: f32, extent: usize| (v / extent as f32 - 0.5).abs() <= LANE_JITTER + 1e-3;
            match o.motion {
                Motion::Left | Motion::Right => assert!(near(y, HEIGHT), "{o:?}"),
                Motion::Up | Motion::Down | Motion::Bounce => assert!(near(x, WIDTH), "{o:?}"),
                Motion::Grow | Motion::Shrink => {
                    assert!(near(x, WIDTH) && near(y, HEIGHT), "{o:?}")
                }
            }
        }
        assert_eq!(vae_backgrounds.len(), VAE_BACKGROUNDS.len());
    }

    /// A family's members differ in their motions only: same background, colours and shapes,
    /// every motion once for the first object (but a held-out one), no held-out triple.
    #[test]
    fn family_members_share_everything_but_their_motions() {
        for family in 0..60u64 {
            let members: Vec<Scene> = (0..MOTIONS.len())
                .map(|m| {
                    let mut family_rng = rand_chacha::ChaCha8Rng::seed_from_u64(family);
                    let mut clip_rng = rand_chacha::ChaCha8Rng::seed_from_u64(1000 + m as u64);
                    Scene::family_member(&mut family_rng, &mut clip_rng, m, 0.3, WIDTH, HEIGHT)
                })
                .collect();
            let first = &members[0];
            let mut motions = std::collections::BTreeSet::new();
            for scene in &members {
                assert_eq!(scene.background, first.background);
                assert_eq!(scene.objects.len(), first.objects.len());
                for (o, f) in scene.objects.iter().zip(&first.objects) {
                    assert_eq!((o.colour, o.shape), (f.colour, f.shape));
                    assert!(!is_held_out(o.colour, o.shape, o.motion), "{o:?}");
                }
                motions.insert(scene.objects[0].motion);
            }
            let o = &first.objects[0];
            let allowed = MOTIONS
                .iter()
                .filter(|&&m| !is_held_out(o.colour, o.shape, m))
                .count();
            assert_eq!(motions.len(), allowed, "{members:?}");
        }
    }

    /// Every listed slice has a name that parses, and a slice keeps only its motions.
    #[test]
    fn named_slices_parse_and_filter_by_motion() {
        assert_eq!(Slice::names().count(), 4);
        for name in Slice::names() {
            assert!(Slice::by_name(name).is_some(), "{name}");
        }
        assert_eq!(Slice::by_name("motion-first"), Some(Slice::motion_first()));
        assert!(Slice::by_name("everything").is_none());
        let slice = Slice::left_right_any_look();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (mut kept, mut dropped) = (0, 0);
        for _ in 0..200 {
            let scene = Scene::sample(&mut rng, Split::Train, 0.0, Layout::Lanes, WIDTH, HEIGHT);
            let moves_sideways = matches!(scene.objects[0].motion, Motion::Left | Motion::Right);
            assert_eq!(slice.contains(&scene), moves_sideways, "{scene:?}");
            if moves_sideways {
                kept += 1;
            } else {
                dropped += 1;
            }
        }
        assert!(kept > 20 && dropped > 100, "{kept} kept, {dropped} dropped");
    }

    #[test]
    fn captions_use_only_caption_words() {
        let words = caption_words();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        for _ in 0..300 {
            let scene = Scene::sample(&mut rng, Split::Train, 0.5, Layout::Lanes, WIDTH, HEIGHT);
            let text = caption(&mut rng, &scene).to_lowercase();
            for w in text
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| !w.is_empty())
            {
                assert!(words.contains(&w), "{w} in {text}");
            }
        }
    }

    #[test]
    fn the_left_right_subset_is_balanced_and_captions_name_the_motion() {
        let subset = Subset::left_right();
        let words = caption_words();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut counts = [0usize; 2];
        let mut wordings = std::collections::BTreeSet::new();
        for i in 0..200 {
            let scene = subset.scene(&mut rng, i, WIDTH, HEIGHT);
            assert_eq!(scene.background, Colour::Blue);
            let [o] = scene.objects.as_slice() else {
                panic!("one object: {scene:?}")
            };
            assert_eq!((o.colour, o.shape), (Colour::Red, Shape::Circle));
            let ((x0, _), _) = o.at(0.0);
            let ((x1, _), _) = o.at(1.0);
            let text = subset.caption(&mut rng, &scene);
            wordings.insert(text.clone());
            let lower = text.to_lowercase();
            for w in lower
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| !w.is_empty())
            {
                assert!(words.contains(&w), "{w} in {text}");
            }
            match o.motion {
                Motion::Left => {
                    counts[0] += 1;
                    assert!(x1 < x0 && lower.contains("left") && !lower.contains("right"));
                }
                Motion::Right => {
                    counts[1] += 1;
                    assert!(x1 > x0 && lower.contains("right") && !lower.contains("left"));
                }
                m => panic!("{m:?} is not in the subset"),
            }
        }
        assert_eq!(counts, [100, 100]);
        assert_eq!(wordings.len(), 8, "{wordings:?}");
    }

    #[test]
    fn render_is_in_range_and_shows_the_object() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let scene = Scene::sample(&mut rng, Split::Train, 0.0, Layout::Lanes, WIDTH, HEIGHT);
        let clip = scene.render(FRAMES, 0, 1, (0, 0, WIDTH, HEIGHT));
        assert!(clip.iter().all(|v| (-1.0..=1.0).contains(v)));
        let bg = scene.background.rgb()[0] * 2.0 - 1.0;
        let differing = clip[..WIDTH * HEIGHT]
            .iter()
            .filter(|v| (*v - bg).abs() > 0.05)
            .count();
        assert!(differing > 300, "{differing}");
    }
}
