//! Prompt cleaning as the reference pipeline does it before tokenizing (diffusers `prompt_clean`,
//! the same as the original Wan `clean='whitespace'`), with ftfy installed:
//!
//! ```python
//! text = ftfy.fix_text(text)
//! text = html.unescape(html.unescape(text)).strip()
//! text = re.sub(r"\s+", " ", text).strip()
//! ```
//!
//! [`fix_text`] ports the parts of ftfy 6.3.1's default `fix_text` that change real prompts.
//! Mojibake repair (`fix_encoding`: re-decoding text that was read in the wrong single-byte
//! encoding, driven by ftfy's statistical "badness" heuristic and its sloppy codecs) is not ported:
//! it needs large tables and heuristics to reproduce exactly, and only changes text that is already
//! garbled (`cafÃ©`). Its C1-control fallback ([`fix_c1_controls`]) is a fixer of its own and is
//! ported. `fix_surrogates` has nothing to do on a Rust `&str`, which cannot hold surrogates.

use super::html_entities::{FTFY_UPPERCASE, HTML5};
use unicode_normalization::UnicodeNormalization;

/// Cleans a prompt exactly as the reference pipeline does before tokenizing it.
pub fn clean_prompt(text: &str) -> String {
    let text = fix_text(text);
    let text = html_unescape(&html_unescape(&text));
    collapse_whitespace(&text)
}

/// Python's `re.sub(r"\s+", " ", text).strip()` (the inner `.strip()` of `basic_clean` is
/// subsumed): runs of Unicode whitespace become one space, none at either end.
pub fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(is_python_whitespace).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Python's `str.isspace()`, which is also what `\s` matches in a `str` pattern. It is Unicode
/// `White_Space` plus the four ASCII information separators U+1C..U+1F.
pub fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// ftfy 6.3.1 `fix_text` with the default configuration, without mojibake repair (see the module
/// documentation).
pub fn fix_text(text: &str) -> String {
    // ftfy fixes line by line and, once a line holds a literal `<`, takes the text for HTML and
    // stops decoding entities for that line and every later one.
    let mut unescape = true;
    let mut out = String::with_capacity(text.len());
    for segment in text.split_inclusive('\n') {
        if segment.contains('<') {
            unescape = false;
        }
        out.push_str(&fix_segment(segment, unescape));
    }
    out
}

/// ftfy's `fix_and_explain`: the fixers in ftfy's order, repeated until nothing changes.
fn fix_segment(segment: &str, unescape: bool) -> String {
    let mut text = segment.to_string();
    loop {
        let before = text.clone();
        if unescape {
            text = ftfy_unescape_html(&text);
        }
        text = text.chars().map(fix_c1_controls).collect();
        text = fix_latin_ligatures(&text);
        text = fix_character_width(&text);
        text = text.chars().map(uncurl_quote).collect();
        text = fix_line_breaks(&text);
        text = remove_terminal_escapes(&text);
        text.retain(|c| !is_unwanted_control(c));
        text = text.nfc().collect();
        if text == before {
            return text;
        }
    }
}

/// Windows-1252 (as HTML5 reads it) for the C1 control range U+0080..U+009F; the five bytes that
/// Windows-1252 leaves undefined stay as they are, like ftfy's "sloppy" codec.
const WINDOWS_1252_C1: [char; 32] = [
    '\u{20ac}', '\u{81}', '\u{201a}', '\u{192}', '\u{201e}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2c6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8d}', '\u{17d}', '\u{8f}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2dc}', '\u{2122}', '\u{161}', '\u{203a}', '\u{153}', '\u{9d}', '\u{17e}', '\u{178}',
];

fn fix_c1_controls(c: char) -> char {
    match c as u32 {
        n @ 0x80..=0x9f => WINDOWS_1252_C1[(n - 0x80) as usize],
        _ => c,
    }
}

fn fix_latin_ligatures(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let replacement = match c {
            'Ĳ' => "IJ",
            'ĳ' => "ij",
            'ŉ' => "ʼn",
            'Ǳ' => "DZ",
            'ǲ' => "Dz",
            'ǳ' => "dz",
            'Ǆ' => "DŽ",
            'ǅ' => "Dž",
            'ǆ' => "dž",
            'Ǉ' => "LJ",
            'ǈ' => "Lj",
            'ǉ' => "lj",
            'Ǌ' => "NJ",
            'ǋ' => "Nj",
            'ǌ' => "nj",
            'ﬀ' => "ff",
            'ﬁ' => "fi",
            'ﬂ' => "fl",
            'ﬃ' => "ffi",
            'ﬄ' => "ffl",
            'ﬅ' => "ſt",
            'ﬆ' => "st",
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push_str(replacement);
    }
    out
}

/// Full-width ASCII and half-width katakana/Hangul (U+FF01..U+FFEF) to their NFKC forms, and the
/// ideographic space to a space.
fn fix_character_width(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{3000}' => out.push(' '),
            '\u{ff01}'..='\u{ffef}' => out.extend(std::iter::once(c).nfkc()),
            _ => out.push(c),
        }
    }
    out
}

fn uncurl_quote(c: char) -> char {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        '\u{201c}'..='\u{201f}' => '"',
        _ => c,
    }
}

fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

/// Removes ANSI escapes `ESC [ (digit|;)* letter`. Python's `\d` also takes non-ASCII decimal
/// digits; only ASCII ones are recognised here (the lone ESC is removed as a control anyway).
fn remove_terminal_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("\u{1b}[") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let params = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        match after[params..].chars().next() {
            Some(c) if c.is_ascii_alphabetic() => rest = &after[params + 1..],
            _ => {
                out.push('\u{1b}');
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Control characters ftfy removes: C0 controls except tab, LF, FF and CR; DEL; the deprecated
/// Arabic format controls; interlinear annotation marks; the object replacement character; BOM.
fn is_unwanted_control(c: char) -> bool {
    matches!(c as u32,
        0x00..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f | 0x206a..=0x206f | 0xfeff | 0xfff9..=0xfffc)
}

fn lookup(table: &[(&str, &'static str)], name: &str) -> Option<&'static str> {
    table
        .binary_search_by(|(key, _)| (*key).cmp(name))
        .ok()
        .map(|i| table[i].1)
}

/// ftfy's `unescape_html`: only `&name;` entities that end in a semicolon (plus ftfy's upper-case
/// spellings such as `&EACUTE;`) and numeric references that consume their semicolon, so that
/// informal text such as `this&not that` is left alone.
fn ftfy_unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let candidate = &rest[amp..];
        // `&#?[0-9A-Za-z]{1,24};`
        let body_start = if candidate[1..].starts_with('#') {
            2
        } else {
            1
        };
        let run = candidate[body_start..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(candidate.len() - body_start);
        let end = body_start + run;
        if (1..=24).contains(&run) && candidate[end..].starts_with(';') {
            let entity = &candidate[..=end];
            let name = &entity[1..];
            if let Some(value) = lookup(HTML5, name).or_else(|| lookup(FTFY_UPPERCASE, name)) {
                out.push_str(value);
            } else if body_start == 2 {
                let decoded = html_unescape(entity);
                out.push_str(if decoded.contains(';') {
                    entity
                } else {
                    &decoded
                });
            } else {
                out.push_str(entity);
            }
            rest = &candidate[end + 1..];
        } else {
            out.push('&');
            rest = &candidate[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Python's `html.unescape` (HTML5 rules): named references with or without the semicolon, the
/// longest known prefix of an unknown name, and decimal or hexadecimal numeric references with the
/// HTML5 replacements for invalid code points.
pub fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        match unescape_reference(after) {
            Some((consumed, replacement)) => {
                out.push_str(&replacement);
                rest = &after[consumed..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Matches `#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?` at the start of `after` (the
/// text following a `&`) and returns the bytes consumed and the replacement text.
fn unescape_reference(after: &str) -> Option<(usize, String)> {
    if let Some(numeric) = after.strip_prefix('#') {
        let (digits, radix, prefix) = match numeric.strip_prefix(['x', 'X']) {
            Some(hex) if hex.starts_with(|c: char| c.is_ascii_hexdigit()) => (hex, 16, 2),
            _ if numeric.starts_with(|c: char| c.is_ascii_digit()) => (numeric, 10, 1),
            _ => return None,
        };
        let len = digits
            .find(|c: char| {
                !(if radix == 16 {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                })
            })
            .unwrap_or(digits.len());
        let semicolon = usize::from(digits[len..].starts_with(';'));
        // Saturate: every value past U+10FFFF decodes to U+FFFD.
        let value = digits[..len]
            .chars()
            .try_fold(0u32, |acc, c| {
                acc.checked_mul(radix)?.checked_add(c.to_digit(radix)?)
            })
            .unwrap_or(u32::MAX);
        return Some((prefix + len + semicolon, numeric_reference(value)));
    }
    let mut name_len = 0;
    for (count, c) in after.chars().enumerate() {
        if count == 32 || matches!(c, '\t' | '\n' | '\u{c}' | ' ' | '<' | '&' | '#' | ';') {
            break;
        }
        name_len += c.len_utf8();
    }
    if name_len == 0 {
        return None;
    }
    let consumed = name_len + usize::from(after[name_len..].starts_with(';'));
    let name = &after[..consumed];
    if let Some(value) = lookup(HTML5, name) {
        return Some((consumed, value.to_string()));
    }
    // The longest known prefix of at least two characters, the rest kept as text.
    let boundaries: Vec<usize> = name.char_indices().map(|(i, _)| i).skip(2).collect();
    for &cut in boundaries.iter().rev() {
        if let Some(value) = lookup(HTML5, &name[..cut]) {
            return Some((consumed, format!("{value}{}", &name[cut..])));
        }
    }
    Some((consumed, format!("&{name}")))
}

fn numeric_reference(value: u32) -> String {
    match value {
        0x00 => "\u{fffd}".to_string(),
        0x0d => "\r".to_string(),
        0x80..=0x9f => fix_c1_controls(char::from_u32(value).unwrap_or('\u{fffd}')).to_string(),
        0xd800..=0xdfff | 0x110000.. => "\u{fffd}".to_string(),
        0x01..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f | 0xfdd0..=0xfdef => String::new(),
        v if v & 0xfffe == 0xfffe => String::new(),
        v => char::from_u32(v)
            .map(String::from)
            .unwrap_or_else(|| "\u{fffd}".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs and the output of diffusers' `prompt_clean` for them, computed with Python 3.11.7,
    /// ftfy 6.3.1 and diffusers 0.42.1.
    const CASES: &[(&str, &str)] = &[
        ("  A cat   walks\u{a}\u{a} on the  grass.  ", "A cat walks on the grass."),
        ("Tom &amp; Jerry &lt;3", "Tom & Jerry <3"),
        ("&amp;lt;b&amp;gt; tag", "<b> tag"),
        ("cafe\u{301} and caf\u{e9}", "caf\u{e9} and caf\u{e9}"),
        ("\u{201c}Hello\u{201d}, it\u{2019}s \u{2018}fine\u{2019} \u{2bc}ok\u{201f}", "\"Hello\", it's 'fine' 'ok\""),
        ("\u{fb01}ne \u{fb02}ower, \u{fb03}x \u{133}s \u{1c6}", "fine flower, ffix ijs d\u{17e}"),
        ("\u{ff2c}\u{ff2f}\u{ff35}\u{ff24}\u{3000}\u{ff2e}\u{ff2f}\u{ff29}\u{ff33}\u{ff25}\u{ff33}\u{ff01} \u{ff8a}\u{ff9d}\u{ff76}\u{ff78} \u{ff76}\u{ff9e}", "LOUD NOISES! ハンカク ガ"),
        ("<b>bold</b> &amp; stuff", "<b>bold</b> & stuff"),
        ("x &amp;amp;amp; y\u{a}<p>&amp;amp;amp;</p>\u{a}z &amp;amp;amp;", "x & y <p>&amp;</p> z &amp;"),
        ("this&not that, &notit; &notin; &amp &ampx &AMP", "this\u{ac} that, \u{ac}it; \u{2209} & &x &"),
        ("&EACUTE;t&eacute; P&EACUTE;REZ &SZLIG; &nTILDE;", "\u{c9}t\u{e9} P\u{c9}REZ SS &nTILDE;"),
        ("&#65;&#x42;&#X43 &#128; &#0; &#55296; &#9999999999; &#x110000; &#13;x &#11; &#65534; &#x1F600;", "ABC \u{20ac} \u{fffd} \u{fffd} \u{fffd} \u{fffd} x \u{1f600}"),
        ("a\u{0}b\u{7}c\u{200b}d\u{feff}e\u{206a}f\u{fffc}g", "abc\u{200b}defg"),
        ("\u{1b}[31mred\u{1b}[0m text \u{1b}[x", "red text"),
        ("\u{93}quoted\u{94} \u{85} \u{80} \u{81}", "\"quoted\" \u{2026} \u{20ac} \u{81}"),
        ("色调艳丽\u{ff0c}过曝\u{ff0c}静态\u{ff0c}细节模糊不清\u{ff0c}字幕\u{ff0c}风格\u{ff0c}作品\u{ff0c}画作\u{ff0c}画面\u{ff0c}静止\u{ff0c}整体发灰\u{ff0c}最差质量\u{ff0c}低质量\u{ff0c}JPEG压缩残留\u{ff0c}丑陋的\u{ff0c}残缺的\u{ff0c}多余的手指\u{ff0c}画得不好的手部\u{ff0c}画得不好的脸部\u{ff0c}畸形的\u{ff0c}毁容的\u{ff0c}形态畸形的肢体\u{ff0c}手指融合\u{ff0c}静止不动的画面\u{ff0c}杂乱的背景\u{ff0c}三条腿\u{ff0c}背景人很多\u{ff0c}倒着走", "色调艳丽,过曝,静态,细节模糊不清,字幕,风格,作品,画作,画面,静止,整体发灰,最差质量,低质量,JPEG压缩残留,丑陋的,残缺的,多余的手指,画得不好的手部,画得不好的脸部,畸形的,毁容的,形态畸形的肢体,手指融合,静止不动的画面,杂乱的背景,三条腿,背景人很多,倒着走"),
        ("Tab\u{9}and\u{a0}nbsp\u{3000}ideo\u{2003}em\u{202f}narrow\u{b}vt\u{c}ff", "Tab and nbsp ideo em narrowvt ff"),
        ("\u{d}\u{a}Windows\u{d}\u{a}and\u{d}Mac\u{2028}ls\u{2029}ps", "Windows and Mac ls ps"),
        ("   \u{a}\u{9} ", ""),
        ("", ""),
        ("&#x26;amp; and &#38;lt;", "& and <"),
        ("\u{1f431} cat \u{1f389} party", "\u{1f431} cat \u{1f389} party"),
        ("a\u{1c}b\u{1d}c\u{1f}d", "abcd"),
        ("& &; &#; &#x; &#xg; a&b c& &&amp;", "& &; &#; &#x; &#xg; a&b c& &&"),
        ("&abcdefghijklmnopqrstuvwxyzabcdefghij; &ltabcdefghijklmnopqrstuvwxyzabcdefghij", "&abcdefghijklmnopqrstuvwxyzabcdefghij; <abcdefghijklmnopqrstuvwxyzabcdefghij"),
        ("&#1234567890123456789012345; &#x0000041;", "\u{fffd} A"),
        ("&lt;&#60;&#x3c; on one line, &amp; here", "<<< on one line, & here"),
        ("\u{c5}ngstr\u{f6}m \u{c5} \u{212b}", "\u{c5}ngstr\u{f6}m \u{c5} \u{c5}"),
        ("A woman in a red dress walks through a rainy Tokyo street at night, neon lights reflecting on wet pavement.", "A woman in a red dress walks through a rainy Tokyo street at night, neon lights reflecting on wet pavement."),
        ("&quot;quoted&quot; &apos;single&apos; &nbsp;space&nbsp;", "\"quoted\" 'single' space"),
        ("&Eacute;&Amacr;&eacute", "\u{c9}\u{100}\u{e9}"),
        ("&#x2028;sep&#133;next", "sep\u{2026}next"),
    ];

    #[test]
    fn matches_reference_prompt_clean() {
        for (input, expected) in CASES {
            assert_eq!(clean_prompt(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn mojibake_is_not_repaired() {
        // ftfy's fix_encoding turns this into `café "hi"`; it is not ported (module docs).
        assert_eq!(clean_prompt("cafÃ© â€œhiâ€\u{9d}"), "cafÃ© â€œhiâ€\u{9d}");
    }

    #[test]
    fn entity_tables_are_sorted_for_binary_search() {
        for table in [HTML5, FTFY_UPPERCASE] {
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(HTML5.len(), 2231);
    }
}
