//! What travels through the queue server, all versioned JSON with size limits checked before
//! anything is allocated from it:
//!
//! - [`JobMessage`]: one clip to generate, published on the job stream. It names a model by the
//!   id a worker's own configuration gives it, never by a path, and carries its first frame (for
//!   image-to-video) as a reference into the input store, never inline.
//! - [`JobRecord`]: the shared state of a clip's job (KV bucket `t2v_jobs`, key = clip key):
//!   queued, running (with its attempt, progress and frames published), done (with the clip's
//!   metadata), failed (with the error every client sees) or cancelled.
//! - [`ModelEntry`]: what a worker pool serves under a model id (KV bucket `t2v_models`), so a
//!   client computes the clip key (and looks in the clip cache) without the model's files.
//! - Frames: [`encode_frame`] / [`decode_frame`], one object per decoded frame.

use serde::{Deserialize, Serialize};
use t2v_bridge::params::{MAX_FRAMES, MAX_SIDE, MAX_STEPS};
use t2v_bridge::{
    ClipKey, ClipMetadata, Decoder, Error, GenerationParams, JobProgress, Precision, Result,
};

/// The protocol's version: a message or record of another version is refused with an error
/// that says which side to update. Version 2 added the decoder (jobs) and the tiny decoder
/// (model entries).
pub const PROTOCOL_VERSION: u32 = 2;
/// A job message larger than this is refused unread (the first frame travels separately).
pub const MAX_MESSAGE_BYTES: usize = 64 << 10;
/// The longest prompt (and negative prompt) a job may carry, in characters. umT5 reads 512
/// tokens; this leaves room for any language without letting a client send megabytes.
pub const MAX_PROMPT_CHARS: usize = 4000;
/// The longest model id, pool name or client id.
pub const MAX_NAME_CHARS: usize = 64;
/// The server's default `max_payload`: no message is larger.
const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// A record (it carries the clip's metadata) larger than this is refused.
pub const MAX_RECORD_BYTES: usize = 256 << 10;

/// A first frame in the input store: its pixel hash names the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRef {
    /// [`t2v_bridge::cache_key::image_hash`] of the pixels.
    pub hash: String,
    pub width: u32,
    pub height: u32,
}

impl ImageRef {
    /// The bytes the object must have: 8-bit RGB.
    pub fn bytes(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }
}

/// One clip to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobMessage {
    pub v: u32,
    pub key: ClipKey,
    /// A model in the workers' configuration.
    pub model_id: String,
    pub params: GenerationParams,
    /// Decided by the client from the pool's [`ModelEntry`], never `auto`: it is part of the key.
    pub precision: Precision,
    #[serde(default)]
    pub image: Option<ImageRef>,
    /// Decided by the client from the pool's [`ModelEntry`] (`fast` only when its model has a
    /// tiny decoder): it is part of the key.
    #[serde(default)]
    pub decoder: Decoder,
    /// This submission's id (the record's); also the message id, so the server drops a second
    /// publication of the same submission.
    pub submission: String,
}

/// Only the version and the key, read leniently from a message that fails to parse, so the
/// error can still reach the submitter.
#[derive(Deserialize)]
struct Probe {
    v: Option<serde_json::Value>,
    key: Option<String>,
}

/// A name that is one subject token: letters, digits, `-` and `_`.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::bad_input(format!(
            "{what} `{name}` is not valid: use 1 to {MAX_NAME_CHARS} letters, digits, `-` or `_`"
        )))
    }
}

fn check_version(v: u32, what: &str) -> Result<()> {
    if v == PROTOCOL_VERSION {
        return Ok(());
    }
    let update = if v > PROTOCOL_VERSION {
        "this program is older than its sender: update it"
    } else {
        "its sender is older than this program: update the sender"
    };
    Err(Error::bad_input(format!(
        "{what} of protocol version {v}; this program speaks version {PROTOCOL_VERSION} ({update})"
    )))
}

impl JobMessage {
    /// Checks every limit: names, prompt lengths, the parameters (frame count, size, steps) and
    /// the first frame's size.
    pub fn check(&self) -> Result<()> {
        check_version(self.v, "a job message")?;
        check_name("model id", &self.model_id)?;
        let p = &self.params;
        for (what, text) in [
            ("prompt", Some(&p.prompt)),
            ("negative prompt", p.negative_prompt.as_ref()),
        ] {
            let chars = text.map_or(0, |t| t.chars().count());
            if chars > MAX_PROMPT_CHARS {
                return Err(Error::bad_input(format!(
                    "the {what} has {chars} characters; a queued job takes at most {MAX_PROMPT_CHARS}"
                )));
            }
        }
        if p.frames > MAX_FRAMES || p.steps > MAX_STEPS {
            return Err(Error::bad_input(format!(
                "{} frames and {} steps: a job takes at most {MAX_FRAMES} frames and {MAX_STEPS} steps",
                p.frames, p.steps
            )));
        }
        p.validate()?;
        if self.precision == Precision::Auto {
            return Err(Error::bad_input(
                "a queued job names its precision (auto is decided by the client)",
            ));
        }
        if let Some(image) = &self.image {
            let side = MAX_SIDE as u32;
            if image.width == 0 || image.height == 0 || image.width > side || image.height > side {
                return Err(Error::bad_input(format!(
                    "a {}x{} first frame: a queued job takes 1 to {MAX_SIDE} pixels a side",
                    image.width, image.height
                )));
            }
            if image.hash.len() != 64 || !image.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::bad_input("the first frame's hash is not valid"));
            }
        }
        if self.submission.is_empty() || self.submission.len() > 2 * MAX_NAME_CHARS {
            return Err(Error::bad_input(
                "the job message has no valid submission id",
            ));
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a job message serialises")
    }

    /// Reads and checks a message. On failure the error comes with the clip key when the
    /// message named one, so the worker can tell the job's clients.
    pub fn parse(bytes: &[u8]) -> std::result::Result<JobMessage, (Option<ClipKey>, Error)> {
        // The probe reads at most the server's payload limit; it finds whom to tell.
        let probe: Option<Probe> = (bytes.len() <= MAX_PAYLOAD_BYTES)
            .then(|| serde_json::from_slice(bytes).ok())
            .flatten();
        let key = probe
            .as_ref()
            .and_then(|p| p.key.as_deref())
            .and_then(ClipKey::from_hex);
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err((
                key,
                Error::bad_input(format!(
                    "a job message of {} bytes; the limit is {MAX_MESSAGE_BYTES}",
                    bytes.len()
                )),
            ));
        }
        if let Some(v) = probe.as_ref().and_then(|p| p.v.as_ref()) {
            let v = v
                .as_u64()
                .map_or(u32::MAX, |v| v.min(u32::MAX as u64) as u32);
            check_version(v, "a job message").map_err(|e| (key, e))?;
        }
        let message: JobMessage = serde_json::from_slice(bytes).map_err(|e| {
            (
                key,
                Error::bad_input(format!("a malformed job message: {e}")),
            )
        })?;
        message.check().map_err(|e| (Some(message.key), e))?;
        Ok(message)
    }
}

/// Where a clip's job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A clip's job as every client sees it (KV `t2v_jobs`, key = the clip key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRecord {
    pub v: u32,
    pub state: JobState,
    /// The submission this record describes; a new one starts when a failed or cancelled clip
    /// is asked for again.
    pub submission: String,
    /// Deliveries of the job message so far (1 for the first worker); a new attempt restarts
    /// the frames.
    #[serde(default)]
    pub attempt: u32,
    /// The worker running it.
    #[serde(default)]
    pub worker: Option<String>,
    #[serde(default)]
    pub progress: Option<JobProgress>,
    /// How many frames of this attempt are in the frame store (frames `0..frames_done`).
    #[serde(default)]
    pub frames_done: usize,
    /// How many frames the clip has.
    pub frames: usize,
    #[serde(default)]
    pub error: Option<Error>,
    /// The finished clip's metadata (once done).
    #[serde(default)]
    pub metadata: Option<ClipMetadata>,
}

impl JobRecord {
    pub fn queued(submission: String, frames: usize) -> JobRecord {
        JobRecord {
            v: PROTOCOL_VERSION,
            state: JobState::Queued,
            submission,
            attempt: 0,
            worker: None,
            progress: None,
            frames_done: 0,
            frames,
            error: None,
            metadata: None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a job record serialises")
    }

    pub fn parse(bytes: &[u8]) -> Result<JobRecord> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(Error::failed(format!(
                "a job record of {} bytes; the limit is {MAX_RECORD_BYTES}",
                bytes.len()
            )));
        }
        let probe: Option<Probe> = serde_json::from_slice(bytes).ok();
        if let Some(v) = probe.and_then(|p| p.v).and_then(|v| v.as_u64()) {
            check_version(v.min(u32::MAX as u64) as u32, "a job record")?;
        }
        let record: JobRecord = serde_json::from_slice(bytes)
            .map_err(|e| Error::failed(format!("a malformed job record: {e}")))?;
        if record.frames > MAX_FRAMES || record.frames_done > record.frames {
            return Err(Error::failed(format!(
                "a job record claims {} of {} frames",
                record.frames_done, record.frames
            )));
        }
        Ok(record)
    }
}

/// What a worker pool serves under a model id (KV `t2v_models`, key `<pool>.<model_id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub v: u32,
    pub model_id: String,
    /// [`t2v_bridge::cache_key::model_fingerprint`] of the worker's files.
    pub fingerprint: String,
    /// The precision `auto` means on the pool's devices.
    pub precision: Precision,
    /// The content hash of the model's tiny decoder
    /// ([`t2v_bridge::model_identity::spec_tiny_decoder`]); `None` when it has none, and the
    /// pool then decodes with the full decoder only.
    #[serde(default)]
    pub tiny_decoder: Option<String>,
    /// The worker that last registered it.
    pub worker: String,
}

impl ModelEntry {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a model entry serialises")
    }

    pub fn parse(bytes: &[u8]) -> Result<ModelEntry> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(Error::failed("an oversized model entry"));
        }
        let entry: ModelEntry = serde_json::from_slice(bytes)
            .map_err(|e| Error::failed(format!("a malformed model entry: {e}")))?;
        check_version(entry.v, "a model entry")?;
        Ok(entry)
    }
}

const FRAME_MAGIC: &[u8; 4] = b"T2VF";

/// A frame as stored: magic, version, width and height (u32 LE), then 16-bit RGB samples (LE).
pub fn encode_frame(frame: &t2v_bridge::Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + frame.rgb16().len() * 2);
    out.extend_from_slice(FRAME_MAGIC);
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out.extend_from_slice(&(frame.width() as u32).to_le_bytes());
    out.extend_from_slice(&(frame.height() as u32).to_le_bytes());
    for v in frame.rgb16() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Reads a stored frame, refusing one of another size than the clip's.
pub fn decode_frame(bytes: &[u8], width: usize, height: usize) -> Result<t2v_bridge::Frame> {
    let bad = |why: &str| Error::failed(format!("a stored frame is damaged: {why}"));
    if bytes.len() < 16 || &bytes[..4] != FRAME_MAGIC {
        return Err(bad("no frame header"));
    }
    let word = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    check_version(word(4), "a stored frame")?;
    let (w, h) = (word(8) as usize, word(12) as usize);
    if (w, h) != (width, height) {
        return Err(bad(&format!("{w}x{h}, the clip is {width}x{height}")));
    }
    if bytes.len() != 16 + w * h * 6 {
        return Err(bad("wrong length"));
    }
    let rgb = bytes[16..]
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    Ok(t2v_bridge::Frame::from_rgb16(w, h, rgb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> JobMessage {
        JobMessage {
            v: PROTOCOL_VERSION,
            key: ClipKey::from_hex(&"ab".repeat(32)).unwrap(),
            model_id: "demo".into(),
            params: GenerationParams {
                prompt: "a red circle".into(),
                width: 64,
                height: 64,
                frames: 5,
                steps: 2,
                ..Default::default()
            },
            precision: Precision::F32,
            image: None,
            decoder: Decoder::Full,
            submission: "s1".into(),
        }
    }

    #[test]
    fn a_job_message_round_trips_and_checks_its_limits() {
        let m = message();
        assert_eq!(JobMessage::parse(&m.to_bytes()).unwrap(), m);

        let refused = |m: JobMessage, needle: &str| {
            let (key, e) = JobMessage::parse(&m.to_bytes()).unwrap_err();
            assert_eq!(key, Some(message().key), "the key comes with the error");
            assert!(e.message.contains(needle), "{e}");
        };
        let mut long = message();
        long.params.prompt = "x".repeat(MAX_PROMPT_CHARS + 1);
        refused(long, "at most 4000");
        let mut frames = message();
        frames.params.frames = MAX_FRAMES + 4;
        refused(frames, "frames");
        let mut path = message();
        path.model_id = "/models/wan".into();
        refused(path, "model id `/models/wan` is not valid");
        let mut auto = message();
        auto.precision = Precision::Auto;
        refused(auto, "precision");
        let mut image = message();
        image.image = Some(ImageRef {
            hash: "0".repeat(64),
            width: MAX_SIDE as u32 + 1,
            height: 8,
        });
        refused(image, "first frame");
        let mut version = message();
        version.v = 1;
        refused(
            version,
            "protocol version 1; this program speaks version 2 (its sender is older",
        );
        let mut fast = message();
        fast.decoder = Decoder::Fast;
        let json = String::from_utf8(fast.to_bytes()).unwrap();
        assert!(json.contains(r#""decoder":"fast""#), "{json}");
        assert_eq!(JobMessage::parse(json.as_bytes()).unwrap(), fast);
    }

    #[test]
    fn malformed_and_oversized_messages_are_refused_with_a_reason() {
        let (key, e) = JobMessage::parse(b"not json").unwrap_err();
        assert_eq!(key, None);
        assert!(e.message.contains("malformed"), "{e}");
        let big = vec![b' '; MAX_MESSAGE_BYTES + 1];
        let (_, e) = JobMessage::parse(&big).unwrap_err();
        assert!(e.message.contains("limit"), "{e}");
        // An unknown field (a path smuggled in) is refused, not ignored.
        let mut json: serde_json::Value = serde_json::to_value(message()).unwrap();
        json["model_path"] = "/etc/passwd".into();
        let (key, e) = JobMessage::parse(json.to_string().as_bytes()).unwrap_err();
        assert!(key.is_some());
        assert!(e.message.contains("model_path"), "{e}");
    }

    #[test]
    fn records_and_frames_round_trip() {
        let r = JobRecord::queued("s1".into(), 5);
        assert_eq!(JobRecord::parse(&r.to_bytes()).unwrap(), r);
        let mut newer = serde_json::to_value(&r).unwrap();
        newer["v"] = 9.into();
        let e = JobRecord::parse(newer.to_string().as_bytes()).unwrap_err();
        assert!(e.message.contains("update it"), "{e}");

        let f = t2v_bridge::Frame::from_rgb16(2, 1, vec![0, 1, 65535, 300, 40000, 7]);
        let bytes = encode_frame(&f);
        assert_eq!(decode_frame(&bytes, 2, 1).unwrap(), f);
        assert!(decode_frame(&bytes, 1, 2).is_err());
        assert!(decode_frame(&bytes[..bytes.len() - 1], 2, 1).is_err());
    }
}
