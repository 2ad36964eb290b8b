//! `naam report`'s page in a real headless browser (Debian's `chromium`): it loads with no
//! errors, every embedded figure decodes, and a screenshot of it is not blank. Chromium missing
//! is a failure that names the install script, never a skip.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use naam_analysis::report::{REPORT_FILE, write_report};
use naam_plan::ExperimentId;

/// The browser is killed (its process group, by its PID) after this long.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the test looks whether the browser has exited.
const BROWSER_POLL: Duration = Duration::from_millis(50);
/// Screenshot size.
const WINDOW_PX: (u32, u32) = (1200, 1600);
/// Fewest distinct colours in a screenshot that is not blank: a blank page has one, a page of
/// text a few dozen greys; the claims table, the figures and their coloured lines bring more.
const SCREENSHOT_COLOURS_MIN: usize = 64;
/// Experiments run for the page (two figures).
const REPORTED: [ExperimentId; 2] = [ExperimentId::MicaYcsbB, ExperimentId::OffloadScaling];

const CHROMIUM: &str = "chromium";

fn require_chromium() {
    let found = Command::new(CHROMIUM)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{CHROMIUM}` is not installed or does not run: run scripts/install-test-deps.sh (as root) \
         — it installs Debian's chromium, which this test needs"
    );
}

/// Runs headless chromium on `page` with `args`, its stdout into `stdout_file`; kills it after
/// [`BROWSER_TIMEOUT`].
fn chromium(work: &Path, page: &Path, args: &[String], stdout_file: &Path) {
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            work.join("profile").display()
        ))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .env("HOME", work)
        .stdout(File::create(stdout_file).expect("stdout file"))
        .stderr(File::create(work.join("chromium.stderr")).expect("stderr file"))
        .process_group(0)
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            panic!("chromium ran longer than {BROWSER_TIMEOUT:?}: killed");
        }
        std::thread::sleep(BROWSER_POLL);
    };
    let stderr = std::fs::read_to_string(work.join("chromium.stderr")).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}): {stderr}");
}

fn write_page(root: &Path) -> PathBuf {
    for id in REPORTED {
        common::synthetic_run(&common::plan(id), root);
    }
    let page = root.join(REPORT_FILE);
    let summary = write_report(root, &page).expect("report");
    assert_eq!(summary.figures_embedded, REPORTED.len());
    page.canonicalize().expect("absolute page path")
}

/// The `#page-check` element of the dumped DOM.
fn page_check(dom: &str) -> &str {
    let start = dom
        .find("<p id=\"page-check\"")
        .expect("page-check in the DOM");
    let end = dom[start..].find("</p>").expect("page-check closed");
    &dom[start..start + end]
}

/// Distinct RGB colours of a PNG, with its size.
fn distinct_colours(png_file: &Path) -> (usize, (u32, u32)) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        File::open(png_file).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("PNG frame");
    let channels = info.color_type.samples();
    let colours: std::collections::HashSet<&[u8]> = pixels[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|px| &px[..3.min(channels)])
        .collect();
    (colours.len(), (info.width, info.height))
}

#[test]
fn the_report_loads_in_chromium_without_errors_and_shows_its_figures() {
    require_chromium();
    let root = tempfile::tempdir().expect("tempdir");
    let page = write_page(root.path());
    let dom_file = root.path().join("dom.html");
    chromium(root.path(), &page, &["--dump-dom".to_string()], &dom_file);
    let dom = std::fs::read_to_string(&dom_file).expect("dumped DOM");
    let n = REPORTED.len();
    let check = page_check(&dom);
    assert!(
        check.contains(&format!(
            "data-errors=\"0\" data-images-loaded=\"{n}\" data-images-total=\"{n}\""
        )),
        "{check}"
    );
    assert!(
        check.ends_with(&format!("0 errors, {n}/{n} images loaded")),
        "{check}"
    );

    let shot = root.path().join("screenshot.png");
    let screenshot_args = [
        format!("--screenshot={}", shot.display()),
        format!("--window-size={},{}", WINDOW_PX.0, WINDOW_PX.1),
    ];
    chromium(
        root.path(),
        &page,
        &screenshot_args,
        &root.path().join("shot.out"),
    );
    let (colours, size) = distinct_colours(&shot);
    println!("screenshot {size:?}: {colours} distinct colours");
    assert_eq!(size, WINDOW_PX);
    assert!(
        colours >= SCREENSHOT_COLOURS_MIN,
        "screenshot looks blank: {colours} distinct colours, fewer than {SCREENSHOT_COLOURS_MIN}"
    );
}
