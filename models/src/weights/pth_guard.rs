//! Checks a torch zip checkpoint before candle reads it. candle's pickle reader sizes a buffer
//! from every string length in the pickle, and reads a tensor by allocating the size its
//! claimed shape implies: a damaged or hostile file could make either ask for gigabytes (the
//! fuzz test found a 4 GiB string length). Here every length in the pickle must fit in the
//! pickle, and every tensor's bytes in its data entry, before candle sees the file.

use candle_core::pickle::TensorInfo;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Real checkpoints' pickles are a few MB at most (names and shapes).
const MAX_PICKLE_BYTES: u64 = 256 << 20;

type Archive = zip::ZipArchive<std::io::BufReader<std::fs::File>>;

fn open(path: &Path) -> Result<(Archive, u64), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| e.to_string())?;
    Ok((archive, len))
}

/// Every pickle (`*data.pkl`) in the archive has only lengths that fit in it.
pub fn check_pickles(path: &Path) -> Result<(), String> {
    let (mut archive, file_len) = open(path)?;
    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    for name in names.iter().filter(|n| n.ends_with("data.pkl")) {
        let entry = archive.by_name(name).map_err(|e| e.to_string())?;
        if entry.size() > file_len.min(MAX_PICKLE_BYTES) {
            return Err(format!("{name} claims {} bytes", entry.size()));
        }
        let mut pickle = Vec::new();
        entry
            .take(MAX_PICKLE_BYTES)
            .read_to_end(&mut pickle)
            .map_err(|e| format!("{name}: {e}"))?;
        check_pickle_lengths(&pickle).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// Walks the opcodes candle reads; stops at the first one it doesn't (candle refuses it).
fn check_pickle_lengths(p: &[u8]) -> Result<(), String> {
    let mut i = 0usize;
    let need = |i: usize, n: u64| -> Result<usize, String> {
        let end = (i as u64).checked_add(n).filter(|&e| e <= p.len() as u64);
        end.map(|e| e as usize)
            .ok_or_else(|| format!("an argument of {n} bytes at offset {i} runs past the end"))
    };
    while i < p.len() {
        let op = p[i];
        i += 1;
        i = match op {
            b'.' => return Ok(()),
            0x80 | b'q' | b'K' | b'h' => need(i, 1)?,
            b'M' => need(i, 2)?,
            b'r' | b'J' | b'j' => need(i, 4)?,
            b'G' => need(i, 8)?,
            b'X' => {
                let at = need(i, 4)?;
                let len = u32::from_le_bytes(p[i..at].try_into().expect("4 bytes"));
                need(at, len as u64)?
            }
            0x8a => {
                let at = need(i, 1)?;
                need(at, p[i] as u64)?
            }
            b'c' => {
                let mut at = i;
                for _ in 0..2 {
                    let nl = p[at..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .ok_or("a GLOBAL name runs past the end")?;
                    at += nl + 1;
                }
                at
            }
            b')' | b'R' | b'(' | b't' | b'Q' | b'N' | 0x85 | 0x86 | 0x87 | 0x88 | 0x89 | b's'
            | b'u' | b'}' | b'd' | b'b' | 0x81 | b']' | b'a' | b'e' => i,
            _ => return Ok(()),
        };
    }
    Ok(())
}

/// Every tensor's bytes lie inside its data entry, which lies inside the file.
pub fn check_tensor_extents(
    path: &Path,
    infos: &HashMap<String, TensorInfo>,
) -> Result<(), String> {
    let (mut archive, file_len) = open(path)?;
    for (name, info) in infos {
        let entry = archive
            .by_name(&info.path)
            .map_err(|e| format!("tensor `{name}`: {}: {e}", info.path))?;
        let available = entry.size().min(file_len);
        let bytes = info
            .layout
            .shape()
            .dims()
            .iter()
            .try_fold(info.dtype.size_in_bytes() as u64, |n, &d| {
                n.checked_mul(d as u64)
            })
            .and_then(|n| {
                n.checked_add(info.layout.start_offset() as u64 * info.dtype.size_in_bytes() as u64)
            });
        if bytes.is_none_or(|b| b > available) {
            return Err(format!(
                "tensor `{name}` of shape {:?} does not fit in its {available}-byte data",
                info.layout.shape().dims()
            ));
        }
    }
    Ok(())
}
