//! Built-in functions on dates, times and durations (OWNER: datetime
//! helper): `current-dateTime()` and friends, the constructor
//! `fn:dateTime`, component extraction (`year-from-date`, …),
//! timezone adjustment, `format-dateTime`/`format-date`/`format-time`
//! (XPath 3.1 §9.8 pictures, English and German names) and
//! `format-integer`. `format-number` lives in
//! [`super::format_number`], whose builtin is re-exported in this table.
//!
//! Date-typed parameters are declared as `xs:anyAtomicType?`; the
//! functions check the type themselves (XPTY0004) and cast
//! `xs:untypedAtomic` arguments (node values) to the expected type as the
//! function conversion rules require.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::format_number::{format_integer, NumberToken};
use super::params::*;
use super::{opt_atomic, opt_str, Builtin, Kind, Occ, Param, FN};
use crate::datetime::{
    days_from_civil, days_in_month, is_leap_year, weekday, Date, DateTime, Duration, Time,
};
use crate::error::{Error, Result};
use crate::eval::Eval;
use crate::value::{Atomic, AtomicType, Sequence};

type Args<'a> = Vec<Sequence<'a>>;

// ---------------------------------------------------------------------------
// Argument access

/// The argument `i` as a value of type `ty` (untyped values are cast);
/// `None` for `()`.
fn arg_of(args: &[Sequence<'_>], i: usize, ty: AtomicType, fname: &str) -> Result<Option<Atomic>> {
    let Some(a) = args.get(i).and_then(opt_atomic) else {
        return Ok(None);
    };
    let a = match a {
        Atomic::Untyped(_) => crate::cast::cast_to(a, ty)?,
        other => other.clone(),
    };
    let ok = match ty {
        AtomicType::Duration => matches!(a, Atomic::Duration(..)),
        t => a.type_of() == t,
    };
    if !ok {
        return Err(Error::type_error(format!(
            "{fname}: expected xs:{}, got xs:{}",
            crate::cast::primitive_name(ty),
            crate::cast::primitive_name(a.type_of())
        )));
    }
    Ok(Some(a))
}

fn datetime_arg(args: &[Sequence<'_>], i: usize, f: &str) -> Result<Option<DateTime>> {
    Ok(match arg_of(args, i, AtomicType::DateTime, f)? {
        Some(Atomic::DateTime(d)) => Some(d),
        _ => None,
    })
}

fn date_arg(args: &[Sequence<'_>], i: usize, f: &str) -> Result<Option<Date>> {
    Ok(match arg_of(args, i, AtomicType::Date, f)? {
        Some(Atomic::Date(d)) => Some(d),
        _ => None,
    })
}

fn time_arg(args: &[Sequence<'_>], i: usize, f: &str) -> Result<Option<Time>> {
    Ok(match arg_of(args, i, AtomicType::Time, f)? {
        Some(Atomic::Time(d)) => Some(d),
        _ => None,
    })
}

fn duration_arg(args: &[Sequence<'_>], i: usize, f: &str) -> Result<Option<Duration>> {
    Ok(match arg_of(args, i, AtomicType::Duration, f)? {
        Some(Atomic::Duration(d, _)) => Some(d),
        _ => None,
    })
}

fn dtd(seconds: Decimal) -> Atomic {
    Atomic::Duration(Duration { months: 0, seconds }, AtomicType::DayTimeDuration)
}

fn tz_duration(tz: Option<i16>) -> Sequence<'static> {
    match tz {
        Some(t) => Sequence::atomic(dtd(Decimal::from(i64::from(t) * 60))),
        None => Sequence::Empty,
    }
}

fn opt_int(v: Option<i64>) -> Sequence<'static> {
    v.map(Sequence::integer).unwrap_or_default()
}

fn opt_dec(v: Option<Decimal>) -> Sequence<'static> {
    v.map(|d| Sequence::atomic(Atomic::Decimal(d)))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Current date and time

fn now(ev: &Eval<'_, '_>) -> DateTime {
    let tz = ev.env.implicit_timezone;
    ev.env
        .now
        .adjust(Some(tz))
        .unwrap_or_else(|_| ev.env.now.clone())
}

fn current_datetime<'a>(ev: &mut Eval<'a, '_>, _: Args<'a>) -> Result<Sequence<'a>> {
    Ok(Sequence::atomic(Atomic::DateTime(now(ev))))
}

fn current_date<'a>(ev: &mut Eval<'a, '_>, _: Args<'a>) -> Result<Sequence<'a>> {
    Ok(Sequence::atomic(Atomic::Date(now(ev).date())))
}

fn current_time<'a>(ev: &mut Eval<'a, '_>, _: Args<'a>) -> Result<Sequence<'a>> {
    Ok(Sequence::atomic(Atomic::Time(now(ev).time())))
}

fn implicit_timezone<'a>(ev: &mut Eval<'a, '_>, _: Args<'a>) -> Result<Sequence<'a>> {
    Ok(tz_duration(Some(ev.env.implicit_timezone)))
}

fn fn_datetime<'a>(_: &mut Eval<'a, '_>, args: Args<'a>) -> Result<Sequence<'a>> {
    let d = date_arg(&args, 0, "fn:dateTime")?;
    let t = time_arg(&args, 1, "fn:dateTime")?;
    match (d, t) {
        (Some(d), Some(t)) => Ok(Sequence::atomic(Atomic::DateTime(DateTime::combine(
            &d, &t,
        )?))),
        _ => Ok(Sequence::Empty),
    }
}

// ---------------------------------------------------------------------------
// Components

macro_rules! component {
    ($name:ident, $getter:ident, $fname:literal, |$v:ident| $body:expr) => {
        fn $name<'a>(_: &mut Eval<'a, '_>, args: Args<'a>) -> Result<Sequence<'a>> {
            Ok(match $getter(&args, 0, $fname)? {
                Some($v) => $body,
                None => Sequence::Empty,
            })
        }
    };
}

component!(
    year_from_datetime,
    datetime_arg,
    "year-from-dateTime",
    |v| Sequence::integer(v.year)
);
component!(
    month_from_datetime,
    datetime_arg,
    "month-from-dateTime",
    |v| Sequence::integer(i64::from(v.month))
);
component!(day_from_datetime, datetime_arg, "day-from-dateTime", |v| {
    Sequence::integer(i64::from(v.day))
});
component!(
    hours_from_datetime,
    datetime_arg,
    "hours-from-dateTime",
    |v| Sequence::integer(i64::from(v.hour))
);
component!(
    minutes_from_datetime,
    datetime_arg,
    "minutes-from-dateTime",
    |v| Sequence::integer(i64::from(v.minute))
);
component!(
    seconds_from_datetime,
    datetime_arg,
    "seconds-from-dateTime",
    |v| opt_dec(Some(v.second.normalize()))
);
component!(
    timezone_from_datetime,
    datetime_arg,
    "timezone-from-dateTime",
    |v| tz_duration(v.tz)
);
component!(year_from_date, date_arg, "year-from-date", |v| {
    Sequence::integer(v.year)
});
component!(month_from_date, date_arg, "month-from-date", |v| {
    Sequence::integer(i64::from(v.month))
});
component!(day_from_date, date_arg, "day-from-date", |v| {
    Sequence::integer(i64::from(v.day))
});
component!(timezone_from_date, date_arg, "timezone-from-date", |v| {
    tz_duration(v.tz)
});
component!(hours_from_time, time_arg, "hours-from-time", |v| {
    Sequence::integer(i64::from(v.hour))
});
component!(minutes_from_time, time_arg, "minutes-from-time", |v| {
    Sequence::integer(i64::from(v.minute))
});
component!(seconds_from_time, time_arg, "seconds-from-time", |v| {
    opt_dec(Some(v.second.normalize()))
});
component!(timezone_from_time, time_arg, "timezone-from-time", |v| {
    tz_duration(v.tz)
});
component!(
    years_from_duration,
    duration_arg,
    "years-from-duration",
    |v| opt_int(Some(v.components().0))
);
component!(
    months_from_duration,
    duration_arg,
    "months-from-duration",
    |v| opt_int(Some(v.components().1))
);
component!(
    days_from_duration,
    duration_arg,
    "days-from-duration",
    |v| opt_int(Some(v.components().2))
);
component!(
    hours_from_duration,
    duration_arg,
    "hours-from-duration",
    |v| opt_int(Some(v.components().3))
);
component!(
    minutes_from_duration,
    duration_arg,
    "minutes-from-duration",
    |v| opt_int(Some(v.components().4))
);
component!(
    seconds_from_duration,
    duration_arg,
    "seconds-from-duration",
    |v| opt_dec(Some(v.components().5.normalize()))
);

// ---------------------------------------------------------------------------
// Timezone adjustment

/// The timezone argument of the adjust-* functions: absent → implicit
/// timezone, `()` → remove, a dayTimeDuration → that offset (FODT0003
/// unless within ±14:00 and whole minutes).
fn adjust_tz(ev: &Eval<'_, '_>, args: &[Sequence<'_>], fname: &str) -> Result<Option<i16>> {
    if args.len() < 2 {
        return Ok(Some(ev.env.implicit_timezone));
    }
    match arg_of(args, 1, AtomicType::DayTimeDuration, fname)? {
        None => Ok(None),
        Some(Atomic::Duration(d, _)) => {
            let minutes = d.seconds / Decimal::from(60);
            if !minutes.fract().is_zero() || minutes.abs() > Decimal::from(14 * 60) {
                return Err(Error::new(
                    "FODT0003",
                    format!(
                        "{fname}: invalid timezone {}",
                        d.to_lexical(AtomicType::DayTimeDuration)
                    ),
                ));
            }
            Ok(minutes.to_i16())
        }
        Some(_) => Err(Error::type_error(format!(
            "{fname}: the timezone must be an xs:dayTimeDuration"
        ))),
    }
}

fn adjust_datetime<'a>(ev: &mut Eval<'a, '_>, args: Args<'a>) -> Result<Sequence<'a>> {
    let f = "adjust-dateTime-to-timezone";
    let tz = adjust_tz(ev, &args, f)?;
    Ok(match datetime_arg(&args, 0, f)? {
        Some(v) => Sequence::atomic(Atomic::DateTime(v.adjust(tz)?)),
        None => Sequence::Empty,
    })
}

fn adjust_date<'a>(ev: &mut Eval<'a, '_>, args: Args<'a>) -> Result<Sequence<'a>> {
    let f = "adjust-date-to-timezone";
    let tz = adjust_tz(ev, &args, f)?;
    Ok(match date_arg(&args, 0, f)? {
        Some(v) => Sequence::atomic(Atomic::Date(v.adjust(tz)?)),
        None => Sequence::Empty,
    })
}

fn adjust_time<'a>(ev: &mut Eval<'a, '_>, args: Args<'a>) -> Result<Sequence<'a>> {
    let f = "adjust-time-to-timezone";
    let tz = adjust_tz(ev, &args, f)?;
    Ok(match time_arg(&args, 0, f)? {
        Some(v) => Sequence::atomic(Atomic::Time(v.adjust(tz)?)),
        None => Sequence::Empty,
    })
}

// ---------------------------------------------------------------------------
// format-dateTime

/// The fields a picture can refer to.
#[derive(Debug, Clone)]
pub struct Parts {
    /// Date fields, if the value has a date.
    pub date: Option<(i64, u8, u8)>,
    /// Time fields, if the value has a time.
    pub time: Option<(u8, u8, Decimal)>,
    /// Timezone in minutes.
    pub tz: Option<i16>,
}

impl Parts {
    /// Of a dateTime.
    pub fn of_datetime(d: &DateTime) -> Parts {
        Parts {
            date: Some((d.year, d.month, d.day)),
            time: Some((d.hour, d.minute, d.second)),
            tz: d.tz,
        }
    }

    /// Of a date.
    pub fn of_date(d: &Date) -> Parts {
        Parts {
            date: Some((d.year, d.month, d.day)),
            time: None,
            tz: d.tz,
        }
    }

    /// Of a time.
    pub fn of_time(t: &Time) -> Parts {
        Parts {
            date: None,
            time: Some((t.hour, t.minute, t.second)),
            tz: t.tz,
        }
    }
}

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DE_MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const EN_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const DE_DAYS: [&str; 7] = [
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
    "Sonntag",
];

/// Supported languages of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    De,
}

fn picture_error(msg: impl Into<String>) -> Error {
    Error::new("FOFD1340", msg)
}

/// ISO 8601 week number of a date.
fn iso_week(year: i64, month: u8, day: u8) -> i64 {
    let days = days_from_civil(year, month, day);
    let wd = i64::from(weekday(days));
    let ordinal = days - days_from_civil(year, 1, 1) + 1;
    let week = (ordinal - wd + 10) / 7;
    let weeks_in = |y: i64| {
        let jan1 = weekday(days_from_civil(y, 1, 1));
        if jan1 == 4 || (jan1 == 3 && is_leap_year(y)) {
            53
        } else {
            52
        }
    };
    if week < 1 {
        weeks_in(year - 1)
    } else if week > weeks_in(year) {
        1
    } else {
        week
    }
}

/// Week of the month (ISO-style: the week with the month's first
/// Thursday is week 1; days before it belong to the previous month's
/// last week).
fn week_of_month(year: i64, month: u8, day: u8) -> i64 {
    let first = days_from_civil(year, month, 1);
    let wd1 = i64::from(weekday(first));
    // Monday of the week containing the 1st
    let offset = wd1 - 1;
    let mut week = (i64::from(day) - 1 + offset) / 7 + 1;
    if wd1 > 4 {
        week -= 1;
    }
    if week == 0 {
        let (py, pm) = if month == 1 {
            (year - 1, 12)
        } else {
            (year, month - 1)
        };
        return week_of_month(py, pm, days_in_month(py, pm));
    }
    week
}

/// A parsed variable marker.
struct Marker {
    component: char,
    token: String,
    modifier: Option<char>,
    min_width: Option<usize>,
    max_width: Option<usize>,
}

fn parse_marker(text: &str) -> Result<Marker> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut chars = t.chars();
    let component = chars
        .next()
        .ok_or_else(|| picture_error("empty variable marker []"))?;
    let rest: &str = chars.as_str();
    let (pres, width) = match rest.rfind(',') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut token = pres.to_string();
    // strip a parenthesised modifier argument, then the o/t/c modifier
    if token.ends_with(')') {
        if let Some(open) = token.rfind('(') {
            token.truncate(open);
        }
    }
    let mut modifier = None;
    if token.chars().count() > 1 {
        if let Some(last) = token.chars().last() {
            if matches!(last, 'o' | 't' | 'c') {
                modifier = Some(last);
                token.pop();
            }
        }
    }
    let (mut min_width, mut max_width) = (None, None);
    if let Some(w) = width {
        let (lo, hi) = match w.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (w, None),
        };
        let num = |s: &str| -> Result<Option<usize>> {
            if s == "*" {
                return Ok(None);
            }
            match s.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(picture_error(format!("invalid width modifier ',{w}'"))),
            }
        };
        min_width = num(lo)?;
        if let Some(h) = hi {
            max_width = num(h)?;
        }
        if let (Some(a), Some(b)) = (min_width, max_width) {
            if b < a {
                return Err(picture_error(format!("invalid width modifier ',{w}'")));
            }
        }
    }
    Ok(Marker {
        component,
        token,
        modifier,
        min_width,
        max_width,
    })
}

/// English weekday abbreviations, cut further by a maximum width below
/// their length (`Thurs`, `Thur`, `Thu`).
const EN_DAY_ABBREVIATIONS: [(&str, &str); 7] = [
    ("Monday", "Mon"),
    ("Tuesday", "Tues"),
    ("Wednesday", "Weds"),
    ("Thursday", "Thurs"),
    ("Friday", "Fri"),
    ("Saturday", "Sat"),
    ("Sunday", "Sun"),
];

fn name_case(name: &str, token: &str, m: &Marker) -> String {
    let name = match m.max_width {
        Some(max) if max < name.chars().count() => EN_DAY_ABBREVIATIONS
            .iter()
            .find(|(full, _)| *full == name)
            .map_or(name, |(_, abbr)| abbr),
        _ => name,
    };
    let mut s: String = match token {
        "N" => name.to_uppercase(),
        "n" => name.to_lowercase(),
        _ => name.to_string(),
    };
    if let Some(max) = m.max_width {
        s = s.chars().take(max).collect();
    }
    if let Some(min) = m.min_width {
        while s.chars().count() < min {
            s.push(' ');
        }
    }
    s
}

fn is_name_token(t: &str) -> bool {
    matches!(t, "N" | "n" | "Nn")
}

/// Formats an integer component with a presentation token.
fn format_component_number(
    value: i64,
    m: &Marker,
    default: &str,
    lang: Lang,
    is_year: bool,
) -> Result<String> {
    let token = if m.token.is_empty() || is_name_token(&m.token) {
        default
    } else {
        m.token.as_str()
    };
    let lang_code = if lang == Lang::De { "de" } else { "en" };
    let parsed = NumberToken::parse(token).unwrap_or(NumberToken::Decimal {
        min_width: 1,
        zero: '0',
        grouping: Vec::new(),
        regular: None,
    });
    let ordinal = m.modifier == Some('o');
    let mut text = match parsed {
        NumberToken::Decimal {
            min_width,
            zero,
            grouping,
            regular,
        } => {
            let digit_signs = token
                .chars()
                .filter(|c| c.is_numeric() || *c == '#')
                .count();
            let min = m.min_width.unwrap_or(min_width).max(1);
            let tok = NumberToken::Decimal {
                min_width: min,
                zero,
                grouping,
                regular,
            };
            let mut s = tok.format(value.unsigned_abs(), false, lang_code);
            let max = m.max_width.or(if is_year && digit_signs >= 2 {
                Some(digit_signs)
            } else {
                None
            });
            if let Some(max) = max {
                let n = s.chars().count();
                if n > max {
                    s = s.chars().skip(n - max).collect();
                }
            }
            if ordinal {
                let suffixed = format_integer(value.abs(), "1;o", lang_code)?;
                s.push_str(suffixed.trim_start_matches(|c: char| c.is_ascii_digit()));
            }
            s
        }
        other => {
            // Roman numerals, letters, words: a minimum width pads with
            // spaces on the right (`[Yi,4-4]` of 1004 is `miv `); a
            // maximum width does not cut a number.
            let mut s = other.format(value.unsigned_abs(), ordinal, lang_code);
            if let Some(min) = m.min_width {
                let n = s.chars().count();
                s.extend(std::iter::repeat_n(' ', min.saturating_sub(n)));
            }
            s
        }
    };
    if value < 0 {
        text.insert(0, '-');
    }
    Ok(text)
}

fn format_timezone(tz: Option<i16>, m: &Marker, gmt: bool) -> String {
    let Some(tz) = tz else {
        return String::new();
    };
    // Without a token, a width modifier chooses the form: `[z,2-2]`:
    // `GMT-05`, `GMT-05:30`; `[z,6-6]`: `GMT-05:00`.
    let width_token: String;
    let token = match m.min_width {
        _ if !m.token.is_empty() => m.token.as_str(),
        Some(w) => {
            width_token = match w {
                0..=2 => "0".repeat(w.max(1)),
                3 | 4 => "0000".to_string(),
                _ => "00:00".to_string(),
            };
            width_token.as_str()
        }
        None => "01:01",
    };
    if token == "Z" {
        // military timezone letters
        if tz % 60 == 0 && (-12 * 60..=12 * 60).contains(&tz) {
            let h = tz / 60;
            let c = match h {
                0 => 'Z',
                1..=9 => (b'A' + (h - 1) as u8) as char,
                10..=12 => (b'K' + (h - 10) as u8) as char,
                _ => (b'N' + (-h - 1) as u8) as char,
            };
            return c.to_string();
        }
    }
    if m.modifier == Some('t') && tz == 0 {
        return "Z".into();
    }
    let sign = if tz < 0 { '-' } else { '+' };
    let a = tz.unsigned_abs();
    let (h, mi) = (a / 60, a % 60);
    let digits_before: usize = token.chars().take_while(|c| c.is_ascii_digit()).count();
    let sep: Option<char> = token.chars().find(|c| !c.is_ascii_digit());
    let total_digits = token.chars().filter(|c| c.is_ascii_digit()).count();
    let body = match sep {
        Some(s) if token != "Z" => format!("{h:0w$}{s}{mi:02}", w = digits_before.max(1)),
        _ if total_digits >= 3 => format!("{h:0w$}{mi:02}", w = total_digits - 2),
        _ if token == "Z" => format!("{h:02}:{mi:02}"),
        _ => {
            if mi == 0 {
                format!("{h:0w$}", w = total_digits.max(1))
            } else {
                format!("{h:0w$}:{mi:02}", w = total_digits.max(1))
            }
        }
    };
    let out = format!("{sign}{body}");
    if gmt {
        format!("GMT{out}")
    } else {
        out
    }
}

/// Formats date/time parts with an XPath 3.1 picture string.
pub fn format_picture(
    parts: &Parts,
    picture: &str,
    language: Option<&str>,
    calendar: Option<&str>,
) -> Result<String> {
    let mut out = String::new();
    let lang = match language.map(str::trim).filter(|l| !l.is_empty()) {
        None => Lang::En,
        Some(l) if l == "en" || l.starts_with("en-") => Lang::En,
        Some(l) if l == "de" || l.starts_with("de-") || l.starts_with("de_") => Lang::De,
        Some(_) => {
            out.push_str("[Language: en]");
            Lang::En
        }
    };
    match calendar.map(str::trim).filter(|c| !c.is_empty()) {
        None | Some("AD" | "ISO" | "CE") => {}
        Some(c)
            if !c.contains(':')
                && !c.starts_with("Q{")
                && c.chars()
                    .all(|x| x.is_alphanumeric() || x == '-' || x == '_') =>
        {
            out.push_str("[Calendar: AD]");
        }
        Some(c) if c.starts_with("Q{") => out.push_str("[Calendar: AD]"),
        Some(c) => {
            return Err(Error::new(
                "FOFD1340",
                format!("invalid calendar name '{c}'"),
            ));
        }
    }
    let chars: Vec<char> = picture.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '[' if chars.get(i + 1) == Some(&'[') => {
                out.push('[');
                i += 2;
            }
            ']' if chars.get(i + 1) == Some(&']') => {
                out.push(']');
                i += 2;
            }
            ']' => {
                return Err(picture_error(format!(
                    "unmatched ']' in picture '{picture}'"
                )))
            }
            '[' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|x| *x == ']')
                    .ok_or_else(|| picture_error(format!("unclosed '[' in picture '{picture}'")))?;
                let text: String = chars[i + 1..i + 1 + end].iter().collect();
                let m = parse_marker(&text)?;
                out.push_str(&format_marker(parts, &m, lang)?);
                i += end + 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn format_marker(parts: &Parts, m: &Marker, lang: Lang) -> Result<String> {
    let need_date = || {
        parts.date.ok_or_else(|| {
            Error::new(
                "FOFD1350",
                format!(
                    "component [{}] is not available for a value without a date",
                    m.component
                ),
            )
        })
    };
    let need_time = || {
        parts.time.ok_or_else(|| {
            Error::new(
                "FOFD1350",
                format!(
                    "component [{}] is not available for a value without a time",
                    m.component
                ),
            )
        })
    };
    match m.component {
        'Y' => {
            let (y, _, _) = need_date()?;
            // years are shown without sign in [Y]; the era carries BC
            format_component_number(y, m, "1", lang, true)
        }
        'M' => {
            let (_, mo, _) = need_date()?;
            if is_name_token(&m.token) {
                let names = if lang == Lang::De {
                    &DE_MONTHS
                } else {
                    &EN_MONTHS
                };
                Ok(name_case(names[usize::from(mo - 1)], &m.token, m))
            } else {
                format_component_number(i64::from(mo), m, "1", lang, false)
            }
        }
        'D' => {
            let (_, _, d) = need_date()?;
            format_component_number(i64::from(d), m, "1", lang, false)
        }
        'd' => {
            let (y, mo, d) = need_date()?;
            let n = days_from_civil(y, mo, d) - days_from_civil(y, 1, 1) + 1;
            format_component_number(n, m, "1", lang, false)
        }
        'F' => {
            let (y, mo, d) = need_date()?;
            let wd = weekday(days_from_civil(y, mo, d));
            if m.token.is_empty() || is_name_token(&m.token) {
                let names = if lang == Lang::De { &DE_DAYS } else { &EN_DAYS };
                let token = if m.token.is_empty() {
                    "n"
                } else {
                    m.token.as_str()
                };
                Ok(name_case(names[usize::from(wd - 1)], token, m))
            } else {
                format_component_number(i64::from(wd), m, "1", lang, false)
            }
        }
        'W' => {
            let (y, mo, d) = need_date()?;
            format_component_number(iso_week(y, mo, d), m, "1", lang, false)
        }
        'w' => {
            let (y, mo, d) = need_date()?;
            format_component_number(week_of_month(y, mo, d), m, "1", lang, false)
        }
        'H' => {
            let (h, _, _) = need_time()?;
            format_component_number(i64::from(h), m, "1", lang, false)
        }
        'h' => {
            let (h, _, _) = need_time()?;
            let h12 = match h % 12 {
                0 => 12,
                x => x,
            };
            format_component_number(i64::from(h12), m, "1", lang, false)
        }
        'P' => {
            let (h, _, _) = need_time()?;
            let name = match (lang, h < 12) {
                (Lang::De, true) => "vorm.",
                (Lang::De, false) => "nachm.",
                (Lang::En, true) => "am",
                (Lang::En, false) => "pm",
            };
            let token = if m.token.is_empty() {
                "n"
            } else {
                m.token.as_str()
            };
            Ok(name_case(name, token, m))
        }
        'm' => {
            let (_, mi, _) = need_time()?;
            format_component_number(i64::from(mi), m, "01", lang, false)
        }
        's' => {
            let (_, _, s) = need_time()?;
            format_component_number(s.trunc().to_i64().unwrap_or(0), m, "01", lang, false)
        }
        'f' => {
            let (_, _, s) = need_time()?;
            Ok(format_fraction(s, m))
        }
        'Z' => Ok(format_timezone(parts.tz, m, false)),
        'z' => Ok(format_timezone(parts.tz, m, true)),
        'C' => Ok(name_case(
            "ISO",
            if m.token.is_empty() { "N" } else { &m.token },
            m,
        )),
        'E' => {
            let (y, _, _) = need_date()?;
            let name = match (lang, y > 0) {
                (Lang::De, true) => "n. Chr.",
                (Lang::De, false) => "v. Chr.",
                (Lang::En, true) => "AD",
                (Lang::En, false) => "BC",
            };
            let token = if m.token.is_empty() || m.token == "n" {
                "Nn"
            } else {
                m.token.as_str()
            };
            Ok(name_case(name, token, m))
        }
        other => Err(picture_error(format!(
            "unknown component specifier [{other}]"
        ))),
    }
}

/// Fractional seconds: digits of the fraction, padded to the minimum and
/// truncated to the maximum width.
fn format_fraction(s: Decimal, m: &Marker) -> String {
    let frac = s - s.trunc();
    let text = frac.normalize().to_string();
    let mut digits: String = text
        .split_once('.')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let token = if m.token.is_empty() {
        "1"
    } else {
        m.token.as_str()
    };
    let signs = token
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '#')
        .count();
    let mandatory = token.chars().filter(|c| c.is_ascii_digit()).count().max(1);
    let min = m.min_width.unwrap_or(mandatory);
    let max = m.max_width.or(if signs > 1 { Some(signs) } else { None });
    if let Some(max) = max {
        digits.truncate(max);
    }
    while digits.len() < min {
        digits.push('0');
    }
    digits
}

fn format_fn<'a>(args: &[Sequence<'a>], kind: AtomicType, fname: &str) -> Result<Sequence<'a>> {
    let parts = match arg_of(args, 0, kind, fname)? {
        Some(Atomic::DateTime(d)) => Parts::of_datetime(&d),
        Some(Atomic::Date(d)) => Parts::of_date(&d),
        Some(Atomic::Time(t)) => Parts::of_time(&t),
        _ => return Ok(Sequence::Empty),
    };
    let picture = args.get(1).and_then(opt_str).unwrap_or("");
    let lang = args.get(2).and_then(opt_str);
    let calendar = args.get(3).and_then(opt_str);
    Ok(Sequence::string(&format_picture(
        &parts, picture, lang, calendar,
    )?))
}

fn format_datetime<'a>(_: &mut Eval<'a, '_>, args: Args<'a>) -> Result<Sequence<'a>> {
    format_fn(&args, AtomicType::DateTime, "format-dateTime")
}

fn format_date<'a>(_: &mut Eval<'a, '_>, args: Args<'a>) -> Result<Sequence<'a>> {
    format_fn(&args, AtomicType::Date, "format-date")
}

fn format_time<'a>(_: &mut Eval<'a, '_>, args: Args<'a>) -> Result<Sequence<'a>> {
    format_fn(&args, AtomicType::Time, "format-time")
}

fn fn_format_integer<'a>(_: &mut Eval<'a, '_>, args: Args<'a>) -> Result<Sequence<'a>> {
    let Some(n) = args.first().and_then(super::integer) else {
        return Ok(Sequence::string(""));
    };
    let picture = args.get(1).and_then(opt_str).unwrap_or("");
    let lang = args.get(2).and_then(opt_str).unwrap_or("en");
    Ok(Sequence::string(&format_integer(n, picture, lang)?))
}

// ---------------------------------------------------------------------------
// The table

const fn b(
    name: &'static str,
    min: usize,
    max: usize,
    params: &'static [Param],
    imp: super::Impl,
) -> Builtin {
    Builtin {
        ns: FN,
        name,
        min,
        max,
        params,
        context_default: false,
        imp,
    }
}

const ONE_A: &[Param] = &[ATOMIC_OPT];
const TWO_A: &[Param] = &[ATOMIC_OPT, ATOMIC_OPT];
const FMT: &[Param] = &[ATOMIC_OPT, STR_ONE, STR_OPT, STR_OPT, STR_OPT];

/// The functions of this module (plus `fn:format-number` from
/// [`super::format_number`]).
pub const FUNCTIONS: &[Builtin] = &[
    b("current-dateTime", 0, 0, &[], current_datetime),
    b("current-date", 0, 0, &[], current_date),
    b("current-time", 0, 0, &[], current_time),
    b("implicit-timezone", 0, 0, &[], implicit_timezone),
    b("dateTime", 2, 2, TWO_A, fn_datetime),
    b("year-from-dateTime", 1, 1, ONE_A, year_from_datetime),
    b("month-from-dateTime", 1, 1, ONE_A, month_from_datetime),
    b("day-from-dateTime", 1, 1, ONE_A, day_from_datetime),
    b("hours-from-dateTime", 1, 1, ONE_A, hours_from_datetime),
    b("minutes-from-dateTime", 1, 1, ONE_A, minutes_from_datetime),
    b("seconds-from-dateTime", 1, 1, ONE_A, seconds_from_datetime),
    b(
        "timezone-from-dateTime",
        1,
        1,
        ONE_A,
        timezone_from_datetime,
    ),
    b("year-from-date", 1, 1, ONE_A, year_from_date),
    b("month-from-date", 1, 1, ONE_A, month_from_date),
    b("day-from-date", 1, 1, ONE_A, day_from_date),
    b("timezone-from-date", 1, 1, ONE_A, timezone_from_date),
    b("hours-from-time", 1, 1, ONE_A, hours_from_time),
    b("minutes-from-time", 1, 1, ONE_A, minutes_from_time),
    b("seconds-from-time", 1, 1, ONE_A, seconds_from_time),
    b("timezone-from-time", 1, 1, ONE_A, timezone_from_time),
    b("years-from-duration", 1, 1, ONE_A, years_from_duration),
    b("months-from-duration", 1, 1, ONE_A, months_from_duration),
    b("days-from-duration", 1, 1, ONE_A, days_from_duration),
    b("hours-from-duration", 1, 1, ONE_A, hours_from_duration),
    b("minutes-from-duration", 1, 1, ONE_A, minutes_from_duration),
    b("seconds-from-duration", 1, 1, ONE_A, seconds_from_duration),
    b("adjust-dateTime-to-timezone", 1, 2, TWO_A, adjust_datetime),
    b("adjust-date-to-timezone", 1, 2, TWO_A, adjust_date),
    b("adjust-time-to-timezone", 1, 2, TWO_A, adjust_time),
    b("format-dateTime", 2, 2, FMT, format_datetime),
    b("format-dateTime", 5, 5, FMT, format_datetime),
    b("format-date", 2, 2, FMT, format_date),
    b("format-date", 5, 5, FMT, format_date),
    b("format-time", 2, 2, FMT, format_time),
    b("format-time", 5, 5, FMT, format_time),
    b(
        "format-integer",
        2,
        3,
        &[Param(Kind::Integer, Occ::Opt), STR_ONE, STR_OPT],
        fn_format_integer,
    ),
    super::format_number::FUNCTIONS[0],
];

#[cfg(test)]
mod tests {
    use super::*;

    fn fdt(v: &str, pic: &str, lang: Option<&str>) -> String {
        let d = DateTime::parse(v).unwrap();
        format_picture(&Parts::of_datetime(&d), pic, lang, None).unwrap()
    }

    fn fd(v: &str, pic: &str, lang: Option<&str>) -> String {
        let d = Date::parse(v).unwrap();
        format_picture(&Parts::of_date(&d), pic, lang, None).unwrap()
    }

    #[test]
    fn numeric_components() {
        let v = "2024-02-09T13:05:07.25+01:00";
        assert_eq!(fdt(v, "[Y0001]-[M01]-[D01]", None), "2024-02-09");
        assert_eq!(fdt(v, "[D].[M].[Y]", None), "9.2.2024");
        assert_eq!(fdt(v, "[D01].[M01].[Y01]", None), "09.02.24");
        assert_eq!(fdt(v, "[H01]:[m01]:[s01].[f001]", None), "13:05:07.250");
        assert_eq!(fdt(v, "[h]:[m01] [P]", None), "1:05 pm");
        assert_eq!(fdt(v, "[h]:[m01] [PN]", None), "1:05 PM");
        assert_eq!(fdt(v, "[Z]", None), "+01:00");
        assert_eq!(fdt(v, "[Z0]", None), "+1");
        assert_eq!(fdt(v, "[Z0000]", None), "+0100");
        assert_eq!(fdt(v, "[z]", None), "GMT+01:00");
        assert_eq!(fdt("2024-02-09T13:05:07Z", "[Z01:01t]", None), "Z");
        assert_eq!(fdt("2024-02-09T13:05:07Z", "[ZZ]", None), "Z");
        assert_eq!(fdt("2024-02-09T13:05:07", "[H]h[Z]", None), "13h");
        assert_eq!(fdt(v, "[d]", None), "40");
        assert_eq!(fdt(v, "[F1]", None), "5");
        assert_eq!(fdt(v, "[[[Y]]]", None), "[2024]");
        assert_eq!(fdt(v, "[D1o] [MNn]", None), "9th February");
        assert_eq!(fdt(v, "[Dwo]", None), "ninth");
        assert_eq!(fdt(v, "[YWw]", None), "Two Thousand and Twenty-Four");
        assert_eq!(fdt(v, "[MI]", None), "II");
        assert_eq!(fdt(v, "[E]", None), "AD");
        assert_eq!(fdt(v, "[ D , 2 ]", None), "09");
        assert_eq!(fdt(v, "[Y,2]", None), "2024");
        assert_eq!(fdt(v, "[Y,2-2]", None), "24");
    }

    #[test]
    fn names_english_and_german() {
        assert_eq!(
            fd("2024-03-04", "[FNn], [D] [MNn] [Y]", None),
            "Monday, 4 March 2024"
        );
        assert_eq!(fd("2024-03-04", "[FNn,*-3] [MNn,*-3]", None), "Mon Mar");
        assert_eq!(fd("2024-03-04", "[MN]", None), "MARCH");
        assert_eq!(fd("2024-03-04", "[F]", None), "monday");
        assert_eq!(
            fd("2024-03-04", "[FNn], [D]. [MNn] [Y]", Some("de")),
            "Montag, 4. März 2024"
        );
        assert_eq!(
            fd("2024-12-29", "[FNn] [D1o] [MNn]", Some("de")),
            "Sonntag 29. Dezember"
        );
        assert_eq!(fd("2024-03-04", "[MNn]", Some("fr")), "[Language: en]March");
    }

    #[test]
    fn weeks() {
        assert_eq!(fd("2024-01-01", "[W]", None), "1");
        assert_eq!(fd("2021-01-03", "[W]", None), "53");
        assert_eq!(fd("2020-12-31", "[W]", None), "53");
        assert_eq!(fd("2024-12-30", "[W]", None), "1");
        assert_eq!(fd("2024-03-04", "[w]", None), "1");
        assert_eq!(fd("2024-03-11", "[w]", None), "2");
        // March 1st 2024 is a Friday: it belongs to February's last week
        assert_eq!(fd("2024-03-01", "[w]", None), "5");
    }

    #[test]
    fn errors() {
        let t = Time::parse("10:00:00").unwrap();
        let e = format_picture(&Parts::of_time(&t), "[Y]", None, None).unwrap_err();
        assert_eq!(e.code, "FOFD1350");
        let d = Date::parse("2024-01-01").unwrap();
        let e = format_picture(&Parts::of_date(&d), "[H]", None, None).unwrap_err();
        assert_eq!(e.code, "FOFD1350");
        let e = format_picture(&Parts::of_date(&d), "[Y", None, None).unwrap_err();
        assert_eq!(e.code, "FOFD1340");
        let e = format_picture(&Parts::of_date(&d), "[Q]", None, None).unwrap_err();
        assert_eq!(e.code, "FOFD1340");
        assert_eq!(
            format_picture(&Parts::of_time(&t), "[H01]:[m]", None, None).unwrap(),
            "10:00"
        );
    }

    #[test]
    fn table_is_consistent() {
        for f in FUNCTIONS {
            assert!(f.min <= f.max, "{}", f.name);
        }
        assert!(FUNCTIONS.iter().any(|f| f.name == "format-number"));
    }
}

#[cfg(test)]
mod end_to_end {
    use crate::{
        DocArena, Document, Env, Expression, Focus, Item, NoHost, NoHostStatic, ParseOptions,
        StaticContext,
    };

    fn ns(prefix: &str) -> Option<String> {
        (prefix == "xs").then(|| "http://www.w3.org/2001/XMLSchema".to_string())
    }

    fn run(xpath1: bool, expr: &str) -> String {
        let doc = match Document::parse(
            b"<r><d>2024-02-29</d><n>0.125</n></r>",
            &ParseOptions::default(),
        ) {
            Ok(d) => d,
            Err(e) => return format!("ERROR {e}"),
        };
        let host = NoHostStatic;
        let ctx = StaticContext {
            namespaces: &ns,
            default_element_namespace: String::new(),
            backwards_compatible: xpath1,
            host: &host,
        };
        let compiled = match Expression::compile(expr, &ctx) {
            Ok(c) => c,
            Err(e) => return format!("ERROR {}", e.describe(expr)),
        };
        let arena = DocArena::new();
        let env = Env::new(&arena);
        let mut h = NoHost;
        let focus = Focus::of(Item::Node(doc.root()));
        compiled
            .evaluate_string(&env, &mut h, Some(&focus))
            .unwrap_or_else(|e| format!("ERROR {e}"))
    }

    #[test]
    fn through_the_engine() {
        let cases = [
            ("format-date(xs:date('2024-03-04'), '[FNn], [D]. [MNn] [Y]', 'de', (), ())", "Montag, 4. März 2024"),
            ("format-date(xs:date(/r/d), '[D01].[M01].[Y0001]')", "29.02.2024"),
            ("year-from-date(xs:date('2024-02-29') + xs:yearMonthDuration('P1Y'))", "2025"),
            ("string(xs:date('2024-02-29') + xs:yearMonthDuration('P1Y'))", "2025-02-28"),
            ("string(xs:dateTime('2024-01-01T10:00:00Z') - xs:dateTime('2023-12-31T09:30:00Z'))", "P1DT30M"),
            ("xs:dateTime('2024-01-01T12:00:00+01:00') eq xs:dateTime('2024-01-01T11:00:00Z')", "true"),
            ("format-integer(1234567, '#,##0')", "1,234,567"),
            ("format-number(0.125, '0.00')", "0.12"),
            ("string(xs:short('12'))", "12"),
            ("months-from-duration(xs:duration('P1Y14M'))", "2"),
            ("string(adjust-dateTime-to-timezone(xs:dateTime('2024-01-01T00:30:00+01:00'), xs:dayTimeDuration('PT0H')))", "2023-12-31T23:30:00Z"),
        ];
        let mut failures = Vec::new();
        for (expr, want) in cases {
            let got = run(false, expr);
            if got != want {
                failures.push(format!("{expr}: got {got}, want {want}"));
            }
        }
        let got = run(true, "format-number(/r/n, '0.00')");
        if got != "0.13" {
            failures.push(format!("xpath1 format-number: got {got}, want 0.13"));
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
