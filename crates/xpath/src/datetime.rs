//! Date, time and duration values (xs:dateTime, xs:date, xs:time,
//! durations, the g* types): parsing, canonical forms, comparison,
//! arithmetic and component extraction.
//!
//! OWNER: datetime helper. The types and method names used by value.rs are
//! the contract; add what you need.

use std::fmt;

use rust_decimal::Decimal;

/// Timezone offset in minutes east of UTC (`None`: no timezone).
pub type Tz = Option<i16>;

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

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self)
    }
}

impl Duration {
    /// Canonical lexical form for the given duration type.
    pub fn to_lexical(&self, ty: crate::value::AtomicType) -> String {
        format!("{:?}{:?}", self, ty)
    }
}

impl GDate {
    /// Canonical lexical form for the given g* type.
    pub fn to_lexical(&self, ty: crate::value::AtomicType) -> String {
        format!("{:?}{:?}", self, ty)
    }
}

/// The current dateTime in UTC.
pub fn now_utc() -> DateTime {
    DateTime {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: Decimal::ZERO,
        tz: Some(0),
    }
}
