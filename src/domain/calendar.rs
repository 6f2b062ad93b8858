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
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// An instant given in Vietnamese local time, e.g. "2026-03-10 23:59:59".
    fn vn(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_str(&format!("{s} +07:00"), "%Y-%m-%d %H:%M:%S%.f %:z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cal() -> Calendar {
        Calendar::from_toml(VN_TOML).expect("ops/calendars/vn.toml must parse")
    }

    #[test]
    fn vietnam_data_parses_and_covers_2025_to_2027() {
        let c = Calendar::try_vietnam().expect("compiled-in data parses");
        let years: Vec<i32> = c.years().map(|y| y.year).collect();
        assert_eq!(years, vec![2025, 2026, 2027]);
        for y in c.years() {
            assert!(!y.source.trim().is_empty(), "{} has a source", y.year);
            assert!(!y.urls.is_empty(), "{} has a URL", y.year);
        }
        assert!(!c.year_info(2025).unwrap().provisional);
        assert!(!c.year_info(2026).unwrap().provisional);
        assert!(c.year_info(2027).unwrap().provisional);
        // vietnam() is the same data, not the weekends-only fallback.
        let v = Calendar::vietnam();
        assert!(v.covers(d("2026-02-17")));
        assert!(!v.is_working_day(d("2026-02-17")));
    }

    #[test]
    fn each_covered_year_has_250_working_days() {
        // Hand count: each of 2025, 2026, 2027 has 261 weekdays.
        // 2025: -12 weekdays off (1/1, 27-31/1, 7/4, 30/4, 1/5, 2/5, 1/9, 2/9), +1 (26/4).
        // 2026: -13 (1/1, 2/1, 16-20/2, 27/4, 30/4, 1/5, 31/8, 1/9, 2/9), +2 (10/1, 22/8).
        // 2027: -11 (1/1, 5/2, 8-11/2, 16/4, 30/4, 3/5, 2/9, 3/9).
        // Outside the data, 2030 has its 261 weekdays.
        let c = cal();
        for (from, to, expected) in [
            ("2024-12-31", "2025-12-31", 250),
            ("2025-12-31", "2026-12-31", 250),
            ("2026-12-31", "2027-12-31", 250),
            ("2029-12-31", "2030-12-31", 261),
        ] {
            assert_eq!(
                c.working_days_between(d(from), d(to)),
                expected,
                "({from}, {to}]"
            );
        }
    }

    #[test]
    fn working_days_around_the_2026_holidays() {
        use DayKind::*;
        let c = cal();
        for (date, kind) in [
            // Tết Dương lịch 2026: 2/1 swapped with Saturday 10/1.
            ("2025-12-31", Working),
            ("2026-01-01", Holiday),
            ("2026-01-02", DayOff),
            ("2026-01-03", Weekend),
            ("2026-01-05", Working),
            ("2026-01-09", Working),
            ("2026-01-10", MakeupWorking),
            ("2026-01-11", Weekend),
            // Tết Bính Ngọ: off Sat 14/2 - Sun 22/2.
            ("2026-02-13", Working),
            ("2026-02-14", Weekend),
            ("2026-02-15", Weekend),
            ("2026-02-16", Holiday),
            ("2026-02-17", Holiday),
            ("2026-02-18", Holiday),
            ("2026-02-19", Holiday),
            ("2026-02-20", Holiday),
            ("2026-02-21", Weekend),
            ("2026-02-22", Weekend),
            ("2026-02-23", Working),
            // Giỗ Tổ on Sunday 26/4 -> Monday 27/4 off; 30/4-1/5 Thu-Fri.
            ("2026-04-24", Working),
            ("2026-04-25", Weekend),
            ("2026-04-26", Holiday),
            ("2026-04-27", DayOff),
            ("2026-04-28", Working),
            ("2026-04-29", Working),
            ("2026-04-30", Holiday),
            ("2026-05-01", Holiday),
            ("2026-05-02", Weekend),
            ("2026-05-03", Weekend),
            ("2026-05-04", Working),
            // Quốc khánh: off Sat 29/8 - Wed 2/9; Monday 31/8 made up Sat 22/8.
            ("2026-08-21", Working),
            ("2026-08-22", MakeupWorking),
            ("2026-08-23", Weekend),
            ("2026-08-28", Working),
            ("2026-08-29", Weekend),
            ("2026-08-31", DayOff),
            ("2026-09-01", Holiday),
            ("2026-09-02", Holiday),
            ("2026-09-03", Working),
            // 2025: Friday 2/5 swapped with Saturday 26/4.
            ("2025-04-26", MakeupWorking),
            ("2025-05-02", DayOff),
            ("2025-09-01", Holiday),
            // 2027 (provisional): 1/5 on a Saturday -> Monday 3/5 off.
            ("2027-05-01", Holiday),
            ("2027-05-03", DayOff),
            ("2027-02-10", DayOff),
        ] {
            assert_eq!(c.day_kind(d(date)), kind, "{date}");
            assert_eq!(c.is_working_day(d(date)), kind.is_working(), "{date}");
        }
        assert_eq!(
            c.day_name(d("2026-02-17")),
            Some("Tết Âm lịch (mùng 1 Tết Bính Ngọ)")
        );
        assert_eq!(c.day_name(d("2026-02-23")), None);
    }

    #[test]
    fn add_working_days_across_holidays() {
        let c = cal();
        for (from, n, expected) in [
            // Issued the Friday before Tết 2026: 23, 24, 25, 26, 27/2.
            ("2026-02-13", 5, "2026-02-27"),
            ("2026-02-13", 1, "2026-02-23"),
            ("2026-02-13", 0, "2026-02-13"),
            // N = 0 on a non-working day rolls forward.
            ("2026-02-14", 0, "2026-02-23"),
            ("2026-02-17", 0, "2026-02-23"),
            // Issued on a holiday: counting starts after it.
            ("2026-02-17", 1, "2026-02-23"),
            // 27/4 off, 28 (1), 29 (2), 30/4-3/5 off, 4/5 (3).
            ("2026-04-24", 3, "2026-05-04"),
            ("2026-04-29", 1, "2026-05-04"),
            // Make-up Saturday counts: 21/8 (1), 22/8 (2).
            ("2026-08-20", 2, "2026-08-22"),
            ("2026-01-09", 1, "2026-01-10"),
            // 29/8-2/9 off.
            ("2026-08-28", 1, "2026-09-03"),
            // Across the year end: 1/1/2027 off.
            ("2026-12-31", 1, "2027-01-04"),
            // 1/1 and 2/1 off, 5-9/1 (5), 10/1 Sat (6), 12/1 Mon (7).
            ("2025-12-31", 7, "2026-01-12"),
            // Outside the data: weekends only (1/1/2030 is not known as a holiday).
            ("2029-12-31", 1, "2030-01-01"),
            ("2030-01-04", 1, "2030-01-07"),
            ("2030-01-01", 10, "2030-01-15"),
        ] {
            assert_eq!(
                c.add_working_days(d(from), n),
                d(expected),
                "{from} + {n} working days"
            );
        }
    }

    #[test]
    fn add_working_days_agrees_with_counting() {
        // The fast paths (week jumps, week counting) agree with stepping day by day.
        let c = cal();
        let naive_count = |a: NaiveDate, b: NaiveDate| -> i64 {
            a.iter_days()
                .skip(1)
                .take_while(|x| *x <= b)
                .filter(|x| c.is_working_day(*x))
                .count() as i64
        };
        let mut from = d("2024-12-01");
        while from <= d("2028-01-31") {
            for n in [0u32, 1, 2, 3, 5, 6, 7, 10, 15, 30, 60] {
                let due = c.add_working_days(from, n);
                assert!(c.is_working_day(due), "{from} + {n} = {due}");
                assert!(due >= from);
                if n > 0 {
                    assert_eq!(
                        c.working_days_between(from, due),
                        i64::from(n),
                        "{from}+{n}"
                    );
                    assert_eq!(naive_count(from, due), i64::from(n), "{from}+{n}");
                    let day_before = due.pred_opt().unwrap();
                    assert_eq!(naive_count(from, day_before), i64::from(n) - 1);
                    assert_eq!(c.working_days_between(due, from), -i64::from(n));
                } else {
                    assert_eq!(due, c.roll_forward(from));
                }
            }
            from = from.succ_opt().unwrap();
        }
    }

    #[test]
    fn working_days_between_cases() {
        let c = cal();
        for (from, to, expected) in [
            ("2026-02-13", "2026-02-27", 5),
            ("2026-02-27", "2026-02-13", -5),
            ("2026-02-13", "2026-02-13", 0),
            ("2026-02-13", "2026-02-22", 0),
            ("2026-02-13", "2026-02-23", 1),
            // 22/8 (1), 24-28/8 (6), 31/8-2/9 off, 3/9 (7), 4/9 (8).
            ("2026-08-21", "2026-09-04", 8),
            ("2026-04-29", "2026-05-04", 1),
            // Outside the data: weekends only.
            ("2024-08-30", "2024-09-06", 5),
        ] {
            assert_eq!(
                c.working_days_between(d(from), d(to)),
                expected,
                "({from}, {to}]"
            );
        }
    }

    #[test]
    fn roll_forward_and_next_working_day() {
        let c = cal();
        for (date, rolled, next) in [
            ("2026-02-13", "2026-02-13", "2026-02-23"),
            ("2026-02-16", "2026-02-23", "2026-02-23"),
            ("2026-04-26", "2026-04-28", "2026-04-28"),
            ("2026-04-30", "2026-05-04", "2026-05-04"),
            ("2026-05-04", "2026-05-04", "2026-05-05"),
            ("2026-01-09", "2026-01-09", "2026-01-10"),
            ("2026-01-10", "2026-01-10", "2026-01-12"),
            ("2026-08-29", "2026-09-03", "2026-09-03"),
            ("2026-09-02", "2026-09-03", "2026-09-03"),
        ] {
            assert_eq!(c.roll_forward(d(date)), d(rolled), "roll_forward({date})");
            assert_eq!(c.next_working_day(d(date)), d(next), "next({date})");
        }
    }

    #[test]
    fn deadline_end_rolls_to_end_of_next_working_day() {
        let c = cal();
        for (due, end_utc) in [
            // A working day: 24:00 +07:00 = 17:00 UTC the same day.
            ("2026-03-10", "2026-03-10T17:00:00Z"),
            // 30/4 (holiday) -> end of Monday 4/5.
            ("2026-04-30", "2026-05-04T17:00:00Z"),
            // mùng 1 Tết -> end of Monday 23/2.
            ("2026-02-17", "2026-02-23T17:00:00Z"),
            // A make-up Saturday is a working day: no roll.
            ("2026-01-10", "2026-01-10T17:00:00Z"),
            // The swapped Friday 2/1 -> end of Monday 5/1.
            ("2026-01-02", "2026-01-05T17:00:00Z"),
        ] {
            assert_eq!(c.deadline_end(d(due)), utc(end_utc), "due {due}");
        }
    }

    #[test]
    fn overdue_boundary_is_midnight_vn_time() {
        let c = cal();
        for (due, at, overdue) in [
            ("2026-03-10", "2026-03-10 09:00:00", false),
            ("2026-03-10", "2026-03-10 23:59:59", false),
            ("2026-03-10", "2026-03-10 23:59:59.999", false),
            ("2026-03-10", "2026-03-11 00:00:00", true),
            ("2026-03-10", "2026-03-11 00:00:01", true),
            // Due on 2/9 (holiday): ends with Thursday 3/9.
            ("2026-09-02", "2026-09-02 10:00:00", false),
            ("2026-09-02", "2026-09-03 23:59:59", false),
            ("2026-09-02", "2026-09-04 00:00:00", true),
            // Due on a Tết Saturday: ends with Monday 23/2.
            ("2026-02-14", "2026-02-23 23:59:59", false),
            ("2026-02-14", "2026-02-24 00:00:00", true),
            // Done before the due date.
            ("2026-03-10", "2026-03-01 08:00:00", false),
        ] {
            assert_eq!(c.is_overdue(d(due), vn(at)), overdue, "due {due}, at {at}");
        }
        // The same boundary given in UTC: 17:00Z is 00:00 +07:00.
        assert!(!c.is_overdue(d("2026-03-10"), utc("2026-03-10T16:59:59Z")));
        assert!(c.is_overdue(d("2026-03-10"), utc("2026-03-10T17:00:00Z")));
    }

    #[test]
    fn local_date_is_utc_plus_7() {
        for (t, date) in [
            ("2026-02-16T16:59:59Z", "2026-02-16"),
            ("2026-02-16T17:00:00Z", "2026-02-17"),
            ("2026-12-31T17:00:00Z", "2027-01-01"),
            ("2026-01-01T00:00:00+07:00", "2026-01-01"),
        ] {
            assert_eq!(Calendar::local_date(utc(t)), d(date), "{t}");
        }
    }

    #[test]
    fn due_soon_counts_working_days_from_today() {
        let c = cal();
        for (due, now, within, left, soon) in [
            // Friday before Tết, due Tuesday after: 23/2, 24/2 -> 2 left.
            ("2026-02-24", "2026-02-13 09:00:00", 2, 2, true),
            ("2026-02-24", "2026-02-13 09:00:00", 1, 2, false),
            // Due on a Sunday of Tết: in force Monday 23/2, 1 left.
            ("2026-02-22", "2026-02-13 09:00:00", 1, 1, true),
            // Late evening still counts from the same VN date.
            ("2026-02-24", "2026-02-13 23:30:00", 1, 2, false),
            // Due today: 0 left, soon.
            ("2026-03-10", "2026-03-10 08:00:00", 0, 0, true),
            // Overdue is never "due soon".
            ("2026-03-10", "2026-03-11 08:00:00", 5, -1, false),
            // Far away.
            ("2026-03-31", "2026-03-02 08:00:00", 5, 21, false),
        ] {
            let now = vn(now);
            assert_eq!(c.working_days_left(d(due), now), left, "due {due}");
            assert_eq!(
                c.is_due_soon(d(due), now, within),
                soon,
                "due {due} within {within}"
            );
        }
    }

    #[test]
    fn years_outside_the_data_fall_back_to_weekends_only() {
        let c = cal();
        for (date, covered, working) in [
            // 2/9/2024 (Monday) was a holiday, but 2024 is not in the data.
            ("2024-09-02", false, true),
            ("2024-09-07", false, false),
            ("2028-01-01", false, false), // Saturday
            ("2028-01-03", false, true),
            ("2026-09-02", true, false),
            ("2026-09-03", true, true),
        ] {
            assert_eq!(c.covers(d(date)), covered, "covers {date}");
            assert_eq!(c.is_working_day(d(date)), working, "working {date}");
        }
        let w = Calendar::weekends_only();
        assert!(!w.covers(d("2026-02-17")));
        assert!(w.is_working_day(d("2026-02-17")));
        assert!(!w.is_working_day(d("2026-02-21")));
    }

    const HEAD: &str = "timezone = \"+07:00\"\n";

    #[test]
    fn from_toml_accepts_a_minimal_calendar() {
        let text = format!(
            "{HEAD}weekend = [\"Sun\"]\n[[year]]\nyear = 2030\nsource = \"test\"\n\
             holidays = [{{ date = 2030-01-01, name = \"Tết Dương lịch\" }}]\n\
             makeup_working_days = [{{ date = 2030-01-06, name = \"bù\" }}]\n"
        );
        let c = Calendar::from_toml(&text).unwrap();
        assert!(c.covers(d("2030-06-01")));
        assert!(!c.is_working_day(d("2030-01-01")));
        assert!(
            c.is_working_day(d("2030-01-05")),
            "Saturday works with weekend = [Sun]"
        );
        assert!(c.is_working_day(d("2030-01-06")), "make-up Sunday");
        assert!(!c.is_working_day(d("2030-01-13")));
        // 6 working days a week: (31/12/2029, 31/12/2030] = 313 Mon-Sat days,
        // -1 holiday, +1 make-up Sunday.
        assert_eq!(
            c.working_days_between(d("2029-12-31"), d("2030-12-31")),
            313
        );
        assert_eq!(c.add_working_days(d("2029-12-31"), 7), d("2030-01-08"));
        // Empty data is a weekends-only calendar.
        let e = Calendar::from_toml(HEAD).unwrap();
        assert!(e.years().next().is_none());
        assert!(!e.is_working_day(d("2026-02-21")));
    }

    #[test]
    fn from_toml_rejects_bad_input() {
        fn year(body: &str) -> String {
            format!("{HEAD}[[year]]\nyear = 2026\nsource = \"s\"\n{body}")
        }
        type Check = fn(&CalendarError) -> bool;
        let cases: Vec<(&str, String, Check)> = vec![
            ("garbage", "this is :: not toml ]]".into(), |e| {
                matches!(e, CalendarError::Toml(_))
            }),
            ("empty text", String::new(), |e| {
                matches!(e, CalendarError::Toml(_))
            }),
            (
                "wrong type",
                format!("{HEAD}[[year]]\nyear = \"2026\"\nsource = \"s\"\n"),
                |e| matches!(e, CalendarError::Toml(_)),
            ),
            ("unknown field", year("holydays = []\n"), |e| {
                matches!(e, CalendarError::Toml(_))
            }),
            (
                "date as string",
                year("holidays = [{ date = \"2026-01-01\", name = \"x\" }]\n"),
                |e| matches!(e, CalendarError::Toml(_)),
            ),
            (
                "holiday and make-up day",
                year(
                    "holidays = [{ date = 2026-01-10, name = \"x\" }]\n\
                     makeup_working_days = [{ date = 2026-01-10, name = \"y\" }]\n",
                ),
                |e| matches!(e, CalendarError::OffAndWorking(_)),
            ),
            (
                "date outside its year",
                year("holidays = [{ date = 2027-01-01, name = \"x\" }]\n"),
                |e| matches!(e, CalendarError::DateOutsideYear { year: 2026, .. }),
            ),
            (
                "date listed twice",
                year(
                    "holidays = [{ date = 2026-01-01, name = \"x\" }]\n\
                     days_off = [{ date = 2026-01-01, name = \"y\" }]\n",
                ),
                |e| matches!(e, CalendarError::DuplicateDate(_)),
            ),
            (
                "make-up day on a weekday",
                year("makeup_working_days = [{ date = 2026-01-09, name = \"x\" }]\n"),
                |e| matches!(e, CalendarError::MakeupOnWorkday(_)),
            ),
            (
                "day off on a weekend",
                year("days_off = [{ date = 2026-01-03, name = \"x\" }]\n"),
                |e| matches!(e, CalendarError::DayOffOnWeekend(_)),
            ),
            (
                "date with a time",
                year("holidays = [{ date = 2026-01-01T08:00:00, name = \"x\" }]\n"),
                |e| matches!(e, CalendarError::NotADate { .. }),
            ),
            (
                "time only",
                year("holidays = [{ date = 08:00:00, name = \"x\" }]\n"),
                |e| matches!(e, CalendarError::NotADate { .. }),
            ),
            (
                "empty name",
                year("holidays = [{ date = 2026-01-01, name = \" \" }]\n"),
                |e| matches!(e, CalendarError::EmptyName(_)),
            ),
            (
                "duplicate year",
                format!("{}[[year]]\nyear = 2026\nsource = \"t\"\n", year("")),
                |e| matches!(e, CalendarError::DuplicateYear(2026)),
            ),
            (
                "missing source",
                format!("{HEAD}[[year]]\nyear = 2026\nsource = \"\"\n"),
                |e| matches!(e, CalendarError::MissingSource(2026)),
            ),
            (
                "year out of range",
                format!("{HEAD}[[year]]\nyear = 9223372036854775807\nsource = \"s\"\n"),
                |e| matches!(e, CalendarError::YearOutOfRange(_)),
            ),
            (
                "negative year",
                format!("{HEAD}[[year]]\nyear = -5\nsource = \"s\"\n"),
                |e| matches!(e, CalendarError::YearOutOfRange(-5)),
            ),
            ("no timezone", "weekend = [\"Sat\"]\n".into(), |e| {
                matches!(e, CalendarError::Toml(_))
            }),
            ("other timezone", "timezone = \"+08:00\"\n".into(), |e| {
                matches!(e, CalendarError::Timezone(_))
            }),
            (
                "bad weekday",
                format!("{HEAD}weekend = [\"Caturday\"]\n"),
                |e| matches!(e, CalendarError::Weekday(_)),
            ),
            (
                "whole week off",
                format!(
                    "{HEAD}weekend = [\"Mon\",\"Tue\",\"Wed\",\"Thu\",\"Fri\",\"Sat\",\"Sun\"]\n"
                ),
                |e| matches!(e, CalendarError::NoWorkingWeekday),
            ),
        ];
        for (what, text, check) in cases {
            match Calendar::from_toml(&text) {
                Ok(_) => panic!("{what}: accepted"),
                Err(e) => {
                    assert!(check(&e), "{what}: wrong error {e:?}");
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        let c = cal();
        let max = NaiveDate::MAX;
        let min = NaiveDate::MIN;
        let _ = c.roll_forward(max);
        let _ = c.next_working_day(max);
        let _ = c.add_working_days(max, 3);
        let _ = c.add_working_days(d("2026-01-01"), u32::MAX);
        let _ = c.working_days_between(min, max);
        let _ = c.deadline_end(max);
        let _ = c.is_overdue(max, DateTime::<Utc>::MAX_UTC);
        let _ = Calendar::local_date(DateTime::<Utc>::MAX_UTC);
        let _ = Calendar::local_date(DateTime::<Utc>::MIN_UTC);
        let _ = c.is_due_soon(min, DateTime::<Utc>::MIN_UTC, 3);
    }
}
