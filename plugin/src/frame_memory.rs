//! One memory budget for the finished clips that all node instances of the process hold (a
//! 1280x704x121 clip is about 650 MB of 16-bit RGB). When a new clip would take the total over
//! the budget, the clips used least recently (rendered or announced) are released first; the
//! node whose clip was released reads it again from the clip cache, or generates it again, on
//! its next render.
//!
//! The budget is `$T2V_FRAME_MEMORY_MB` (megabytes, fractions allowed), else
//! [`DEFAULT_BUDGET_MB`]. A single clip larger than the budget is still held while it is the
//! newest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use t2v_bridge::Clip;
use t2v_support::lock;

pub const BUDGET_ENV: &str = "T2V_FRAME_MEMORY_MB";
pub const DEFAULT_BUDGET_MB: f64 = 4096.0;
const MB: f64 = 1024.0 * 1024.0;

/// A clip a node holds, until the budget releases it.
pub type HeldClip = Held<Clip>;

/// Something held under the budget (a clip; anything in the unit tests).
pub struct Held<T> {
    clip: Mutex<Option<Arc<T>>>,
    bytes: usize,
    /// The clip's frame count and whether it came from the disk cache, kept after release.
    pub frames: usize,
    pub from_cache: bool,
    /// Names the clip in the log.
    tag: String,
    last_use: AtomicU64,
}

static HELD: Mutex<Vec<Weak<HeldClip>>> = Mutex::new(Vec::new());
static CLOCK: AtomicU64 = AtomicU64::new(0);

fn tick() -> u64 {
    CLOCK.fetch_add(1, Ordering::Relaxed) + 1
}

/// The budget in bytes: `$T2V_FRAME_MEMORY_MB`, read once.
pub fn budget_bytes() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let text = std::env::var(BUDGET_ENV).unwrap_or_default();
        let mb = match text.trim().parse::<f64>() {
            Ok(mb) if mb.is_finite() && mb >= 0.0 => mb,
            _ if text.trim().is_empty() => DEFAULT_BUDGET_MB,
            _ => {
                crate::log!(
                    "frame memory: ignoring {BUDGET_ENV}={text:?} (megabytes expected); {DEFAULT_BUDGET_MB} MB"
                );
                DEFAULT_BUDGET_MB
            }
        };
        (mb * MB) as usize
    })
}

/// The bytes a clip's frames and latents take.
pub fn clip_bytes(clip: &Clip) -> usize {
    let frames: usize = clip
        .frames
        .iter()
        .map(|f| f.width() * f.height() * 3 * std::mem::size_of::<u16>())
        .sum();
    let latents = clip
        .latents
        .as_ref()
        .map_or(0, |l| std::mem::size_of_val(l.data()));
    frames + latents
}

/// Holds `clip` for a node (`tag` names it in the log), releasing the least recently used
/// clips of any node while the total is over the budget.
pub fn hold(clip: Arc<Clip>, tag: &str) -> Arc<HeldClip> {
    let held = Arc::new(HeldClip {
        bytes: clip_bytes(&clip),
        frames: clip.frames.len(),
        from_cache: clip.from_cache,
        clip: Mutex::new(Some(clip)),
        tag: tag.to_string(),
        last_use: AtomicU64::new(tick()),
    });
    let mut all = lock(&HELD);
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(&held));
    let live: Vec<Arc<HeldClip>> = all.iter().filter_map(Weak::upgrade).collect();
    drop(all);
    enforce(&live, &held, budget_bytes());
    held
}

/// Releases the least recently used clips of `live` (never `keep`) until they fit `budget`.
fn enforce<T>(live: &[Arc<Held<T>>], keep: &Arc<Held<T>>, budget: usize) {
    let mut total: usize = live
        .iter()
        .filter(|h| !h.is_released())
        .map(|h| h.bytes)
        .sum();
    let mut candidates: Vec<&Arc<Held<T>>> = live
        .iter()
        .filter(|h| !Arc::ptr_eq(h, keep) && !h.is_released())
        .collect();
    candidates.sort_by_key(|h| h.last_use.load(Ordering::Relaxed));
    for held in candidates {
        if total <= budget {
            break;
        }
        if lock(&held.clip).take().is_some() {
            total -= held.bytes;
            crate::log!(
                "frame memory: released clip {} ({:.1} MB, least recently used); {:.1} MB of {:.1} MB held",
                held.tag,
                held.bytes as f64 / MB,
                total as f64 / MB,
                budget as f64 / MB
            );
        }
    }
}

/// The bytes of every clip held now, all nodes together.
pub fn held_bytes() -> usize {
    lock(&HELD)
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|h| !h.is_released())
        .map(|h| h.bytes)
        .sum()
}

impl<T> Held<T> {
    /// The clip, marked as just used; `None` once released.
    pub fn get(&self) -> Option<Arc<T>> {
        let clip = lock(&self.clip).clone();
        if clip.is_some() {
            self.last_use.store(tick(), Ordering::Relaxed);
        }
        clip
    }

    pub fn is_released(&self) -> bool {
        lock(&self.clip).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(i: usize, bytes: usize) -> Arc<Held<Vec<u8>>> {
        Arc::new(Held {
            bytes,
            frames: 1,
            from_cache: false,
            clip: Mutex::new(Some(Arc::new(vec![0; bytes]))),
            tag: format!("clip {i}"),
            last_use: AtomicU64::new(tick()),
        })
    }

    #[test]
    fn the_least_recently_used_clip_goes_first() {
        // Room for two clips of 3072 bytes.
        let budget = 2 * 3072;
        let held: Vec<_> = (0..3).map(|i| held(i, 3072)).collect();
        // Clip 0 was used after clip 1: clip 1 is the least recently used.
        assert!(held[0].get().is_some());
        enforce(&held, &held[2], budget);
        assert!(!held[0].is_released());
        assert!(held[1].is_released());
        assert!(held[1].get().is_none());
        assert!(!held[2].is_released());
        // A budget smaller than the newest clip keeps the newest only.
        enforce(&held, &held[2], 10);
        assert!(held[0].is_released() && !held[2].is_released());
    }
}
