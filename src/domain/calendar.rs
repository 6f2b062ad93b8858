//! The working-day calendar of Vietnamese civil servants (công chức, viên
//! chức), and the one definition of deadlines built on it (domain rules §5,
//! §6 rules 14–15).
//!
//! What it is for: every "within N working days" offset, every deadline, the
//! "overdue" and "due soon" flags are computed here, so that handling, reports
//! and reminders agree.
//!
//! * Week: Monday–Friday. Public holidays (Labour Code 2019 Art. 112), the
//!   compensatory and swapped days off and the make-up working Saturdays are
//!   announced each year, so they are **data**: `ops/calendars/vn.toml`,
//!   compiled in by [`Calendar::vietnam`], or any text given to
//!   [`Calendar::from_toml`]. A year absent from the data falls back to
//!   "weekends only" ([`Calendar::covers`] tells which).
//! * Time zone: Asia/Ho_Chi_Minh = UTC+07:00, no DST.
//! * "Within N working days of issue" = the Nth working day strictly after the
//!   issue date ([`Calendar::add_working_days`]; N = 0 is the issue date itself
//!   rolled forward to a working day).
//! * A date deadline on a non-working day rolls to the end of the next working
//!   day ([`Calendar::roll_forward`]).
//! * Overdue ⇔ done (or now) is at or after 24:00 +07:00 of the deadline day
//!   in force, i.e. the next day 00:00 +07:00 ([`Calendar::is_overdue`]).
//! * Due soon ⇔ not overdue and at most N working days from today (VN date of
//!   now) to the deadline ([`Calendar::is_due_soon`]).
//!
//! Must never: do I/O or read the clock. Data comes in as text and "now" comes
//! in as an argument. Never panics, whatever the input text.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included};

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday,
};
use serde::Deserialize;

/// The Vietnamese offset from UTC, in seconds (+07:00, no DST).
pub const VN_UTC_OFFSET_SECONDS: i64 = 7 * 3600;

/// The only `timezone` value the data may declare.
const TIMEZONE: &str = "+07:00";

/// Years a data file may declare (a sanity bound; far beyond any real use).
const MIN_YEAR: i64 = 1900;
const MAX_YEAR: i64 = 2200;

/// The compiled-in Vietnamese calendar data.
const VN_TOML: &str = include_str!("../../ops/calendars/vn.toml");

/// What a calendar day is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// An ordinary working weekday.
    Working,
    /// A weekend day worked to make up a swapped day off (làm bù).
    MakeupWorking,
    /// An ordinary weekly day off.
    Weekend,
    /// A public holiday (may fall on a weekend).
    Holiday,
    /// A compensatory (nghỉ bù) or swapped (hoán đổi) weekday off.
    DayOff,
}

impl DayKind {
    /// Whether civil servants work on a day of this kind.
    pub fn is_working(self) -> bool {
        matches!(self, DayKind::Working | DayKind::MakeupWorking)
    }
}

/// Where one year's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearInfo {
    pub year: i32,
    /// The announcing documents (notice numbers, dates).
    pub source: String,
    pub urls: Vec<String>,
    /// True when the year, or any of its entries, is marked provisional
    /// (not confirmed by an announcement).
    pub provisional: bool,
}

#[derive(Debug, Clone)]
struct Special {
    kind: DayKind,
    name: String,
}

/// A working-day calendar: weekly days off plus per-year exceptions.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// Indexed by `Weekday::num_days_from_monday`; never all true.
    weekend: [bool; 7],
    years: BTreeMap<i32, YearInfo>,
    /// Holidays, days off and make-up working days of the covered years.
    special: BTreeMap<NaiveDate, Special>,
}

/// Why calendar data was rejected.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar data is not valid TOML or not of the expected shape: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("timezone must be \"+07:00\" (Asia/Ho_Chi_Minh, no DST), found {0:?}")]
    Timezone(String),
    #[error("unknown weekday {0:?} in `weekend` (use Mon, Tue, ... Sun)")]
    Weekday(String),
    #[error("`weekend` covers the whole week: there would be no working day")]
    NoWorkingWeekday,
    #[error("year {0} is outside the supported range {MIN_YEAR}..={MAX_YEAR}")]
    YearOutOfRange(i64),
    #[error("year {0} is declared more than once")]
    DuplicateYear(i32),
    #[error("year {0} has no `source` (the announcing document)")]
    MissingSource(i32),
    #[error("year {year}: {value} is not a plain date (YYYY-MM-DD, no time or offset)")]
    NotADate { year: i32, value: String },
    #[error("{date} is listed in the section of year {year}")]
    DateOutsideYear { year: i32, date: NaiveDate },
    #[error("{0} has an empty name")]
    EmptyName(NaiveDate),
    #[error("{0} is listed more than once")]
    DuplicateDate(NaiveDate),
    #[error("{0} is listed both as a holiday/day off and as a make-up working day")]
    OffAndWorking(NaiveDate),
    #[error("make-up working day {0} is not a weekly day off")]
    MakeupOnWorkday(NaiveDate),
    #[error("day off {0} falls on a weekly day off (list only weekdays under `days_off`)")]
    DayOffOnWeekend(NaiveDate),
}

// ---- the data file's shape ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    timezone: String,
    #[serde(default = "default_weekend")]
    weekend: Vec<String>,
    #[serde(default)]
    year: Vec<RawYear>,
}

fn default_weekend() -> Vec<String> {
    vec!["Sat".to_owned(), "Sun".to_owned()]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYear {
    year: i64,
    source: String,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    provisional: bool,
    #[serde(default)]
    holidays: Vec<RawDay>,
    #[serde(default)]
    days_off: Vec<RawDay>,
    #[serde(default)]
    makeup_working_days: Vec<RawDay>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDay {
    date: toml::value::Datetime,
    name: String,
    #[serde(default)]
    provisional: bool,
}

fn plain_date(year: i32, value: &toml::value::Datetime) -> Result<NaiveDate, CalendarError> {
    let not_a_date = || CalendarError::NotADate {
        year,
        value: value.to_string(),
    };
    match (value.date, value.time, value.offset) {
        (Some(d), None, None) => {
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                .ok_or_else(not_a_date)
        }
        _ => Err(not_a_date()),
    }
}

impl Calendar {
    /// Parses and validates calendar data (see `ops/calendars/vn.toml` for
    /// the format). Rejects, among others: a timezone other than +07:00, a
    /// year declared twice or without a source, a date outside its year's
    /// section, a date listed twice, a date both off and a make-up working
    /// day, a make-up working day on a weekday, a day off on a weekend.
    pub fn from_toml(text: &str) -> Result<Self, CalendarError> {
        let raw: RawCalendar = toml::from_str(text)?;
        if raw.timezone != TIMEZONE {
            return Err(CalendarError::Timezone(raw.timezone));
        }
        let mut weekend = [false; 7];
        for name in &raw.weekend {
            let day: Weekday = name
                .parse()
                .map_err(|_| CalendarError::Weekday(name.clone()))?;
            weekend[day.num_days_from_monday() as usize] = true;
        }
        if weekend.iter().all(|off| *off) {
            return Err(CalendarError::NoWorkingWeekday);
        }
        let mut cal = Calendar {
            weekend,
            years: BTreeMap::new(),
            special: BTreeMap::new(),
        };
        for section in raw.year {
            cal.add_year(section)?;
        }
        Ok(cal)
    }

    fn add_year(&mut self, section: RawYear) -> Result<(), CalendarError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&section.year) {
            return Err(CalendarError::YearOutOfRange(section.year));
        }
        let year =
            i32::try_from(section.year).map_err(|_| CalendarError::YearOutOfRange(section.year))?;
        if self.years.contains_key(&year) {
            return Err(CalendarError::DuplicateYear(year));
        }
        if section.source.trim().is_empty() {
            return Err(CalendarError::MissingSource(year));
        }
        let mut provisional = section.provisional;
        let lists = [
            (DayKind::Holiday, section.holidays),
            (DayKind::DayOff, section.days_off),
            (DayKind::MakeupWorking, section.makeup_working_days),
        ];
        for (kind, days) in lists {
            for day in days {
                let date = plain_date(year, &day.date)?;
                if date.year() != year {
                    return Err(CalendarError::DateOutsideYear { year, date });
                }
                if day.name.trim().is_empty() {
                    return Err(CalendarError::EmptyName(date));
                }
                let weekend = self.is_weekend(date);
                match kind {
                    DayKind::MakeupWorking if !weekend => {
                        return Err(CalendarError::MakeupOnWorkday(date))
                    }
                    DayKind::DayOff if weekend => return Err(CalendarError::DayOffOnWeekend(date)),
                    _ => {}
                }
                provisional |= day.provisional;
                match self.special.entry(date) {
                    Entry::Vacant(slot) => {
                        slot.insert(Special {
                            kind,
                            name: day.name,
                        });
                    }
                    Entry::Occupied(existing) => {
                        let was_working = existing.get().kind.is_working();
                        return Err(if was_working == kind.is_working() {
                            CalendarError::DuplicateDate(date)
                        } else {
                            CalendarError::OffAndWorking(date)
                        });
                    }
                }
            }
        }
        self.years.insert(
            year,
            YearInfo {
                year,
                source: section.source,
                urls: section.urls,
                provisional,
            },
        );
        Ok(())
    }

    /// The calendar of Vietnamese civil servants, from the compiled-in
    /// `ops/calendars/vn.toml` (tested to parse). Should that file ever fail
    /// to parse, this returns [`Calendar::weekends_only`] rather than
    /// panicking; use [`Calendar::try_vietnam`] to see the error.
    pub fn vietnam() -> Self {
        Self::try_vietnam().unwrap_or_else(|_| Self::weekends_only())
    }

    /// Like [`Calendar::vietnam`], reporting a data error (for start-up checks).
    pub fn try_vietnam() -> Result<Self, CalendarError> {
        Self::from_toml(VN_TOML)
    }

    /// Saturday and Sunday off, no holiday data (covers no year).
    pub fn weekends_only() -> Self {
        let mut weekend = [false; 7];
        weekend[Weekday::Sat.num_days_from_monday() as usize] = true;
        weekend[Weekday::Sun.num_days_from_monday() as usize] = true;
        Calendar {
            weekend,
            years: BTreeMap::new(),
            special: BTreeMap::new(),
        }
    }

    /// Whether `d`'s year is in the data. Outside it, only weekends are off.
    pub fn covers(&self, d: NaiveDate) -> bool {
        self.years.contains_key(&d.year())
    }

    /// The source notes of a covered year.
    pub fn year_info(&self, year: i32) -> Option<&YearInfo> {
        self.years.get(&year)
    }

    /// The covered years, in order.
    pub fn years(&self) -> impl Iterator<Item = &YearInfo> {
        self.years.values()
    }

    fn is_weekend(&self, d: NaiveDate) -> bool {
        self.weekend[d.weekday().num_days_from_monday() as usize]
    }

    /// What kind of day `d` is.
    pub fn day_kind(&self, d: NaiveDate) -> DayKind {
        match self.special.get(&d) {
            Some(s) => s.kind,
            None if self.is_weekend(d) => DayKind::Weekend,
            None => DayKind::Working,
        }
    }

    /// The name of a holiday, day off or make-up working day.
    pub fn day_name(&self, d: NaiveDate) -> Option<&str> {
        self.special.get(&d).map(|s| s.name.as_str())
    }

    /// Whether civil servants work on `d`.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        self.day_kind(d).is_working()
    }

    /// `d` if it is a working day, else the next working day.
    /// (Saturates at `NaiveDate::MAX`.)
    pub fn roll_forward(&self, d: NaiveDate) -> NaiveDate {
        let mut cur = d;
        // Terminates: the weekend is never the whole week and the data is finite.
        while !self.is_working_day(cur) {
            match cur.succ_opt() {
                Some(next) => cur = next,
                None => break,
            }
        }
        cur
    }

    /// The first working day strictly after `d`.
    pub fn next_working_day(&self, d: NaiveDate) -> NaiveDate {
        d.succ_opt().map_or(d, |next| self.roll_forward(next))
    }

    fn working_weekdays_per_week(&self) -> u32 {
        // 1..=7, as the weekend is never the whole week.
        self.weekend.iter().filter(|off| !**off).count() as u32
    }

    /// "Within `n` working days of `from`": the `n`th working day strictly
    /// after `from`; for `n` = 0, `from` rolled forward to a working day.
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        if n == 0 {
            return self.roll_forward(from);
        }
        let per_week = self.working_weekdays_per_week();
        let mut cur = from;
        let mut left = n;
        while left > 0 {
            // Skip a whole week at once when it holds no exception; the last
            // days are always stepped one by one so the result is a working day.
            if left > per_week {
                if let Some(week_on) = cur.checked_add_days(Days::new(7)) {
                    if self
                        .special
                        .range((Excluded(cur), Included(week_on)))
                        .next()
                        .is_none()
                    {
                        cur = week_on;
                        left -= per_week;
                        continue;
                    }
                }
            }
            let next = self.next_working_day(cur);
            if next <= cur {
                break; // saturated at the end of representable dates
            }
            cur = next;
            left -= 1;
        }
        cur
    }

    /// The number of working days in (`from`, `to`]; negative (minus the
    /// number in (`to`, `from`]) if `to` < `from`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        match from.cmp(&to) {
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Less => self.count_working(from, to),
            std::cmp::Ordering::Greater => -self.count_working(to, from),
        }
    }

    /// Working days in (a, b], for a < b.
    fn count_working(&self, a: NaiveDate, b: NaiveDate) -> i64 {
        let days = (b - a).num_days();
        let weeks = days / 7;
        let mut count = weeks * i64::from(self.working_weekdays_per_week());
        // The remaining (< 7) days after the whole weeks.
        let mut cur = match a.checked_add_days(Days::new(weeks.unsigned_abs() * 7)) {
            Some(d) => d,
            None => return count,
        };
        for _ in 0..days % 7 {
            match cur.succ_opt() {
                Some(next) => cur = next,
                None => break,
            }
            if !self.is_weekend(cur) {
                count += 1;
            }
        }
        // Exceptions (validation guarantees days off / make-up days are
        // weekdays / weekend days respectively; holidays may be either).
        for (date, s) in self.special.range((Excluded(a), Included(b))) {
            let weekend = self.is_weekend(*date);
            match s.kind {
                DayKind::Holiday | DayKind::DayOff if !weekend => count -= 1,
                DayKind::MakeupWorking if weekend => count += 1,
                _ => {}
            }
        }
        count
    }

    /// The instant a date deadline ends: 24:00 +07:00 of `roll_forward(due)`,
    /// i.e. the next day 00:00 +07:00, in UTC.
    pub fn deadline_end(&self, due: NaiveDate) -> DateTime<Utc> {
        let local_end = self
            .roll_forward(due)
            .succ_opt()
            .map_or(NaiveDateTime::MAX, |next| next.and_time(NaiveTime::MIN));
        local_end
            .checked_sub_signed(TimeDelta::seconds(VN_UTC_OFFSET_SECONDS))
            .unwrap_or(NaiveDateTime::MIN)
            .and_utc()
    }

    /// Overdue ⇔ `done_or_now` is at or after [`Calendar::deadline_end`]
    /// (23:59:59.999 +07:00 of the deadline day in force is still on time).
    pub fn is_overdue(&self, due: NaiveDate, done_or_now: DateTime<Utc>) -> bool {
        done_or_now >= self.deadline_end(due)
    }

    /// Working days from today (the VN date of `now`) to the deadline in
    /// force, counted in (today, deadline]: 0 on the deadline day itself,
    /// negative once it is past.
    pub fn working_days_left(&self, due: NaiveDate, now: DateTime<Utc>) -> i64 {
        self.working_days_between(Self::local_date(now), self.roll_forward(due))
    }

    /// Due soon ⇔ not overdue and at most `within` working days left.
    pub fn is_due_soon(&self, due: NaiveDate, now: DateTime<Utc>, within: u32) -> bool {
        !self.is_overdue(due, now) && self.working_days_left(due, now) <= i64::from(within)
    }

    /// The Vietnamese (UTC+7) calendar date of an instant.
    pub fn local_date(t: DateTime<Utc>) -> NaiveDate {
        t.naive_utc()
            .checked_add_signed(TimeDelta::seconds(VN_UTC_OFFSET_SECONDS))
            .map_or(NaiveDate::MAX, |local| local.date())
    }
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
