//! The on-time bar chart, drawn as SVG on the server: one bar per group
//! (answering agency, unit or month), its length the share of replies on
//! time. Each bar carries its numbers as `data-` attributes, and the page
//! shows the same numbers in a table for screen readers.
//!
//! Must never: compute a number itself: it draws what `stats` counted.

use maud::{html, Markup};

/// One bar: a group and its counts from `api::queries::stats`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Bar {
    pub(super) label: String,
    pub(super) on_time: u64,
    pub(super) late: u64,
    pub(super) open_overdue: u64,
    pub(super) total: u64,
    /// On time / answered; `None` when nothing was answered.
    pub(super) rate: Option<f64>,
}

impl Bar {
    /// From one group of `stats`' answer (`field` names the group).
    pub(super) fn from_stats(group: &serde_json::Value, field: &str) -> Bar {
        let n = |k: &str| group[k].as_u64().unwrap_or(0);
        Bar {
            label: group[field].as_str().unwrap_or("-").to_owned(),
            on_time: n("on_time"),
            late: n("late"),
            open_overdue: n("open_overdue"),
            total: n("total"),
            rate: group["on_time_rate"].as_f64(),
        }
    }
}

const WIDTH: u32 = 640;
const LABEL: u32 = 120;
const ROW: u32 = 34;

/// A horizontal bar chart of on-time rates, described by `title_id`'s text.
pub(super) fn bars(id: &str, title: &str, bars: &[Bar]) -> Markup {
    let height = ROW * bars.len().max(1) as u32 + 10;
    let span = WIDTH - LABEL - 70;
    html! {
        svg class="chart" id=(id) role="img" aria-labelledby={ (id) "-title" }
            viewBox={ "0 0 " (WIDTH) " " (height) } preserveAspectRatio="xMinYMin meet" {
            title id={ (id) "-title" } { (title) }
            @for (i, bar) in bars.iter().enumerate() {
                @let y = 5 + ROW * i as u32;
                @let len = bar.rate.map_or(0, |r| (r.clamp(0.0, 1.0) * f64::from(span)).round() as u32);
                g class="bar" data-group=(bar.label) data-on-time=(bar.on_time)
                    data-late=(bar.late) data-total=(bar.total)
                    data-rate=(bar.rate.map_or_else(String::new, |r| format!("{r:.4}"))) {
                    text x="0" y=(y + 20) class="label" { (bar.label) }
                    rect x=(LABEL) y=(y + 4) width=(span) height="22" class="track" {}
                    rect x=(LABEL) y=(y + 4) width=(len) height="22"
                        class=(if bar.rate.is_some_and(|r| r >= 0.8) { "fill good" } else { "fill bad" }) {}
                    text x=(LABEL + span + 8) y=(y + 20) class="value" {
                        (bar.rate.map_or_else(|| "—".to_owned(), super::percent))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_carry_their_numbers() {
        let svg = bars(
            "c",
            "Tỉ lệ đúng hạn",
            &[
                Bar::from_stats(
                    &serde_json::json!({"agency": "STTTT", "on_time": 0, "late": 1, "total": 1, "open_overdue": 0, "on_time_rate": 0.0}),
                    "agency",
                ),
                Bar::from_stats(
                    &serde_json::json!({"agency": "SNV", "on_time": 1, "late": 0, "total": 2, "open_overdue": 1, "on_time_rate": 1.0}),
                    "agency",
                ),
            ],
        )
        .into_string();
        assert!(
            svg.contains(r#"data-group="STTTT" data-on-time="0" data-late="1""#),
            "{svg}"
        );
        assert!(svg.contains(r#"width="450""#), "a full bar for SNV: {svg}");
        assert!(svg.contains("100,0 %") && svg.contains("0,0 %"));
    }
}
