//! The pages (`src/ui`) as officials use them: in a real headless Chromium
//! (Debian's `chromium` driven through its `chromedriver` over WebDriver,
//! both installed by `make test-deps`), after the demo story; sign-in
//! through a real OpenID Connect provider process; a crawl of every link
//! as every demo official; the refusals of forms without their token.
//! Screenshots of each page go to `target/ui-screenshots/`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::helpers::{free_port, keys_dir, Api};

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver in a process group of its own, which is killed on drop
/// (even when a test fails midway).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless Chromium session at 1280×800 with a profile of its own.
struct Browser {
    client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// Chromium runs in a session of its own (chromedriver starts it so), out
/// of the driver's process group: its processes are found by the profile
/// directory they were started with, and killed, however the test ended.
impl Drop for Browser {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args([
                "-KILL",
                "-f",
                "--",
                &format!("--user-data-dir={}", self._profile.path().display()),
            ])
            .status();
    }
}

impl Browser {
    async fn start() -> Browser {
        for path in [CHROMIUM, DRIVER] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: run `make test-deps` (ops/browser-deps.sh)"
            );
        }
        let port = free_port();
        use std::os::unix::process::CommandExt;
        let driver = Driver(
            Command::new(DRIVER)
                .arg(format!("--port={port}"))
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let profile = tempfile::tempdir().unwrap();
        // The flags this machine's closed network needs (no background
        // connections), and root's need for --no-sandbox.
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1280,800", "--lang=vi-VN",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let caps = caps.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        let client = loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if start.elapsed() < Duration::from_secs(30) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        };
        client.set_window_size(1280, 800).await.unwrap();
        Browser {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    async fn path(&self) -> String {
        let u = self.client.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        }
    }

    /// Attribute `attr` of every element matching `css`, read in one
    /// script (the live refresh may replace the elements at any moment).
    async fn attrs(&self, css: &str, attr: &str) -> Vec<String> {
        let got = self
            .client
            .execute(
                "var a = arguments[1]; return Array.from(document.querySelectorAll(arguments[0]))\
                 .map(function (e) { return e.getAttribute(a) || ''; });",
                vec![json!(css), json!(attr)],
            )
            .await
            .unwrap();
        serde_json::from_value(got).unwrap()
    }

    /// Runs `script` in the page; what it returns.
    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// Waits (up to 15 s) until an element matches `css`.
    async fn wait_for(&self, css: &str) {
        let start = Instant::now();
        while self.client.find(Locator::Css(css)).await.is_err() {
            if start.elapsed() > Duration::from_secs(15) {
                let text = match self.client.find(Locator::Css("body")).await {
                    Ok(body) => body.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                panic!("{css} did not appear on {}: {text}", self.path().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes a screenshot to `target/ui-screenshots/{name}.png`.
    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshots();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Signs in as `official` on the development sign-in page.
    async fn sign_in_dev(&self, base: &str, official: &str) {
        self.goto(&format!("{base}/ui/sign-in")).await;
        self.client
            .find(Locator::Css(&format!("button[data-official='{official}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.wait_for("form[action='/ui/sign-out']").await;
    }
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots")
}

/// A server after the demo story (development clock, committed keys).
async fn after_the_demo() -> (Api, vanthu_dev::demo::Outcome) {
    let api = Api::start(&[("VANTHU_DEV_CLOCK", "true")]);
    let (outcome, _) = api.demo_story(&keys_dir()).await;
    (api, outcome)
}

/// After the demo story, the People's Committee's clerk sees the one late
/// reply (STTTT) and the two on time, the chart's bars are the API's
/// statistics, the list follows new documents without a reload, and a
/// specialist of another agency sees none of UBND's confidential rows.
#[tokio::test]
async fn clerk_and_specialist_in_chromium_after_the_demo_story() {
    let _limit = crate::helpers::time_limit();
    let (api, outcome) = after_the_demo().await;
    let base = api.server.url.clone();
    let secret_title = "Công văn mật về phương án bảo vệ bí mật nhà nước";
    let (secret, _) = api
        .ubnd_issues(
            secret_title,
            "mat",
            json!([{ "agency": "SNV", "reply_within_working_days": 5 }]),
        )
        .await;
    // Every view has the confidential letter before anyone looks.
    api.caught_up().await;
    let b = Browser::start().await;

    // Not signed in: to the sign-in page, which lists the demo officials.
    b.goto(&format!("{base}/ui/deadlines")).await;
    assert!(
        b.path().await.starts_with("/ui/sign-in?next="),
        "{}",
        b.path().await
    );
    b.shot("dang-nhap").await;
    b.sign_in_dev(&base, "ubnd-van-thu").await;
    b.shot("van-thu-ubnd-trang-chu").await;
    // Keyboard: the first Tab reaches the skip link, which takes the focus
    // to the page's content.
    b.client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    let focused = b.js("return document.activeElement.className;").await;
    assert_eq!(focused, json!("skip"));
    b.js("document.activeElement.click(); return true;").await;
    let focused = b.js("return document.activeElement.id;").await;
    assert_eq!(focused, json!("main"));

    // Hạn trả lời: the plan's three replies, one of them late (STTTT).
    b.goto(&format!("{base}/ui/deadlines")).await;
    let statuses = b.attrs("#issued-rows tbody tr", "data-status").await;
    let agencies = b.attrs("#issued-rows tbody tr", "data-agency").await;
    let docs = b.attrs("#issued-rows tbody tr", "data-doc").await;
    let of_plan: Vec<(String, String)> = docs
        .iter()
        .zip(statuses.iter().zip(&agencies))
        .filter(|(d, _)| **d == outcome.plan)
        .map(|(_, (s, a))| (a.clone(), s.clone()))
        .collect();
    let late: Vec<&String> = of_plan
        .iter()
        .filter(|(_, s)| s == "replied_late")
        .map(|(a, _)| a)
        .collect();
    assert_eq!(late, ["STTTT"], "{of_plan:?}");
    assert_eq!(
        of_plan
            .iter()
            .filter(|(_, s)| s == "replied_on_time")
            .count(),
        2,
        "{of_plan:?}"
    );
    assert_eq!(of_plan.len(), 3);
    // The clerk keeps UBND's books: the confidential row is there for them.
    assert!(
        docs.contains(&secret),
        "the clerk sees the confidential row"
    );
    assert!(b.text("#main").await.contains("Đã trả lời muộn"));
    b.shot("van-thu-ubnd-han-tra-loi").await;
    // Filtered to the late ones only.
    b.goto(&format!("{base}/ui/deadlines?status=replied_late"))
        .await;
    assert_eq!(
        b.attrs("#issued-rows tbody tr", "data-agency").await,
        ["STTTT"]
    );
    // At phone width the page still works.
    b.client.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{base}/ui/deadlines")).await;
    b.shot("van-thu-ubnd-han-tra-loi-dien-thoai").await;
    b.client.set_window_size(1280, 800).await.unwrap();

    // Thống kê: the bars are /v1/deadlines/stats, number for number.
    b.goto(&format!("{base}/ui/stats")).await;
    let groups = b.attrs("#by-agency-chart g.bar", "data-group").await;
    let on_time = b.attrs("#by-agency-chart g.bar", "data-on-time").await;
    let late = b.attrs("#by-agency-chart g.bar", "data-late").await;
    let total = b.attrs("#by-agency-chart g.bar", "data-total").await;
    let bars: BTreeMap<String, (u64, u64, u64)> = (0..groups.len())
        .map(|i| {
            (
                groups[i].clone(),
                (
                    on_time[i].parse().unwrap(),
                    late[i].parse().unwrap(),
                    total[i].parse().unwrap(),
                ),
            )
        })
        .collect();
    let stats = api
        .get("ubnd-van-thu", "/v1/deadlines/stats?issuer=UBND")
        .await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    let from_api: BTreeMap<String, (u64, u64, u64)> = stats.body["agencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["agency"].as_str().unwrap().to_owned(),
                (
                    g["on_time"].as_u64().unwrap(),
                    g["late"].as_u64().unwrap(),
                    g["total"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(bars, from_api);
    assert_eq!(bars["STTTT"], (0, 1, 1));
    assert_eq!(bars["SVHTT"], (1, 0, 1));
    // The follow-up over the API: reply rows only, confidential ones for
    // UBND's book-keepers only, and for UBND's officials only.
    let rows = |body: &Value| -> BTreeSet<String> {
        body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert!(r.get("unit").is_none(), "replies only: {r}");
                format!(
                    "{}/{}",
                    r["doc"].as_str().unwrap(),
                    r["agency"].as_str().unwrap()
                )
            })
            .collect()
    };
    let clerk = api.get("ubnd-van-thu", "/v1/deadlines?issuer=UBND").await;
    assert_eq!(clerk.status, 200, "{}", clerk.body);
    assert_eq!(clerk.body["agency"], "UBND");
    let specialist = api.get("ubnd-cv-vp", "/v1/deadlines?issuer=UBND").await;
    assert_eq!(specialist.status, 200, "{}", specialist.body);
    let (clerk, specialist) = (rows(&clerk.body), rows(&specialist.body));
    assert_eq!(clerk.len(), 4, "{clerk:?}");
    assert_eq!(
        clerk.difference(&specialist).cloned().collect::<Vec<_>>(),
        [format!("{secret}/SNV")]
    );
    for (who, query, status) in [
        ("snv-cv-tcbc", "issuer=UBND", 403),
        ("snv-van-thu", "issuer=UBND", 403),
        ("ubnd-van-thu", "issuer=UBND&by=week", 400),
        ("ubnd-van-thu", "issuer=UBND&by=month", 200),
        ("ubnd-van-thu", "agency=UBND&by=agency", 200),
    ] {
        let r = api.get(who, &format!("/v1/deadlines/stats?{query}")).await;
        assert_eq!(r.status, status, "{who} {query}: {}", r.body);
    }
    let months = api
        .get("ubnd-van-thu", "/v1/deadlines/stats?issuer=UBND&by=month")
        .await;
    let total: u64 = months.body["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["total"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 4, "{}", months.body);
    b.shot("van-thu-ubnd-thong-ke").await;

    // The plan's page: its signature, TM. by the chairman, valid.
    b.goto(&format!("{base}/ui/documents/{}", outcome.plan))
        .await;
    assert_eq!(b.text("#verdict").await, "Chữ ký hợp lệ");
    assert_eq!(b.attrs("dd[data-form]", "data-form").await, ["TM."]);
    // Its timeline names each event in Vietnamese, from the event itself.
    let timeline = b.text("ol.timeline").await;
    for label in ["Soạn dự thảo", "Ký số", "Ban hành, đóng dấu số"] {
        assert!(timeline.contains(label), "{label}: {timeline}");
    }
    assert!(!timeline.contains("Sự kiện khác"), "{timeline}");
    b.shot("van-thu-ubnd-van-ban").await;
    b.goto(&format!("{base}/ui/inbox")).await;
    b.shot("van-thu-ubnd-hop-van-ban").await;
    b.goto(&format!("{base}/ui/registers")).await;
    assert!(!b.attrs("#register tbody tr", "class").await.is_empty());
    b.shot("van-thu-ubnd-so-van-ban").await;

    // Live: a new plan appears in the open list without a reload.
    b.goto(&format!("{base}/ui/deadlines")).await;
    b.js("window.__stayed = 'yes'; return true;").await;
    let (fresh, _) = api
        .ubnd_issues(
            "Công văn đôn đốc báo cáo",
            "normal",
            json!([{ "agency": "STTTT", "reply_within_working_days": 3 }]),
        )
        .await;
    b.wait_for(&format!("#issued-rows tr[data-doc='{fresh}']"))
        .await;
    let stayed = b.js("return window.__stayed || null;").await;
    assert_eq!(stayed, json!("yes"), "the page was not reloaded");

    // Sign-out ends the session.
    b.client
        .find(Locator::Css("form[action='/ui/sign-out'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for("button[data-official]").await;
    b.goto(&format!("{base}/ui/deadlines")).await;
    assert!(
        b.path().await.starts_with("/ui/sign-in"),
        "{}",
        b.path().await
    );

    // A specialist of another agency: SNV must answer the confidential
    // letter, but only SNV's book-keepers see it.
    b.sign_in_dev(&base, "snv-cv-tcbc").await;
    b.goto(&format!("{base}/ui/deadlines")).await;
    let seen: BTreeSet<String> = b
        .attrs("tr[data-doc]", "data-doc")
        .await
        .into_iter()
        .collect();
    assert!(
        seen.contains(&outcome.plan),
        "the plan's rows are SNV's too: {seen:?}"
    );
    assert!(!seen.contains(&secret), "{seen:?}");
    let source = b.client.source().await.unwrap();
    assert!(!source.contains(secret_title));
    b.shot("chuyen-vien-snv-han-tra-loi").await;
    b.goto(&format!("{base}/ui/documents/{secret}")).await;
    assert!(b.text("h1").await.contains("Không tìm thấy"));
    b.goto(&format!("{base}/ui/stats")).await;
    b.shot("chuyen-vien-snv-thong-ke").await;
    b.client.clone().close().await.unwrap();
}

/// An HTTP client that does not follow redirects.
fn no_redirects() -> reqwest::Client {
    vanthu::outbound::install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` of the `Set-Cookie` of `name` in a response.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// A browser-like client signed in to the pages: it sends the session cookie.
struct Session {
    http: reqwest::Client,
    cookie: String,
}

impl Session {
    /// Signs in over HTTP on the development page as `official`.
    async fn dev(base: &str, official: &str) -> Session {
        let http = no_redirects();
        let page = http.get(format!("{base}/ui/sign-in")).send().await.unwrap();
        let form = set_cookie(&page, "vanthu_form").unwrap();
        let csrf = value_of(&page.text().await.unwrap(), "name=\"csrf\" value=\"").unwrap();
        let r = http
            .post(format!("{base}/ui/sign-in/dev"))
            .header("Cookie", form.split(';').next().unwrap())
            .form(&[
                ("csrf", csrf.as_str()),
                ("official", official),
                ("next", "/ui/"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{official}");
        let cookie =
            set_cookie(&r, "vanthu_session").unwrap_or_else(|| panic!("{official}: no session"));
        Session {
            http,
            cookie: cookie.split(';').next().unwrap().to_owned(),
        }
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.get(url).header("Cookie", &self.cookie)
    }

    fn post(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.post(url).header("Cookie", &self.cookie)
    }
}

/// The text after `marker` up to the next `"`.
fn value_of(html: &str, marker: &str) -> Option<String> {
    let at = html.find(marker)? + marker.len();
    Some(html[at..].split('"').next()?.to_owned())
}

/// The page links (`href="/ui/…"`) of an HTML page, unescaped.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|h| h.starts_with("/ui/"))
        .map(|h| h.replace("&amp;", "&"))
        .collect()
}

/// From the home page, every link as every demo official: no page answers
/// 5xx, every page is Vietnamese HTML, every CSV is CSV.
#[tokio::test]
async fn every_link_answers_below_500_for_every_demo_official() {
    let _limit = crate::helpers::time_limit();
    let (api, _) = after_the_demo().await;
    let base = api.server.url.clone();
    let sign_in = reqwest::get(format!("{base}/ui/sign-in"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let officials: BTreeSet<String> = sign_in
        .split("data-official=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(str::to_owned))
        .collect();
    assert!(officials.len() >= 20, "{officials:?}");
    let mut pages = 0;
    for official in &officials {
        let http = Session::dev(&base, official).await;
        let mut seen = BTreeSet::from(["/ui/".to_owned()]);
        let mut queue = VecDeque::from(["/ui/".to_owned()]);
        while let Some(path) = queue.pop_front() {
            let r = http.get(&format!("{base}{path}")).send().await.unwrap();
            let status = r.status().as_u16();
            assert!(status < 500, "{official}: {path} answered {status}");
            pages += 1;
            let kind = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            if path.contains(".csv") {
                assert!(
                    status != 200 || kind.starts_with("text/csv"),
                    "{path}: {kind}"
                );
                continue;
            }
            if !kind.starts_with("text/html") {
                continue;
            }
            let html = r.text().await.unwrap();
            assert!(html.contains("<html lang=\"vi\">"), "{path}");
            for link in links(&html) {
                if seen.len() < 120 && seen.insert(link.clone()) {
                    queue.push_back(link);
                }
            }
        }
    }
    assert!(pages > 200, "{pages} pages crawled");
}

/// Forms without this session's token, requests from another origin and
/// requests without a session are refused, and write nothing; the API
/// never takes the page cookie.
#[tokio::test]
async fn forms_without_their_token_are_refused_and_write_nothing() {
    let _limit = crate::helpers::time_limit();
    let (api, outcome) = after_the_demo().await;
    let base = api.server.url.clone();
    // No session: to the sign-in page, coming back to the same address.
    let plain = no_redirects();
    let r = plain
        .get(format!("{base}/ui/deadlines?status=overdue"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/ui/sign-in?next=/ui/deadlines%3Fstatus%3Doverdue"
    );
    // An unknown page is a page, not JSON.
    let r = plain
        .get(format!("{base}/ui/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    // The development sign-in without the form's cookie.
    let r = plain
        .post(format!("{base}/ui/sign-in/dev"))
        .form(&[("csrf", "x"), ("official", "ubnd-van-thu")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let http = Session::dev(&base, "svhtt-van-thu").await;
    let home = http.get(&format!("{base}/ui/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let csrf = value_of(&home.text().await.unwrap(), "name=\"csrf\" value=\"").unwrap();
    // The API does not take the page's cookie.
    let r = http.get(&format!("{base}/v1/inbox")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let head = api.head().await;
    let read = format!("{base}/ui/inbox/{}/read", outcome.plan);
    for (what, token, origin) in [
        ("no token", "", None),
        ("another session's token", "AAAA", None),
        ("another origin", csrf.as_str(), Some("http://evil.example")),
    ] {
        let mut req = http.post(&read).form(&[("csrf", token)]);
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{what}");
    }
    let r = http
        .post(&format!("{base}/ui/sign-out"))
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(api.head().await, head, "nothing was written");
    // Bad input on a page is a page saying so (4xx), never a 5xx.
    for (path, status) in [
        ("/ui/sign-in?next=/ui/%01", 303),
        ("/ui/live?view=deadlines&after=18446744073709551615", 400),
        ("/ui/live?view=nothing&after=0", 400),
        ("/ui/registers?cursor=x", 400),
        ("/ui/registers?year=12", 400),
        ("/ui/deadlines?min_position=-1", 400),
        ("/ui/deadlines?due_before=31/02/2026", 400),
        ("/ui/deadlines?due_before=31/12/2099", 200),
        ("/ui/stats?from=1/1/2026&to=2026-12-31", 200),
        ("/ui/stats?from=31/12/2026&to=01/01/2026", 400),
        ("/ui/documents/not-a-document", 404),
        ("/ui/registers/UBND/2026/outgoing.pdf", 404),
        ("/ui/registers/SNV/2026/outgoing.csv", 403),
    ] {
        let r = http.get(&format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        if status == 303 {
            assert_eq!(r.headers()["location"], "/ui/", "{path}");
        } else {
            let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(kind.starts_with("text/html"), "{path}: {kind}");
        }
    }
    // With the token: marked read (one record, and on JetStream the
    // mark's idempotency key beside it), once.
    let r = http
        .post(&read)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let records = if crate::cluster::jetstream_run() {
        2
    } else {
        1
    };
    assert_eq!(api.head().await, head + records);
    let r = http
        .post(&read)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(api.head().await, head + records, "marked once");
    // The session cookie: HttpOnly, SameSite=Strict, the pages only.
    let fresh = no_redirects();
    let page = fresh
        .get(format!("{base}/ui/sign-in"))
        .send()
        .await
        .unwrap();
    let form_cookie = set_cookie(&page, "vanthu_form").unwrap();
    let token = value_of(&page.text().await.unwrap(), "name=\"csrf\" value=\"").unwrap();
    let r = fresh
        .post(format!("{base}/ui/sign-in/dev"))
        .header("Cookie", form_cookie.split(';').next().unwrap())
        .form(&[("csrf", token.as_str()), ("official", "ubnd-van-thu")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = set_cookie(&r, "vanthu_session").unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP here: {set}");
    // A callback that is no sign-in of this browser (the SSO is off here).
    let r = plain
        .get(format!("{base}/ui/oidc/callback?code=x&state=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// A real OpenID Connect provider process (`oidc-provider-mock`) and a
/// server whose pages sign in through it, as client `vanthu-ui`; the API's
/// audience is another client of the same provider, `vanthu`.
struct Sso {
    api: Api,
    issuer: String,
    _provider: crate::tokens::Provider,
    _secret: tempfile::TempDir,
}

impl Sso {
    async fn start() -> Sso {
        let port = free_port();
        let issuer = format!("http://localhost:{port}");
        let provider = crate::tokens::Provider::start(port).await;
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("client-secret");
        std::fs::write(&secret, "test-client-secret\n").unwrap();
        let api = Api::start(&[
            ("VANTHU_AUTH_JWKS", &discovery),
            ("VANTHU_AUTH_ISSUER", &issuer),
            ("VANTHU_AUTH_AUDIENCE", "vanthu"),
            ("VANTHU_UI_OIDC", "true"),
            ("VANTHU_UI_OIDC_CLIENT_ID", "vanthu-ui"),
            // A confidential client (HTTP Basic at the token endpoint), as
            // the provider wants: it does not check PKCE, vanthu sends it anyway.
            (
                "VANTHU_UI_OIDC_CLIENT_SECRET_FILE",
                secret.to_str().unwrap(),
            ),
        ]);
        Sso {
            api,
            issuer,
            _provider: provider,
            _secret: dir,
        }
    }
}

/// Sign-in through the province's SSO, a real OpenID Connect provider
/// process, in Chromium: authorization code with PKCE, back to the pages
/// signed in; someone the organisation does not know is refused.
#[tokio::test]
async fn sso_sign_in_in_chromium() {
    let _limit = crate::helpers::time_limit();
    let sso = Sso::start().await;
    let (api, issuer) = (&sso.api, sso.issuer.as_str());
    let base = api.server.url.clone();
    let b = Browser::start().await;
    for (sub, welcome) in [("stranger", None), ("ubnd-van-thu", Some("Hồ Thị Lan"))] {
        b.goto(&format!("{base}/ui/stats")).await;
        b.client
            .find(Locator::Css("a[href^='/ui/sign-in/oidc']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // The provider's own page: who to sign in as.
        b.wait_for("input[name='sub']").await;
        assert!(b
            .client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(issuer));
        let url = b.client.current_url().await.unwrap();
        let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"].len(), 43);
        assert_eq!(q["redirect_uri"], format!("{base}/ui/oidc/callback"));
        let input = b
            .client
            .find(Locator::Css("input[name='sub']"))
            .await
            .unwrap();
        input.send_keys(sub).await.unwrap();
        b.shot("sso-dang-nhap").await;
        input.send_keys("\u{E007}").await.unwrap(); // Enter
        match welcome {
            None => {
                b.wait_for("main h1").await;
                assert!(b.text("main h1").await.contains("Không đăng nhập được"));
                assert!(
                    b.text("main").await.contains("không phải cán bộ"),
                    "refused as unknown to the organisation: {}",
                    b.text("main").await
                );
            }
            Some(name) => {
                b.wait_for("form[action='/ui/sign-out']").await;
                assert_eq!(b.path().await, "/ui/stats");
                assert!(b.text(".who").await.contains(name));
                b.shot("sso-da-dang-nhap").await;
            }
        }
    }
    b.client.clone().close().await.unwrap();
}

/// D10: the ID token the SSO issues to the pages is no API bearer token
/// (the pages are a client of their own), while the API still takes the
/// same official's token for its own audience; and the pages sign in with
/// their client id.
#[tokio::test]
async fn an_id_token_of_the_pages_is_refused_by_the_api() {
    let _limit = crate::helpers::time_limit();
    let sso = Sso::start().await;
    let (api, issuer) = (&sso.api, sso.issuer.as_str());
    let official = "ubnd-van-thu";
    let for_pages = crate::tokens::sign_in(issuer, "vanthu-ui", official).await;
    assert_eq!(crate::tokens::status(&api.server, &for_pages).await, 401);
    let for_api = crate::tokens::sign_in(issuer, "vanthu", official).await;
    assert_eq!(crate::tokens::status(&api.server, &for_api).await, 200);
    // The pages ask the SSO as their own client, and that sign-in works.
    let base = api.server.url.clone();
    let (cookie, back) = sso_until_callback(&base, issuer, official).await;
    let r = no_redirects()
        .get(format!("{base}/ui/sign-in/oidc?next=/ui/"))
        .send()
        .await
        .unwrap();
    let authorize = r.headers()["location"].to_str().unwrap().to_owned();
    let q: BTreeMap<String, String> = reqwest::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["client_id"], "vanthu-ui");
    let r = no_redirects()
        .get(&back)
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(set_cookie(&r, "vanthu_session").is_some());
}

/// Follows the SSO sign-in over HTTP up to the provider's redirect back:
/// (the sealed cookie of the pending sign-in, the callback URL with code
/// and state).
async fn sso_until_callback(base: &str, issuer: &str, sub: &str) -> (String, String) {
    let http = no_redirects();
    let r = http
        .get(format!("{base}/ui/sign-in/oidc?next=/ui/inbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let pending = set_cookie(&r, "vanthu_oidc").unwrap();
    for part in ["HttpOnly", "SameSite=Lax", "Path=/ui/oidc"] {
        assert!(pending.contains(part), "{pending}");
    }
    let authorize = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(issuer), "{authorize}");
    // The user signs in at the provider, which sends the browser back.
    let r = http
        .post(&authorize)
        .form(&[("sub", sub)])
        .send()
        .await
        .unwrap();
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        back.starts_with(&format!("{base}/ui/oidc/callback?")),
        "{back}"
    );
    (pending.split(';').next().unwrap().to_owned(), back)
}

/// The callback refuses what is not this browser's pending sign-in: no
/// cookie, another sign-in's cookie (its state and nonce), a tampered
/// cookie, a replay, the provider's refusal; and it writes nothing.
#[tokio::test]
async fn sso_callbacks_that_are_not_this_browsers_are_refused() {
    let _limit = crate::helpers::time_limit();
    let sso = Sso::start().await;
    let (api, issuer) = (&sso.api, sso.issuer.as_str());
    let base = api.server.url.clone();
    let http = no_redirects();
    let head = api.head().await;
    let callback = |url: &str, cookie: Option<&str>| {
        let mut req = http.get(url);
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        req.send()
    };
    // A: the sign-in finished below. B: another sign-in of the same person.
    let (a_cookie, a_back) = sso_until_callback(&base, issuer, "ubnd-van-thu").await;
    let (b_cookie, b_back) = sso_until_callback(&base, issuer, "ubnd-van-thu").await;
    let state_of = |url: &str| {
        url.split("state=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned()
    };
    // B's code under A's state and cookie: the ID token carries B's nonce.
    let b_code_a_state = b_back.replace(&state_of(&b_back), &state_of(&a_back));
    let tampered = {
        let (body, tag) = a_cookie.split_once('.').unwrap();
        let flipped = if tag.starts_with('A') { "B" } else { "A" };
        format!("{body}.{flipped}{}", &tag[1..])
    };
    for (what, url, cookie) in [
        ("no cookie", a_back.as_str(), None),
        (
            "another sign-in's cookie",
            a_back.as_str(),
            Some(b_cookie.as_str()),
        ),
        (
            "another sign-in's state",
            b_back.as_str(),
            Some(a_cookie.as_str()),
        ),
        (
            "another sign-in's code and nonce",
            b_code_a_state.as_str(),
            Some(a_cookie.as_str()),
        ),
        (
            "a tampered cookie",
            a_back.as_str(),
            Some(tampered.as_str()),
        ),
    ] {
        let r = callback(url, cookie).await.unwrap();
        assert_eq!(r.status(), 401, "{what}");
        assert!(set_cookie(&r, "vanthu_session").is_none(), "{what}");
    }
    // B's own callback after its code was spent on A's cookie: the
    // provider refuses the code again.
    let r = callback(&b_back, Some(&b_cookie)).await.unwrap();
    assert_eq!(r.status(), 401, "a spent code");
    // A itself: signed in, to where the sign-in began, through our own page.
    let r = callback(&a_back, Some(&a_cookie)).await.unwrap();
    assert_eq!(r.status(), 200);
    let session = set_cookie(&r, "vanthu_session").expect("a session");
    assert!(session.contains("SameSite=Strict") && session.contains("HttpOnly"));
    let cleared = set_cookie(&r, "vanthu_oidc").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(r.text().await.unwrap().contains("url=/ui/inbox"));
    // Replayed: the code is spent.
    let r = callback(&a_back, Some(&a_cookie)).await.unwrap();
    assert_eq!(r.status(), 401, "a replay");
    // The provider's refusal, with this browser's cookie.
    let (c_cookie, c_back) = sso_until_callback(&base, issuer, "ubnd-van-thu").await;
    let state = state_of(&c_back);
    let denied = format!("{base}/ui/oidc/callback?error=access_denied&state={state}");
    let r = callback(&denied, Some(&c_cookie)).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(api.head().await, head, "sign-ins write nothing to the log");
}

/// Outside development mode there is no development sign-in, and the SSO
/// sign-in needs an https public address.
#[tokio::test]
async fn production_pages_have_no_development_sign_in() {
    let _limit = crate::helpers::time_limit();
    let own = crate::helpers::own_keys();
    let data = tempfile::tempdir().unwrap();
    let serve = |extra: &[(&str, &str)]| {
        let mut cmd = crate::helpers::serve_command(data.path());
        cmd.env("VANTHU_KEYS_DIR", own.path())
            .env("VANTHU_TLOG_ORIGIN", "vanthu.example.gov.vn/log");
        cmd.envs(extra.iter().copied());
        cmd
    };
    let out = serve(&[("VANTHU_UI_OIDC", "true")]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ui.public_url"), "{err}");
    let server = crate::helpers::TestServer::spawn_command(serve(&[(
        "VANTHU_UI_PUBLIC_URL",
        "https://vanban.example.gov.vn",
    )]))
    .expect("starts");
    let http = no_redirects();
    let page = http
        .get(format!("{}/ui/sign-in", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // Behind an https address, the cookies are Secure.
    let form = set_cookie(&page, "vanthu_form").unwrap();
    assert!(form.contains("Secure"), "{form}");
    let html = page.text().await.unwrap();
    assert!(!html.contains("data-official"), "no list of officials");
    assert!(html.contains("ui.oidc"), "it says what to configure");
    let token = value_of(&html, "name=\"csrf\" value=\"");
    assert!(token.is_none(), "no form at all");
    let r = http
        .post(format!("{}/ui/sign-in/dev", server.url))
        .header("Cookie", form.split(';').next().unwrap())
        .form(&[("csrf", "x"), ("official", "quan-tri")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
