//! Date, time and duration values (xs:dateTime, xs:date, xs:time,
//! durations, the g* types): parsing, canonical forms, comparison,
//! arithmetic and component extraction.
//!
//! # Model
//!
//! All calendar values use the proleptic Gregorian calendar with
//! astronomical year numbering as XSD 1.1 does: year `0000` is 1 BCE,
//! `-0001` is 2 BCE. A value keeps its *local* fields (year … second) and
//! an optional timezone offset in minutes; it is only converted to an
//! instant (seconds since 1970-01-01T00:00:00Z, as a [`Decimal`]) for
//! comparison and subtraction. Values without a timezone take the
//! *implicit timezone* of the dynamic context at that moment.
//!
//! Durations are a pair (months, seconds) with the same sign; the
//! [`AtomicType`] stored next to them in [`Atomic::Duration`] says whether
//! it is an `xs:duration`, `xs:yearMonthDuration` (seconds = 0) or
//! `xs:dayTimeDuration` (months = 0).
//!
//! # Comparison encoding
//!
//! [`compare`] is the *ordering* comparison (`lt`, `le`, `gt`, `ge`):
//! it returns XPTY0004 for pairs that are only comparable for equality
//! (plain `xs:duration`, mixed duration subtypes, the g* types). Use
//! [`equal`] for `eq`/`ne`, or [`compare_for`] which mirrors the
//! `value_compare(.., eq_only, ..)` contract of `compare.rs`: with
//! `eq_only` it answers `Equal` or `Less` (= "not equal") for every pair of
//! the same date/time/duration family.
//!
//! # Limits
//!
//! Years are limited to ±1 000 000 000 (FODT0001 beyond), fractional
//! seconds to 18 digits (more are truncated), month counts to `i64`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::value::{ArithOp, Atomic, AtomicType};

/// Timezone offset in minutes east of UTC (`None`: no timezone).
pub type Tz = Option<i16>;

/// Largest absolute year accepted.
const MAX_YEAR: i64 = 1_000_000_000;
/// Seconds per day.
const DAY: i64 = 86_400;

/// xs:dateTime: a proleptic Gregorian date and time, optional timezone.
#[derive(Debug, Clone, PartialEq)]
pub struct DateTime {
    /// Year (may be negative or > 9999).
    pub year: i64,
    /// 1–12
    pub month: u8,
    /// 1–31
    pub day: u8,
    /// 0–23 (24:00:00 is normalised to the next day)
    pub hour: u8,
    /// 0–59
    pub minute: u8,
    /// Seconds with fraction, 0 ≤ s < 60.
    pub second: Decimal,
    /// Timezone.
    pub tz: Tz,
}

/// xs:date.
#[derive(Debug, Clone, PartialEq)]
pub struct Date {
    /// Year.
    pub year: i64,
    /// 1–12
    pub month: u8,
    /// 1–31
    pub day: u8,
    /// Timezone.
    pub tz: Tz,
}

/// xs:time.
#[derive(Debug, Clone, PartialEq)]
pub struct Time {
    /// 0–23
    pub hour: u8,
    /// 0–59
    pub minute: u8,
    /// Seconds with fraction.
    pub second: Decimal,
    /// Timezone.
    pub tz: Tz,
}

/// A duration: months and seconds (both with the same sign).
#[derive(Debug, Clone, PartialEq)]
pub struct Duration {
    /// Total months.
    pub months: i64,
    /// Total seconds (with fraction).
    pub seconds: Decimal,
}

/// The g* types: the components present are `Some`.
#[derive(Debug, Clone, PartialEq)]
pub struct GDate {
    /// Year (gYear, gYearMonth).
    pub year: Option<i64>,
    /// Month (gYearMonth, gMonth, gMonthDay).
    pub month: Option<u8>,
    /// Day (gMonthDay, gDay).
    pub day: Option<u8>,
    /// Timezone.
    pub tz: Tz,
}

// ---------------------------------------------------------------------------
// Calendar arithmetic

/// Is `year` a leap year (proleptic Gregorian, astronomical numbering)?
pub fn is_leap_year(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

/// Number of days of `month` (1–12) in `year`.
pub fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let m = i64::from(month);
    let d = i64::from(day);
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y, m as u8, d as u8)
}

/// ISO day of week of a day number: 1 = Monday … 7 = Sunday.
pub fn weekday(days: i64) -> u8 {
    // 1970-01-01 was a Thursday (4)
    ((days + 3).rem_euclid(7) + 1) as u8
}

fn overflow_date() -> Error {
    Error::new("FODT0001", "date/time value out of the supported range")
}

fn overflow_duration() -> Error {
    Error::new("FODT0002", "duration value out of the supported range")
}

fn check_year(year: i64) -> Result<i64> {
    if year.abs() > MAX_YEAR {
        Err(overflow_date())
    } else {
        Ok(year)
    }
}

/// Splits seconds since the local epoch into (days, hour, minute, second).
fn split_seconds(secs: Decimal) -> Result<(i64, u8, u8, Decimal)> {
    let whole = secs.floor();
    let frac = secs - whole;
    let whole = whole.to_i64().ok_or_else(overflow_date)?;
    let days = whole.div_euclid(DAY);
    let rem = whole.rem_euclid(DAY);
    let hour = (rem / 3600) as u8;
    let minute = ((rem % 3600) / 60) as u8;
    let second = Decimal::from(rem % 60) + frac;
    Ok((days, hour, minute, second))
}

fn tz_seconds(tz: i16) -> Decimal {
    Decimal::from(i64::from(tz) * 60)
}

// ---------------------------------------------------------------------------
// DateTime, Date, Time: constructors and conversions

impl DateTime {
    /// Seconds since 1970-01-01T00:00:00 in local time (timezone ignored).
    pub fn local_seconds(&self) -> Decimal {
        let days = days_from_civil(self.year, self.month, self.day);
        Decimal::from(days * DAY)
            + Decimal::from(i64::from(self.hour) * 3600 + i64::from(self.minute) * 60)
            + self.second
    }

    /// The instant in seconds since 1970-01-01T00:00:00Z, using
    /// `implicit_tz` (minutes) when the value has no timezone.
    pub fn instant(&self, implicit_tz: i16) -> Decimal {
        self.local_seconds() - tz_seconds(self.tz.unwrap_or(implicit_tz))
    }

    /// The dateTime with local fields from `secs` (local seconds) and `tz`.
    pub fn from_local_seconds(secs: Decimal, tz: Tz) -> Result<DateTime> {
        let (days, hour, minute, second) = split_seconds(secs)?;
        let (year, month, day) = civil_from_days(days);
        check_year(year)?;
        Ok(DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            tz,
        })
    }

    /// The date part.
    pub fn date(&self) -> Date {
        Date {
            year: self.year,
            month: self.month,
            day: self.day,
            tz: self.tz,
        }
    }

    /// The time part.
    pub fn time(&self) -> Time {
        Time {
            hour: self.hour,
            minute: self.minute,
            second: self.second,
            tz: self.tz,
        }
    }

    /// Combines a date and a time (`fn:dateTime`); FORG0008 if both have
    /// different timezones.
    pub fn combine(date: &Date, time: &Time) -> Result<DateTime> {
        let tz = match (date.tz, time.tz) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::new(
                    "FORG0008",
                    "fn:dateTime: the date and the time have different timezones",
                ))
            }
            (a, b) => a.or(b),
        };
        Ok(DateTime {
            year: date.year,
            month: date.month,
            day: date.day,
            hour: time.hour,
            minute: time.minute,
            second: time.second,
            tz,
        })
    }

    /// `fn:adjust-dateTime-to-timezone`: `None` removes the timezone;
    /// a value without timezone just gets `tz`, one with a timezone is
    /// moved to the same instant in `tz`.
    pub fn adjust(&self, tz: Tz) -> Result<DateTime> {
        match (self.tz, tz) {
            (_, None) => Ok(DateTime {
                tz: None,
                ..self.clone()
            }),
            (None, Some(t)) => Ok(DateTime {
                tz: Some(t),
                ..self.clone()
            }),
            (Some(old), Some(new)) => {
                let secs = self.local_seconds() - tz_seconds(old) + tz_seconds(new);
                DateTime::from_local_seconds(secs, Some(new))
            }
        }
    }

    /// Parses the lexical form (FORG0001 when invalid).
    pub fn parse(s: &str) -> Result<DateTime> {
        let t = trim_ws(s);
        let err = || invalid("xs:dateTime", s);
        let (date_part, rest) = t.split_once('T').ok_or_else(err)?;
        let mut p = Lex::new(date_part);
        let (year, month, day) = p.date().ok_or_else(err)?;
        if !p.done() {
            return Err(err());
        }
        let mut p = Lex::new(rest);
        let (hour, minute, second, end_of_day) = p.time().ok_or_else(err)?;
        let tz = p.timezone().ok_or_else(err)?;
        if !p.done() {
            return Err(err());
        }
        check_year(year)?;
        let dt = DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            tz,
        };
        if end_of_day {
            return DateTime::from_local_seconds(dt.local_seconds() + Decimal::from(DAY), tz);
        }
        Ok(dt)
    }
}

impl Date {
    /// The dateTime at 00:00:00 of this date.
    pub fn to_datetime(&self) -> DateTime {
        DateTime {
            year: self.year,
            month: self.month,
            day: self.day,
            hour: 0,
            minute: 0,
            second: Decimal::ZERO,
            tz: self.tz,
        }
    }

    /// Days since 1970-01-01 (local).
    pub fn day_number(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    /// `fn:adjust-date-to-timezone`.
    pub fn adjust(&self, tz: Tz) -> Result<Date> {
        Ok(self.to_datetime().adjust(tz)?.date())
    }

    /// Parses the lexical form (FORG0001 when invalid).
    pub fn parse(s: &str) -> Result<Date> {
        let t = trim_ws(s);
        let err = || invalid("xs:date", s);
        let mut p = Lex::new(t);
        let (year, month, day) = p.date().ok_or_else(err)?;
        let tz = p.timezone().ok_or_else(err)?;
        if !p.done() {
            return Err(err());
        }
        check_year(year)?;
        Ok(Date {
            year,
            month,
            day,
            tz,
        })
    }
}

impl Time {
    /// Seconds since midnight (local).
    pub fn local_seconds(&self) -> Decimal {
        Decimal::from(i64::from(self.hour) * 3600 + i64::from(self.minute) * 60) + self.second
    }

    /// The dateTime on the reference date 1972-12-31 (used to compare
    /// and subtract times).
    pub fn to_reference_datetime(&self) -> DateTime {
        DateTime {
            year: 1972,
            month: 12,
            day: 31,
            hour: self.hour,
            minute: self.minute,
            second: self.second,
            tz: self.tz,
        }
    }

    /// The time of local seconds (taken modulo one day).
    pub fn from_local_seconds(secs: Decimal, tz: Tz) -> Result<Time> {
        let (_, hour, minute, second) = split_seconds(secs)?;
        Ok(Time {
            hour,
            minute,
            second,
            tz,
        })
    }

    /// `fn:adjust-time-to-timezone`.
    pub fn adjust(&self, tz: Tz) -> Result<Time> {
        Ok(self.to_reference_datetime().adjust(tz)?.time())
    }

    /// Parses the lexical form (FORG0001 when invalid); `24:00:00` is
    /// `00:00:00`.
    pub fn parse(s: &str) -> Result<Time> {
        let t = trim_ws(s);
        let err = || invalid("xs:time", s);
        let mut p = Lex::new(t);
        let (hour, minute, second, end_of_day) = p.time().ok_or_else(err)?;
        let tz = p.timezone().ok_or_else(err)?;
        if !p.done() {
            return Err(err());
        }
        if end_of_day {
            return Ok(Time {
                hour: 0,
                minute: 0,
                second: Decimal::ZERO,
                tz,
            });
        }
        Ok(Time {
            hour,
            minute,
            second,
            tz,
        })
    }
}

impl Duration {
    /// The zero duration.
    pub const ZERO: Duration = Duration {
        months: 0,
        seconds: Decimal::ZERO,
    };

    /// Is it negative?
    pub fn is_negative(&self) -> bool {
        self.months < 0 || self.seconds.is_sign_negative() && !self.seconds.is_zero()
    }

    /// Parses a duration of type `ty` (xs:duration, yearMonthDuration or
    /// dayTimeDuration); FORG0001 when invalid, FODT0002 on overflow.
    pub fn parse(s: &str, ty: AtomicType) -> Result<Duration> {
        let t = trim_ws(s);
        let name = match ty {
            AtomicType::YearMonthDuration => "xs:yearMonthDuration",
            AtomicType::DayTimeDuration => "xs:dayTimeDuration",
            _ => "xs:duration",
        };
        let err = || invalid(name, s);
        let (negative, body) = match t.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, t),
        };
        let body = body.strip_prefix('P').ok_or_else(err)?;
        let (date_part, time_part) = match body.split_once('T') {
            Some((d, t)) => {
                if t.is_empty() {
                    return Err(err());
                }
                (d, Some(t))
            }
            None => (body, None),
        };
        let mut months: i64 = 0;
        let mut seconds = Decimal::ZERO;
        let mut any = false;
        // date part: nY nM nD in order
        let mut order = 0;
        for (num, unit) in components(date_part).ok_or_else(err)? {
            let rank = match unit {
                'Y' => 1,
                'M' => 2,
                'D' => 3,
                _ => return Err(err()),
            };
            if rank <= order || num.contains('.') {
                return Err(err());
            }
            order = rank;
            any = true;
            let n = i64::from_str(num).map_err(|_| overflow_duration())?;
            match unit {
                'Y' => {
                    months = n
                        .checked_mul(12)
                        .and_then(|m| m.checked_add(months))
                        .ok_or_else(overflow_duration)?
                }
                'M' => months = months.checked_add(n).ok_or_else(overflow_duration)?,
                _ => seconds += Decimal::from(n.checked_mul(DAY).ok_or_else(overflow_duration)?),
            }
        }
        if let Some(tp) = time_part {
            let mut order = 0;
            let mut any_time = false;
            for (num, unit) in components(tp).ok_or_else(err)? {
                let rank = match unit {
                    'H' => 1,
                    'M' => 2,
                    'S' => 3,
                    _ => return Err(err()),
                };
                if rank <= order || (unit != 'S' && num.contains('.')) {
                    return Err(err());
                }
                order = rank;
                any_time = true;
                let n = parse_unsigned_decimal(num).ok_or_else(err)?;
                let factor = match unit {
                    'H' => 3600,
                    'M' => 60,
                    _ => 1,
                };
                seconds = n
                    .checked_mul(Decimal::from(factor))
                    .and_then(|v| v.checked_add(seconds))
                    .ok_or_else(overflow_duration)?;
            }
            if !any_time {
                return Err(err());
            }
            any = true;
        }
        if !any {
            return Err(err());
        }
        match ty {
            AtomicType::YearMonthDuration if time_part.is_some() || date_part.contains('D') => {
                return Err(err())
            }
            AtomicType::DayTimeDuration if date_part.contains('Y') || date_part.contains('M') => {
                return Err(err())
            }
            _ => {}
        }
        if negative {
            months = -months;
            seconds = -seconds;
        }
        Ok(Duration { months, seconds })
    }

    /// Canonical lexical form for the given duration type.
    pub fn to_lexical(&self, ty: AtomicType) -> String {
        let (months, seconds) = match ty {
            AtomicType::YearMonthDuration => (self.months, Decimal::ZERO),
            AtomicType::DayTimeDuration => (0, self.seconds),
            _ => (self.months, self.seconds),
        };
        if months == 0 && seconds.is_zero() {
            return if ty == AtomicType::YearMonthDuration {
                "P0M".into()
            } else {
                "PT0S".into()
            };
        }
        let negative = months < 0 || seconds < Decimal::ZERO;
        let months = months.unsigned_abs();
        let seconds = seconds.abs();
        let mut out = String::new();
        if negative {
            out.push('-');
        }
        out.push('P');
        let (y, m) = (months / 12, months % 12);
        if y > 0 {
            out.push_str(&format!("{y}Y"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if !seconds.is_zero() {
            let whole = seconds.trunc().to_i64().unwrap_or(i64::MAX);
            let frac = seconds - seconds.trunc();
            let (d, rem) = (whole / DAY, whole % DAY);
            let (h, mi, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
            if d > 0 {
                out.push_str(&format!("{d}D"));
            }
            if h > 0 || mi > 0 || s > 0 || !frac.is_zero() {
                out.push('T');
                if h > 0 {
                    out.push_str(&format!("{h}H"));
                }
                if mi > 0 {
                    out.push_str(&format!("{mi}M"));
                }
                if s > 0 || !frac.is_zero() {
                    out.push_str(&crate::value::decimal_to_string(&(Decimal::from(s) + frac)));
                    out.push('S');
                }
            }
        }
        out
    }

    /// Component extraction: (years, months, days, hours, minutes,
    /// seconds) with the sign of the duration on each.
    pub fn components(&self) -> (i64, i64, i64, i64, i64, Decimal) {
        let y = self.months / 12;
        let m = self.months % 12;
        let secs = self.seconds;
        let whole = secs.trunc().to_i64().unwrap_or(0);
        let frac = secs - secs.trunc();
        let d = whole / DAY;
        let rem = whole % DAY;
        (
            y,
            m,
            d,
            rem / 3600,
            (rem % 3600) / 60,
            Decimal::from(rem % 60) + frac,
        )
    }
}

/// `[num][unit]` pairs of a duration body (`1Y2M`, `3.5S`).
fn components(s: &str) -> Option<Vec<(&str, char)>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii_digit() || c == '.' {
            continue;
        }
        if i == start {
            return None;
        }
        out.push((&s[start..i], c));
        start = i + c.len_utf8();
    }
    if start != s.len() {
        return None;
    }
    Some(out)
}

/// An unsigned decimal `digits(.digits)?` or `.digits` (fraction
/// truncated to 18 digits).
fn parse_unsigned_decimal(s: &str) -> Option<Decimal> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    if int.len() > 20 {
        return None;
    }
    let frac = &frac[..frac.len().min(18)];
    let text = format!(
        "{}.{}",
        if int.is_empty() { "0" } else { int },
        if frac.is_empty() { "0" } else { frac }
    );
    Decimal::from_str(&text).ok()
}

impl GDate {
    /// Parses a g* type (gYear, gYearMonth, gMonth, gMonthDay, gDay).
    pub fn parse(s: &str, ty: AtomicType) -> Result<GDate> {
        let t = trim_ws(s);
        let name = g_name(ty);
        let err = || invalid(name, s);
        let mut p = Lex::new(t);
        let mut g = GDate {
            year: None,
            month: None,
            day: None,
            tz: None,
        };
        match ty {
            AtomicType::GYear => g.year = Some(p.year().ok_or_else(err)?),
            AtomicType::GYearMonth => {
                g.year = Some(p.year().ok_or_else(err)?);
                p.consume(b'-').ok_or_else(err)?;
                g.month = Some(p.month().ok_or_else(err)?);
            }
            AtomicType::GMonth => {
                p.consume_str("--").ok_or_else(err)?;
                g.month = Some(p.month().ok_or_else(err)?);
            }
            AtomicType::GMonthDay => {
                p.consume_str("--").ok_or_else(err)?;
                let m = p.month().ok_or_else(err)?;
                p.consume(b'-').ok_or_else(err)?;
                let d = p.two_digits().ok_or_else(err)?;
                if d == 0 || d > days_in_month(2000, m) {
                    return Err(err());
                }
                g.month = Some(m);
                g.day = Some(d);
            }
            AtomicType::GDay => {
                p.consume_str("---").ok_or_else(err)?;
                let d = p.two_digits().ok_or_else(err)?;
                if d == 0 || d > 31 {
                    return Err(err());
                }
                g.day = Some(d);
            }
            _ => return Err(Error::type_error(format!("{ty:?} is not a g* type"))),
        }
        g.tz = p.timezone().ok_or_else(err)?;
        if !p.done() {
            return Err(err());
        }
        if let Some(y) = g.year {
            check_year(y)?;
        }
        Ok(g)
    }

    /// The g* value of a date (`cast as xs:gYear` etc.).
    pub fn from_date(d: &Date, ty: AtomicType) -> GDate {
        let (year, month, day) = match ty {
            AtomicType::GYear => (Some(d.year), None, None),
            AtomicType::GYearMonth => (Some(d.year), Some(d.month), None),
            AtomicType::GMonth => (None, Some(d.month), None),
            AtomicType::GMonthDay => (None, Some(d.month), Some(d.day)),
            _ => (None, None, Some(d.day)),
        };
        GDate {
            year,
            month,
            day,
            tz: d.tz,
        }
    }

    /// The starting instant used for equality (reference year 1972,
    /// month 12 or day 1 filled in).
    fn reference(&self) -> DateTime {
        let month = self
            .month
            .unwrap_or(if self.year.is_some() { 1 } else { 12 });
        DateTime {
            year: self.year.unwrap_or(1972),
            month,
            day: self.day.unwrap_or(1),
            hour: 0,
            minute: 0,
            second: Decimal::ZERO,
            tz: self.tz,
        }
    }

    /// Canonical lexical form for the given g* type.
    pub fn to_lexical(&self, ty: AtomicType) -> String {
        let mut out = match ty {
            AtomicType::GYear => year_string(self.year.unwrap_or(0)),
            AtomicType::GYearMonth => format!(
                "{}-{:02}",
                year_string(self.year.unwrap_or(0)),
                self.month.unwrap_or(1)
            ),
            AtomicType::GMonth => format!("--{:02}", self.month.unwrap_or(1)),
            AtomicType::GMonthDay => format!(
                "--{:02}-{:02}",
                self.month.unwrap_or(1),
                self.day.unwrap_or(1)
            ),
            _ => format!("---{:02}", self.day.unwrap_or(1)),
        };
        push_tz(&mut out, self.tz);
        out
    }
}

fn g_name(ty: AtomicType) -> &'static str {
    match ty {
        AtomicType::GYear => "xs:gYear",
        AtomicType::GYearMonth => "xs:gYearMonth",
        AtomicType::GMonth => "xs:gMonth",
        AtomicType::GMonthDay => "xs:gMonthDay",
        _ => "xs:gDay",
    }
}

fn invalid(ty: &str, s: &str) -> Error {
    Error::invalid_value(format!("invalid lexical form for {ty}: '{s}'"))
}

/// XML Schema whitespace collapse for the date/time types: leading and
/// trailing whitespace are ignored.
fn trim_ws(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

// ---------------------------------------------------------------------------
// Lexer for the lexical forms

struct Lex<'s> {
    b: &'s [u8],
    i: usize,
}

impl<'s> Lex<'s> {
    fn new(s: &'s str) -> Lex<'s> {
        Lex {
            b: s.as_bytes(),
            i: 0,
        }
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn consume(&mut self, c: u8) -> Option<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    fn consume_str(&mut self, s: &str) -> Option<()> {
        for c in s.bytes() {
            self.consume(c)?;
        }
        Some(())
    }

    fn digits(&mut self) -> &'s [u8] {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        &self.b[start..self.i]
    }

    fn two_digits(&mut self) -> Option<u8> {
        let d = self.digits();
        if d.len() != 2 {
            return None;
        }
        Some((d[0] - b'0') * 10 + (d[1] - b'0'))
    }

    /// `-?yyyy+` (4 digits, more only without a leading zero).
    fn year(&mut self) -> Option<i64> {
        let negative = self.consume(b'-').is_some();
        let d = self.digits();
        if d.len() < 4 || (d.len() > 4 && d[0] == b'0') || d.len() > 10 {
            return None;
        }
        let mut y: i64 = 0;
        for c in d {
            y = y * 10 + i64::from(c - b'0');
        }
        Some(if negative { -y } else { y })
    }

    fn month(&mut self) -> Option<u8> {
        let m = self.two_digits()?;
        (1..=12).contains(&m).then_some(m)
    }

    /// `yyyy-mm-dd` with day-of-month validation.
    fn date(&mut self) -> Option<(i64, u8, u8)> {
        let y = self.year()?;
        self.consume(b'-')?;
        let m = self.month()?;
        self.consume(b'-')?;
        let d = self.two_digits()?;
        if d == 0 || d > days_in_month(y, m) {
            return None;
        }
        Some((y, m, d))
    }

    /// `hh:mm:ss(.s+)?`; the flag says it was `24:00:00`.
    fn time(&mut self) -> Option<(u8, u8, Decimal, bool)> {
        let h = self.two_digits()?;
        self.consume(b':')?;
        let m = self.two_digits()?;
        self.consume(b':')?;
        let s = self.digits();
        if s.len() != 2 {
            return None;
        }
        let whole = (s[0] - b'0') * 10 + (s[1] - b'0');
        let mut second = Decimal::from(whole);
        if self.consume(b'.').is_some() {
            let f = self.digits();
            if f.is_empty() {
                return None;
            }
            let f = &f[..f.len().min(18)];
            let text = format!("0.{}", std::str::from_utf8(f).ok()?);
            second += Decimal::from_str(&text).ok()?;
        }
        if h == 24 {
            if m != 0 || !second.is_zero() {
                return None;
            }
            return Some((0, 0, Decimal::ZERO, true));
        }
        if h > 23 || m > 59 || whole > 59 {
            return None;
        }
        Some((h, m, second, false))
    }

    /// `Z`, `(+|-)hh:mm` or nothing.
    fn timezone(&mut self) -> Option<Tz> {
        match self.peek() {
            None => Some(None),
            Some(b'Z') => {
                self.i += 1;
                Some(Some(0))
            }
            Some(c @ (b'+' | b'-')) => {
                self.i += 1;
                let h = self.two_digits()?;
                self.consume(b':')?;
                let m = self.two_digits()?;
                if h > 14 || m > 59 || (h == 14 && m != 0) {
                    return None;
                }
                let total = i16::from(h) * 60 + i16::from(m);
                Some(Some(if c == b'-' { -total } else { total }))
            }
            Some(_) => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Canonical forms

fn year_string(year: i64) -> String {
    if year < 0 {
        format!("-{:04}", year.unsigned_abs())
    } else {
        format!("{year:04}")
    }
}

fn seconds_string(s: &Decimal) -> String {
    let n = s.normalize();
    let whole = n.trunc().to_u8().unwrap_or(0);
    let frac = n - n.trunc();
    if frac.is_zero() {
        format!("{whole:02}")
    } else {
        let f = frac.normalize().to_string();
        let digits = f.split_once('.').map(|(_, d)| d).unwrap_or("");
        format!("{whole:02}.{digits}")
    }
}

/// Appends the canonical timezone (`Z`, `+01:00`, `-05:30`).
pub fn push_tz(out: &mut String, tz: Tz) {
    if let Some(t) = tz {
        out.push_str(&tz_string(t));
    }
}

/// The canonical form of a timezone offset: `Z` for 0.
pub fn tz_string(t: i16) -> String {
    if t == 0 {
        "Z".into()
    } else {
        let sign = if t < 0 { '-' } else { '+' };
        let a = t.unsigned_abs();
        format!("{sign}{:02}:{:02}", a / 60, a % 60)
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{}",
            year_string(self.year),
            self.month,
            self.day,
            self.hour,
            self.minute,
            seconds_string(&self.second)
        );
        push_tz(&mut out, self.tz);
        f.write_str(&out)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = format!(
            "{}-{:02}-{:02}",
            year_string(self.year),
            self.month,
            self.day
        );
        push_tz(&mut out, self.tz);
        f.write_str(&out)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = format!(
            "{:02}:{:02}:{}",
            self.hour,
            self.minute,
            seconds_string(&self.second)
        );
        push_tz(&mut out, self.tz);
        f.write_str(&out)
    }
}

/// The current dateTime in UTC (millisecond precision).
pub fn now_utc() -> DateTime {
    let now = chrono::Utc::now();
    let millis = now.timestamp_millis();
    let secs = Decimal::new(millis, 3);
    DateTime::from_local_seconds(secs, Some(0)).unwrap_or(DateTime {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: Decimal::ZERO,
        tz: Some(0),
    })
}

// ---------------------------------------------------------------------------
// Comparison

fn is_datetime_family(a: &Atomic) -> bool {
    matches!(
        a,
        Atomic::DateTime(_)
            | Atomic::Date(_)
            | Atomic::Time(_)
            | Atomic::Duration(..)
            | Atomic::G(..)
    )
}

fn type_name(a: &Atomic) -> String {
    format!("{:?}", a.type_of())
}

fn incomparable(a: &Atomic, b: &Atomic) -> Error {
    Error::type_error(format!(
        "cannot compare {} with {}",
        type_name(a),
        type_name(b)
    ))
}

/// Ordering comparison (`lt`/`le`/`gt`/`ge`, also usable for `eq` on
/// ordered types). `None` when neither operand is a date/time/duration
/// value; XPTY0004 for mismatched types and for types that are only
/// comparable for equality (xs:duration, mixed duration subtypes, g*).
pub fn compare(a: &Atomic, b: &Atomic, implicit_tz: i16) -> Option<Result<Ordering>> {
    if !is_datetime_family(a) && !is_datetime_family(b) {
        return None;
    }
    Some(match (a, b) {
        (Atomic::DateTime(x), Atomic::DateTime(y)) => {
            Ok(x.instant(implicit_tz).cmp(&y.instant(implicit_tz)))
        }
        (Atomic::Date(x), Atomic::Date(y)) => Ok(x
            .to_datetime()
            .instant(implicit_tz)
            .cmp(&y.to_datetime().instant(implicit_tz))),
        (Atomic::Time(x), Atomic::Time(y)) => Ok(x
            .to_reference_datetime()
            .instant(implicit_tz)
            .cmp(&y.to_reference_datetime().instant(implicit_tz))),
        (Atomic::Duration(x, AtomicType::YearMonthDuration), Atomic::Duration(y, AtomicType::YearMonthDuration)) => {
            Ok(x.months.cmp(&y.months))
        }
        (Atomic::Duration(x, AtomicType::DayTimeDuration), Atomic::Duration(y, AtomicType::DayTimeDuration)) => {
            Ok(x.seconds.cmp(&y.seconds))
        }
        (Atomic::Duration(..), Atomic::Duration(..)) => Err(Error::type_error(
            "xs:duration values are only comparable with eq and ne (order needs xs:yearMonthDuration or xs:dayTimeDuration)",
        )),
        (Atomic::G(_, s), Atomic::G(_, t)) if s == t => Err(Error::type_error(format!(
            "{} values are only comparable with eq and ne",
            g_name(*s)
        ))),
        _ => Err(incomparable(a, b)),
    })
}

/// Equality (`eq`/`ne`) of date/time/duration values. `None` when neither
/// operand is such a value; XPTY0004 for mismatched types. Durations of any
/// subtypes are equal when months and seconds are.
pub fn equal(a: &Atomic, b: &Atomic, implicit_tz: i16) -> Option<Result<bool>> {
    if !is_datetime_family(a) && !is_datetime_family(b) {
        return None;
    }
    Some(match (a, b) {
        (Atomic::Duration(x, _), Atomic::Duration(y, _)) => {
            Ok(x.months == y.months && x.seconds == y.seconds)
        }
        (Atomic::G(x, s), Atomic::G(y, t)) if s == t => {
            Ok(x.reference().instant(implicit_tz) == y.reference().instant(implicit_tz))
        }
        _ => match compare(a, b, implicit_tz) {
            Some(Ok(o)) => Ok(o == Ordering::Equal),
            Some(Err(e)) => Err(e),
            None => Err(incomparable(a, b)),
        },
    })
}

/// The `value_compare` contract of `compare.rs` for date/time/duration
/// operands: with `eq_only`, `Equal` or `Less` (meaning "not equal");
/// otherwise the ordering (XPTY0004 for equality-only types).
pub fn compare_for(
    a: &Atomic,
    b: &Atomic,
    eq_only: bool,
    implicit_tz: i16,
) -> Option<Result<Ordering>> {
    if eq_only {
        equal(a, b, implicit_tz)
            .map(|r| r.map(|e| if e { Ordering::Equal } else { Ordering::Less }))
    } else {
        compare(a, b, implicit_tz)
    }
}

// ---------------------------------------------------------------------------
// Arithmetic

fn ymd(d: Duration) -> Atomic {
    Atomic::Duration(d, AtomicType::YearMonthDuration)
}

fn dtd(seconds: Decimal) -> Atomic {
    Atomic::Duration(Duration { months: 0, seconds }, AtomicType::DayTimeDuration)
}

/// Adds `months` to a date with month-end clamping (Jan 31 + 1 month =
/// Feb 28/29).
fn add_months(year: i64, month: u8, day: u8, months: i64) -> Result<(i64, u8, u8)> {
    let total = year
        .checked_mul(12)
        .and_then(|t| t.checked_add(i64::from(month) - 1))
        .and_then(|t| t.checked_add(months))
        .ok_or_else(overflow_date)?;
    let y = check_year(total.div_euclid(12))?;
    let m = (total.rem_euclid(12) + 1) as u8;
    Ok((y, m, day.min(days_in_month(y, m))))
}

fn add_to_datetime(dt: &DateTime, d: &Duration, ty: AtomicType, negate: bool) -> Result<DateTime> {
    let (months, seconds) = if negate {
        (-d.months, -d.seconds)
    } else {
        (d.months, d.seconds)
    };
    match ty {
        AtomicType::YearMonthDuration => {
            let (year, month, day) = add_months(dt.year, dt.month, dt.day, months)?;
            Ok(DateTime {
                year,
                month,
                day,
                ..dt.clone()
            })
        }
        AtomicType::DayTimeDuration => {
            let secs = dt
                .local_seconds()
                .checked_add(seconds)
                .ok_or_else(overflow_date)?;
            DateTime::from_local_seconds(secs, dt.tz)
        }
        _ => Err(Error::type_error(
            "only xs:yearMonthDuration and xs:dayTimeDuration can be added to dates and times",
        )),
    }
}

/// A number operand for duration × / ÷ number, as a decimal; FOCA0005 for
/// NaN, FODT0002 for infinities.
fn number_operand(n: &Atomic) -> Result<Decimal> {
    match n {
        Atomic::Integer(i) => Ok(Decimal::from(*i)),
        Atomic::Decimal(d) => Ok(*d),
        Atomic::Double(_) | Atomic::Float(_) => {
            let f = n.to_number();
            if f.is_nan() {
                return Err(Error::new("FOCA0005", "NaN supplied as a duration factor"));
            }
            if f.is_infinite() {
                return Err(overflow_duration());
            }
            decimal_from_f64(f).ok_or_else(overflow_duration)
        }
        _ => Err(Error::type_error(
            "a duration can only be multiplied by a number",
        )),
    }
}

/// A double as a decimal via its shortest round-trip representation.
pub fn decimal_from_f64(f: f64) -> Option<Decimal> {
    if !f.is_finite() {
        return None;
    }
    let s = format!("{f}");
    Decimal::from_str(&s)
        .ok()
        .or_else(|| Decimal::from_scientific(&format!("{f:e}")).ok())
        .or_else(|| rust_decimal::prelude::FromPrimitive::from_f64(f))
}

fn scale_duration(d: &Duration, ty: AtomicType, factor: Decimal, divide: bool) -> Result<Atomic> {
    if divide && factor.is_zero() {
        return Err(Error::new("FODT0002", "duration divided by zero"));
    }
    match ty {
        AtomicType::YearMonthDuration => {
            let m = Decimal::from(d.months);
            let r = if divide {
                m.checked_div(factor)
            } else {
                m.checked_mul(factor)
            }
            .ok_or_else(overflow_duration)?;
            // fn:round semantics: half towards positive infinity
            let rounded = (r + Decimal::new(5, 1)).floor();
            let months = rounded.to_i64().ok_or_else(overflow_duration)?;
            Ok(ymd(Duration {
                months,
                seconds: Decimal::ZERO,
            }))
        }
        AtomicType::DayTimeDuration => {
            let r = if divide {
                d.seconds.checked_div(factor)
            } else {
                d.seconds.checked_mul(factor)
            }
            .ok_or_else(overflow_duration)?;
            // limit to millisecond-ish precision noise: keep 18 digits
            Ok(dtd(r.round_dp(18).normalize()))
        }
        _ => Err(Error::type_error(
            "only xs:yearMonthDuration and xs:dayTimeDuration can be multiplied or divided",
        )),
    }
}

/// Arithmetic on date/time/duration operands. `None` when neither
/// operand is a date/time/duration value; XPTY0004 for unsupported
/// combinations.
pub fn arithmetic(op: ArithOp, a: &Atomic, b: &Atomic, implicit_tz: i16) -> Option<Result<Atomic>> {
    if !is_datetime_family(a) && !is_datetime_family(b) {
        return None;
    }
    Some(arith_inner(op, a, b, implicit_tz))
}

fn arith_inner(op: ArithOp, a: &Atomic, b: &Atomic, implicit_tz: i16) -> Result<Atomic> {
    use ArithOp::{Add, Div, Mul, Sub};
    use AtomicType::{DayTimeDuration as Dt, YearMonthDuration as Ym};
    match (op, a, b) {
        // date/time ± duration
        (Add | Sub, Atomic::DateTime(x), Atomic::Duration(d, t)) => {
            Ok(Atomic::DateTime(add_to_datetime(x, d, *t, op == Sub)?))
        }
        (Add, Atomic::Duration(d, t), Atomic::DateTime(x)) => {
            Ok(Atomic::DateTime(add_to_datetime(x, d, *t, false)?))
        }
        (Add | Sub, Atomic::Date(x), Atomic::Duration(d, t)) => Ok(Atomic::Date(
            add_to_datetime(&x.to_datetime(), d, *t, op == Sub)?.date(),
        )),
        (Add, Atomic::Duration(d, t), Atomic::Date(x)) => Ok(Atomic::Date(
            add_to_datetime(&x.to_datetime(), d, *t, false)?.date(),
        )),
        (Add | Sub, Atomic::Time(x), Atomic::Duration(d, Dt)) => {
            let s = if op == Sub { -d.seconds } else { d.seconds };
            Ok(Atomic::Time(Time::from_local_seconds(
                x.local_seconds() + s,
                x.tz,
            )?))
        }
        (Add, Atomic::Duration(d, Dt), Atomic::Time(x)) => Ok(Atomic::Time(
            Time::from_local_seconds(x.local_seconds() + d.seconds, x.tz)?,
        )),
        // differences
        (Sub, Atomic::DateTime(x), Atomic::DateTime(y)) => {
            Ok(dtd(x.instant(implicit_tz) - y.instant(implicit_tz)))
        }
        (Sub, Atomic::Date(x), Atomic::Date(y)) => Ok(dtd(
            x.to_datetime().instant(implicit_tz) - y.to_datetime().instant(implicit_tz)
        )),
        (Sub, Atomic::Time(x), Atomic::Time(y)) => {
            Ok(dtd(x.to_reference_datetime().instant(implicit_tz)
                - y.to_reference_datetime().instant(implicit_tz)))
        }
        // duration ± duration
        (Add | Sub, Atomic::Duration(x, Ym), Atomic::Duration(y, Ym)) => {
            let months = if op == Add {
                x.months.checked_add(y.months)
            } else {
                x.months.checked_sub(y.months)
            }
            .ok_or_else(overflow_duration)?;
            Ok(ymd(Duration {
                months,
                seconds: Decimal::ZERO,
            }))
        }
        (Add | Sub, Atomic::Duration(x, Dt), Atomic::Duration(y, Dt)) => {
            let s = if op == Add {
                x.seconds.checked_add(y.seconds)
            } else {
                x.seconds.checked_sub(y.seconds)
            }
            .ok_or_else(overflow_duration)?;
            Ok(dtd(s))
        }
        // duration × ÷ number
        (Mul, Atomic::Duration(d, t), n) if n.is_numeric() => {
            scale_duration(d, *t, number_operand(n)?, false)
        }
        (Mul, n, Atomic::Duration(d, t)) if n.is_numeric() => {
            scale_duration(d, *t, number_operand(n)?, false)
        }
        (Div, Atomic::Duration(d, t), n) if n.is_numeric() => {
            if matches!(n, Atomic::Double(_) | Atomic::Float(_)) {
                let f = n.to_number();
                if f.is_infinite() {
                    // duration ÷ ±INF = zero duration
                    return Ok(if *t == Ym {
                        ymd(Duration::ZERO)
                    } else {
                        dtd(Decimal::ZERO)
                    });
                }
                if f == 0.0 {
                    return Err(Error::new("FODT0002", "duration divided by zero"));
                }
            }
            scale_duration(d, *t, number_operand(n)?, true)
        }
        // duration ÷ duration
        (Div, Atomic::Duration(x, Ym), Atomic::Duration(y, Ym)) => {
            if y.months == 0 {
                return Err(Error::new("FOAR0001", "division by a zero duration"));
            }
            Decimal::from(x.months)
                .checked_div(Decimal::from(y.months))
                .map(Atomic::Decimal)
                .ok_or_else(overflow_duration)
        }
        (Div, Atomic::Duration(x, Dt), Atomic::Duration(y, Dt)) => {
            if y.seconds.is_zero() {
                return Err(Error::new("FOAR0001", "division by a zero duration"));
            }
            x.seconds
                .checked_div(y.seconds)
                .map(Atomic::Decimal)
                .ok_or_else(overflow_duration)
        }
        _ => Err(Error::type_error(format!(
            "arithmetic operator {op:?} is not defined for {} and {}",
            type_name(a),
            type_name(b)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AtomicType::{
        DayTimeDuration, GDay, GMonth, GMonthDay, GYear, GYearMonth, YearMonthDuration,
    };

    fn dt(s: &str) -> DateTime {
        DateTime::parse(s).unwrap()
    }

    fn dur(s: &str, ty: AtomicType) -> Atomic {
        Atomic::Duration(Duration::parse(s, ty).unwrap(), ty)
    }

    #[test]
    fn datetime_round_trips() {
        for s in [
            "2024-02-29T13:05:00.5Z",
            "2024-01-01T00:00:00",
            "-0044-03-15T12:00:00+01:00",
            "12345-01-01T00:00:00-05:30",
            "0000-01-01T00:00:00Z",
        ] {
            assert_eq!(dt(s).to_string(), s);
        }
        assert_eq!(
            dt("2024-02-29T13:05:00.500Z").to_string(),
            "2024-02-29T13:05:00.5Z"
        );
        assert_eq!(
            dt("2024-12-31T24:00:00Z").to_string(),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            dt(" 2024-01-01T10:00:00+00:00 ").to_string(),
            "2024-01-01T10:00:00Z"
        );
    }

    #[test]
    fn invalid_lexical_forms() {
        for s in [
            "2023-02-29T00:00:00",
            "2024-13-01T00:00:00",
            "2024-04-31T00:00:00",
            "24-01-01T00:00:00",
            "02024-01-01T00:00:00",
            "2024-01-01T24:00:01",
            "2024-01-01T10:60:00",
            "2024-01-01T10:00:00+15:00",
            "2024-01-01T10:00:00Zx",
            "2024-01-01",
            "2024-01-01T10:00:00.",
        ] {
            let e = DateTime::parse(s).unwrap_err();
            assert_eq!(e.code, "FORG0001", "{s}");
        }
        assert!(Date::parse("1900-02-29").is_err());
        assert!(Date::parse("2000-02-29").is_ok());
        assert!(Time::parse("25:00:00").is_err());
    }

    #[test]
    fn date_time_forms() {
        assert_eq!(
            Date::parse("2024-03-01Z").unwrap().to_string(),
            "2024-03-01Z"
        );
        assert_eq!(
            Date::parse("-0001-03-01").unwrap().to_string(),
            "-0001-03-01"
        );
        assert_eq!(Time::parse("24:00:00").unwrap().to_string(), "00:00:00");
        assert_eq!(
            Time::parse("13:20:10.250-02:00").unwrap().to_string(),
            "13:20:10.25-02:00"
        );
    }

    #[test]
    fn durations() {
        let c = |s: &str, t| Duration::parse(s, t).unwrap().to_lexical(t);
        assert_eq!(c("P1Y2M", AtomicType::Duration), "P1Y2M");
        assert_eq!(c("P14M", YearMonthDuration), "P1Y2M");
        assert_eq!(c("PT90M", DayTimeDuration), "PT1H30M");
        assert_eq!(c("-P3DT4H", DayTimeDuration), "-P3DT4H");
        assert_eq!(c("P0Y", YearMonthDuration), "P0M");
        assert_eq!(c("PT0S", AtomicType::Duration), "PT0S");
        assert_eq!(c("P0D", DayTimeDuration), "PT0S");
        assert_eq!(c("PT1.50S", DayTimeDuration), "PT1.5S");
        assert_eq!(c("P1DT25H", AtomicType::Duration), "P2DT1H");
        assert_eq!(
            c("P1Y2M3DT4H5M6.7S", AtomicType::Duration),
            "P1Y2M3DT4H5M6.7S"
        );
        for bad in ["P", "PT", "P1D2Y", "1Y", "P1.5Y", "PT1H2H", "P-1Y", "P1YT"] {
            assert_eq!(
                Duration::parse(bad, AtomicType::Duration).unwrap_err().code,
                "FORG0001",
                "{bad}"
            );
        }
        assert!(Duration::parse("P1D", YearMonthDuration).is_err());
        assert!(Duration::parse("PT1H", YearMonthDuration).is_err());
        assert_eq!(c("-PT0S", AtomicType::Duration), "PT0S");
        assert!(Duration::parse("P1Y", DayTimeDuration).is_err());
    }

    #[test]
    fn g_types() {
        let c = |s: &str, t| GDate::parse(s, t).unwrap().to_lexical(t);
        assert_eq!(c("2024", GYear), "2024");
        assert_eq!(c("-0010Z", GYear), "-0010Z");
        assert_eq!(c("2024-02+01:00", GYearMonth), "2024-02+01:00");
        assert_eq!(c("--12", GMonth), "--12");
        assert_eq!(c("--02-29", GMonthDay), "--02-29");
        assert_eq!(c("---31", GDay), "---31");
        assert!(GDate::parse("--02-30", GMonthDay).is_err());
        assert!(GDate::parse("--13", GMonth).is_err());
        assert!(GDate::parse("---32", GDay).is_err());
    }

    #[test]
    fn comparisons_with_timezones() {
        let a = Atomic::DateTime(dt("2024-01-01T12:00:00+01:00"));
        let b = Atomic::DateTime(dt("2024-01-01T11:00:00Z"));
        let c = Atomic::DateTime(dt("2024-01-01T11:00:00"));
        assert_eq!(compare(&a, &b, 0).unwrap().unwrap(), Ordering::Equal);
        assert_eq!(compare(&a, &c, 0).unwrap().unwrap(), Ordering::Equal);
        assert_eq!(compare(&a, &c, 60).unwrap().unwrap(), Ordering::Greater);
        let d1 = Atomic::Date(Date::parse("2024-01-02").unwrap());
        let d2 = Atomic::Date(Date::parse("2024-01-01Z").unwrap());
        assert_eq!(compare(&d1, &d2, 0).unwrap().unwrap(), Ordering::Greater);
        assert!(compare(&a, &d1, 0).unwrap().is_err());
        assert!(compare(&Atomic::Integer(1), &Atomic::Integer(2), 0).is_none());
        // durations
        let y1 = dur("P1Y", YearMonthDuration);
        let m12 = dur("P12M", YearMonthDuration);
        assert_eq!(compare(&y1, &m12, 0).unwrap().unwrap(), Ordering::Equal);
        let pd = dur("P1Y", AtomicType::Duration);
        assert_eq!(compare(&pd, &y1, 0).unwrap().unwrap_err().code, "XPTY0004");
        assert!(equal(&pd, &y1, 0).unwrap().unwrap());
        assert!(equal(
            &dur("P0M", YearMonthDuration),
            &dur("PT0S", DayTimeDuration),
            0
        )
        .unwrap()
        .unwrap());
        assert_eq!(
            compare_for(&pd, &dur("P2Y", AtomicType::Duration), true, 0)
                .unwrap()
                .unwrap(),
            Ordering::Less
        );
        // g types: equality only, with timezone
        let g1 = Atomic::G(GDate::parse("---12Z", GDay).unwrap(), GDay);
        let g2 = Atomic::G(GDate::parse("---12+01:00", GDay).unwrap(), GDay);
        assert!(!equal(&g1, &g2, 0).unwrap().unwrap());
        assert!(equal(&g1, &g1.clone(), 0).unwrap().unwrap());
        assert!(compare(&g1, &g2, 0).unwrap().is_err());
    }

    #[test]
    fn arithmetic_month_end_and_differences() {
        let run =
            |op, a: &Atomic, b: &Atomic| arithmetic(op, a, b, 0).unwrap().unwrap().to_xs_string();
        let jan31 = Atomic::Date(Date::parse("2024-01-31").unwrap());
        assert_eq!(
            run(ArithOp::Add, &jan31, &dur("P1M", YearMonthDuration)),
            "2024-02-29"
        );
        let jan31b = Atomic::Date(Date::parse("2023-01-31").unwrap());
        assert_eq!(
            run(ArithOp::Add, &jan31b, &dur("P1M", YearMonthDuration)),
            "2023-02-28"
        );
        assert_eq!(
            run(ArithOp::Sub, &jan31, &dur("P1Y2M", YearMonthDuration)),
            "2022-11-30"
        );
        let t = Atomic::DateTime(dt("2024-12-31T23:30:00Z"));
        assert_eq!(
            run(ArithOp::Add, &t, &dur("PT45M", DayTimeDuration)),
            "2025-01-01T00:15:00Z"
        );
        assert_eq!(
            run(ArithOp::Add, &dur("P1D", DayTimeDuration), &t),
            "2025-01-01T23:30:00Z"
        );
        let d2 = Atomic::Date(Date::parse("2024-03-01").unwrap());
        assert_eq!(run(ArithOp::Sub, &d2, &jan31), "P30D");
        let tm = Atomic::Time(Time::parse("23:00:00").unwrap());
        assert_eq!(
            run(ArithOp::Add, &tm, &dur("PT2H", DayTimeDuration)),
            "01:00:00"
        );
        let a = Atomic::DateTime(dt("2024-01-01T12:00:00+01:00"));
        let b = Atomic::DateTime(dt("2024-01-01T10:00:00Z"));
        assert_eq!(run(ArithOp::Sub, &a, &b), "PT1H");
        assert_eq!(
            run(
                ArithOp::Add,
                &dur("P1Y", YearMonthDuration),
                &dur("P3M", YearMonthDuration)
            ),
            "P1Y3M"
        );
        assert_eq!(
            run(
                ArithOp::Sub,
                &dur("PT1H", DayTimeDuration),
                &dur("PT2H", DayTimeDuration)
            ),
            "-PT1H"
        );
        assert_eq!(
            run(
                ArithOp::Mul,
                &dur("P1M", YearMonthDuration),
                &Atomic::Double(1.5)
            ),
            "P2M"
        );
        assert_eq!(
            run(
                ArithOp::Mul,
                &Atomic::Integer(3),
                &dur("PT20M", DayTimeDuration)
            ),
            "PT1H"
        );
        assert_eq!(
            run(
                ArithOp::Div,
                &dur("PT1H", DayTimeDuration),
                &Atomic::Integer(4)
            ),
            "PT15M"
        );
        assert_eq!(
            run(
                ArithOp::Div,
                &dur("P1Y", YearMonthDuration),
                &dur("P3M", YearMonthDuration)
            ),
            "4"
        );
        assert_eq!(
            run(
                ArithOp::Div,
                &dur("PT1H", DayTimeDuration),
                &dur("PT40M", DayTimeDuration)
            ),
            "1.5"
        );
        let e = arithmetic(
            ArithOp::Div,
            &dur("PT1H", DayTimeDuration),
            &Atomic::Integer(0),
            0,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(e.code, "FODT0002");
        let e = arithmetic(
            ArithOp::Mul,
            &dur("PT1H", DayTimeDuration),
            &Atomic::Double(f64::NAN),
            0,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(e.code, "FOCA0005");
        assert!(arithmetic(ArithOp::Add, &a, &a, 0).unwrap().is_err());
        assert!(arithmetic(ArithOp::Add, &Atomic::Integer(1), &Atomic::Integer(1), 0).is_none());
    }

    #[test]
    fn adjust_and_now() {
        let x = dt("2024-01-01T00:30:00+01:00");
        assert_eq!(
            x.adjust(Some(0)).unwrap().to_string(),
            "2023-12-31T23:30:00Z"
        );
        assert_eq!(x.adjust(None).unwrap().to_string(), "2024-01-01T00:30:00");
        let n = now_utc();
        assert!(n.year >= 2024);
        assert_eq!(n.tz, Some(0));
        assert_eq!(weekday(days_from_civil(2024, 2, 29)), 4);
        for days in [-800_000, -1, 0, 59, 730_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
