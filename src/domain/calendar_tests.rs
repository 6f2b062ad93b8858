//! Table tests of the working-day calendar: holidays, swapped days,
//! make-up Saturdays, deadlines across Tết and the other holidays, overdue
//! at midnight in Vietnam.

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
            format!("{HEAD}weekend = [\"Mon\",\"Tue\",\"Wed\",\"Thu\",\"Fri\",\"Sat\",\"Sun\"]\n"),
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
