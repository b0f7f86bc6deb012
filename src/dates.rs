//! Timestamps as Indonesian portals write them (Indonesian names, WIB/WITA/WIT, dots in times) and as RFC 822/3339 say. Pure.
//!
//! Built to serve as feed-rs's `timestamp_parser`, so it also accepts what feed-rs's own
//! lenient parser accepts: RFC 2822 and RFC 3339 with their common defects. Indonesian page
//! dates (`Senin, 16 Juni 2025 |15:20 WIB`) go through a small tokenizer and grammar:
//! `[labels] date [separators] [time] [zone]`.

use std::iter::Peekable;
use std::str::CharIndices;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};

const HOUR: i32 = 3600;
/// Longer text is not a timestamp; the bound keeps hostile input cheap.
const MAX_INPUT_BYTES: usize = 256;
/// How many leading words (labels such as "Diperbarui", day names) may precede the date.
const MAX_LEADING_WORDS: usize = 4;

/// Western Indonesian Time (WIB), the zone of most portals: +07:00.
pub fn jakarta() -> FixedOffset {
    FixedOffset::east_opt(7 * HOUR).expect("+07:00 is a valid offset")
}

/// Parses a feed or page timestamp. A zone-less date is read in `default_offset`
/// (Indonesia has no DST, so a fixed offset is exact); a date without a time means 00:00.
/// Day names are ignored, never checked against the date.
pub fn parse_timestamp(text: &str, default_offset: FixedOffset) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_INPUT_BYTES {
        return None;
    }
    // chrono is exact for the standard forms; the grammar below covers everything else,
    // including RFC 2822 dates whose weekday is wrong (chrono rejects those).
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_rfc2822(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| parse_loose(text, default_offset))
}

/// "Asia/Jakarta" | "Asia/Pontianak" -> +07:00, "Asia/Makassar" -> +08:00, "Asia/Jayapura" -> +09:00,
/// "WIB"/"WITA"/"WIT", "UTC"/"GMT"/"Etc/UTC", and literal offsets "+07:00", "+0700", "-05:00".
/// Case-insensitive.
///
/// North American abbreviations (EST, PDT, …) are understood inside RFC 822 dates but refused
/// here: someone configuring "EST" most likely means New York with its DST, which a fixed
/// offset cannot express.
pub fn parse_timezone(name: &str) -> Option<FixedOffset> {
    let lower = name.trim().to_ascii_lowercase();
    let seconds = match lower.as_str() {
        "asia/jakarta" | "asia/pontianak" => 7 * HOUR,
        "asia/makassar" => 8 * HOUR,
        "asia/jayapura" => 9 * HOUR,
        "etc/utc" | "etc/gmt" => 0,
        _ => {
            let tokens = tokenize(&lower)?;
            let mut cursor = Cursor::new(&tokens);
            let offset = zone(&mut cursor, false)?;
            return cursor.at_end().then_some(offset);
        }
    };
    FixedOffset::east_opt(seconds)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'a> {
    /// A run of ASCII digits, kept as text so leading zeros and length stay visible.
    Num(&'a str),
    /// A run of lowercase ASCII letters (apostrophes allowed: "jum'at").
    Word(&'a str),
    /// Punctuation whose meaning depends on where it stands: `: . / - +`.
    Sym(char),
    /// Punctuation that only ever separates parts: `, | – — ( )`.
    Sep,
}

/// Splits lowercased text into tokens; None for any character no timestamp contains.
/// Whole words, never prefixes, are compared later, so "wita" can never be read as "wit".
fn tokenize(text: &str) -> Option<Vec<Tok<'_>>> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, ch)) = chars.next() {
        let token = match ch {
            c if c.is_whitespace() => continue,
            '0'..='9' => Tok::Num(run(text, start, &mut chars, |c| c.is_ascii_digit())),
            'a'..='z' => Tok::Word(run(text, start, &mut chars, |c| {
                c.is_ascii_lowercase() || matches!(c, '\'' | '’')
            })),
            ':' | '.' | '/' | '-' | '+' => Tok::Sym(ch),
            ',' | '|' | '–' | '—' | '(' | ')' => Tok::Sep,
            _ => return None,
        };
        tokens.push(token);
    }
    Some(tokens)
}

/// The text from `start` (an ASCII character) through the following characters matching `part_of`.
fn run<'a>(
    text: &'a str,
    start: usize,
    chars: &mut Peekable<CharIndices<'_>>,
    part_of: impl Fn(char) -> bool,
) -> &'a str {
    let mut end = start + 1;
    while let Some(&(i, c)) = chars.peek()
        && part_of(c)
    {
        end = i + c.len_utf8();
        chars.next();
    }
    &text[start..end]
}

struct Cursor<'t, 'a> {
    tokens: &'t [Tok<'a>],
    pos: usize,
}

impl<'t, 'a> Cursor<'t, 'a> {
    fn new(tokens: &'t [Tok<'a>]) -> Self {
        Cursor { tokens, pos: 0 }
    }

    fn peek_at(&self, ahead: usize) -> Option<Tok<'a>> {
        self.tokens.get(self.pos + ahead).copied()
    }

    fn peek(&self) -> Option<Tok<'a>> {
        self.peek_at(0)
    }

    fn bump(&mut self) -> Option<Tok<'a>> {
        let token = self.peek();
        self.pos += usize::from(token.is_some());
        token
    }

    fn skip(&mut self, skippable: impl Fn(Tok<'a>) -> bool) {
        while self.peek().is_some_and(&skippable) {
            self.pos += 1;
        }
    }

    /// The next token as a number of `min..=max` digits (max ≤ 9, so it fits a u32).
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        match self.peek()? {
            Tok::Num(digits) if (min..=max).contains(&digits.len()) => {
                self.pos += 1;
                digits.parse().ok()
            }
            _ => None,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    /// Whether a time (`20:04`, `20.04`) starts `ahead` tokens from here.
    fn time_at(&self, ahead: usize) -> bool {
        matches!(self.peek_at(ahead), Some(Tok::Num(h)) if h.len() <= 2)
            && matches!(self.peek_at(ahead + 1), Some(Tok::Sym(':' | '.')))
            && matches!(self.peek_at(ahead + 2), Some(Tok::Num(_)))
    }
}

/// Tries the grammar after each leading word in turn: labels ("Diperbarui", "Update:") and
/// day names in any language come first, and a label can look like a month ("mar", the
/// French Tuesday), so a failed attempt moves past one more word rather than giving up.
fn parse_loose(text: &str, default_offset: FixedOffset) -> Option<DateTime<Utc>> {
    let lower = text.to_ascii_lowercase();
    let tokens = tokenize(&lower)?;
    let mut start = tokens.iter().take_while(|t| **t == Tok::Sep).count();
    for _ in 0..=MAX_LEADING_WORDS {
        if let Some(instant) = parse_from(&tokens[start..], default_offset) {
            return Some(instant);
        }
        let Some(Tok::Word(_)) = tokens.get(start) else {
            return None;
        };
        start += 1;
        start += tokens[start..]
            .iter()
            .take_while(|t| matches!(t, Tok::Sep | Tok::Sym(':' | '.')))
            .count();
    }
    None
}

/// `date [separators] [time] [zone]`, and nothing after.
fn parse_from(tokens: &[Tok<'_>], default_offset: FixedOffset) -> Option<DateTime<Utc>> {
    let mut c = Cursor::new(tokens);
    let date = date(&mut c)?;
    loop {
        match c.peek() {
            Some(Tok::Sep | Tok::Word("t" | "pukul" | "jam" | "at")) => c.pos += 1,
            // " - " separates a date from its time; before anything else it may be a sign.
            Some(Tok::Sym('-')) if c.time_at(1) => c.pos += 1,
            _ => break,
        }
    }
    let time = if c.time_at(0) {
        time(&mut c)?
    } else {
        NaiveTime::MIN
    };
    c.skip(|t| t == Tok::Sep);
    let offset = zone(&mut c, true);
    c.skip(|t| t == Tok::Sep);
    if !c.at_end() {
        return None;
    }
    let local = date.and_time(time);
    let instant = offset.unwrap_or(default_offset).from_local_datetime(&local);
    instant.single().map(|t| t.with_timezone(&Utc))
}

/// Between the parts of a written-out date: `18 Juni 2025`, `18-Jun-2025`, `Sept. 5, 2025`.
fn date_separator(token: Tok<'_>) -> bool {
    matches!(token, Tok::Sep | Tok::Sym('-' | '/' | '.'))
}

/// `18 Juni 2025`, `Oct 7 2022`, `18/06/2025` (day first, as Indonesia writes), `2025-06-18`.
fn date(c: &mut Cursor<'_, '_>) -> Option<NaiveDate> {
    match c.bump()? {
        Tok::Num(first) => {
            if let Some(Tok::Sym(sep @ ('/' | '-' | '.'))) = c.peek()
                && let Some(Tok::Num(_)) = c.peek_at(1)
            {
                c.pos += 1;
                let middle = c.num(1, 2)?;
                if c.bump()? != Tok::Sym(sep) {
                    return None;
                }
                if first.len() == 4 {
                    let day = c.num(1, 2)?;
                    NaiveDate::from_ymd_opt(first.parse().ok()?, middle, day)
                } else if first.len() <= 2 {
                    let year = year(c)?;
                    NaiveDate::from_ymd_opt(year, middle, first.parse().ok()?)
                } else {
                    None
                }
            } else {
                if first.len() > 2 {
                    return None;
                }
                c.skip(date_separator);
                let Tok::Word(name) = c.bump()? else {
                    return None;
                };
                let month = month(name)?;
                c.skip(date_separator);
                NaiveDate::from_ymd_opt(year(c)?, month, first.parse().ok()?)
            }
        }
        Tok::Word(name) => {
            let month = month(name)?;
            c.skip(date_separator);
            let day = c.num(1, 2)?;
            c.skip(date_separator);
            NaiveDate::from_ymd_opt(year(c)?, month, day)
        }
        _ => None,
    }
}

/// A year of 2 to 4 digits, short years widened as RFC 2822 says (00-49 -> 2000s,
/// 50-99 and three digits -> 1900s). A number followed by `:` or `.` and more digits is a
/// time, so a date that lacks its year (`Jun 18 20:04`) is refused rather than misread.
fn year(c: &mut Cursor<'_, '_>) -> Option<i32> {
    if c.time_at(0) {
        return None;
    }
    let Some(Tok::Num(digits)) = c.peek() else {
        return None;
    };
    let value = i32::try_from(c.num(2, 4)?).ok()?;
    Some(match (digits.len(), value) {
        (2, 0..=49) => value + 2000,
        (2 | 3, _) => value + 1900,
        _ => value,
    })
}

fn month(name: &str) -> Option<u32> {
    Some(match name {
        "januari" | "january" | "jan" => 1,
        "februari" | "pebruari" | "february" | "feb" => 2,
        "maret" | "march" | "mar" => 3,
        "april" | "apr" => 4,
        "mei" | "may" => 5,
        "juni" | "june" | "jun" => 6,
        "juli" | "july" | "jul" => 7,
        "agustus" | "august" | "agt" | "agu" | "ags" | "aug" => 8,
        "september" | "sep" | "sept" => 9,
        "oktober" | "october" | "okt" | "oct" => 10,
        "november" | "nopember" | "nov" => 11,
        "desember" | "december" | "des" | "dec" => 12,
        _ => return None,
    })
}

/// `20:04`, `20.04`, `20.04.05`, `09:12:00.123`, `8:04 pm`.
fn time(c: &mut Cursor<'_, '_>) -> Option<NaiveTime> {
    let mut hour = c.num(1, 2)?;
    c.pos += 1; // the ':' or '.' checked by time_at
    let minute = c.num(2, 2)?;
    let (mut second, mut nano) = (0, 0);
    if matches!(c.peek(), Some(Tok::Sym(':' | '.')))
        && matches!(c.peek_at(1), Some(Tok::Num(s)) if s.len() == 2)
    {
        c.pos += 1;
        second = c.num(2, 2)?;
        if let (Some(Tok::Sym('.')), Some(Tok::Num(fraction))) = (c.peek(), c.peek_at(1)) {
            c.pos += 2;
            // Nanoseconds: the first nine digits, right-padded with zeros.
            let digits = &fraction[..fraction.len().min(9)];
            nano = digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32);
        }
    }
    if let Some(Tok::Word(half @ ("am" | "pm"))) = c.peek() {
        c.pos += 1;
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour = hour % 12 + if half == "pm" { 12 } else { 0 };
    }
    // Formatters using a 1-24 hour ("kk" in Java) write 00:05 as 24:05 on the same day;
    // feed-rs's lenient parser reads it so, and so do we.
    if hour == 24 {
        hour = 0;
    }
    NaiveTime::from_hms_nano_opt(hour, minute, second, nano)
}

/// A zone if one stands here (the cursor is left untouched otherwise): WIB, WITA, WIT,
/// UTC/GMT/UT/Z (also `GMT+7`), numeric offsets, and with `rfc822_names` the North
/// American names RFC 822 defines.
fn zone(c: &mut Cursor<'_, '_>, rfc822_names: bool) -> Option<FixedOffset> {
    let saved = c.pos;
    let seconds = match c.peek() {
        Some(Tok::Word(name)) => {
            c.pos += 1;
            match (name, c.peek()) {
                ("gmt" | "utc" | "ut", Some(Tok::Sym('+' | '-'))) => signed_offset(c),
                _ => zone_name(name, rfc822_names),
            }
        }
        Some(Tok::Sym('+' | '-')) => signed_offset(c),
        _ => None,
    };
    let offset = seconds.and_then(FixedOffset::east_opt);
    if offset.is_none() {
        c.pos = saved;
    }
    offset
}

fn zone_name(name: &str, rfc822_names: bool) -> Option<i32> {
    let hours = match name {
        "wib" => 7,
        "wita" => 8,
        "wit" => 9,
        "utc" | "gmt" | "ut" | "z" => 0,
        _ if !rfc822_names => return None,
        "edt" => -4,
        "est" | "cdt" => -5,
        "cst" | "mdt" => -6,
        "mst" | "pdt" => -7,
        "pst" => -8,
        _ => return None,
    };
    Some(hours * HOUR)
}

/// `+07:00`, `+0700`, `+7`, `-05:00` in seconds east of UTC.
fn signed_offset(c: &mut Cursor<'_, '_>) -> Option<i32> {
    let sign = match c.bump()? {
        Tok::Sym('+') => 1,
        Tok::Sym('-') => -1,
        _ => return None,
    };
    let Tok::Num(digits) = c.bump()? else {
        return None;
    };
    let (hours, minutes): (i32, i32) = match digits.len() {
        1 | 2 => {
            let minutes = if let (Some(Tok::Sym(':')), Some(Tok::Num(_))) = (c.peek(), c.peek_at(1))
            {
                c.pos += 1;
                i32::try_from(c.num(2, 2)?).ok()?
            } else {
                0
            };
            (digits.parse().ok()?, minutes)
        }
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    (minutes < 60).then_some(sign * (hours * HOUR + minutes * 60))
}

#[cfg(test)]
mod tests {
    use chrono::SecondsFormat;

    use super::*;

    fn offset(hours: i32) -> FixedOffset {
        FixedOffset::east_opt(hours * HOUR).unwrap()
    }

    /// Parses `input` with Jakarta as the default offset; `expected` is the UTC instant in
    /// RFC 3339, or None when the input must be refused.
    fn check(input: &str, expected: Option<&str>) {
        let got = parse_timestamp(input, jakarta())
            .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        assert_eq!(got.as_deref(), expected, "input: {input:?}");
    }

    #[test]
    fn indonesian_page_forms() {
        let table = [
            // The forms listed in domain.md.
            ("4 Maret 2022, 23:32 WIB", "2022-03-04T16:32:00Z"),
            ("Rabu, 18 Jun 2025 07:30 WIB", "2025-06-18T00:30:00Z"),
            ("Senin, 16 Juni 2025 |15:20 WIB", "2025-06-16T08:20:00Z"),
            ("18 Juni 2025 | 20.04 WIB", "2025-06-18T13:04:00Z"),
            ("18/06/2025, 21:35 WIB", "2025-06-18T14:35:00Z"),
            ("Diperbarui 18 Jun 2025, 14:05 WIB", "2025-06-18T07:05:00Z"),
            ("Senin, 2 Juni 2025 - 10:00:00 WIB", "2025-06-02T03:00:00Z"),
            // Labels before the date.
            (
                "Dipublikasikan 18 Juni 2025 20:04 WIB",
                "2025-06-18T13:04:00Z",
            ),
            ("Update: 18/06/2025 21:35 WIB", "2025-06-18T14:35:00Z"),
            (
                "Published: Wed, 18 Jun 2025 07:30:00 +0700",
                "2025-06-18T00:30:00Z",
            ),
            (
                "Diperbarui pada Rabu, 18 Juni 2025 20:04 WIB",
                "2025-06-18T13:04:00Z",
            ),
            // Separators, spacing, connectors, dotted times.
            ("18 Juni 2025 – 20:04 WIB", "2025-06-18T13:04:00Z"),
            ("18 Juni 2025 — 20:04 WIB", "2025-06-18T13:04:00Z"),
            ("  18   Juni  2025 ,  20:04   WIB  ", "2025-06-18T13:04:00Z"),
            (
                "18\u{A0}Juni\u{A0}2025 20:04\u{A0}WIB",
                "2025-06-18T13:04:00Z",
            ),
            ("Rabu, 18 Juni 2025 pukul 20.04 WIB", "2025-06-18T13:04:00Z"),
            ("18 Juni 2025 20.04.05 WIB", "2025-06-18T13:04:05Z"),
            ("18 Juni 2025 8:04 WIB", "2025-06-18T01:04:00Z"),
            ("18 Juni 2025 20:04 (WIB)", "2025-06-18T13:04:00Z"),
            // Numeric dates: day first, or ISO year first.
            ("18-06-2025 21:35", "2025-06-18T14:35:00Z"),
            ("18.06.2025 21:35 WIB", "2025-06-18T14:35:00Z"),
            ("18/06/25 21:35 WIB", "2025-06-18T14:35:00Z"),
            ("8/6/2025", "2025-06-07T17:00:00Z"),
            ("2025-06-18 21:35:00", "2025-06-18T14:35:00Z"),
            ("2025/06/18 21:35", "2025-06-18T14:35:00Z"),
            // No time: midnight. No zone: the default offset (Jakarta here).
            ("18 Juni 2025", "2025-06-17T17:00:00Z"),
            ("18/06/2025", "2025-06-17T17:00:00Z"),
            ("18 Juni 2025 20:04", "2025-06-18T13:04:00Z"),
            // Hour 24 from 1-24 hour formatters means hour 0 of the same day.
            ("18 Juni 2025 24:05 WIB", "2025-06-17T17:05:00Z"),
        ];
        for (input, expected) in table {
            check(input, Some(expected));
        }
    }

    #[test]
    fn zones() {
        let table = [
            ("18 Juni 2025 20:04 WIB", "2025-06-18T13:04:00Z"),
            ("18 Juni 2025 20:04 WITA", "2025-06-18T12:04:00Z"),
            ("18 Juni 2025 20:04 WIT", "2025-06-18T11:04:00Z"),
            ("18 Juni 2025 20:04 wita", "2025-06-18T12:04:00Z"),
            ("18 Juni 2025 20:04 wit", "2025-06-18T11:04:00Z"),
            ("18 Juni 2025 20:04WITA", "2025-06-18T12:04:00Z"),
            ("Kamis, 19 Juni 2025 08.15 WITA", "2025-06-19T00:15:00Z"),
            ("Jumat, 20 Juni 2025 | 09:00 WIT", "2025-06-20T00:00:00Z"),
            ("18 Juni 2025 20:04 UTC", "2025-06-18T20:04:00Z"),
            ("18 Juni 2025 20:04 GMT", "2025-06-18T20:04:00Z"),
            ("18 Juni 2025 20:04 Z", "2025-06-18T20:04:00Z"),
            ("18 Juni 2025 20:04 GMT+7", "2025-06-18T13:04:00Z"),
            ("18 Juni 2025 20:04 UTC+08:00", "2025-06-18T12:04:00Z"),
            ("18 Juni 2025 20:04 +0800", "2025-06-18T12:04:00Z"),
            ("18 Juni 2025 20:04 +09:00", "2025-06-18T11:04:00Z"),
            ("18 Juni 2025 20:04 -05:00", "2025-06-19T01:04:00Z"),
            ("18 Juni 2025 WITA", "2025-06-17T16:00:00Z"),
        ];
        for (input, expected) in table {
            check(input, Some(expected));
        }
    }

    #[test]
    fn wita_is_not_read_as_wit() {
        let wita = parse_timestamp("1 Mei 2025 12:00 WITA", jakarta());
        let wit = parse_timestamp("1 Mei 2025 12:00 WIT", jakarta());
        assert_eq!(wita, Utc.with_ymd_and_hms(2025, 5, 1, 4, 0, 0).single());
        assert_eq!(wit, Utc.with_ymd_and_hms(2025, 5, 1, 3, 0, 0).single());
        assert_eq!(parse_timezone("WITA"), Some(offset(8)));
        assert_eq!(parse_timezone("WIT"), Some(offset(9)));
    }

    #[test]
    fn month_names_and_abbreviations() {
        let table = [
            ("1 Januari 2025 10:00 WIB", "2025-01-01T03:00:00Z"),
            ("1 Jan 2025 10:00 WIB", "2025-01-01T03:00:00Z"),
            ("14 Februari 2025 10:00 WIB", "2025-02-14T03:00:00Z"),
            ("14 Pebruari 2025 10:00 WIB", "2025-02-14T03:00:00Z"),
            ("14 Feb 2025 10:00 WIB", "2025-02-14T03:00:00Z"),
            ("10 Maret 2025 10:00 WIB", "2025-03-10T03:00:00Z"),
            ("10 Mar 2025 10:00 WIB", "2025-03-10T03:00:00Z"),
            ("21 April 2025 10:00 WIB", "2025-04-21T03:00:00Z"),
            ("21 Apr 2025 10:00 WIB", "2025-04-21T03:00:00Z"),
            ("1 Mei 2025 10:00 WIB", "2025-05-01T03:00:00Z"),
            ("1 May 2025 10:00 WIB", "2025-05-01T03:00:00Z"),
            ("9 Juni 2025 10:00 WIB", "2025-06-09T03:00:00Z"),
            ("9 Juli 2025 10:00 WIB", "2025-07-09T03:00:00Z"),
            ("9 Jul 2025 10:00 WIB", "2025-07-09T03:00:00Z"),
            ("17 Agustus 2025 10:00 WIB", "2025-08-17T03:00:00Z"),
            ("17 Agt 2025 10:00 WIB", "2025-08-17T03:00:00Z"),
            ("17 Agu 2025 10:00 WIB", "2025-08-17T03:00:00Z"),
            ("17 Ags 2025 10:00 WIB", "2025-08-17T03:00:00Z"),
            ("17 Aug 2025 10:00 WIB", "2025-08-17T03:00:00Z"),
            ("17 AGT 2025 10:00 WIB", "2025-08-17T03:00:00Z"),
            ("1 September 2025 10:00 WIB", "2025-09-01T03:00:00Z"),
            ("1 Sep 2025 10:00 WIB", "2025-09-01T03:00:00Z"),
            ("1 Sept 2025 10:00 WIB", "2025-09-01T03:00:00Z"),
            ("1 Sept. 2025 10:00 WIB", "2025-09-01T03:00:00Z"),
            ("5 Oktober 2025 10:00 WIB", "2025-10-05T03:00:00Z"),
            ("5 Okt 2025 10:00 WIB", "2025-10-05T03:00:00Z"),
            ("5 Oct 2025 10:00 WIB", "2025-10-05T03:00:00Z"),
            ("10 November 2025 10:00 WIB", "2025-11-10T03:00:00Z"),
            ("10 Nopember 2025 10:00 WIB", "2025-11-10T03:00:00Z"),
            ("10 Nov 2025 10:00 WIB", "2025-11-10T03:00:00Z"),
            ("25 Desember 2025 10:00 WIB", "2025-12-25T03:00:00Z"),
            ("25 Des 2025 10:00 WIB", "2025-12-25T03:00:00Z"),
            ("25 Dec 2025 10:00 WIB", "2025-12-25T03:00:00Z"),
        ];
        for (input, expected) in table {
            check(input, Some(expected));
        }
    }

    #[test]
    fn day_names_are_optional_and_ignored() {
        let table = [
            ("Senin, 16 Juni 2025 10:00 WIB", "2025-06-16T03:00:00Z"),
            ("SENIN, 16 JUNI 2025 10:00 WIB", "2025-06-16T03:00:00Z"),
            ("Sen. 16 Jun 2025 10:00 WIB", "2025-06-16T03:00:00Z"),
            ("Selasa, 17 Juni 2025 10:00 WIB", "2025-06-17T03:00:00Z"),
            ("Sel, 17 Jun 2025 10:00 WIB", "2025-06-17T03:00:00Z"),
            ("Rab, 18 Jun 2025 10:00 WIB", "2025-06-18T03:00:00Z"),
            ("Kam, 19 Jun 2025 10:00 WIB", "2025-06-19T03:00:00Z"),
            ("Jumat, 20 Juni 2025 10:00 WIB", "2025-06-20T03:00:00Z"),
            ("Jum'at, 20 Juni 2025 10:00 WIB", "2025-06-20T03:00:00Z"),
            ("Jum’at, 20 Juni 2025 10:00 WIB", "2025-06-20T03:00:00Z"),
            ("Jum, 20 Jun 2025 10:00 WIB", "2025-06-20T03:00:00Z"),
            ("Sabtu, 21 Juni 2025 10:00 WIB", "2025-06-21T03:00:00Z"),
            ("Sab, 21 Jun 2025 10:00 WIB", "2025-06-21T03:00:00Z"),
            ("Minggu, 22 Juni 2025 10:00 WIB", "2025-06-22T03:00:00Z"),
            ("Min, 22 Jun 2025 10:00 WIB", "2025-06-22T03:00:00Z"),
            ("Ahad, 22 Juni 2025 10:00 WIB", "2025-06-22T03:00:00Z"),
            // 18 June 2025 is a Rabu: a wrong day name does not reject the date.
            ("Kamis, 18 Juni 2025 10:00 WIB", "2025-06-18T03:00:00Z"),
        ];
        for (input, expected) in table {
            check(input, Some(expected));
        }
    }

    #[test]
    fn english_rfc_822_forms() {
        let table = [
            ("Wed, 25 Nov 2026 09:12:00 +0700", "2026-11-25T02:12:00Z"),
            ("Wed, 25 Nov 2026 09:12:00 GMT", "2026-11-25T09:12:00Z"),
            ("Wed, 25 Nov 2026 09:12:00 UT", "2026-11-25T09:12:00Z"),
            ("Wed, 25 Nov 2026 09:12:00 UTC", "2026-11-25T09:12:00Z"),
            ("Wed, 25 Nov 2026 09:12:00 EST", "2026-11-25T14:12:00Z"),
            ("Wed, 25 Nov 2026 09:12:00 EDT", "2026-11-25T13:12:00Z"),
            ("Wed, 25 Nov 2026 09:12:00 CST", "2026-11-25T15:12:00Z"),
            ("Wed, 25 Nov 2026 09:12:00 PDT", "2026-11-25T16:12:00Z"),
            ("Wed, 25 Nov 2026 09:12:00 PST", "2026-11-25T17:12:00Z"),
            ("25 Nov 2026 09:12:00 +0700", "2026-11-25T02:12:00Z"),
            ("Wed, 4 Nov 2026 09:12:00 +0700", "2026-11-04T02:12:00Z"),
            ("Wed, 25 Nov 26 09:12:00 +0700", "2026-11-25T02:12:00Z"),
            ("Thu, 25 Nov 99 09:12:00 +0000", "1999-11-25T09:12:00Z"),
            ("Wed, 25 Nov 2026 09:12 +0700", "2026-11-25T02:12:00Z"),
            ("Wed, 25 Nov 2026 9:12:00 +0700", "2026-11-25T02:12:00Z"),
            ("wed, 25 nov 2026 09:12:00 gmt", "2026-11-25T09:12:00Z"),
            (
                "Wednesday, 25 November 2026 09:12:00 +0700",
                "2026-11-25T02:12:00Z",
            ),
            ("Wed, 25 Nov 2026 09:12:00", "2026-11-25T02:12:00Z"),
            ("June 18, 2025 8:04 PM", "2025-06-18T13:04:00Z"),
            ("Jun 18, 2025 12:30 AM", "2025-06-17T17:30:00Z"),
            ("18 Jun 2025 12:00 pm WIB", "2025-06-18T05:00:00Z"),
            // The cases feed-rs's own lenient parser is tested with.
            ("Fri, Oct 7 2022 10:15:00 -0400", "2022-10-07T14:15:00Z"),
            ("26 August 2019 10:00:00 +0000", "2019-08-26T10:00:00Z"),
            ("Mon, 01 Jan 0001 00:00:00 UTC", "0001-01-01T00:00:00Z"),
            ("Wed, 22 Jan 2020 10:58:02 -0000", "2020-01-22T10:58:02Z"),
            ("Wed, 25 Aug 2012 03:25:42 GMT", "2012-08-25T03:25:42Z"),
            ("Thurs, 13 Jul 2011 07:38:00 GMT", "2011-07-13T07:38:00Z"),
            ("2 September 2019 20:00:00 +0000", "2019-09-02T20:00:00Z"),
            ("5 Jun 2017 24:05 PDT", "2017-06-05T07:05:00Z"),
            ("Tue, 15 Nov 2022 20:15:04 Z", "2022-11-15T20:15:04Z"),
            ("mer, 16 nov 2022 00:38:15 +0100", "2022-11-15T23:38:15Z"),
        ];
        for (input, expected) in table {
            check(input, Some(expected));
        }
    }

    #[test]
    fn rfc_3339_and_iso_8601_forms() {
        let table = [
            ("2026-11-25T09:12:00+07:00", "2026-11-25T02:12:00Z"),
            ("2026-11-25T09:12:00Z", "2026-11-25T09:12:00Z"),
            ("2026-11-25t09:12:00z", "2026-11-25T09:12:00Z"),
            ("2026-11-25T09:12:00.123456Z", "2026-11-25T09:12:00.123456Z"),
            ("2026-11-25T09:12:00.5-05:00", "2026-11-25T14:12:00.500Z"),
            (
                "2026-11-25T09:12:00.123456789123+07:00",
                "2026-11-25T02:12:00.123456789Z",
            ),
            ("2026-11-25 09:12:00+07:00", "2026-11-25T02:12:00Z"),
            ("2026-11-25T09:12:00+0700", "2026-11-25T02:12:00Z"),
            ("2026-11-25T09:12:00.250+0700", "2026-11-25T02:12:00.250Z"),
            ("2026-11-25T09:12+07:00", "2026-11-25T02:12:00Z"),
            ("2026-11-25T09:12:00", "2026-11-25T02:12:00Z"),
            ("2026-11-25", "2026-11-24T17:00:00Z"),
            ("2016-10-01T00:00:00+10:00", "2016-09-30T14:00:00Z"),
            ("2014-12-29T14:53:35+0200", "2014-12-29T12:53:35Z"),
        ];
        for (input, expected) in table {
            check(input, Some(expected));
        }
    }

    #[test]
    fn refuses_invalid_dates_and_garbage() {
        let long = "18 Juni 2025 20:04 WIB ".repeat(20);
        let table = [
            "",
            "   ",
            "kemarin",
            "2 jam yang lalu",
            "Senin",
            "20:04 WIB",
            "18 Juni",
            "Juni 2025",
            "Jun 18 20:04",
            "1 2 3",
            "31 Februari 2025 10:00 WIB",
            "29 Feb 2025",
            "31/04/2025",
            "2026-02-30T10:00:00Z",
            "18 Juni 2025 25:00 WIB",
            "18 Juni 2025 20:60 WIB",
            "18 Juni 2025 20:04:61 WIB",
            "18 Juni 2025 13:00 PM",
            "18/13/2025",
            // Month-first numeric dates are not guessed: Indonesia writes the day first.
            "06/18/2025",
            "18 Juni 2025 20:04 XYZ",
            "18 Juni 2025 20:04 WIBX",
            "18 Juni 2025 20:04 WIB lalu",
            "18 Juni 2025 20:04 WIB 18 Juni 2025 20:04 WIB",
            "18 Juni 2025 20:04 +9900",
            "18 Juni 2025 20:04 +07:75",
            "2026-11-25T09:12:00+25:00",
            "18 Jun 1",
            "18 Juni 20255",
            "999 Juni 2025",
            "18 Juni 2025 20:04 EST+7",
            "18 Juni 2025 20:04 WIB 🙂",
            &long,
        ];
        for input in table {
            check(input, None);
        }
    }

    #[test]
    fn default_offset_applies_only_without_a_zone() {
        let makassar = parse_timezone("Asia/Makassar").unwrap();
        let at = |text| parse_timestamp(text, makassar);
        assert_eq!(
            at("18 Juni 2025 20:04"),
            Utc.with_ymd_and_hms(2025, 6, 18, 12, 4, 0).single()
        );
        assert_eq!(
            at("18 Juni 2025 20:04 WIB"),
            Utc.with_ymd_and_hms(2025, 6, 18, 13, 4, 0).single()
        );
        assert_eq!(
            parse_timestamp("2026-11-25", offset(0)),
            Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).single()
        );
    }

    #[test]
    fn timezones() {
        let table = [
            ("Asia/Jakarta", Some(7)),
            ("asia/jakarta", Some(7)),
            ("Asia/Pontianak", Some(7)),
            ("Asia/Makassar", Some(8)),
            ("Asia/Jayapura", Some(9)),
            ("WIB", Some(7)),
            ("wib", Some(7)),
            ("Wita", Some(8)),
            ("WIT", Some(9)),
            ("UTC", Some(0)),
            ("gmt", Some(0)),
            ("Etc/UTC", Some(0)),
            ("+07:00", Some(7)),
            ("+0700", Some(7)),
            (" +08:00 ", Some(8)),
            ("-05:00", Some(-5)),
            ("EST", None),
            ("Asia/Tokyo", None),
            ("Jakarta", None),
            ("", None),
            ("+25:00", None),
            ("+07:00x", None),
            ("WITA WIT", None),
        ];
        for (name, hours) in table {
            assert_eq!(parse_timezone(name), hours.map(offset), "name: {name:?}");
        }
        assert_eq!(
            parse_timezone("+05:30"),
            FixedOffset::east_opt(5 * HOUR + 1800)
        );
        assert_eq!(jakarta(), offset(7));
    }

    /// Random strings built from date fragments, unicode and control characters, and every
    /// prefix of real inputs: whatever comes back, nothing may panic.
    #[test]
    fn never_panics() {
        const FRAGMENTS: &[&str] = &[
            "Senin",
            "Jum'at",
            "Juni",
            "Agt",
            "WIB",
            "WITA",
            "WIT",
            "GMT",
            "+",
            "-",
            "–",
            ":",
            ".",
            "/",
            "|",
            ",",
            "(",
            ")",
            " ",
            "\u{A0}",
            "2025",
            "18",
            "24",
            "60",
            "0",
            "99",
            "99999999999999999999",
            "T",
            "Z",
            "pm",
            "ä",
            "🙂",
            "’",
            "\u{0}",
            "\u{FEFF}",
            "Ω",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            // xorshift64: deterministic, no dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = next() % 12;
            let text: String = (0..len)
                .map(|_| FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize])
                .collect();
            let _ = parse_timestamp(&text, jakarta());
            let _ = parse_timezone(&text);
            let chars: String = (0..len)
                .filter_map(|_| char::from_u32((next() % 0x11_0000) as u32))
                .collect();
            let _ = parse_timestamp(&chars, jakarta());
            let _ = parse_timezone(&chars);
        }
        for input in [
            "Senin, 2 Juni 2025 - 10:00:00.123456789 WIB",
            "2026-11-25T09:12:00.5-05:00",
            "Wed, 25 Nov 2026 09:12:00 GMT+07:00",
        ] {
            for (i, _) in input.char_indices() {
                let _ = parse_timestamp(&input[..i], jakarta());
                let _ = parse_timestamp(&input[i..], jakarta());
            }
        }
    }

    /// The signature fits feed-rs's builder, and feed dates reach the parsed entries.
    #[test]
    fn works_as_the_feed_rs_timestamp_parser() {
        let rss = br#"<?xml version="1.0"?>
<rss version="2.0"><channel><title>Kabar</title><link>https://contoh.example/</link>
<description>Uji</description>
<item><title>A</title><link>https://contoh.example/a</link><pubDate>Rabu, 18 Jun 2025 07:30 WIB</pubDate></item>
<item><title>B</title><link>https://contoh.example/b</link><pubDate>Wed, 25 Nov 2026 09:12:00 +0700</pubDate></item>
</channel></rss>"#;
        let parser = feed_rs::parser::Builder::new()
            .timestamp_parser(|text| parse_timestamp(text, jakarta()))
            .build();
        let feed = parser.parse(&rss[..]).unwrap();
        let published: Vec<_> = feed.entries.iter().map(|e| e.published).collect();
        assert_eq!(
            published,
            [
                Utc.with_ymd_and_hms(2025, 6, 18, 0, 30, 0).single(),
                Utc.with_ymd_and_hms(2026, 11, 25, 2, 12, 0).single(),
            ]
        );
    }
}
